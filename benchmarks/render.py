"""Render cost: the live markdown view in a pseudo-terminal against the plain view piped.

    python benchmarks/render.py [--runs 3] [--sizes 2000,20000,40000] [--cols 100 --rows 30]

The mock server (in this process) streams the same markdown answer to both: headings, paragraphs
with emphasis, lists, tables and code blocks, one word per text delta as the real API sends them.
toolchat runs as a child process; its CPU seconds (user + system, from os.wait4, so the child alone)
are what is compared. The terminal side of the pty is drained by this process and not counted.

Targets: live (rich renders each finished markdown block once) costs at most 2.5x plain at 20,000
tokens, and live at 40,000 tokens at most 2.2x live at 20,000 (no quadratic growth). Exit status 1
when a target is missed.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import select
import statistics
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from toolchat.mock.server import MockServer  # noqa: E402

KEY = "sk-ant-bench-render"
LIVE_OVER_PLAIN = 2.5  # CPU of the live view over the plain view's at 20,000 tokens
END = "END-OF-ANSWER"
WORDS = (
    "the quick brown fox jumps over a lazy dog while streaming tokens arrive one at a time "
    "and each one must reach the screen rendered as markdown without being lost"
).split()


def answer(tokens: int) -> str:
    """A markdown answer of about `tokens` words (the mock counts and streams words)."""
    out: list[str] = []
    count, n = 0, 0

    def words(k: int) -> str:
        nonlocal n
        picked = [WORDS[(n + i) % len(WORDS)] for i in range(k)]
        n += k
        for i, mark in ((1, "**"), (4, "*"), (7, "`")):
            if i < k:
                picked[i] = f"{mark}{picked[i]}{mark}"
        return " ".join(picked)

    section = 0
    while count < tokens:
        section += 1
        parts = [f"## Section {section}: {words(4)}", words(60) + ".", words(45) + "."]
        parts.append("\n".join(f"- {words(9)}" for _ in range(5)))
        parts.append("\n".join(f"{i}. {words(8)}" for i in range(1, 4)))
        parts.append(
            "```python\n"
            + "\n".join(
                f"def step_{section}_{i}(value):\n    return value * {i} + {section}  # {words(3)}" for i in range(4)
            )
            + "\n```"
        )
        parts.append(
            "| name | value | note |\n|------|------:|------|\n"
            + "\n".join(f"| item {i} | {i * section} | {words(4)} |" for i in range(4))
        )
        parts.append(words(50) + ".")
        block = "\n\n".join(parts) + "\n\n"
        count += len(block.split())
        out.append(block)
    out.append(f"The last line: {END}.\n")
    return "".join(out)


def environment(server: MockServer) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "TOOLCHAT_")) and k not in ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES")
    }
    env.update(
        TOOLCHAT_BASE_URL=server.url,
        TOOLCHAT_API_KEY=KEY,
        TERM="xterm-256color",
        PYTHONPATH=str(REPO),
        XDG_CONFIG_HOME="/nonexistent",
    )
    return env


def reap(proc: subprocess.Popen) -> tuple[int, float]:
    """Wait for the child; its exit code and its own CPU seconds."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_utime + usage.ru_stime


def run_plain(server: MockServer) -> tuple[float, float]:
    """toolchat with stdout piped (the plain view); (cpu, wall)."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "toolchat", "hi"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=environment(server),
    )
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.append(proc.stdout.read()))
    reader.start()
    code, cpu = reap(proc)
    reader.join()
    out = b"".join(chunks)
    if code != 0 or END.encode() not in out or b"\x1b" in out:
        raise SystemExit(f"plain run failed: exit {code}, {len(out)} bytes")
    return cpu, time.monotonic() - started


def run_live(server: MockServer, cols: int, rows: int) -> tuple[float, float]:
    """toolchat in a pseudo-terminal (the live view); (cpu, wall)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "toolchat", "hi"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=environment(server),
        start_new_session=True,
    )
    os.close(slave)
    tail = b""
    while True:
        ready, _, _ = select.select([master], [], [], 1.0)
        if not ready:
            if proc.poll() is not None:
                break
            continue
        try:
            data = os.read(master, 1 << 16)
        except OSError:
            break
        if not data:
            break
        tail = (tail + data)[-4096:]
    os.close(master)
    code, cpu = reap(proc)
    if code != 0 or END.encode() not in tail or b"out tokens" not in tail:
        raise SystemExit(f"live run failed: exit {code}, last bytes {tail[-300:]!r}")
    return cpu, time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each; the median is reported")
    parser.add_argument("--sizes", default="2000,20000,40000", help="answer sizes in tokens")
    parser.add_argument("--cols", type=int, default=100)
    parser.add_argument("--rows", type=int, default=30)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, terminal {args.cols}x{args.rows}, "
        f"median of {args.runs} runs; CPU seconds of the toolchat process"
    )
    print(
        f"{'tokens':>7} {'chars':>8} {'plain cpu':>10} {'live cpu':>9} {'live/plain':>11} "
        f"{'plain wall':>11} {'live wall':>10}"
    )
    results: dict[int, tuple[float, float]] = {}
    for size in sizes:
        text = answer(size)
        server = MockServer(script={"turns": [{"text": text}]}).start()
        try:
            run_plain(server)  # warm the page cache and the server's first reply
            plain = [run_plain(server) for _ in range(args.runs)]
            live = [run_live(server, args.cols, args.rows) for _ in range(args.runs)]
        finally:
            server.stop()
        p_cpu, l_cpu = (statistics.median(c for c, _ in runs) for runs in (plain, live))
        p_wall, l_wall = (statistics.median(w for _, w in runs) for runs in (plain, live))
        results[size] = (p_cpu, l_cpu)
        print(
            f"{len(text.split()):>7} {len(text):>8} {p_cpu:>10.3f} {l_cpu:>9.3f} {l_cpu / p_cpu:>10.2f}x "
            f"{p_wall:>10.2f}s {l_wall:>9.2f}s",
            flush=True,
        )

    ok = True
    if 20000 in results:
        p, l = results[20000]
        hit = l / p <= LIVE_OVER_PLAIN
        ok &= hit
        print(f"live/plain at 20,000 tokens: {l / p:.2f}x (target <= {LIVE_OVER_PLAIN}x): {'pass' if hit else 'MISS'}")
    if 20000 in results and 40000 in results:
        for name, i in (("live", 1), ("plain", 0)):
            growth = results[40000][i] / results[20000][i]
            hit = growth <= 2.2
            if name == "live":
                ok &= hit
            print(
                f"{name} 40,000 / 20,000 tokens: {growth:.2f}x"
                + (f" (target <= 2.2x): {'pass' if hit else 'MISS'}" if name == "live" else "")
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
