"""The processes of stdio MCP servers, beyond what the SDK does: their stderr, and what they leave.

A server's stderr goes to a pipe read by a thread of ours, into a log file and a tail kept for
messages, so it never scribbles over the live view (with --debug it is shown, neutralised). After
the SDK has ended a server, `sweep` ends whatever it left running.
"""

from __future__ import annotations

import collections
import os
import signal
import threading
import time
from pathlib import Path
from typing import Callable

from ..text import neutralise

OWNER_VAR = "TOOLCHAT_MCP_OWNER"  # set in each server's environment: this run's mark
SWEEP_GRACE = 1.0  # after SIGTERM, before SIGKILL, for processes a server left behind
_TAIL_LINES = 20


class StderrLog:
    """A stdio server's stderr: a pipe read by a thread into the log file and a tail kept for messages."""

    def __init__(self, label: str, log_path: Path | None, echo: Callable[[str], None] | None):
        """`echo`, if given (--debug), is handed each line as `[mcp LABEL] TEXT`, neutralised."""
        read_fd, write_fd = os.pipe()
        self.writer = os.fdopen(write_fd, "w")  # handed to the child; ours is closed once it runs
        self.lines: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        self.eof = threading.Event()
        self._log = None
        if log_path is not None:
            try:
                log_path.parent.mkdir(parents=True, exist_ok=True)
                self._log = open(log_path, "wb")
            except OSError:
                self._log = None  # no log file is no reason to fail the run; the tail is kept
        self._label, self._echo = label, echo
        threading.Thread(target=self._read, args=(read_fd,), name=f"mcp-stderr-{label}", daemon=True).start()

    def release_writer(self) -> None:
        if not self.writer.closed:
            self.writer.close()

    def tail(self, count: int = 3) -> list[str]:
        return [line for line in list(self.lines) if line.strip()][-count:]

    def _read(self, fd: int) -> None:
        partial = b""
        try:
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                if self._log is not None:
                    self._log.write(chunk)
                    self._log.flush()
                *lines, partial = (partial + chunk).split(b"\n")
                for line in lines:
                    self._line(line)
                if len(partial) > 65536:
                    self._line(partial)
                    partial = b""
        except OSError:
            pass
        finally:
            if partial:
                self._line(partial)
            os.close(fd)
            if self._log is not None:
                self._log.close()
            self.eof.set()

    def _line(self, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace").rstrip("\r")
        self.lines.append(text)
        if self._echo is not None:
            self._echo(f"[mcp {self._label}] {neutralise(text)}")


def sweep(owner: str) -> None:
    """End every process still carrying this run's mark: the servers' children and grandchildren.

    The SDK ends a server's process group only when the server does not exit on its own after its
    stdin closes, so a server that exits promptly can leave helpers it started running. Those
    inherit the environment, mark included; /proc shows it (Linux; elsewhere this does nothing).
    """
    mark = f"{OWNER_VAR}={owner}".encode()

    def marked() -> list[int]:
        found: list[int] = []
        try:
            entries = os.listdir("/proc")
        except OSError:
            return found
        for entry in entries:
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry}/environ", "rb") as file:
                    if mark in file.read().split(b"\0"):
                        found.append(int(entry))
            except OSError:
                continue
        return found

    for signal_number in (signal.SIGTERM, signal.SIGKILL):
        pids = marked()
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal_number)
            except OSError:
                pass
        limit = time.monotonic() + SWEEP_GRACE
        while time.monotonic() < limit and marked():
            time.sleep(0.02)
