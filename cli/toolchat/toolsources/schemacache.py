"""Which tools files' schemas were already checked: one marker file per file content.

The key is a hash of the file's bytes and of the jsonschema install that checked it, so an edited
file (or another jsonschema) is checked again. A marker holds its own key: an empty, cut or foreign
file under that name counts as not checked. Markers are written to a temporary file and renamed,
so concurrent runs see a whole marker or none; any error reading or writing one only means the
schemas are checked again.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..files import write_atomically

_SALT = b"toolchat schema check 1\0"


def folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "toolchat" / "schemas"


def key(data: bytes) -> str:
    return hashlib.sha256(_SALT + _jsonschema_version().encode() + b"\0" + data).hexdigest()


def seen(key: str) -> bool:
    try:
        return (folder() / key).read_text(encoding="ascii") == key
    except (OSError, ValueError):
        return False


def remember(key: str) -> None:
    target = folder() / key
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(target, key, encoding="ascii", prefix=f".{key[:16]}.")
    except OSError:
        pass  # a read-only or full cache folder: the check just runs again next time


def _jsonschema_version() -> str:
    """Which jsonschema would check: where it is installed and when (an upgrade changes both).
    Found without importing it (importing jsonschema is what the cache avoids) or reading metadata."""
    from importlib.util import find_spec

    try:
        spec = find_spec("jsonschema")
        origin = spec.origin if spec is not None else None
        info = os.stat(origin) if origin else None
    except (ImportError, ValueError, OSError):
        return "?"
    return f"{origin}:{info.st_mtime_ns}:{info.st_size}" if info else "?"
