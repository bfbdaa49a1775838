"""Writing a file so that a reader, a crash or a concurrent run sees the old file or the new one,
never half of one: a temporary file in the same folder, then a rename over the target."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(
    target: Path,
    data: str,
    *,
    encoding: str = "utf-8",
    mode: int | None = None,
    durable: bool = False,
    prefix: str | None = None,
) -> None:
    """Replace `target` with `data`. `mode`: the file's permissions; `durable`: fsync the file
    before the rename (the caller syncs the folder if it needs the rename itself durable)."""
    fd, temporary = tempfile.mkstemp(prefix=prefix or f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding=encoding) as handle:
            handle.write(data)
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
