"""Messages of ``nas`` go through the standard ``logging`` module, one logger per module
under ``"nas"`` (``logging.getLogger("nas.search")``, ...). The package installs only a
``NullHandler`` (the standard library pattern): a program that imports ``nas`` sees
nothing unless it configures logging itself, e.g.
``logging.basicConfig(level=logging.INFO)`` or ``logging.getLogger("nas").setLevel(...)``.
The command line installs one stderr handler (:func:`cli_logging`): info by default,
warnings only under ``--quiet``, debug under ``--verbose``. Results (the CLI's tables and
``--json`` documents) go to stdout, never through logging.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator

ROOT = "nas"


def get_logger(name: str) -> logging.Logger:
    """The logger of module ``name`` (``__name__`` of a ``nas`` module, or a short name
    that is put under ``nas.``)."""
    return logging.getLogger(
        name if name == ROOT or name.startswith(ROOT + ".") else f"{ROOT}.{name}"
    )


@contextlib.contextmanager
def cli_logging(quiet: bool = False, verbose: bool = False) -> Iterator[logging.Handler]:
    """The CLI's one stderr handler on the ``nas`` logger while the block runs: info by
    default, warnings only with ``quiet``, debug with ``verbose``. Python warnings (e.g.
    the missing-native-library warning) go through it too. Everything is restored on
    exit, so ``nas.cli.main`` called inside a program leaves its logging as it was."""
    root = logging.getLogger(ROOT)
    warn = logging.getLogger("py.warnings")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("nas: %(message)s"))
    saved = (root.level, root.propagate, warn.propagate)
    root.addHandler(handler)
    root.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    root.propagate = False  # an embedding program's root handlers would print it twice
    warn.addHandler(handler)
    warn.propagate = False
    logging.captureWarnings(True)
    try:
        yield handler
    finally:
        logging.captureWarnings(False)
        root.removeHandler(handler)
        warn.removeHandler(handler)
        root.level, root.propagate, warn.propagate = saved


logging.getLogger(ROOT).addHandler(logging.NullHandler())

__all__ = ["cli_logging", "get_logger"]
