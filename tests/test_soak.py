"""Soak: 300 real toolchat runs, 4 at a time, each against a mock that fails in a way a seeded RNG
picks. Every run must end within its time bound, with the exit code its fault calls for, and every
run that ended 0 must have printed exactly the expected answer.

TOOLCHAT_SOAK_RUNS and TOOLCHAT_SOAK_SEED change the number of runs and the seed (a failure message
names the seed and the run, so any failure can be replayed alone).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from toolchat.mock.server import MockServer

import pytest

from conftest import TEST_KEY, TIMINGS, assert_no_secret, clean_env

pytestmark = pytest.mark.slow  # ~3 minutes of real runs: .ci/run plays it after the default run

RUNS = int(os.environ.get("TOOLCHAT_SOAK_RUNS", "300"))
SEED = int(os.environ.get("TOOLCHAT_SOAK_SEED", "20240611"))
WORKERS = 4
RUN_BOUND = 20.0  # seconds one run may take, start to exit, on a loaded 2-core machine
FAULTS = (
    "none",
    "overloaded",
    "rate_limited",
    "reset_before_first_byte",
    "cut_after_text",
    "error_event",
    "invalid_request",
    "tool_turn",
)

TOOLS = """
tools:
  - name: add
    input_schema: {type: object, properties: {a: {type: integer}, b: {type: integer}}, required: [a, b]}
    handler: soak_tools.py:add
