"""--stream-json: the NDJSON view, its JSON Schemas, and real streams from the mock server."""

from __future__ import annotations

import io
import json
import time

import pytest

from toolchat.errors import APIError, Interrupted
from toolchat.events import (
    BlockDone,
    Finished,
    Result,
    Retry,
    Start,
    TextDelta,
    ThinkingDelta,
    ToolCall,
    ToolResult,
    TurnEnd,
    TurnStart,
)
from toolchat.schemas import load, validator
from toolchat.views.ndjson import VERSION, NdjsonView, result_line, start_line
from conftest import SAMPLE_TOOLS, TEST_KEY, clean_env, message_events, popen_toolchat, sse

EVENT = validator("event")
RESULT = validator("result")


def check_event(event: dict) -> None:
    """Validate one line; on failure, name the problem in the event's own definition."""
    errors = list(EVENT.iter_errors(event))
    if errors:
        kind = event.get("type")
        definition = {"$ref": f"event.schema.json#/$defs/{kind}"} if kind in load("event")["$defs"] else {}
        detail = [e.message for e in validator("event").evolve(schema=definition).iter_errors(event)]
        raise AssertionError(f"{event} does not match the event schema: {detail or errors[0].message}")


def lines_of(text: str) -> list[dict]:
    """Parse NDJSON output strictly: every line is one JSON object that matches the schema."""
    assert text.endswith("\n"), text
    events = [json.loads(line) for line in text.split("\n")[:-1]]
    for event in events:
        check_event(event)
    return events


class Recorder(io.StringIO):
    """A stdout that remembers what had been flushed, write by write."""

    def __init__(self):
        super().__init__()
        self.flushed: list[str] = []

    def flush(self):
        self.flushed.append(self.getvalue())


# ---------------------------------------------------------------- the view, unit by unit


def a_run() -> list:
    result = Result(
        model="claude-x",
        text="It is 42.",
        stop_reason="end_turn",
        turns=2,
        tool_calls=[ToolResult("toolu_1", "calc", {"e": "6*7"}, "42", False, 3)],
        usage={"input_tokens": 20, "output_tokens": 7},
        messages=[{"role": "user", "content": "6*7?"}],
    )
    return [
        Start("claude-x", ["calc", "clock"]),
        TurnStart(1),
        ThinkingDelta("Hmm."),
        BlockDone(0, {}),
        TurnEnd(1, "tool_use", {"input_tokens": 10, "output_tokens": 4}),
        ToolCall("toolu_1", "calc", {"e": "6*7"}),
        ToolResult("toolu_1", "calc", {"e": "6*7"}, "42", False, 3),
        Retry(2, 1.5, "overloaded (529)", 3),
        TurnStart(2),
        TextDelta("It is "),
        TextDelta("42."),
        TurnEnd(2, "end_turn", {"input_tokens": 10, "output_tokens": 3}),
        Finished(result),
    ]


def test_each_event_is_one_line_with_exactly_its_fields():
    out, err = io.StringIO(), io.StringIO()
    view = NdjsonView(out=out, err=err)
    events = a_run()
    for event in events:
        view.handle(event)
    assert lines_of(out.getvalue()) == [
        {"type": "start", "version": 1, "model": "claude-x", "tools": ["calc", "clock"], "conversation_id": None},
        {"type": "thinking", "text": "Hmm."},
        {"type": "turn", "turn": 1, "stop_reason": "tool_use", "usage": {"input_tokens": 10, "output_tokens": 4}},
        {"type": "tool_call", "id": "toolu_1", "name": "calc", "input": {"e": "6*7"}},
        {"type": "tool_result", "id": "toolu_1", "name": "calc", "output": "42", "is_error": False, "duration_ms": 3},
        {"type": "retry", "attempt": 2, "attempts": 3, "delay": 1.5, "reason": "overloaded (529)"},
        {"type": "text", "text": "It is "},
        {"type": "text", "text": "42."},
        {"type": "turn", "turn": 2, "stop_reason": "end_turn", "usage": {"input_tokens": 10, "output_tokens": 3}},
        {"type": "result", **events[-1].result.to_json()},
    ]
    # Traces for a person go to stderr, as with --json.
    assert err.getvalue().splitlines()[:2] == ['→ calc {"e": "6*7"}', "← calc ok (3 ms): 42"]


def test_every_line_is_flushed_as_soon_as_it_is_written():
    out = Recorder()
    view = NdjsonView(out=out, err=io.StringIO())
    for event in a_run():
        view.handle(event)
    # A flush after every line: the lines seen at each flush count up through every number.
    assert sorted({snapshot.count("\n") for snapshot in out.flushed}) == list(range(1, 11))
    assert all(snapshot.endswith("\n") for snapshot in out.flushed)


