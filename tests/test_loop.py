"""The tool loop end to end against the strict mock server (it rejects unpaired tool_use)."""

from __future__ import annotations


import pytest

from toolchat.events import ToolCall, ToolResult, TurnEnd

from conftest import message_events, run_chat, sse

HANDLERS = """
import threading
import time

barrier = threading.Barrier(2, timeout=10)
calls = []

def add(a, b):
    calls.append(("add", a, b))
    return a + b

def meet(who):
    # Both parallel calls must be running at once to pass the barrier.
    barrier.wait()
    return f"met {who}"

def boom():
    raise RuntimeError("disk on fire")

def slow():
    time.sleep(30)
"""

TOOLS = """
tools:
  - name: add
    description: Add two numbers
    input_schema: {type: object, properties: {a: {type: number}, b: {type: number}}, required: [a, b]}
    handler: handlers.py:add
  - name: meet
    input_schema: {type: object, properties: {who: {type: string}}, required: [who]}
    handler: handlers.py:meet
  - name: boom
    input_schema: {type: object}
    handler: handlers.py:boom
  - name: slow
    input_schema: {type: object}
    handler: handlers.py:slow
    timeout: 0.5
"""


@pytest.fixture
def tools_file(tmp_path):
    (tmp_path / "handlers.py").write_text(HANDLERS)
    path = tmp_path / "tools.yaml"
    path.write_text(TOOLS)
    return path


def tool_turn(*calls, text=""):
    return {"text": text, "tool_calls": [{"name": n, "input": i} for n, i in calls]}


def results_sent(server, request_number=1):
    """The tool_result blocks of the last user message of request `request_number`."""
    return server.requests[request_number].body["messages"][-1]["content"]


def test_one_tool_call_then_the_answer(mock, tools_file):
    server = mock(
        {"turns": [tool_turn(("add", {"a": 2, "b": 3}), text="Adding."), {"text": "The sum is {result:add}."}]}
    )
    events, result = run_chat(server, "2+3?", [tools_file])
    assert result.error is None
    assert result.text == "The sum is 5."
    assert (result.turns, result.stop_reason, result.exit_code) == (2, "end_turn", 0)
    assert [(c.name, c.input, c.output, c.is_error) for c in result.tool_calls] == [
        ("add", {"a": 2, "b": 3}, "5", False)
    ]
    sent = results_sent(server)
    assert sent == [{"type": "tool_result", "tool_use_id": result.messages[1]["content"][1]["id"], "content": "5"}]
    assert [m["role"] for m in result.messages] == ["user", "assistant", "user", "assistant"]
    assert [type(e).__name__ for e in events if isinstance(e, (ToolCall, ToolResult, TurnEnd))] == [
        "TurnEnd",
        "ToolCall",
        "ToolResult",
        "TurnEnd",
    ]


@pytest.mark.parametrize("json_delta_size", [1, 8, -1, 0], ids=["many-deltas", "some-deltas", "one-delta", "no-deltas"])
def test_tool_input_in_any_number_of_deltas(mock, tools_file, json_delta_size):
    turn = tool_turn(("add", {"a": 40, "b": 2}))
    turn["json_delta_size"] = json_delta_size
    server = mock({"turns": [turn, {"text": "{result:add}"}]})
    _, result = run_chat(server, "go", [tools_file])
    assert (result.error, result.text) == (None, "42")


def test_tool_input_only_in_the_start_event_with_raw_stream(mock, tools_file):
    block = {"type": "tool_use", "id": "call_abc", "name": "add", "start_input": {"a": 1, "b": 1}}
    server = mock({"turns": [{"raw": sse(*message_events(block, stop_reason="tool_use"))}, {"text": "{result:add}"}]})
    _, result = run_chat(server, "go", [tools_file])
    assert (result.error, result.text) == (None, "2")
    assert results_sent(server)[0]["tool_use_id"] == "call_abc"


