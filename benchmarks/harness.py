"""Measuring whole processes: wall time, CPU time and peak memory of one child, medians over runs.

Stdlib only, so the benchmark runs with any interpreter. Each child is reaped with `os.wait4`, whose
rusage belongs to that one process (curl, toolchat, llm ...), not to everything the runner started.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

# A check gets (stdout, stderr) of a finished run and returns what is wrong with it, or None.
Check = Callable[[bytes, bytes], "str | None"]


@dataclass(frozen=True)
class Sample:
    wall: float  # seconds, spawn to reap, as seen by the runner
    cpu: float  # user + system seconds of the child itself
    rss_kib: int  # ru_maxrss of the child (KiB on Linux)


@dataclass
class Command:
    """One thing to time: argv, environment, and a check that it really did the work."""

    key: str
    label: str
    argv: list[str]
    env: dict
    check: Check
    cwd: str | None = None
    samples: list[Sample] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.samples)

    def median(self, what: str = "wall") -> float:
        return statistics.median(getattr(s, what) for s in self.samples)

    def low(self, what: str = "wall") -> float:
        return min(getattr(s, what) for s in self.samples)

    def high(self, what: str = "wall") -> float:
        return max(getattr(s, what) for s in self.samples)


# The spawner: a small process of its own that starts each measured command and reaps it.
#
# Why not spawn from the runner: Linux counts, in a child's ru_maxrss, the memory of the process it
# was forked (or vforked) from, up to the exec. Spawned from the runner, every command would show at
# least the runner's own peak (20 MiB and growing). From a bare `python -I -S` it is about 9 MiB,
# under anything measured here.
_SPAWNER = r"""
import json, os, signal, sys, time
requests, replies = sys.stdin, sys.stdout  # the commands get /dev/null as their stdin
pid = None
def expire(signum, frame):
    global timed_out
    timed_out = True
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
signal.signal(signal.SIGALRM, expire)
for line in requests:
    req = json.loads(line)
    timed_out = False
    devnull = os.open(os.devnull, os.O_RDONLY)
    out = os.open(req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    err = os.open(req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.chdir(req["cwd"])
    actions = [(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, out, 1),
               (os.POSIX_SPAWN_DUP2, err, 2)]
    try:
        start = time.perf_counter()
        pid = os.posix_spawnp(req["argv"][0], req["argv"], req["env"], file_actions=actions)
        signal.setitimer(signal.ITIMER_REAL, req["timeout"])
        _, status, usage = os.wait4(pid, 0)
        wall = time.perf_counter() - start
        signal.setitimer(signal.ITIMER_REAL, 0)
        reply = {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_kib": usage.ru_maxrss,
                 "code": os.waitstatus_to_exitcode(status), "timed_out": timed_out}
    except OSError as exc:
        reply = {"error": f"cannot start {req['argv'][0]}: {exc.strerror or exc}"}
    finally:
        pid = None
        for fd in (devnull, out, err):
            os.close(fd)
    replies.write(json.dumps(reply) + "\n")
    replies.flush()
"""


class Spawner:
    """Runs commands one at a time in the spawner process; `run` returns (Sample, stdout, stderr)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _SPAWNER], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )

    def run(self, command: Command, workdir: Path, timeout: float = 120.0) -> tuple[Sample, bytes, bytes]:
        """Run once with stdout and stderr going to files; raise RuntimeError if it failed."""
        out_path = workdir / f"{command.key}.stdout"
        err_path = workdir / f"{command.key}.stderr"
        request = {
            "argv": command.argv,
            "env": command.env,
            "cwd": command.cwd or str(workdir),
            "stdout": str(out_path),
            "stderr": str(err_path),
            "timeout": timeout,
        }
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write((json.dumps(request) + "\n").encode())
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the spawner process died")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(reply["error"])
        stdout, stderr = out_path.read_bytes(), err_path.read_bytes()
        if reply["timed_out"]:
            raise RuntimeError(f"timed out after {timeout:g} s")
        if reply["code"] != 0:
            raise RuntimeError(f"exit code {reply['code']}: {_tail(stderr)}")
        problem = command.check(stdout, stderr)
        if problem:
            raise RuntimeError(f"{problem}; stderr: {_tail(stderr)}")
        return Sample(reply["wall"], reply["cpu"], reply["rss_kib"]), stdout, stderr

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> "Spawner":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def bench(
    spawner: Spawner,
    commands: list[Command],
    runs: int,
    workdir: Path,
    warmup: int = 1,
    log: Callable[[str], None] = print,
) -> None:
    """Warm each command up, then time `runs` rounds, the commands interleaved within a round.

    Interleaving spreads slow drifts of the machine (other load, CPU clocks) over every command
    alike. A command that fails keeps its error and is not run again.
    """
    for command in commands:
        for _ in range(warmup):
            _attempt(spawner, command, workdir, keep=False)
    for round_number in range(runs):
        for command in commands:
            if command.error is None:
                _attempt(spawner, command, workdir, keep=True)
        log(f"  round {round_number + 1}/{runs} done")