def test_quiet_view_leaves_stderr_empty():
    err = io.StringIO()
    view = NdjsonView(out=io.StringIO(), err=err, quiet=True)
    for event in a_run():
        view.handle(event)
    assert err.getvalue() == ""


def test_unicode_line_separators_stay_inside_their_line():
    out = io.StringIO()
    text = "a\u2028b\u2029c\x85d\ne\rf\u00e9\U0001f600"
    NdjsonView(out=out, err=io.StringIO()).handle(TextDelta(text))
    written = out.getvalue()
    assert len(written.splitlines()) == 1  # str.splitlines breaks on all of the above
    assert json.loads(written) == {"type": "text", "text": text}
    assert "\u00e9\U0001f600" in written  # other characters stay readable (no ensure_ascii)


def test_result_line_is_the_json_document_plus_its_type():
    result = Result(
        model="m",
        turns=1,
        messages=[{"role": "user", "content": "hi"}],
        error=APIError(
            "HTTP 529 overloaded_error: Overloaded", type="overloaded_error", status=529, request_id="req_1"
        ),
    )
    line = result_line(result)
    assert "\n" not in line
    assert json.loads(line) == {"type": "result", **result.to_json()}
    check_event(json.loads(line))
    RESULT.validate(result.to_json())


def test_start_line_for_a_run_that_failed_before_it_began():
    assert json.loads(start_line("m")) == {
        "type": "start",
        "version": VERSION,
        "model": "m",
        "tools": [],
        "conversation_id": None,
    }


def test_interrupted_result_validates():
    result = Result(model="m", error=Interrupted("interrupted"))
    check_event(json.loads(result_line(result)))
    assert json.loads(result_line(result))["error"]["type"] == "interrupted"


# ---------------------------------------------------------------- the schemas themselves


def test_schemas_are_valid_draft_2020_12():
    from jsonschema import Draft202012Validator

    for name in ("result", "event"):
        schema = load(name)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        Draft202012Validator.check_schema(schema)


def test_result_schema_lists_exactly_the_fields_of_the_document():
    document = load("result")["$defs"]["document"]
    assert set(document["required"]) == set(Result(model="m").to_json())
    # With --schema the document also carries the structured answer: optional fields.
    assert set(document["properties"]) == set(Result(model="m", structured=True).to_json())
    assert set(document["properties"]) - set(document["required"]) == {"output", "output_error"}


def test_start_schema_carries_the_current_version():
    assert load("event")["$defs"]["start"]["properties"]["version"] == {"const": VERSION}


@pytest.mark.parametrize(
    "event, problem",
    [
        ({"type": "text"}, "missing text"),
        ({"type": "text", "text": "x", "extra": 1}, "unknown field"),
        ({"type": "nope"}, "unknown type"),
        ({"text": "x"}, "no type"),
        ({"type": "start", "version": 2, "model": "m", "tools": []}, "other version"),
        ({"type": "start", "version": 1, "model": "m", "tools": []}, "start without conversation_id"),
        (
            {"type": "start", "version": 1, "model": "m", "tools": [], "conversation_id": "nope"},
            "not a conversation id",
        ),
        ({"type": "retry", "attempt": 1, "attempts": 3, "delay": 0, "reason": "x"}, "attempt 1 is not a retry"),
        ({"type": "retry", "attempt": 2, "delay": 0, "reason": "x"}, "retry without attempts"),
        (
            {"type": "tool_result", "id": "t", "name": "n", "output": 3, "is_error": False, "duration_ms": 1},
            "output not a string",
        ),
        ({"type": "result", **Result(model="m").to_json(), "extra": 1}, "result with an extra field"),
        (
            {"type": "result", **{k: v for k, v in Result(model="m").to_json().items() if k != "usage"}},
            "result without usage",
        ),
    ],
)
def test_event_schema_rejects(event, problem):
    assert not EVENT.is_valid(event), problem


def test_result_schema_rejects_the_type_field_and_bad_errors():
    document = Result(model="m").to_json()
    assert RESULT.is_valid(document)
    assert not RESULT.is_valid({**document, "type": "result"})
    assert not RESULT.is_valid({**document, "error": {"type": "x", "message": "y"}})
    assert not RESULT.is_valid({**document, "incomplete": "bored"})


# ---------------------------------------------------------------- real streams from the mock server


def tool_turn(*calls, text="", **extra):
    return json.dumps({"text": text, "tool_calls": [{"name": n, "input": i} for n, i in calls], **extra})


