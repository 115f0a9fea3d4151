"""Files are written to a temporary name in the destination's folder and renamed, so a
reader never sees a half-written file and a failure leaves the old file intact. JSON is
written strict (:func:`dumps_json`)."""

from __future__ import annotations

import json
import math
import os
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TextIO


def json_safe(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, +-inf, also numpy's) replaced by None
    and numpy scalars and arrays made plain, so that it serialises as strict JSON."""
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, int):
        return obj
    if isinstance(obj, Mapping):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "tolist"):  # numpy scalars and arrays, torch tensors
        return json_safe(obj.tolist())
    return obj  # json.dumps raises TypeError on anything else


def dumps_json(obj: Any, indent: int | None = 2) -> str:
    """Strict JSON (RFC 8259): non-finite numbers are written as null, never as the
    ``NaN``/``Infinity`` tokens Python's json module emits by default."""
    return json.dumps(json_safe(obj), indent=indent, allow_nan=False)


def dump_json(obj: Any, f: TextIO) -> None:
    """:func:`dumps_json` to an open text file, with a final newline."""
    f.write(dumps_json(obj))
    f.write("\n")


def _create_temp_beside(path: str) -> str:
    """Create an empty temporary file in ``path``'s folder and return its name. Made with
    mode 0666 so the umask applies, as for a plain open() (mkstemp would make it 0600)."""
    folder = os.path.dirname(os.path.abspath(path))
    prefix = f".{os.path.basename(path)[:100]}."  # stay far below NAME_MAX
    for _ in range(100):
        tmp = os.path.join(folder, f"{prefix}{secrets.token_hex(6)}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file beside {path!r}")


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[str]:
    """Yield a new, empty temporary file's name beside ``path``; when the block ends
    normally the file is flushed to disk and renamed onto ``path``, else removed.

    For writers that need a path (gguf-py, matplotlib); for text, open the yielded name:
    ``with atomic_path(p) as tmp, open(tmp, "w") as f: ...``.
    """
    dest = os.fspath(path)
    tmp = _create_temp_beside(dest)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def file_mode() -> int:
    """The mode a plain ``open(path, "w")`` gives here (0o666 minus the umask)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_json_atomic(path: str | os.PathLike[str], doc: Any) -> None:
    """Write ``doc`` as strict JSON (non-finite numbers as null) to a temporary file in
    the same folder, then rename it."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        dump_json(doc, f)


class _Probe(Exception):
    """Abandons the probe file of :func:`check_writable_dir`."""


def check_writable_dir(folder: str | os.PathLike[str], what: str = "out folder") -> None:
    """Create ``folder`` and prove that a file can be written in it (a temporary file,
    removed again), or raise a ValueError naming it: before any long work starts."""
    folder = os.fspath(folder)
    try:
        os.makedirs(folder, exist_ok=True)
        with atomic_path(os.path.join(folder, ".nas-probe")):
            raise _Probe  # the probe file is removed and nothing is renamed
    except _Probe:
        return
    except OSError as exc:
        raise ValueError(f"cannot write to {what} {folder!r}: {exc}") from None
