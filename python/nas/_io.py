"""Files are written to a temporary name in the destination's folder and renamed, so a
reader never sees a half-written file and a failure leaves the old file intact."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager


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