def _attempt(spawner: Spawner, command: Command, workdir: Path, keep: bool) -> None:
    if command.error is not None:
        return
    try:
        sample, _, _ = spawner.run(command, workdir)
    except (RuntimeError, OSError) as exc:
        command.error = str(exc)
        return
    if keep:
        command.samples.append(sample)


def _tail(data: bytes, limit: int = 300) -> str:
    text = " ".join(data.decode("utf-8", "replace").split())
    return text if len(text) <= limit else "…" + text[-limit:]


# ---------------------------------------------------------------------------------------------
# The mock server, as a process of its own


class MockProcess:
    """`python -m toolchat.mock.server --script FILE` in a child process; `url` once it listens.

    A process of its own keeps the server's work off the runner and off the measured client: on
    two cores the server streams on one while the client parses on the other.
    """

    def __init__(self, repo: Path, script: Path, log_path: Path):
        self.repo, self.script, self.log_path = repo, script, log_path
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def __enter__(self) -> "MockProcess":
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(self.repo), "LANG": "C.UTF-8"}
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "toolchat.mock.server", "--script", str(self.script)],
            cwd=self.repo,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        line = self.proc.stdout.readline().decode("utf-8", "replace") if ready else ""
        match = re.search(r"https?://\S+", line)
        if not match:
            self.__exit__()
            raise RuntimeError(f"the mock server did not start (said {line.strip()!r}; see {self.log_path})")
        self.url = match.group(0)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # its main() stops cleanly on KeyboardInterrupt
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()


# ---------------------------------------------------------------------------------------------
# The peers' virtual environment

PEER_PACKAGES = ("llm", "llm-anthropic", "anthropic", "llm-tools-mcp", "mcp", "openai")
# llm-tools-mcp 0.4 is written against the 1.x SDK (streamablehttp_client, removed in 2.x).
PEER_PINS = {"mcp": "mcp<2"}


def ensure_peers(venv: Path, refresh: bool = False, log: Callable[[str], None] = print) -> dict:
    """Create `venv` with the peers from PyPI unless it already has them; return their versions.

    The peers live in a virtual environment of their own, built with this interpreter (so both
    sides run the same Python), and never touch toolchat's environment.
    """
    python = venv / "bin" / "python"
    if refresh or not python.exists():
        log(f"creating the peers' virtual environment in {venv} ...")
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    versions = _peer_versions(python)
    if refresh or versions is None:
        log(f"installing {', '.join(PEER_PACKAGES)} into it (pip) ...")
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--upgrade",
                *(PEER_PINS.get(p, p) for p in PEER_PACKAGES),
            ],
            check=True,
        )
        versions = _peer_versions(python)
        if versions is None:
            raise RuntimeError(f"the peers did not install into {venv}")
    return versions


def _peer_versions(python: Path) -> dict | None:
    if not python.exists():
        return None
    code = (
        f"import json, importlib.metadata as m\nprint(json.dumps({{p: m.version(p) for p in {list(PEER_PACKAGES)!r}}}))"
    )
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        return None
    return json.loads(proc.stdout)


# ---------------------------------------------------------------------------------------------
# The machine


def machine() -> dict:
    """What the numbers were measured on."""
    import platform

    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": memory,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
    }
