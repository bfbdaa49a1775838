"""toolchat batch, local engine: input rules, one whole output line per input line, resume from
the state in the log database, pacing by the rate-limit headers, progress, exit codes."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from conftest import ROOT, TEST_KEY
from toolchat import options
from toolchat.batch import inputs, state
from toolchat.batch.output import recover
from toolchat.batch.pacing import Pacer, read_headers
from toolchat.batch.run import Plan, run
from toolchat.errors import UsageError
from toolchat.mock.server import MockServer
from toolchat.settings import Settings

TOOLS = """\
tools:
  - name: count
    description: Count a call.
    input_schema: {type: object, properties: {n: {type: integer}}, required: [n]}
    handler: h.py:count
"""
HANDLER = """\
import os
def count(n):
    with open(os.environ["BATCH_COUNT_FILE"], "a") as f:
        f.write(f"{n}\\n")
    return f"counted {n}"
"""


def tool_prompt(n: int) -> str:
    return json.dumps({"tool_calls": [{"name": "count", "input": {"n": n}}]})


@pytest.fixture
def bench(tmp_path, monkeypatch):
    (tmp_path / "tools.yaml").write_text(TOOLS)
    (tmp_path / "h.py").write_text(HANDLER)
    monkeypatch.setenv("BATCH_COUNT_FILE", str(tmp_path / "count"))
    return tmp_path


def invocations(tmp_path: Path) -> list[int]:
    path = tmp_path / "count"
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def batch(tmp_path, server, lines, *, out="out.jsonl", tools=True, max_turns=10, **plan):
    """Run a batch in-process: (exit code, output documents, stderr, stdout)."""
    source = tmp_path / "in.jsonl"
    if lines is not None:
        source.write_text("".join(line + "\n" for line in lines))
    settings = Settings(
        base_url=server.url,
        api_key=TEST_KEY,
        key_source="TOOLCHAT_API_KEY",
        tools=(str(tmp_path / "tools.yaml"),) if tools else (),
        output="json",
        max_turns=max_turns,
    )
    stdout, stderr = io.StringIO(), io.StringIO()
    output = str(tmp_path / out) if out else None
    code = run(
        Plan(input=str(source), output=output, db=str(tmp_path / "logs.db"), **plan),
        settings,
        stdout=stdout,
        stderr=stderr,
    )
    text = Path(output).read_text() if output else stdout.getvalue()
    return code, [json.loads(line) for line in text.splitlines()], stderr.getvalue(), stdout.getvalue()


def test_input_lines_are_strings_or_objects_with_the_custom_id_rules():
    assert inputs.parse(3, '"hello"').custom_id == "3"
    line = inputs.parse(
        4,
        json.dumps(
            {"custom_id": "a-1", "prompt": "p", "system": "s", "model": "m", "max_tokens": 9, "temperature": 0.5}
        ),
    )
    assert (line.custom_id, line.request) == (
        "a-1",
        {
            "messages": [{"role": "user", "content": "p"}],
            "system": "s",
            "model": "m",
            "max_tokens": 9,
            "temperature": 0.5,
        },
    )
    messages = [{"role": "user", "content": "q"}]
    assert inputs.parse(1, json.dumps({"messages": messages})).request == {"messages": messages}
    cases = {
        "{nope": "line 7: not valid JSON",
        "[1]": "line 7: expected a JSON string (the prompt) or an object",
        '{"custom_id": "a b", "prompt": "p"}': "line 7: custom_id 'a b' must match",
        '{"custom_id": "' + "x" * 65 + '", "prompt": "p"}': "line 7: custom_id",
        '{"prompt": "p", "messages": []}': "line 7: give exactly one of 'prompt' and 'messages'",
        '{"prompt": "p", "colour": 1}': "line 7: unknown key 'colour'",
        '{"messages": [{"role": "assistant", "content": "a"}]}': "line 7: 'messages' must end with a user message",
        '{"prompt": "p", "max_tokens": 0}': "line 7: 'max_tokens' must be a whole number >= 1",
        '{"prompt": "p", "temperature": 2}': "line 7: 'temperature' must be a number from 0 to 1",
    }
    for text, start in cases.items():
        parsed = inputs.parse(7, text)
        assert parsed.custom_id is None and parsed.error.startswith(start), (text, parsed.error)


def test_two_hundred_lines_with_tools_failures_and_malformed_lines(bench):
    lines = []
    for i in range(1, 201):
        if i % 50 == 0:
            lines.append("{not json")
        elif i % 40 == 0:
            lines.append(
                json.dumps(
                    {
                        "custom_id": f"id{i}",
                        "prompt": json.dumps(
                            {"error": {"status": 400, "type": "invalid_request_error", "message": "scripted"}}
                        ),
                    }
                )
            )
        else:
            lines.append(json.dumps({"custom_id": f"id{i}", "prompt": tool_prompt(i)}))
    with MockServer(log=False) as server:
        code, docs, err, _ = batch(bench, server, lines, concurrency=8)
    assert code == 3
    malformed = [d for d in docs if d["custom_id"] is None]
    assert sorted(d["line"] for d in malformed) == [50, 100, 150, 200]
    assert all(
        d["error"]["type"] == "invalid_input" and d["error"]["message"].startswith(f"line {d['line']}: not valid JSON")
        for d in malformed
    )
    ids = [d["custom_id"] for d in docs if d["custom_id"] is not None]
    assert sorted(ids) == sorted(f"id{i}" for i in range(1, 201) if i % 50)  # each exactly once
    failed = {d["custom_id"] for d in docs if d["error"] and d["custom_id"]}
    assert failed == {"id40", "id80", "id120", "id160"}
    good = [d for d in docs if d["custom_id"] and not d["error"]]
    assert len(good) == 192 and all(d["text"] == f"count: counted {d['custom_id'][2:]}" for d in good)
    assert all(d["turns"] == 2 and len(d["tool_calls"]) == 1 for d in good)
    assert sorted(invocations(bench)) == sorted(int(d["custom_id"][2:]) for d in good)
    assert err.splitlines()[-1].startswith("toolchat: batch: 200/200 done, 192 ok, 0 incomplete, 8 failed, ")


def test_ordered_output_follows_the_input_and_a_second_run_skips_every_done_line(bench):
    lines = [json.dumps({"custom_id": f"k{i}", "prompt": tool_prompt(i)}) for i in range(1, 31)]
    with MockServer(log=False) as server:
        code, docs, _, _ = batch(bench, server, lines, ordered=True, concurrency=6)
        assert code == 0
        assert [d["custom_id"] for d in docs] == [f"k{i}" for i in range(1, 31)]
        again, docs2, err, _ = batch(bench, server, lines, ordered=True)
        assert again == 0 and docs2 == docs
        assert len(server.requests) == 60  # nothing sent the second time
    assert sorted(invocations(bench)) == list(range(1, 31))
    assert "30/30 done, 30 ok" in err


def test_a_duplicate_custom_id_is_a_failed_line_and_the_rest_go_on(bench):
    lines = ['{"custom_id": "same", "prompt": "one"}', '{"custom_id": "same", "prompt": "two"}']
    with MockServer(log=False) as server:
        code, docs, _, _ = batch(bench, server, lines, ordered=True)
    assert code == 3
    assert docs[0]["custom_id"] == "same" and docs[0]["text"] == "one"
    assert docs[1]["custom_id"] is None and docs[1]["line"] == 2
    assert docs[1]["error"]["message"] == "line 2: custom_id 'same' is already used by an earlier line"


def test_an_incomplete_answer_makes_exit_4_and_results_go_to_stdout_without_o(bench):
    cut = json.dumps({"text": "half", "stop_reason": "max_tokens"})
    with MockServer(log=False) as server:
        code, docs, err, _ = batch(bench, server, [json.dumps(cut), '"fine"'], out=None, ordered=True)
    assert code == 4
    assert [(d["custom_id"], d["incomplete"]) for d in docs] == [("1", "max_tokens"), ("2", None)]
    assert "2/2 done, 1 ok, 1 incomplete, 0 failed" in err


def test_a_restart_continues_after_the_last_finished_tool_turn_without_running_its_tools_again(bench):
    lines = [json.dumps({"custom_id": "a", "prompt": tool_prompt(1)})]
    with MockServer(log=False) as server:
        (bench / "in.jsonl").write_text(lines[0] + "\n")
        job = state.Job.open(state.file_hash(str(bench / "in.jsonl")), bench / "logs.db")
        job.register(str(bench / "in.jsonl"), "in.jsonl")
        prompt = {"role": "user", "content": tool_prompt(1)}
        use = {"type": "tool_use", "id": "toolu_1", "name": "count", "input": {"n": 1}}
        result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "counted 1"}
        # What a run killed after its tool turn left: the tool ran, its result is in the checkpoint.
        job.checkpoint(
            "a",
            {
                "messages": [prompt, {"role": "assistant", "content": [use]}, {"role": "user", "content": [result]}],
                "tool_calls": [
                    {
                        "id": "toolu_1",
                        "name": "count",
                        "input": {"n": 1},
                        "output": "counted 1",
                        "is_error": False,
                        "duration_ms": 3,
                    }
                ],
                "usage": {"input_tokens": 7, "output_tokens": 2},
                "turns": 1,
            },
        )
        job.close()
        code, docs, _, _ = batch(bench, server, None)
        assert len(server.requests) == 1  # only the turn after the tools
    assert code == 0 and invocations(bench) == []
    [doc] = docs
    assert (doc["text"], doc["turns"], len(doc["tool_calls"])) == ("count: counted 1", 2, 1)
    assert doc["usage"]["input_tokens"] > 7


def test_a_cut_last_output_line_is_removed_and_written_again_whole(bench):
    lines = ['{"custom_id": "a", "prompt": "one"}', '{"custom_id": "b", "prompt": "two"}']
    with MockServer(log=False) as server:
        code, docs, _, _ = batch(bench, server, lines, ordered=True)
        out = bench / "out.jsonl"
        whole = out.read_text()
        out.write_text(whole[: len(whole.splitlines()[0]) + 1 + 20])  # b's line cut by a kill
        assert recover(str(out)) == {"a"} and out.read_text() == whole.splitlines()[0] + "\n"
        out.write_text(whole[: len(whole.splitlines()[0]) + 1 + 20])
        again, docs2, _, _ = batch(bench, server, lines, ordered=True)
    assert again == 0 and docs2 == docs and len(server.requests) == 2


def test_the_pace_follows_the_limit_with_few_429s(bench):
    lines = [json.dumps({"custom_id": f"p{i}", "prompt": "hello"}) for i in range(12)]
    with MockServer(rate_limit={"requests": 600, "burst": 3}, log=False) as server:
        code, docs, _, _ = batch(bench, server, lines, concurrency=8, tools=False)
        assert code == 0 and len(docs) == 12
        assert server.rate_limit.accepted == 12
        # A client that does not pace sends 8 at once into a burst of 3: 5 refused in its first
        # wave alone. Paced, the 429s left come from timing jitter, more of it on a loaded machine
        # (2 here when quiet, 3 seen with the whole suite running on 2 cores).
        assert server.rate_limit.refused <= 3


def test_rate_limit_headers_are_read_in_both_dialects():
    anthropic = read_headers(
        {
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-remaining": "49",
            "anthropic-ratelimit-requests-reset": "2999-01-01T00:00:00Z",
            "anthropic-ratelimit-output-tokens-limit": "8000",
            "anthropic-ratelimit-output-tokens-remaining": "7000",
        }
    )
    assert anthropic["requests"]["limit"] == 50 and anthropic["requests"]["remaining"] == 49
    assert anthropic["output-tokens"] == {"limit": 8000, "remaining": 7000}
    openai = read_headers(
        {
            "x-ratelimit-limit-requests": "60",
            "x-ratelimit-remaining-requests": "10",
            "x-ratelimit-reset-requests": "1m30s",
            "x-ratelimit-limit-tokens": "1000",
            "x-ratelimit-remaining-tokens": "5",
            "x-ratelimit-reset-tokens": "120ms",
        }
    )
    assert openai["requests"] == {"limit": 60, "remaining": 10, "reset": 90.0}
    assert openai["tokens"]["reset"] == pytest.approx(0.12)


def test_the_pacer_spaces_requests_when_the_bucket_is_low_and_a_429_holds_every_worker():
    now, slept = [0.0], []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    pacer = Pacer(clock=lambda: now[0], sleep=sleep)
    pacer.acquire()  # nothing known yet: go
    pacer.observe({"anthropic-ratelimit-requests-limit": "60", "anthropic-ratelimit-requests-remaining": "1"})
    pacer.release()
    pacer.acquire()  # one left: go
    assert slept == []
    pacer.release()
    pacer.acquire()  # empty: wait for the refill, one a second at 60 a minute
    assert sum(slept) == pytest.approx(1.0)
    pacer.release()
    pacer.refused(7)
    slept.clear()
    pacer.acquire()
    assert sum(slept) == pytest.approx(7.0)
    assert pacer.refusals == 1


def test_usage_errors_come_before_anything_is_sent(bench):
    with MockServer(log=False) as server:
        for plan, message in (
            ({"via": "carrier-pigeon"}, "--via: 'carrier-pigeon' is not one of local, batches"),
            ({"stream_json": True, "out": None}, "--stream-json prints events on stdout"),
            ({"concurrency": 0}, "--concurrency: must be at least 1"),
        ):
            out = plan.pop("out", "out.jsonl")
            with pytest.raises(UsageError, match=re.escape(message)):
                batch(bench, server, ['"x"'], out=out, **plan)
        assert server.requests == []


def test_stream_json_events_per_line(bench):
    with MockServer(log=False) as server:
        code, docs, _, events = batch(
            bench, server, ['"one"', "{bad"], stream_json=True, ordered=True, progress_interval=3600
        )
    assert code == 3
    events = [json.loads(line) for line in events.splitlines()]
    assert events[0] == {
        "type": "batch_start",
        "input": str(bench / "in.jsonl"),
        "via": "local",
        "total": 2,
        "done": 1,
        "concurrency": 4,
    }
    assert events[1] == {"type": "line_start", "custom_id": "1", "line": 1}
    assert events[2]["type"] == "line_end" and events[2]["outcome"] == "ok"
    assert events[-1]["type"] == "batch_end" and (events[-1]["ok"], events[-1]["failed"]) == (1, 1)


def test_the_cli_runs_a_batch_from_stdin_and_reports_a_missing_input(toolchat, tmp_path, mock):
    server = mock()
    env = {"TOOLCHAT_HOME": str(tmp_path / "home")}
    piped = toolchat("batch", "-", "--ordered", server=server, stdin='"alpha"\n"beta"\n', env=env)
    assert piped.code == 0, piped
    assert [json.loads(line)["text"] for line in piped.out.splitlines()] == ["alpha", "beta"]
    assert piped.err.startswith("toolchat: batch: 2/2 done, 2 ok, 0 incomplete, 0 failed")
    missing = toolchat("batch", "nowhere.jsonl", server=server, env=env)
    assert (missing.code, missing.out, missing.err) == (2, "", "toolchat: error: nowhere.jsonl: input file not found\n")


def test_the_readme_batch_option_table_lists_exactly_the_batch_options():
    from toolchat.batch_cli import rows

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("| batch option | meaning |", 1)[1].split("\n\n", 1)[0]
    documented = set(
        re.findall(
            r"(?<![\w-])(-{1,2}[a-z][a-z-]*)",
            " ".join(row.split("|")[1] for row in table.splitlines() if row.startswith("| `")),
        )
    )
    assert documented == {flag for option in options.for_command("batch") for flag in option.flags}
    assert {"-t", "--mcp-config", "-s", "-m"} <= {flag for option in rows() for flag in option.flags}


@pytest.mark.slow  # two toolchat processes and a kill -9 in the middle
def test_kill_9_mid_run_then_the_same_command_loses_nothing_and_repeats_no_finished_tool_turn(bench):
    import sqlite3
    import subprocess
    import sys
    import time

    from conftest import clean_env

    (bench / "h.py").write_text(HANDLER.replace("def count(n):", "def count(n):\n    import time; time.sleep(0.02)"))
    lines = [json.dumps({"custom_id": f"k{i}", "prompt": tool_prompt(i)}) for i in range(1, 81)]
    (bench / "in.jsonl").write_text("\n".join(lines) + "\n")
    with MockServer(log=False) as server:
        env = {
            **clean_env(bench),
            "TOOLCHAT_HOME": str(bench / "home"),
            "TOOLCHAT_BASE_URL": server.url,
            "TOOLCHAT_API_KEY": TEST_KEY,
            "BATCH_COUNT_FILE": str(bench / "count"),
        }
        command = [
            sys.executable,
            "-m",
            "toolchat",
            "batch",
            "in.jsonl",
            "-t",
            "tools.yaml",
            "-o",
            "out.jsonl",
            "--concurrency",
            "4",
        ]
        first = subprocess.Popen(command, cwd=bench, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while len(invocations(bench)) < 20 and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.01)
        first.kill()  # SIGKILL: no cleanup of any kind
        first.wait()
        assert 20 <= len(invocations(bench)) < 80
        db = sqlite3.connect(bench / "home" / "logs.db")
        # The lines whose tool turn was stored as finished (their checkpoint holds the tool result).
        finished_turns = {
            int(key[1:])
            for (key,) in db.execute("SELECT custom_id FROM batch_lines WHERE state IS NOT NULL OR status = 'done'")
        }
        db.close()
        before = invocations(bench)
        second = subprocess.run(command, cwd=bench, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 0, second.stderr
    docs = [json.loads(line) for line in (bench / "out.jsonl").read_text().splitlines()]
    assert sorted(d["custom_id"] for d in docs) == sorted(f"k{i}" for i in range(1, 81))  # each exactly once
    assert all(d["text"] == f"count: counted {d['custom_id'][1:]}" for d in docs)
    after = invocations(bench)
    rerun = after[len(before) :]
    assert not set(rerun) & finished_turns  # no tool of a finished turn ran again
    assert sorted(set(after)) == list(range(1, 81))
    assert all(after.count(n) == 1 for n in finished_turns)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_bar_on_a_terminal_and_lines_when_piped(bench):
    lines = [f'"p{i}"' for i in range(5)] + ["{bad"]
    with MockServer(log=False) as server:
        _, _, piped, _ = batch(bench, server, lines, out="a.jsonl", progress_interval=0)
        settings = Settings(base_url=server.url, api_key=TEST_KEY, key_source="TOOLCHAT_API_KEY", output="json")
        terminal = _Terminal()
        (bench / "b.jsonl").write_text("".join(line + "\n" for line in ['"q1"', '"q2"']))
        code = run(
            Plan(input=str(bench / "b.jsonl"), output=str(bench / "b.out"), db=str(bench / "logs.db")),
            settings,
            stdout=io.StringIO(),
            stderr=terminal,
        )
    progress = [line for line in piped.splitlines() if not line.startswith("toolchat: batch: 6/6 done, 5 ok")]
    assert progress and all(
        re.match(
            r"toolchat: batch: \d/6 done, [\d.]+ lines/s, [\d,]+ tokens, 1 failed, "
            r"\d/4 running$",
            line,
        )
        for line in progress
    ), progress
    assert code == 0
    shown = terminal.getvalue()
    assert "2/2" in shown and "\x1b[" in shown  # rich drew the bar
    assert shown.splitlines()[-1].startswith("\x1b[?25htoolchat: batch: 2/2 done, 2 ok")  # cursor shown again
