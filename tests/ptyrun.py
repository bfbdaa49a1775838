"""Run a command with a real pty as its terminal (stdin, stdout, stderr, controlling tty): the one
driver loop the terminal tests share (test_live.py, test_terminal_safety.py)."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import termios
import threading
import time
from dataclasses import dataclass


@dataclass
class PtyRun:
    code: int
    raw: bytes  # every byte the terminal received
    piped: bytes  # stdout, when it was a pipe


def run_on_pty(
    argv: list[str],
    env: dict,
    cwd,
    *,
    cols: int,
    rows: int,
    answers=(),
    interrupt_on: bytes | None = None,
    pipe_stdout: bool = False,
    timeout: float,
) -> PtyRun:
    """`answers` are typed, one per approval question (`[a]lways: `); `interrupt_on` types Ctrl-C
    once those bytes have been shown; `pipe_stdout` gives the command a pipe as its stdout."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def take_terminal():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        argv,
        stdin=slave,
        stdout=subprocess.PIPE if pipe_stdout else slave,
        stderr=slave,
        env=env,
        cwd=cwd,
        preexec_fn=take_terminal,
    )
    os.close(slave)
    piped: list[bytes] = []
    reader = None
    if pipe_stdout:
        reader = threading.Thread(target=lambda: piped.append(proc.stdout.read()), daemon=True)
        reader.start()
    raw, asked_at, pending = b"", 0, list(answers)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every copy of the slave side is closed
                break
            if not data:
                break
            raw += data
            if pending and b"[a]lways: " in raw[asked_at:]:
                asked_at = len(raw)
                os.write(master, pending.pop(0).encode() + b"\n")
            if interrupt_on is not None and interrupt_on in raw:
                interrupt_on = None
                os.write(master, b"\x03")
        code = proc.wait(timeout=10)
        if reader is not None:
            reader.join(timeout=10)
    finally:
        proc.kill()
        os.close(master)
    return PtyRun(code, raw, b"".join(piped))
