"""toolchat batch --via batches: tool loops round by round over the mock's Message Batches API,
outcomes other than succeeded, splitting, and a restart that resumes polling."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from conftest import TEST_KEY, clean_env
import test_batch
from test_batch import batch, invocations
from toolchat.batch import rounds
from toolchat.batch.run import Plan, check
from toolchat.errors import UsageError
from toolchat.mock.server import MockServer

# Two tool rounds, then the answer: turns are chosen by how many assistant messages came before.
SCRIPT = {
    "turns": [
        {"text": "first", "tool_calls": [{"name": "count", "input": {"n": 1}}]},
        {"text": "second", "tool_calls": [{"name": "count", "input": {"n": 2}}]},
        {"text": "done: {results}"},
    ]
}


bench = test_batch.bench  # the fixture: tools.yaml, h.py and BATCH_COUNT_FILE, as test_batch.py's


def via_batches(tmp_path: Path, server, lines, **plan):
    """test_batch.batch over --via batches, in input order, polling every 0.05 s unless told."""
    plan.setdefault("poll_interval", 0.05)
    code, docs, stderr, _ = batch(tmp_path, server, lines, via="batches", ordered=True, **plan)
    return code, docs, stderr


def test_two_tool_rounds_run_as_three_batches_and_an_expired_request_fails_its_line(bench):
    lines = [json.dumps({"custom_id": c, "prompt": f"go {c}"}) for c in ("a", "b", "late")]
    with MockServer(
        script=SCRIPT, batch_delay=0.05, batch_outcomes={"late": ["succeeded", "expired"]}, log=False
    ) as server:
        code, docs, err = via_batches(bench, server, lines)
        assert server.batches.creates == 3
        sizes = [len(b["requests"]) for b in server.batches.batches.values()]
        assert sizes == [3, 3, 2]  # round 3 without the line that expired in round 2
        assert [r for r in server.requests if r.path == "/v1/messages"] == []  # nothing outside batches
    assert code == 3
    a, b, late = docs
    for doc in (a, b):
        assert doc["text"] == "done: count: counted 2" and doc["turns"] == 3 and doc["error"] is None
        assert [c["output"] for c in doc["tool_calls"]] == ["counted 1", "counted 2"]
        assert [m["role"] for m in doc["messages"]] == ["user", "assistant", "user", "assistant", "user", "assistant"]
    assert late["error"]["type"] == "expired" and late["turns"] == 1
    assert [c["output"] for c in late["tool_calls"]] == ["counted 1"]
    assert sorted(invocations(bench)) == [1, 1, 1, 2, 2]  # every tool of every finished turn once
    assert "3/3 done, 2 ok, 0 incomplete, 1 failed" in err


def test_errored_and_canceled_results_are_failed_lines_with_the_reason(bench):
    lines = ['{"custom_id": "e", "prompt": "x"}', '{"custom_id": "c", "prompt": "y"}', '"fine"']
    with MockServer(batch_outcomes={"e": "errored", "c": "canceled"}, log=False) as server:
        code, docs, _ = via_batches(bench, server, lines)
    assert code == 3
    assert docs[0]["error"]["message"] == "batch request errored: api_error: mock: this request was scripted to fail"
    assert docs[1]["error"]["type"] == "canceled"
    assert docs[2]["text"] == "fine" and docs[2]["error"] is None


def test_max_turns_ends_a_tool_loop_between_rounds(bench):
    with MockServer(script=SCRIPT, log=False) as server:
        code, docs, _ = via_batches(bench, server, ['"loop"'], max_turns=2)
        assert server.batches.creates == 2
    assert code == 4 and docs[0]["incomplete"] == "max_turns" and docs[0]["turns"] == 2


def test_a_round_over_the_per_batch_limit_is_split(bench):
    lines = [f'"p{i}"' for i in range(7)]
    with MockServer(log=False) as server:
        code, docs, _ = via_batches(bench, server, lines, max_requests=3)
        assert [len(b["requests"]) for b in server.batches.batches.values()] == [3, 3, 1]
    assert code == 0 and [d["text"] for d in docs] == [f"p{i}" for i in range(7)]


def test_a_restart_while_a_batch_is_in_progress_polls_it_and_creates_nothing_new(bench, monkeypatch):
    lines = [json.dumps({"custom_id": f"r{i}", "prompt": f"hello {i}"}) for i in range(3)]
    with MockServer(batch_delay=0.3, log=False) as server:
        real_wait = rounds.RoundsEngine._wait

        def stopped(self, stored):  # the process dies while the batch is in progress
            assert self.api.retrieve(stored["id"])["processing_status"] == "in_progress"
            raise KeyboardInterrupt

        monkeypatch.setattr(rounds.RoundsEngine, "_wait", stopped)
        with pytest.raises(KeyboardInterrupt):
            via_batches(bench, server, lines)
        assert server.batches.creates == 1
        monkeypatch.setattr(rounds.RoundsEngine, "_wait", real_wait)
        code, docs, _ = via_batches(bench, server, None)
        assert server.batches.creates == 1  # polled the stored batch: no second create
    assert code == 0 and [d["text"] for d in docs] == ["hello 0", "hello 1", "hello 2"]


def test_via_batches_with_the_openai_dialect_is_a_usage_error(tmp_path):
    (tmp_path / "in.jsonl").write_text('"x"\n')
    settings = types.SimpleNamespace(api="openai")
    with pytest.raises(UsageError, match="--via batches drives Anthropic's Message Batches API; with --api openai"):
        check(Plan(input=str(tmp_path / "in.jsonl"), output=None, via="batches"), settings)
    check(Plan(input=str(tmp_path / "in.jsonl"), output=None, via="local"), settings)


@pytest.mark.slow  # three toolchat processes
def test_status_and_cancel_act_on_the_batches_of_a_job(toolchat, tmp_path):
    with MockServer(batch_delay=60, log=False) as server:
        env = {"TOOLCHAT_HOME": str(tmp_path / "home"), "TOOLCHAT_BASE_URL": server.url, "TOOLCHAT_API_KEY": TEST_KEY}
        (tmp_path / "in.jsonl").write_text('"a"\n"b"\n')
        environment = {**clean_env(tmp_path), **env}
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "toolchat",
                "batch",
                "in.jsonl",
                "--via",
                "batches",
                "-o",
                "out.jsonl",
                "--poll-interval",
                "0.05",
            ],
            cwd=tmp_path,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 30
            while server.batches.creates == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            status = toolchat("batch", "status", "in.jsonl", "--json", env=env)
            assert status.code == 0, status
            shown = json.loads(status.out)
            assert (shown["pending"], shown["ok"]) == (2, 0)
            [batch] = shown["batches"]
            assert batch["status"] == "in_progress" and batch["request_counts"]["processing"] == 2
            canceled = toolchat("batch", "cancel", "in.jsonl", env=env)
            assert canceled.code == 0 and canceled.out == f"{batch['id']}\tcanceling\n"
            err = proc.communicate(timeout=30)[1]
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 3, err
        docs = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
        assert sorted(d["error"]["type"] for d in docs) == ["canceled", "canceled"]
        assert os.path.exists(tmp_path / "home" / "logs.db")
