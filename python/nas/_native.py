"""Loads the native library ``nas._C`` and reports what it was built with.

``import torch`` must come first: ``_C`` links libtorch, which Python's torch has
already loaded. When ``_C`` is missing (a source checkout used without building, or a
broken build), every op falls back to its pure-PyTorch reference and warns once.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch  # noqa: F401  (loads libtorch before _C)

try:
    from . import _C  # type: ignore[attr-defined]

    _IMPORT_ERROR: BaseException | None = None
except ImportError as exc:  # pragma: no cover - exercised only without a build
    _C = None
    _IMPORT_ERROR = exc

_warned = False


def has_native() -> bool:
    """True when the compiled library ``nas._C`` is loaded (``torch.ops.nas.*`` exist)."""
    return _C is not None


def build_info() -> dict[str, Any]:
    """What the native library was built with.

    Returns ``{"native": bool, "backends": ["cpu", "cuda"?], "cuda_archs": ["sm_90", ...],
    "torch_version": "<torch it was built against>", "runtime_torch_version": ...}``.
    """
    if _C is None:
        return {
            "native": False,
            "backends": [],
            "cuda_archs": [],
            "torch_version": None,
            "runtime_torch_version": torch.__version__,
            "error": str(_IMPORT_ERROR),
        }
    info = dict(_C.build_info())
    info["native"] = True
    info["runtime_torch_version"] = torch.__version__
    return info


def warn_fallback(op: str) -> None:
    """Warn, once per process, that ``op`` runs on its pure-PyTorch reference."""
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(
            f"nas._C is not available ({_IMPORT_ERROR}); nas.ops.{op} and every other native "
            "op fall back to their pure-PyTorch references, which are much slower. "
            "Reinstall with `pip install --no-build-isolation .` to build it.",
            RuntimeWarning,
            stacklevel=3,
        )


# Fallbacks for wrappers that do not pass their reference to call_native (registered
# by nas.ops, which imports the references); this module imports nothing from nas.
_REFERENCES: dict[str, Callable[..., Any]] = {}


def register_reference(name: str, reference: Callable[..., Any]) -> None:
    """Make ``reference`` the fallback of ``call_native(name, ...)`` without ``_C``."""
    _REFERENCES[name] = reference


def call_native(name: str, *args: Any, reference: Callable[..., Any] | None = None) -> Any:
    """``torch.ops.nas.<name>(*args)``, or, without ``_C``, ``reference(*args)``: the op's
    pure-PyTorch reference (``nas.ops._reference.<name>``), warning once. Each wrapper
    passes its reference, so this module stays a leaf of the import graph."""
    if _C is not None:
        return getattr(torch.ops.nas, name)(*args)
    warn_fallback(name)
    fn = reference if reference is not None else _REFERENCES.get(name)
    if fn is None:
        raise RuntimeError(f"nas._C is not available and nas.ops.{name} has no reference")
    return fn(*args)