# name -> (args, mock options, expected exit code, event types that must appear, error type)
SCENARIOS = {
    "text": (["hello world"], {}, 0, {"text"}, None),
    "thinking": ([json.dumps({"thinking": "Let me see.", "text": "Seen."})], {}, 0, {"thinking", "text"}, None),
    "parallel tools": (
        ["-t", str(SAMPLE_TOOLS), tool_turn(("calculate", {"expression": "2**10"}), ("get_time", {"timezone": "UTC"}))],
        {},
        0,
        {"tool_call", "tool_result"},
        None,
    ),
    "tool errors": (
        [
            "-t",
            str(SAMPLE_TOOLS),
            tool_turn(
                ("get_weather", {"location": "Paris"}),
                ("calculate", {"expression": "1/0"}),
                ("invented_tool", {}),
                ("get_time", {"zone": "bad input"}),
            ),
        ],
        {},
        0,
        {"tool_call", "tool_result"},
        None,
    ),
    "http error": (["hi"], {"api_key": "another-key"}, 3, set(), "authentication_error"),
    "error event mid-stream": (
        [json.dumps({"text": "so far", "stream_error": {"type": "overloaded_error", "message": "Overloaded"}})],
        {},
        3,
        {"text"},
        "overloaded_error",
    ),
    "truncated stream": ([json.dumps({"text": "half an answer", "truncate": True})], {}, 3, {"text"}, None),
    "connection refused": (["--base-url", "http://127.0.0.1:9", "hi"], {}, 3, set(), "connection_error"),
    "tools file missing": (["-t", "missing.yaml", "hi"], {}, 2, set(), "tools_file_error"),
    "max turns": (
        ["--max-turns", "1", "-t", str(SAMPLE_TOOLS), tool_turn(("calculate", {"expression": "1+1"}))],
        {},
        4,
        {"tool_call", "tool_result"},
        None,
    ),
    "max tokens": ([json.dumps({"text": "cut", "stop_reason": "max_tokens"})], {}, 4, {"text"}, None),
    "refusal": (
        [json.dumps({"text": "No.", "stop_reason": "refusal", "stop_details": {"type": "refusal"}})],
        {},
        4,
        {"text"},
        None,
    ),
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_stream_validates_against_the_schema(toolchat, mock, name):
    args, options, code, types, error_type = SCENARIOS[name]
    server = mock(**options)
    run = toolchat("--stream-json", *args, server=server)
    assert run.code == code, run
    events = lines_of(run.out)
    first, last = events[0], events[-1]
    assert (first["type"], first["version"]) == ("start", 1)
    assert last["type"] == "result" and [e["type"] for e in events].count("result") == 1
    assert types <= {e["type"] for e in events}, [e["type"] for e in events]
    assert (last["error"] is None) == (code in (0, 4)), last
    if error_type:
        assert last["error"]["type"] == error_type
    if code == 4:
        assert last["incomplete"] in ("max_turns", "max_tokens", "refusal")
    # The answer is the text events put together (for the last turn that had text).
    assert last["text"] in "".join(e["text"] for e in events if e["type"] == "text")
    calls = [e for e in events if e["type"] == "tool_call"]
    results = [e for e in events if e["type"] == "tool_result"]
    assert sorted(c["id"] for c in calls) == sorted(r["id"] for r in results)
    assert [(c["id"], c["name"], c["input"]) for c in calls] == [
        (c["id"], c["name"], c["input"]) for c in last["tool_calls"]
    ]


def test_tool_errors_are_tool_results_with_is_error(toolchat, mock):
    run = toolchat("--stream-json", *SCENARIOS["tool errors"][0], server=mock())
    results = {e["name"]: e for e in lines_of(run.out) if e["type"] == "tool_result"}
    assert {name: r["is_error"] for name, r in results.items()} == {
        "get_weather": True,
        "calculate": True,
        "invented_tool": True,
        "get_time": True,
    }
    assert "connection refused" in results["get_weather"]["output"]


def test_events_of_a_tool_round_in_order(toolchat, mock):
    server = mock(
        {
            "turns": [
                {
                    "text": "Checking.",
                    "tool_calls": [{"id": "toolu_a", "name": "calculate", "input": {"expression": "2**10"}}],
                },
                {"text": "It is {result:calculate}."},
            ]
        }
    )
    run = toolchat("--stream-json", "-q", "-t", str(SAMPLE_TOOLS), "What is 2**10?", server=server)
    assert (run.code, run.err) == (0, "")
    events = lines_of(run.out)
    types = [e["type"] for e in events]
    assert [t for i, t in enumerate(types) if i == 0 or types[i - 1] != t] == [
        "start",
        "text",
        "turn",
        "tool_call",
        "tool_result",
        "text",
        "turn",
        "result",
    ]
    assert events[0]["tools"] == ["get_weather", "get_time", "calculate"]
    first_turn = next(e for e in events if e["type"] == "turn")
    assert first_turn["turn"] == 1 and first_turn["stop_reason"] == "tool_use"
    assert first_turn["usage"]["input_tokens"] > 0
    [call] = [e for e in events if e["type"] == "tool_call"]
    [result] = [e for e in events if e["type"] == "tool_result"]
    assert call == {"type": "tool_call", "id": "toolu_a", "name": "calculate", "input": {"expression": "2**10"}}
    assert {k: result[k] for k in ("id", "output", "is_error")} == {
        "id": "toolu_a",
        "output": "1024",
        "is_error": False,
    }
    assert events[-1]["text"] == "It is 1024."
    # The result's usage is the sum of the turns' usage.
    turns = [e for e in events if e["type"] == "turn"]
    assert events[-1]["usage"]["output_tokens"] == sum(t["usage"]["output_tokens"] for t in turns)


def test_result_line_equals_the_json_document_of_the_same_run(toolchat, mock):
    script = {
        "turns": [
            {
                "thinking": "Two tools.",
                "tool_calls": [
                    {"id": "toolu_a", "name": "calculate", "input": {"expression": "6*7"}},
                    {"id": "toolu_b", "name": "get_weather", "input": {"location": "Paris"}},
                ],
            },
            {"text": "{results}"},
        ]
    }
    args = ("-t", str(SAMPLE_TOOLS), "Go.")
    streamed = lines_of(toolchat("--stream-json", *args, server=mock(script)).out)[-1]
    document = toolchat("--json", *args, server=mock(script)).json()

    def steady(doc):
        for call in doc["tool_calls"]:
            call["duration_ms"] = 0
        assert doc.pop("conversation_id") is not None  # two runs: two logged conversations
        return doc

    assert steady(streamed) == {"type": "result", **steady(document)}


def test_failure_before_the_run_is_a_start_line_then_a_result_line(toolchat, mock):
    server = mock()
    run = toolchat("--stream-json", "hi", server=server, key=None)
    assert run.code == 2 and server.requests == []
    start, result = lines_of(run.out)
    assert start == {
        "type": "start",
        "version": 1,
        "model": "claude-sonnet-4-20250514",
        "tools": [],
        "conversation_id": None,
    }  # nothing was logged
    assert result["error"]["message"].startswith("no API key") and result["turns"] == 0
    assert run.err.startswith("toolchat: error: no API key")


def test_retries_are_retry_lines_before_the_failed_result(toolchat, mock):
    """A 529 on every attempt: `--retries 1` makes one retry line, then the failure."""
    server = mock(
        {
            "turns": [
                {
                    "error": {"status": 529, "type": "overloaded_error", "message": "Overloaded"},
                    "headers": {"retry-after": "0"},
                }
            ]
        }
    )
    run = toolchat("--stream-json", "--retries", "1", "hi", server=server)
    assert run.code == 3, run
    events = lines_of(run.out)
    assert [e["type"] for e in events] == ["start", "retry", "result"]
    retry = events[1]
    assert (retry["attempt"], retry["attempts"]) == (2, 2)
    assert retry["delay"] >= 0 and retry["reason"]
    assert len(server.requests) == 2
    assert events[-1]["error"]["type"] == "overloaded_error"


def test_retry_with_an_unknown_number_of_attempts():
    out = io.StringIO()
    NdjsonView(out=out, err=io.StringIO(), quiet=True).handle(Retry(2, 0.5, "rate limited (429)"))
    assert lines_of(out.getvalue()) == [
        {"type": "retry", "attempt": 2, "attempts": None, "delay": 0.5, "reason": "rate limited (429)"}
    ]


@pytest.mark.slow  # over 2.5 s: the slow set, which .ci/run plays after the default run
def test_lines_arrive_while_the_model_is_still_answering(tmp_path, mock):
    """The first text line is on stdout while the server holds back the rest of the answer."""
    body = sse(*message_events({"type": "text", "text": "first "}, stop_reason="end_turn"))
    cut = body.index("\n\n", body.index('"text_delta"')) + 2
    server = mock({"turns": [{"raw": body, "chunks": [cut], "delay": 3}]})
    env = clean_env(tmp_path, TOOLCHAT_BASE_URL=server.url, TOOLCHAT_API_KEY=TEST_KEY)
    began = time.monotonic()
    proc = popen_toolchat(["--stream-json", "hi"], env)
    try:
        assert json.loads(proc.stdout.readline())["type"] == "start"
        assert json.loads(proc.stdout.readline()) == {"type": "text", "text": "first "}
        seen = time.monotonic() - began
        rest, _ = proc.communicate(timeout=20)
        finished = time.monotonic() - began
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert finished - seen > 2  # the text line came out about 3 s before the end
    assert [json.loads(line)["type"] for line in rest.splitlines()] == ["turn", "result"]