"""

# The pieces of a streamed text turn: message_start, ping, content_block_start, then one delta per
# word. Before piece 4 nothing is shown; from piece 4 on, at least the first word is.
FIRST_SHOWN = 4


@dataclass
class Plan:
    number: int
    fault: str
    script: dict
    code: int  # the exit code the fault calls for
    answer: str  # stdout expected for exit 0 (for other codes: what stdout must start with)
    requests: int  # requests the mock must see
    retries: int  # retry lines expected on stderr
    notes: dict = field(default_factory=dict)


def plan(number: int, rng: random.Random) -> Plan:
    fault = rng.choice(FAULTS)
    text = f"Answer {number}: the soak run number {number} is fine."
    words = len(text.split())
    turn = {"text": text}
    if fault == "none":
        return Plan(number, fault, {"turns": [turn]}, 0, text + "\n", 1, 0)
    if fault in ("overloaded", "rate_limited"):
        times = rng.randint(1, 2)
        status = 529 if fault == "overloaded" else 429
        wait = rng.choice(["5", "10", "20"])
        faults = [{"error": {"status": status}, "headers": {"retry-after-ms": wait}}] * times
        return Plan(number, fault, {"turns": [{**turn, "faults": faults}]}, 0, text + "\n", times + 1, times)
    if fault == "reset_before_first_byte":
        where = rng.choice(["headers", 0, 1, 2, 3])  # nothing of the turn shown in any of them
        return Plan(
            number, fault, {"turns": [{**turn, "faults": [{"reset": where}]}]}, 0, text + "\n", 2, 1, {"where": where}
        )
    if fault == "cut_after_text":
        where = rng.randint(FIRST_SHOWN, FIRST_SHOWN + words - 1)
        shown = "".join(text.split(" ")[i] + " " for i in range(where - FIRST_SHOWN + 1))
        return Plan(
            number, fault, {"turns": [{**turn, "faults": [{"reset": where}]}]}, 3, shown, 1, 0, {"where": where}
        )
    if fault == "error_event":
        where = rng.randint(1, FIRST_SHOWN + 2)
        event = {"error_event": {"type": "overloaded_error", "message": "Overloaded"}, "at": where}
        script = {"turns": [{**turn, "faults": [event]}]}
        if where < FIRST_SHOWN:  # nothing shown yet: retried after a backoff
            return Plan(number, fault, script, 0, text + "\n", 2, 1, {"where": where})
        shown = "".join(text.split(" ")[i] + " " for i in range(where - FIRST_SHOWN))
        return Plan(number, fault, script, 3, shown, 1, 0, {"where": where})
    if fault == "invalid_request":
        bad = {"error": {"status": 400, "type": "invalid_request_error", "message": f"bad request {number}"}}
        return Plan(number, fault, {"turns": [{**turn, "faults": [bad]}]}, 3, "", 1, 0)
    # tool_turn: a tool call, its result, the answer; the answer's turn is sometimes overloaded once.
    a, b = rng.randint(1, 999), rng.randint(1, 999)
    second = {"text": f"Run {number}: {a} + {b} = {{result:add}}."}
    retried = rng.random() < 0.3
    if retried:
        second["faults"] = [{"error": {"status": 529}, "headers": {"retry-after-ms": "5"}}]
    script = {"turns": [{"text": "Adding.", "tool_calls": [{"name": "add", "input": {"a": a, "b": b}}]}, second]}
    return Plan(
        number, fault, script, 0, f"Adding.\n\nRun {number}: {a} + {b} = {a + b}.\n", 3 if retried else 2, int(retried)
    )


def play(item: Plan, tmp_path) -> list[str]:
    """Run one plan; return what went wrong (nothing when all is as planned)."""
    server = MockServer(item.script).start()
    try:
        env = clean_env(tmp_path, TOOLCHAT_BASE_URL=server.url, TOOLCHAT_API_KEY=TEST_KEY)
        started = time.monotonic()
        try:
            tools = ["-t", "tools.yaml"] if item.fault == "tool_turn" else []
            proc = subprocess.run(
                [sys.executable, "-m", "toolchat", *tools, f"go {item.number}"],
                capture_output=True,
                text=True,
                env=env,
                cwd=tmp_path,
                stdin=subprocess.DEVNULL,
                timeout=RUN_BOUND + 10,
            )
        except subprocess.TimeoutExpired:
            return [f"did not end within {RUN_BOUND + 10:.0f} s"]
        elapsed = time.monotonic() - started
        problems = []
        if elapsed > RUN_BOUND:
            problems.append(f"took {elapsed:.1f} s (bound {RUN_BOUND:.0f} s)")
        if proc.returncode != item.code:
            problems.append(f"exit {proc.returncode}, expected {item.code}")
        if item.code == 0 and proc.stdout != item.answer:
            problems.append(f"stdout {proc.stdout!r}, expected {item.answer!r}")
        if item.code != 0 and not proc.stdout.startswith(item.answer.rstrip()):
            problems.append(f"stdout {proc.stdout!r} does not keep what was shown, {item.answer!r}")
        if len(server.requests) != item.requests:
            problems.append(f"{len(server.requests)} requests, expected {item.requests}")
        if len({r.raw for r in server.requests[-(item.retries + 1) :]}) != 1:
            problems.append("a retry sent a different body")
        retry_lines = [line for line in proc.stderr.splitlines() if ", retrying in " in line]
        if len(retry_lines) != item.retries:
            problems.append(f"{len(retry_lines)} retry lines, expected {item.retries}")
        if item.code != 0 and not proc.stderr.splitlines()[-1:][0].startswith("toolchat: error: "):
            problems.append("no error line at the end of stderr")
        try:
            assert_no_secret(proc.stdout, proc.stderr)
        except AssertionError as exc:
            problems.append(str(exc))
        if problems:
            problems.append(f"stderr: {proc.stderr[-600:]!r}")
        return problems
    finally:
        server.stop()


def test_soak_300_runs_with_random_faults(tmp_path):
    (tmp_path / "soak_tools.py").write_text("def add(a, b):\n    return a + b\n")
    (tmp_path / "tools.yaml").write_text(TOOLS)
    rng = random.Random(SEED)
    plans = [plan(number, rng) for number in range(RUNS)]
    started, cpu = time.monotonic(), _children_cpu()
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        outcomes = list(pool.map(lambda item: (item, play(item, tmp_path)), plans))
    elapsed, cpu = time.monotonic() - started, _children_cpu() - cpu
    mix = {name: sum(1 for p in plans if p.fault == name) for name in FAULTS}
    TIMINGS.append(
        f"soak: {RUNS} runs, {WORKERS} at a time, seed {SEED}: {elapsed:.1f} s wall, "
        f"{cpu:.1f} s CPU in toolchat processes, load average {os.getloadavg()[0]:.1f} "
        f"({json.dumps(mix)})"
    )
    failures = [
        f"run {item.number} ({item.fault} {item.notes}, seed {SEED}): " + "; ".join(problems)
        for item, problems in outcomes
        if problems
    ]
    assert not failures, f"{len(failures)} of {RUNS} runs went wrong:\n" + "\n".join(failures[:20])
    # Every kind of fault was exercised.
    assert all(mix.values()), mix


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
