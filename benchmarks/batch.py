"""`toolchat batch` against a rate limit, measured in one run: `python benchmarks/batch.py`.

1. **Throughput at the limit.** N one-tool conversations (default 1,000: a tool call, then the
   answer, so 2N requests) against the mock server allowing R requests per minute (default 600)
   with a burst of B (default R/60: one second's worth, so a run of a few minutes shows the steady
   rate rather than the first burst), answering 429 with `retry-after` above it. Reported:
   throughput as a fraction of what the limit allowed over the run (accepted / (B + R/60 x
   elapsed); target >= 90 %), and the share of requests answered 429 (target < 2 %).
2. The same conversations run by `xargs -P 8` starting toolchat one-shot per line (default: the
   first 200 lines, --xargs-lines), against a fresh mock with the same limit, in the same run:
   the same two numbers, plus the lines that failed (a one-shot run gives up after its retries).
3. **Peak memory** (max RSS of the batch process) for 10,000 lines and for 1,000 (echo model, no
   limit): bounded means about the same for both.

Options: --lines N, --rpm R, --burst B, --concurrency C, --xargs-lines N (0: skip), --memory-lines N.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "cli"))

from toolchat.mock.server import MockServer  # noqa: E402

KEY = "bench-key-not-secret"
TOOLS = """\
tools:
  - name: lookup
    description: Look a ticket up.
    input_schema: {type: object, properties: {n: {type: integer}}, required: [n]}
    handler: h.py:lookup
"""
HANDLER = "def lookup(n):\n    return f'ticket {n}: open'\n"


def _prompt(n: int) -> str:
    return json.dumps({"tool_calls": [{"name": "lookup", "input": {"n": n}}]})


def _env(home: Path, url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "TOOLCHAT_"))}
    env.update(
        {
            "TOOLCHAT_HOME": str(home),
            "TOOLCHAT_BASE_URL": url,
            "TOOLCHAT_API_KEY": KEY,
            "TOOLCHAT_CONFIG": os.devnull,
            "PYTHONPATH": str(REPO / "cli"),
        }
    )
    return env


def _run(command: list[str], cwd: Path, env: dict, stdin=None) -> tuple[int, float, int]:
    """(exit code, seconds, peak RSS in KiB) of one process."""
    started = time.monotonic()
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode("utf-8", "replace")
    proc.stderr.close()
    if proc.returncode not in (0, 3, 4):
        print(err[-2000:], file=sys.stderr)
    return proc.returncode, time.monotonic() - started, usage.ru_maxrss


def _limited(rpm: int, burst: int) -> MockServer:
    return MockServer(rate_limit={"requests": rpm, "burst": burst}, log=False).start()


def _report(name: str, server: MockServer, seconds: float, rpm: int, burst: int, lines: int, failed: int) -> dict:
    accepted, refused = server.rate_limit.accepted, server.rate_limit.refused
    allowed = burst + rpm / 60.0 * seconds
    row = {
        "engine": name,
        "lines": lines,
        "seconds": round(seconds, 1),
        "accepted": accepted,
        "refused_429": refused,
        "throughput_of_limit": round(accepted / allowed, 3),
        "share_429": round(refused / max(1, accepted + refused), 4),
        "failed_lines": failed,
    }
    print(
        f"{name:>22}: {lines} lines in {seconds:.1f} s, {accepted} requests accepted = "
        f"{100 * row['throughput_of_limit']:.1f} % of the limit, {refused} answered 429 "
        f"({100 * row['share_429']:.2f} %), {failed} lines failed",
        flush=True,
    )
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1000)
    ap.add_argument("--rpm", type=int, default=600)
    ap.add_argument("--burst", type=int, default=None)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--xargs-lines", type=int, default=200)
    ap.add_argument("--memory-lines", type=int, default=10_000)
    a = ap.parse_args()
    burst = a.burst or max(1, a.rpm // 60)
    results = []
    with tempfile.TemporaryDirectory(prefix="toolchat-bench-batch-") as tmp:
        work = Path(tmp)
        (work / "tools.yaml").write_text(TOOLS)
        (work / "h.py").write_text(HANDLER)
        (work / "in.jsonl").write_text(
            "".join(json.dumps({"custom_id": f"t{i}", "prompt": _prompt(i)}) + "\n" for i in range(a.lines))
        )
        toolchat = [sys.executable, "-m", "toolchat"]
        print(
            f"limit: {a.rpm} requests/minute, burst {burst}; {a.lines} one-tool conversations ({2 * a.lines} requests)",
            flush=True,
        )

        server = _limited(a.rpm, burst)
        try:
            code, seconds, _ = _run(
                [
                    *toolchat,
                    "batch",
                    "in.jsonl",
                    "-t",
                    "tools.yaml",
                    "-o",
                    "out.jsonl",
                    "--concurrency",
                    str(a.concurrency),
                    "-q",
                ],
                work,
                _env(work / "h1", server.url),
            )
            failed = sum(1 for line in (work / "out.jsonl").read_text().splitlines() if json.loads(line)["error"])
            results.append(
                _report(f"batch --concurrency {a.concurrency}", server, seconds, a.rpm, burst, a.lines, failed)
            )
        finally:
            server.stop()

        if a.xargs_lines:
            n = min(a.xargs_lines, a.lines)
            prompts = work / "prompts.txt"
            prompts.write_text("".join(_prompt(i) + "\n" for i in range(n)))
            server = _limited(a.rpm, burst)
            try:
                with open(prompts, "rb") as stdin:
                    started = time.monotonic()
                    proc = subprocess.run(
                        ["xargs", "-P", "8", "-d", "\n", "-n", "1", *toolchat, "-q", "--json", "-t", "tools.yaml"],
                        cwd=work,
                        env=_env(work / "h2", server.url),
                        stdin=stdin,
                        capture_output=True,
                        text=True,
                    )
                    seconds = time.monotonic() - started
                docs = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
                failed = n - sum(1 for d in docs if not d.get("error"))
                results.append(_report("xargs -P 8 one-shot", server, seconds, a.rpm, burst, n, failed))
            finally:
                server.stop()

        if a.memory_lines:
            server = MockServer(log=False).start()
            try:
                for count in sorted({1000, a.memory_lines}):
                    source = work / f"mem{count}.jsonl"
                    source.write_text("".join(json.dumps(f"prompt number {i}") + "\n" for i in range(count)))
                    code, seconds, rss = _run(
                        [
                            *toolchat,
                            "batch",
                            source.name,
                            "-o",
                            f"mem{count}.out",
                            "-q",
                            "--concurrency",
                            str(a.concurrency),
                        ],
                        work,
                        _env(work / f"m{count}", server.url),
                    )
                    print(
                        f"{'peak memory':>22}: {count} lines: {rss / 1024:.1f} MiB max RSS ({seconds:.1f} s, exit {code})",
                        flush=True,
                    )
                    results.append({"engine": "memory", "lines": count, "max_rss_mib": round(rss / 1024, 1)})
            finally:
                server.stop()
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
