"""Stdout belongs to toolchat; bytes in become text with one warning; text out never fails to encode.

During a command, file descriptor 1 points at stderr, so whatever else writes to stdout (a tool
handler's `print`, a library, a subprocess a handler starts, C code) lands on stderr. toolchat's own
output goes to a duplicate of the real stdout, through `sys.stdout`, which is a `GuardedStdout`: it
writes to the real stdout for toolchat's own code and to stderr for handler code (marked with
`handler_code()`) and for threads that toolchat did not start.
"""

from __future__ import annotations

import codecs
import os
import re
import sys
import threading
from contextlib import contextmanager
from typing import Iterator, TextIO

_local = threading.local()
_OWN_THREAD_PREFIX = "toolchat-"  # toolchat's own helper threads (the live view's painter)
ESCAPE = "toolchat-escape"


def _escape(error: UnicodeError):
    """Unencodable characters as \\uXXXX escapes: readable text, and valid inside a JSON string
    (the only place JSON output has non-ASCII characters), so `--json` stays valid JSON."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    parts = []
    for char in error.object[error.start : error.end]:
        code = ord(char)
        if code > 0xFFFF:  # JSON spells these as a surrogate pair
            code -= 0x10000
            parts.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
        else:
            parts.append(f"\\u{code:04x}")
    return "".join(parts), error.end


codecs.register_error(ESCAPE, _escape)


def safe_streams() -> None:
    """Writes to stdout and stderr never raise UnicodeEncodeError (an ascii locale, lone surrogates)."""
    for stream, errors in ((sys.stdout, ESCAPE), (sys.stderr, "backslashreplace")):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and getattr(stream, "errors", None) in ("strict", "surrogateescape"):
            try:
                reconfigure(errors=errors)
            except (ValueError, OSError):
                pass


@contextmanager
def handler_code() -> Iterator[None]:
    """Mark the code run inside (a tool handler, a handler module's import) as not toolchat's own:
    what it writes to sys.stdout goes to stderr."""
    previous = getattr(_local, "foreign", False)
    _local.foreign = True
    try:
        yield
    finally:
        _local.foreign = previous


def _is_own(owner: int) -> bool:
    if getattr(_local, "foreign", False):
        return False
    if threading.get_ident() == owner:  # the main thread: the common case, without a Thread object
        return True
    return threading.current_thread().name.startswith(_OWN_THREAD_PREFIX)


class GuardedStdout:
    """sys.stdout during a command: the real stdout for toolchat's own writes, stderr for others.

    It answers isatty(), fileno() and encoding for the real stdout, so views choose as they would.
    """

    def __init__(self, real: TextIO, err: TextIO, owner: int):
        self._real, self._err, self._owner = real, err, owner

    def _target(self) -> TextIO:
        return self._real if _is_own(self._owner) else self._err

    @property
    def real(self) -> TextIO:
        """The real stdout: for toolchat's own writers that know they are (the views), which skip
        the check of whose code writes on every write."""
        return self._real

    def write(self, text: str) -> int:
        return self._target().write(text)

    def writelines(self, lines) -> None:
        self._target().writelines(lines)

    def flush(self) -> None:
        self._target().flush()

    @property
    def buffer(self):
        return self._target().buffer

    def isatty(self) -> bool:
        return self._real.isatty()

    def fileno(self) -> int:
        return self._real.fileno()

    @property
    def encoding(self) -> str:
        return self._real.encoding

    @property
    def errors(self) -> str | None:
        return self._real.errors

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    @property
    def closed(self) -> bool:
        return self._real.closed

    def __getattr__(self, name: str):
        return getattr(self._real, name)


def own_stdout() -> TextIO:
    """Where toolchat's own answer goes: the real stdout under guarded_stdout(), else sys.stdout."""
    stream = sys.stdout
    return stream.real if isinstance(stream, GuardedStdout) else stream


@contextmanager
def guarded_stdout() -> Iterator[None]:
    """For the time inside, stdout belongs to toolchat (see the module docstring). Reentrant."""
    original = sys.stdout
    if isinstance(original, GuardedStdout) or original is None or sys.stderr is None:
        yield
        return
    saved = None
    try:
        fd, err_fd = original.fileno(), sys.stderr.fileno()
        original.flush()
        sys.stderr.flush()
        saved = os.dup(fd)  # not inherited: a subprocess never gets the real stdout
    except (AttributeError, ValueError, OSError):  # no real file descriptors (captured, closed)
        real = original
    else:
        line = getattr(original, "line_buffering", False)  # as Python set it: on for a terminal
        real = open(saved, "w", buffering=1 if line else -1, encoding=original.encoding, errors=ESCAPE)
        os.dup2(err_fd, fd)
    sys.stdout = GuardedStdout(real, sys.stderr, threading.get_ident())
    try:
        yield
    finally:
        sys.stdout = original
        if saved is not None:
            try:
                real.flush()
            except (OSError, ValueError):  # the reader went away; run() deals with that
                pass
            os.dup2(saved, fd)
            try:
                real.close()
            except (OSError, ValueError):
                pass


# ---------------------------------------------------------------------------------------------
# Bytes in


def decode(data: bytes) -> tuple[str, int]:
    """UTF-8 bytes as text, each byte that is not UTF-8 replaced with U+FFFD; (text, bytes replaced)."""
    return repair(data.decode("utf-8", "surrogateescape"))


def repair(text: str) -> tuple[str, int]:
    """Text that came in with surrogate escapes (argv, os.environ) or lone surrogates, as valid
    text: each one replaced with U+FFFD; (text, how many were replaced)."""
    if text.isascii():
        return text, 0
    try:
        text.encode("utf-8")
        return text, 0
    except UnicodeEncodeError:
        pass
    # Surrogate escapes stand for the raw bytes of argv (or a file); decode those bytes again.
    raw = text.encode("utf-8", "surrogateescape") if _only_escapes(text) else None
    if raw is not None:
        text = raw.decode("utf-8", "surrogateescape")
    count = 0

    def replace(match) -> str:
        nonlocal count
        count += 1
        return "\ufffd"

    text = re.sub("[\ud800-\udfff]", replace, text)
    return text, count


def _only_escapes(text: str) -> bool:
    try:
        text.encode("utf-8", "surrogateescape")
        return True
    except UnicodeEncodeError:
        return False


def warn_replaced(what: str, count: int) -> None:
    """The one warning line for an input that was not valid UTF-8."""
    if count:
        print(
            f"toolchat: warning: {what} is not valid UTF-8: {count} byte{'s' * (count != 1)} replaced with U+FFFD",
            file=sys.stderr,
            flush=True,
        )


def read_stdin() -> bytes:
    """All of stdin as bytes (decoded by `decode`, whatever the locale says)."""
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is not None:
        return buffer.read()
    text = sys.stdin.read()
    return text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text


def read_text(path, what: str) -> str:
    """A UTF-8 text file; bytes that are not UTF-8 become U+FFFD, with one warning naming `what`."""
    with open(path, "rb") as handle:
        text, replaced = decode(handle.read())
    warn_replaced(what, replaced)
    return text