def test_parallel_calls_run_concurrently_and_results_go_back_in_order(mock, tools_file):
    server = mock({"turns": [tool_turn(("meet", {"who": "ann"}), ("meet", {"who": "bob"})), {"text": "{results}"}]})
    _, result = run_chat(server, "go", [tools_file])
    assert result.error is None
    ids = [b["id"] for b in result.messages[1]["content"] if b["type"] == "tool_use"]
    sent = results_sent(server)
    assert [b["tool_use_id"] for b in sent] == ids
    assert [b["content"] for b in sent] == ["met ann", "met bob"]
    assert all("is_error" not in b for b in sent)


def test_handler_exception_goes_back_as_an_error_and_the_loop_continues(mock, tools_file):
    server = mock({"turns": [tool_turn(("boom", {})), {"text": "Saw: {result:boom}"}]})
    _, result = run_chat(server, "go", [tools_file])
    assert result.text == "Saw: error: RuntimeError: disk on fire"
    assert results_sent(server)[0]["is_error"] is True
    assert result.exit_code == 0


def test_handler_timeout_goes_back_as_an_error(mock, tools_file):
    server = mock({"turns": [tool_turn(("slow", {})), {"text": "{result:slow}"}]})
    _, result = run_chat(server, "go", [tools_file])
    assert result.text == "error: the tool timed out after 0.5 s"


def test_unknown_tool_goes_back_as_an_error(mock, tools_file):
    server = mock({"turns": [tool_turn(("invented", {"x": 1})), {"text": "{result:invented}"}]})
    _, result = run_chat(server, "go", [tools_file])
    assert result.text.startswith("error: unknown tool 'invented'; the tools available are: add, meet")


def test_input_failing_the_schema_is_not_run(mock, tools_file):
    server = mock({"turns": [tool_turn(("add", {"a": "x", "b": 1})), {"text": "{result:add}"}]})
    _, result = run_chat(server, "go", [tools_file])
    assert result.text == "error: invalid input: a: 'x' is not of type 'number'"


def test_malformed_tool_json_is_an_error_result(mock, tools_file):
    block = {"type": "tool_use", "id": "toolu_1", "name": "add", "json": ['{"a": 1, "b"']}
    server = mock({"turns": [{"raw": sse(*message_events(block, stop_reason="tool_use"))}, {"text": "{result:add}"}]})
    _, result = run_chat(server, "go", [tools_file])
    assert result.text == 'error: the tool input was not valid JSON: {"a": 1, "b"'


def test_a_tool_call_cut_by_max_tokens_never_runs(mock, tools_file):
    block = {"type": "tool_use", "id": "toolu_1", "name": "add", "json": ['{"a": 1, "b": 2']}
    server = mock({"turns": [{"raw": sse(*message_events(block, stop_reason="max_tokens"))}]})
    _, result = run_chat(server, "go", [tools_file])
    assert result.tool_calls == []
    assert (result.incomplete, result.exit_code, len(server.requests)) == ("max_tokens", 4, 1)


def test_null_stop_reason_with_complete_tool_use_means_tool_use(mock, tools_file):
    block = {"type": "tool_use", "id": "call_1", "name": "add", "json": ['{"a": 1, "b": 2}']}
    events = message_events(block, stop_reason=None)
    server = mock({"turns": [{"raw": sse(*events)}, {"text": "{result:add}"}]})
    _, result = run_chat(server, "go", [tools_file])
    assert (result.error, result.text) == (None, "3")


def test_pause_turn_sends_the_assistant_content_back_unchanged(mock, tools_file):
    first = message_events(
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "x"}},
        {"type": "text", "text": "Searching"},
        stop_reason="pause_turn",
    )
    server = mock({"turns": [{"raw": sse(*first)}, {"text": "found"}]})
    _, result = run_chat(server, "go", [tools_file])
    assert (result.error, result.text, result.turns) == (None, "found", 2)
    resent = server.requests[1].body["messages"]
    assert resent[-1] == {
        "role": "assistant",
        "content": [
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "x"}},
            {"type": "text", "text": "Searching"},
        ],
    }


def test_refusal_is_reported_as_incomplete(mock):
    server = mock({"turns": [{"text": "I can't help with that.", "stop_reason": "refusal"}]})
    _, result = run_chat(server, "go")
    assert (result.incomplete, result.stop_reason, result.exit_code) == ("refusal", "refusal", 4)


def test_max_turns_bounds_the_requests(mock, tools_file):
    loop = tool_turn(("add", {"a": 1, "b": 1}))
    server = mock({"turns": [loop, loop, loop, {"text": "never"}]})
    _, result = run_chat(server, "go", [tools_file], max_turns=2)
    assert (result.incomplete, result.turns, len(server.requests), result.exit_code) == ("max_turns", 2, 2, 4)
    assert result.messages[-1]["role"] == "user"  # the last tool results are kept for a continuation


def test_thinking_and_redacted_thinking_are_echoed_exactly(mock, tools_file):
    turn = tool_turn(("add", {"a": 1, "b": 2}))
    turn.update(thinking="Let me add.", redacted_thinking=True)
    server = mock({"turns": [turn, {"text": "{result:add}"}]})
    _, result = run_chat(server, "go", [tools_file])
    # The mock checks thinking signatures and redacted data; a wrong echo would be a 400.
    assert (result.error, result.text) == (None, "3")
    kinds = [b["type"] for b in server.requests[1].body["messages"][1]["content"]]
    assert kinds[:2] == ["thinking", "redacted_thinking"]
    assert server.requests[1].body["messages"][1] == result.messages[1]


def test_unknown_block_types_are_kept_and_echoed(mock, tools_file):
    future = {"type": "future_block", "payload": {"deep": [1, 2]}}
    block = {"type": "tool_use", "id": "toolu_9", "name": "add", "json": ['{"a": 2, "b": 2}']}
    server = mock(
        {"turns": [{"raw": sse(*message_events(future, block, stop_reason="tool_use"))}, {"text": "{result:add}"}]}
    )
    _, result = run_chat(server, "go", [tools_file])
    assert result.text == "4"
    assert server.requests[1].body["messages"][1]["content"][0] == future


def test_usage_is_summed_over_turns(mock, tools_file):
    server = mock(
        {
            "turns": [
                dict(tool_turn(("add", {"a": 1, "b": 1})), usage={"input_tokens": 10, "output_tokens": 4}),
                {"text": "2", "usage": {"input_tokens": 20, "output_tokens": 6}},
            ]
        }
    )
    _, result = run_chat(server, "go", [tools_file])
    assert (result.usage["input_tokens"], result.usage["output_tokens"]) == (30, 10)


def test_tool_choice_and_no_parallel_reach_the_request(mock, tools_file):
    server = mock()
    run_chat(server, "hi", [tools_file], tool_choice="add", parallel=False)
    assert server.requests[0].body["tool_choice"] == {"type": "tool", "name": "add", "disable_parallel_tool_use": True}
    run_chat(server, "hi", [tools_file], tool_choice="none", parallel=False)
    assert server.requests[1].body["tool_choice"] == {"type": "none"}


def test_declined_tool_gets_an_error_result(mock, tmp_path):
    (tmp_path / "handlers.py").write_text(HANDLERS)
    path = tmp_path / "tools.yaml"
    path.write_text(TOOLS.replace("handler: handlers.py:add", "handler: handlers.py:add\n    confirm: true"))
    server = mock({"turns": [tool_turn(("add", {"a": 1, "b": 1})), {"text": "{result:add}"}]})
    _, result = run_chat(server, "go", [path], approve=lambda tool, call: "not run: the user declined")
    assert result.text == "error: not run: the user declined"
