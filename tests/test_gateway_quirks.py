"""What gateways (new-api, one-api, LiteLLM, OpenRouter, proxies) really send, PROTOCOL.md §5-§7:
each quirk played through real HTTP on loopback against the chat loop, with exact outcomes.

Quirks already covered elsewhere are not repeated: CRLF split between chunks, bare CR, comments
with data-only events, [DONE] after message_stop (test_stream.py); `call_` ids with input only in the
start event, null stop_reason with tool_use, one-delta input (test_loop.py).
"""

from __future__ import annotations

import json

import pytest

from toolchat.errors import APIError, StreamError
from toolchat.events import BlockDone, TextDelta, ToolCall
from toolchat.dialects import anthropic, openai_json as openai

from conftest import SAMPLE_TOOLS, message_events, run_chat, sse, tokens

ADD_TOOLS = """
tools:
  - name: add
    description: Add two numbers
    input_schema: {type: object, properties: {a: {type: number}, b: {type: number}}, required: [a, b]}
    handler: handlers.py:add
  - name: ping
    description: No input at all
    input_schema: {type: object}
    handler: handlers.py:ping
"""

HANDLERS = """
def add(a, b):
    return a + b

def ping():
    return "pong"
"""


@pytest.fixture
def tools_file(tmp_path):
    (tmp_path / "handlers.py").write_text(HANDLERS)
    path = tmp_path / "tools.yaml"
    path.write_text(ADD_TOOLS)
    return path


def play(mock, *turns, tools=(), prompt="hi"):
    """Run the turns without retries: these tests are about what one response turns into."""
    server = mock({"turns": list(turns)})
    events, result = run_chat(server, prompt, tools, retries=0)
    return server, events, result


def texts(events) -> list[str]:
    return [e.text for e in events if isinstance(e, TextDelta)]


def chat_completion(*, content=None, tool_calls=None, finish_reason="stop", usage=None, **extra) -> str:
    message = {"role": "assistant", "content": content}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-x",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": usage or {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
        **extra,
    }
    return json.dumps(body)


def json_turn(body: str) -> dict:
    return {"raw": body, "content_type": "application/json"}


def call(name: str, arguments: str, call_id: str = "call_abc123") -> dict:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


# ---------------------------------------------------------------- OpenAI chat.completion JSON bodies


def test_chat_completion_tool_call_runs_the_tool_and_the_second_turn_answers(mock, tools_file):
    first = chat_completion(
        content="Let me add.", tool_calls=[call("add", '{"a": 2, "b": 40}')], finish_reason="tool_calls"
    )
    server, events, result = play(mock, json_turn(first), {"text": "The sum is {result:add}."}, tools=[tools_file])
    assert (result.error, result.text, result.turns, result.stop_reason) == (None, "The sum is 42.", 2, "end_turn")
    assert [(c.id, c.name, c.input, c.output, c.is_error) for c in result.tool_calls] == [
        ("call_abc123", "add", {"a": 2, "b": 40}, "42", False)
    ]
    # The mapped assistant message went back in Anthropic's shape, the result paired with call_ id.
    sent = server.requests[1].body["messages"]
    assert sent[1] == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me add."},
            {"type": "tool_use", "id": "call_abc123", "name": "add", "input": {"a": 2, "b": 40}},
        ],
    }
    assert sent[2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "call_abc123", "content": "42"}],
    }
    assert texts(events)[0] == "Let me add."  # the JSON answer's text, shown whole
    assert "".join(texts(events)[1:]) == "The sum is 42."
    # usage: prompt_tokens -> input_tokens, completion_tokens -> output_tokens, summed with turn 2.
    assert result.usage["input_tokens"] == 12 + server_usage(server, 1)["input_tokens"]


def server_usage(server, request_number):
    """What the mock counted for a request (it answers with usage computed from the request)."""
    from toolchat.mock.model import build_reply

    return build_reply(server.script, server.requests[request_number].body, 0).message["usage"]


def test_chat_completion_tool_loop_through_the_cli_prints_the_second_answer(mock, toolchat):
    first = chat_completion(
        content=None, tool_calls=[call("calculate", '{"expression": "6*7"}', "call_x9")], finish_reason="tool_calls"
    )
    server = mock({"turns": [json_turn(first), {"text": "It is {result:calculate}."}]})
    run = toolchat("--no-cache", "-t", str(SAMPLE_TOOLS), "what is 6*7?", server=server)
    assert (run.code, run.out) == (0, "It is 42.\n"), run
    assert server.requests[1].body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_x9", "content": "42"}
    ]


def test_chat_completion_with_parallel_calls_sends_all_results_in_one_message(mock, tools_file):
    first = chat_completion(
        tool_calls=[call("add", '{"a":1,"b":2}', "call_1"), call("ping", "", "call_2")], finish_reason="tool_calls"
    )
    server, _, result = play(mock, json_turn(first), {"text": "{results}"}, tools=[tools_file])
    assert (result.error, result.text) == (None, "add: 3\nping: pong")
    assert server.requests[1].body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "3"},
        {"type": "tool_result", "tool_use_id": "call_2", "content": "pong"},
    ]


@pytest.mark.parametrize(
    "finish_reason, stop_reason, incomplete, exit_code",
    [
        ("stop", "end_turn", None, 0),
        ("length", "max_tokens", "max_tokens", 4),
        ("content_filter", "refusal", "refusal", 4),
        ("something_new", "something_new", None, 0),
    ],
)
def test_chat_completion_finish_reason_maps_to_stop_reason(mock, finish_reason, stop_reason, incomplete, exit_code):
    _, events, result = play(mock, json_turn(chat_completion(content="Hello.", finish_reason=finish_reason)))
    assert (result.error, result.text, result.stop_reason) == (None, "Hello.", stop_reason)
    assert (result.incomplete, result.exit_code) == (incomplete, exit_code)
    assert tokens(tokens(result.usage)) == {"input_tokens": 12, "output_tokens": 7}
    assert texts(events) == ["Hello."]


def test_chat_completion_message_is_mapped_to_the_anthropic_shape():
    body = json.loads(
        chat_completion(
            content="Checking.",
            tool_calls=[call("get_weather", '{"location":"Paris"}', "call_w")],
            finish_reason="tool_calls",
        )
    )
    assert (
        anthropic.assemble_json(body)
        == openai.message_from_chat_completion(body)
        == {
            "id": "chatcmpl-1",
            "type": "message",
            "role": "assistant",
            "model": "gpt-x",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "call_w", "name": "get_weather", "input": {"location": "Paris"}},
            ],
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": {"input_tokens": 12, "output_tokens": 7},
        }
    )


def test_chat_completion_legacy_function_call_and_content_parts():
    body = {
        "choices": [
            {
                "message": {
                    "role": "assistant",
                    "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                    "function_call": {"name": "add", "arguments": '{"a":1,"b":1}'},
                },
                "finish_reason": "function_call",
            }
        ]
    }
    message = anthropic.assemble_json(body)
    assert message["content"] == [
        {"type": "text", "text": "ab"},
        {"type": "tool_use", "id": "call_0", "name": "add", "input": {"a": 1, "b": 1}},
    ]
    assert (message["stop_reason"], message["usage"]) == ("tool_use", {})


def test_chat_completion_refusal_text_is_kept_when_content_is_null():
    body = {
        "object": "chat.completion",
        "choices": [
            {
                "message": {"role": "assistant", "content": None, "refusal": "I can't help with that."},
                "finish_reason": "content_filter",
            }
        ],
    }
    message = anthropic.assemble_json(body)
    assert (message["content"], message["stop_reason"]) == (
        [{"type": "text", "text": "I can't help with that."}],
        "refusal",
    )


@pytest.mark.parametrize(
    "arguments, problem",
    [
        ('{"a": 1, "b"', 'the tool input was not valid JSON: {"a": 1, "b"'),
        ("[1, 2]", "the tool input was not a JSON object: [1, 2]"),
    ],
)
def test_chat_completion_with_bad_arguments_answers_the_call_with_an_error_and_runs_nothing(
    mock, tools_file, arguments, problem
):
    first = chat_completion(tool_calls=[call("add", arguments, "call_bad")], finish_reason="tool_calls")
    server, _, result = play(mock, json_turn(first), {"text": "done"}, tools=[tools_file])
    assert (result.error, result.text, result.exit_code, len(server.requests)) == (None, "done", 0, 2)
    assert [(c.name, c.input, c.output, c.is_error) for c in result.tool_calls] == [("add", {}, problem, True)]
    assert server.requests[1].body["messages"][-1]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_bad", "content": problem, "is_error": True}
    ]


@pytest.mark.parametrize("arguments", ['{"a": 1, "b"', "[1, 2]"])
def test_chat_completion_with_bad_arguments_and_nowhere_to_report_them_is_malformed(arguments):
    body = chat_completion(tool_calls=[call("add", arguments, "call_bad")], finish_reason="tool_calls")
    with pytest.raises(StreamError) as caught:
        anthropic.assemble_json(json.loads(body) if isinstance(body, str) else body)
    assert caught.value.type == "malformed_response"


def test_chat_completion_without_choices_is_a_malformed_response(mock):
    _, _, result = play(mock, json_turn('{"object": "chat.completion", "choices": []}'))
    assert (result.error.type, result.error.message) == (
        "malformed_response",
        "malformed chat.completion response: no choices",
    )


def test_chat_completion_arguments_sent_as_an_object_are_accepted():
    body = {
        "choices": [
            {
                "message": {
                    "tool_calls": [{"id": "call_o", "function": {"name": "add", "arguments": {"a": 1, "b": 2}}}]
                },
                "finish_reason": "tool_calls",
            }
        ]
    }
    assert anthropic.assemble_json(body)["content"] == [
        {"type": "tool_use", "id": "call_o", "name": "add", "input": {"a": 1, "b": 2}}
    ]


# ---------------------------------------------------------------- SSE framing quirks


def test_data_only_events_without_any_event_lines(mock):
    body = sse(*message_events({"type": "text", "text": "no names", "pieces": ["no ", "names"]}), with_names=False)
    assert "event:" not in body
    _, events, result = play(mock, {"raw": body})
    assert (result.error, result.text, texts(events)) == (None, "no names", ["no ", "names"])
    assert tokens(tokens(result.usage)) == {"input_tokens": 10, "output_tokens": 5}


@pytest.mark.parametrize("line_end", ["\r\n", "\r"], ids=["crlf", "bare-cr"])
def test_crlf_and_bare_cr_in_one_byte_chunks_with_data_only_events(mock, line_end):
    body = sse(*message_events({"type": "text", "text": "ok"}), line_end=line_end, with_names=False)
    _, _, result = play(mock, {"raw": body, "chunks": "bytes"})
    assert (result.error, result.text) == (None, "ok")


def test_mixed_line_ends_in_one_stream(mock):
    events = message_events({"type": "text", "text": "mixed"})
    body = "".join(sse(e, line_end=end) for e, end in zip(events, ["\r\n", "\n", "\r"] * 5))
    _, _, result = play(mock, {"raw": body})
    assert (result.error, result.text) == (None, "mixed")


def test_keepalive_comments_between_every_event(mock):
    body = sse(*message_events({"type": "text", "text": "kept"}))
    body = body.replace("\n\n", "\n\n: keepalive\n\n: OPENROUTER PROCESSING\n")
    _, _, result = play(mock, {"raw": ": keepalive\n\n" + body})
    assert (result.error, result.text) == (None, "kept")


def test_done_marker_without_message_stop_is_still_a_truncation(mock):
    body = sse(*message_events({"type": "text", "text": "half"})[:-1]) + "data: [DONE]\n\n"
    _, _, result = play(mock, {"raw": body})
    assert isinstance(result.error, StreamError)
    assert (result.error.type, result.text) == ("truncated_stream", "half")


def test_done_marker_right_after_message_stop_with_crlf(mock):
    body = sse(*message_events({"type": "text", "text": "done"}), line_end="\r\n") + "data: [DONE]\r\n\r\n"
    _, _, result = play(mock, {"raw": body})
    assert (result.error, result.text) == (None, "done")


def test_empty_data_lines_are_ignored(mock):
    body = sse(*message_events({"type": "text", "text": "fine"}))
    body = "data:\n\n" + body.replace("event: ping\n", "data: \n\nevent: ping\n")
    body = body.replace('"type": "message_stop"}\n\n', '"type": "message_stop"}\n\ndata:\n\n')
    _, _, result = play(mock, {"raw": body})
    assert (result.error, result.text) == (None, "fine")


def test_byte_order_mark_at_the_start_of_the_stream(mock):
    body = "\ufeff" + sse(*message_events({"type": "text", "text": "bom"}), with_names=False)
    _, _, result = play(mock, {"raw": body, "chunks": [1, 1, 1]})
    assert (result.error, result.text, tokens(result.usage)) == (None, "bom", {"input_tokens": 10, "output_tokens": 5})


# ---------------------------------------------------------------- event-order quirks


def test_call_ids_with_input_in_one_delta(mock, tools_file):
    block = {"type": "tool_use", "id": "call_00abc", "name": "add", "json": ['{"a": 20, "b": 22}']}
    server, _, result = play(
        mock, {"raw": sse(*message_events(block, stop_reason="tool_use"))}, {"text": "{result:add}"}, tools=[tools_file]
    )
    assert (result.error, result.text) == (None, "42")
    assert server.requests[1].body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_00abc", "content": "42"}
    ]


def test_tool_input_only_in_the_start_event_with_a_text_block_before(mock, tools_file):
    blocks = (
        {"type": "text", "text": "Adding."},
        {"type": "tool_use", "id": "call_s", "name": "add", "start_input": {"a": 5, "b": 5}},
    )
    server, _, result = play(
        mock,
        {"raw": sse(*message_events(*blocks, stop_reason="tool_use"))},
        {"text": "{result:add}"},
        tools=[tools_file],
    )
    assert (result.error, result.text) == (None, "10")
    assert server.requests[1].body["messages"][1]["content"][1]["input"] == {"a": 5, "b": 5}


def test_empty_string_stop_reason_with_complete_tool_use_means_tool_use(mock, tools_file):
    block = {"type": "tool_use", "id": "call_e", "name": "add", "json": ['{"a":', ' 1, "b": 1}']}
    _, _, result = play(
        mock, {"raw": sse(*message_events(block, stop_reason=""))}, {"text": "{result:add}"}, tools=[tools_file]
    )
    assert (result.error, result.text, result.turns) == (None, "2", 2)


def test_null_stop_reason_without_tools_finishes_the_turn(mock):
    _, _, result = play(mock, {"raw": sse(*message_events({"type": "text", "text": "hi"}, stop_reason=None))})
    assert (result.error, result.text, result.stop_reason, result.exit_code) == (None, "hi", None, 0)


def test_missing_message_delta_with_tool_use(mock, tools_file):
    events = message_events(
        {"type": "tool_use", "id": "call_m", "name": "add", "json": ['{"a":3,"b":4}']}, stop_reason="tool_use"
    )
    events = [e for e in events if e["type"] != "message_delta"]
    _, _, result = play(mock, {"raw": sse(*events)}, {"text": "{result:add}"}, tools=[tools_file])
    assert (result.error, result.text) == (None, "7")


def test_missing_message_delta_keeps_the_usage_of_message_start(mock):
    events = [e for e in message_events({"type": "text", "text": "t"}) if e["type"] != "message_delta"]
    _, _, result = play(mock, {"raw": sse(*events)})
    assert (result.error, result.text, result.stop_reason) == (None, "t", None)
    assert tokens(tokens(result.usage)) == {"input_tokens": 10, "output_tokens": 1}


def test_events_after_message_stop_do_not_change_the_message(mock):
    body = sse(*message_events({"type": "text", "text": "final"}))
    body += sse(
        {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 99}},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": "late"}},
        {"type": "message_stop"},
    )
    _, events, result = play(mock, {"raw": body})
    assert (result.error, result.text, result.stop_reason) == (None, "final", "end_turn")
    assert tokens(tokens(result.usage)) == {"input_tokens": 10, "output_tokens": 5}
    assert texts(events) == ["final"]


def test_error_event_after_message_stop_still_fails_the_turn(mock):
    # An error event is the server's word that the turn failed, whatever came before it.
    body = sse(
        *message_events({"type": "text", "text": "x"}),
        {"type": "error", "error": {"type": "api_error", "message": "late failure"}},
    )
    _, _, result = play(mock, {"raw": body})
    assert isinstance(result.error, APIError)
    assert result.error.message == "api_error: late failure"


def test_second_message_start_neither_resets_nor_overwrites_the_first_blocks(mock):
    first = message_events({"type": "text", "text": "one "})
    second = message_events({"type": "text", "text": "two"})
    # Gateway glue: the first message never stops, a second one starts again at index 0.
    events = first[:5] + second
    _, got, result = play(mock, {"raw": sse(*events)})
    assert (result.error, result.text) == (None, "one two")
    assert result.messages[-1]["content"] == [{"type": "text", "text": "one "}, {"type": "text", "text": "two"}]
    assert [e.index for e in got if isinstance(e, BlockDone)] == [0, 1]
    assert tokens(tokens(result.usage)) == {"input_tokens": 10, "output_tokens": 5}  # the first message_start's usage


def test_repeated_message_start_before_any_block_is_harmless(mock):
    events = message_events({"type": "text", "text": "dup"})
    events.insert(1, events[0])
    _, got, result = play(mock, {"raw": sse(*events)})
    assert (result.error, result.text) == (None, "dup")
    assert [e.index for e in got if isinstance(e, BlockDone)] == [0]


def test_stray_content_block_stop_is_ignored(mock):
    events = message_events({"type": "text", "text": "stray"})
    events.insert(2, {"type": "content_block_stop", "index": 0})  # before its block started
    events.insert(-2, {"type": "content_block_stop", "index": 0})  # a second stop
    events.insert(-2, {"type": "content_block_stop", "index": 7})  # for a block that never existed
    _, got, result = play(mock, {"raw": sse(*events)})
    assert (result.error, result.text) == (None, "stray")
    assert [(e.index, e.block) for e in got if isinstance(e, BlockDone)] == [(0, {"type": "text", "text": "stray"})]


def test_delta_for_a_block_that_never_started_starts_it(mock):
    events = message_events({"type": "text", "text": "a"})
    events = [e for e in events if e["type"] != "content_block_start"]
    _, _, result = play(mock, {"raw": sse(*events)})
    assert (result.error, result.text) == (None, "a")


def test_delta_of_the_wrong_kind_for_its_block_is_ignored(mock, tools_file):
    events = message_events(
        {"type": "tool_use", "id": "call_k", "name": "add", "json": ['{"a":1,"b":1}']}, stop_reason="tool_use"
    )
    events.insert(4, {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "junk"}})
    _, got, result = play(mock, {"raw": sse(*events)}, {"text": "{result:add}"}, tools=[tools_file])
    assert (result.error, result.text) == (None, "2")
    assert texts(got) == ["2"]  # the stray text was neither shown nor joined into the tool JSON


def test_server_tool_use_input_streamed_as_json_deltas_is_assembled(mock, tools_file):
    events = message_events({"type": "text", "text": "Searching"}, stop_reason="pause_turn")
    events[2:2] = (
        [
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
            }
        ]
        + [
            {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": p}}
            for p in ["", '{"query": ', '"weather"}']
        ]
        + [{"type": "content_block_stop", "index": 0}]
    )
    for event in events[6:]:
        if "index" in event:
            event["index"] = 1
    server, _, result = play(mock, {"raw": sse(*events)}, {"text": "found"}, tools=[tools_file])
    assert (result.error, result.text) == (None, "found")
    assert server.requests[1].body["messages"][1]["content"][0] == {
        "type": "server_tool_use",
        "id": "srvtoolu_1",
        "name": "web_search",
        "input": {"query": "weather"},
    }


def test_tool_input_that_is_json_but_not_an_object_is_an_error_result(mock, tools_file):
    block = {"type": "tool_use", "id": "call_l", "name": "ping", "json": ["[1, 2]"]}
    server, got, result = play(
        mock,
        {"raw": sse(*message_events(block, stop_reason="tool_use"))},
        {"text": "{result:ping}"},
        tools=[tools_file],
    )
    assert result.text == "error: the tool input was not a JSON object: [1, 2]"
    assert [e.input for e in got if isinstance(e, ToolCall)] == [{}]
    assert server.requests[1].body["messages"][1]["content"][0]["input"] == {}


@pytest.mark.parametrize(
    "event",
    [
        {"type": "content_block_start", "index": "0", "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": 5}},
        {"type": "content_block_start", "index": 0, "content_block": ["text"]},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": ["x"], "name": "a"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": 5}},
        {"type": "message_delta", "delta": {"stop_reason": {"odd": True}}},
        {"type": "message_start", "message": {"content": [7]}},
    ],
    ids=[
        "string-index",
        "text-not-a-string",
        "block-not-an-object",
        "tool-id-not-a-string",
        "delta-text-not-a-string",
        "stop-reason-not-a-string",
        "content-not-blocks",
    ],
)
def test_fields_of_the_wrong_type_are_a_malformed_stream(mock, event):
    events = message_events({"type": "text", "text": "x"})
    position = {"content_block_start": 2, "content_block_delta": 3, "message_delta": 5, "message_start": 0}
    events[position[event["type"]]] = event
    # framing close: toolchat stops reading at the bad event; the server must not wait for another request.
    _, _, result = play(mock, {"raw": sse(*events), "framing": "close"})
    assert isinstance(result.error, StreamError)
    assert (result.error.type, result.exit_code) == ("malformed_stream", 3)
    assert result.error.message.startswith(f"malformed stream: unexpected {event['type']} event")


def test_connection_dropped_inside_an_event_is_a_truncation_not_a_malformed_stream(mock):
    body = sse(*message_events({"type": "text", "text": "partial answer"}))
    cut = body.index('{"type": "message_delta"') + 20
    _, _, result = play(mock, {"raw": body[:cut], "framing": "close"})
    assert isinstance(result.error, StreamError)
    assert (result.error.type, result.error.message, result.text) == (
        "truncated_stream",
        "the stream ended in the middle of an event: the answer is truncated",
        "partial answer",
    )


def test_absurdly_deep_json_is_a_malformed_stream_not_a_crash(mock):
    deep = "[" * 5000 + "]" * 5000  # past the json module's recursion limit
    _, _, result = play(
        mock, {"raw": sse(*message_events({"type": "text", "text": "x"})[:2]) + f"data: {deep}\n\n", "framing": "close"}
    )
    assert isinstance(result.error, StreamError)
    assert result.error.message.startswith("malformed stream: event data is not JSON: [[[")


# ---------------------------------------------------------------- error bodies


@pytest.mark.parametrize(
    "status, content_type, body, message",
    [
        (
            502,
            "text/html",
            "<!DOCTYPE html>\n<html><body><h1>Bad gateway</h1>" + "x" * 5000 + "</body></html>",
            "HTTP 502 api_error: an HTML page",
        ),
        (
            522,
            "text/html; charset=UTF-8",
            '<!DOCTYPE html>\n<html class="no-js">\n<head>\n<title>example.com | 522: Connection timed out</title>'
            "\n</head><body>" + "<p>cloudflare</p>" * 500 + "</body></html>",
            "HTTP 522 api_error: HTML page: example.com | 522: Connection timed out",
        ),
        (
            504,
            "text/html",
            "<html>\r\n<head><title>504 Gateway\r\n Time-out</title></head></html>",
            "HTTP 504 timeout_error: HTML page: 504 Gateway Time-out",
        ),
        (
            429,
            "application/json",
            '{"error": {"message": "Rate limit reached for requests", "type": null, "param": null, "code": "rate_limit_exceeded"}}',
            "HTTP 429 rate_limit_exceeded: Rate limit reached for requests",
        ),
        (
            500,
            "application/json",
            '{"error": {"message": "upstream failed", "type": "new_api_error", "code": null}}',
            "HTTP 500 new_api_error: upstream failed",
        ),
        (
            401,
            "text/plain; charset=utf-8",
            "Unauthorized\n",
            "HTTP 401 authentication_error: Unauthorized (check the API key and --auth-style)",
        ),
        (503, "text/plain", "", "HTTP 503 api_error: empty body"),
    ],
    ids=[
        "html-without-title",
        "cloudflare-522",
        "nginx-504-title-on-two-lines",
        "openai-null-type-with-code",
        "openai-gateway-type",
        "plain-text-401",
        "empty-503",
    ],
)
def test_gateway_error_bodies_show_status_and_title_never_the_page(mock, status, content_type, body, message):
    _, _, result = play(mock, {"raw": body, "status": status, "content_type": content_type})
    assert isinstance(result.error, APIError)
    assert (result.error.message, result.error.status, result.exit_code) == (message, status, 3)


def test_openai_shaped_error_in_a_200_json_body(mock):
    body = '{"error": {"message": "model overloaded", "type": null, "code": "server_busy"}}'
    _, _, result = play(mock, json_turn(body))
    assert isinstance(result.error, APIError)
    assert (result.error.type, result.error.message) == ("server_busy", "server_busy: model overloaded")


def test_html_page_with_status_200_is_an_error_not_an_empty_answer(mock):
    page = "<html><head><title>Sign in to the Wi-Fi</title></head><body>" + "form " * 2000 + "</body></html>"
    _, _, result = play(mock, {"raw": page, "content_type": "text/html"})
    assert isinstance(result.error, APIError)
    assert (result.error.type, result.error.status, result.exit_code) == ("malformed_response", 200, 3)
    assert result.error.message == (
        "HTTP 200 malformed_response: expected a stream or a JSON message, got HTML page: Sign in to the Wi-Fi"
    )


def test_sse_labelled_as_text_plain_is_still_read_as_a_stream(mock):
    body = sse(*message_events({"type": "text", "text": "plain label"}))
    _, _, result = play(mock, {"raw": body, "content_type": "text/plain"})
    assert (result.error, result.text) == (None, "plain label")


@pytest.mark.parametrize(
    "content_type, chunks",
    [("application/json", None), ("text/plain", [1, 1, 1, 2])],
    ids=["json-label", "no-json-label-in-tiny-chunks"],
)
def test_json_body_with_a_byte_order_mark(mock, content_type, chunks):
    message = {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": "bom json"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    turn = {"raw": "\ufeff " + json.dumps(message), "content_type": content_type}
    if chunks:
        turn["chunks"] = chunks
    _, _, result = play(mock, turn)
    assert (result.error, result.text) == (None, "bom json")


@pytest.mark.parametrize(
    "body, message",
    [
        ("[1, 2]", "the response is neither a stream nor a message: a JSON list"),
        (
            '{"content": ["not a block"], "stop_reason": "end_turn"}',
            "malformed response: a content block is not an object",
        ),
    ],
)
def test_json_body_of_the_wrong_shape_is_a_malformed_response(mock, body, message):
    _, _, result = play(mock, json_turn(body))
    assert isinstance(result.error, StreamError)
    assert (result.error.type, result.error.message) == ("malformed_response", message)


def test_text_sent_inside_message_start_is_shown_like_any_delta(mock):
    start = {
        "type": "message_start",
        "message": {
            "id": "msg_g",
            "type": "message",
            "role": "assistant",
            "model": "m",
            "content": [{"type": "text", "text": "The answer is 42."}],
            "stop_reason": None,
            "usage": {"input_tokens": 3, "output_tokens": 1},
        },
    }
    body = sse(
        start,
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 5}},
        {"type": "message_stop"},
    )
    events, result = run_chat(mock({"turns": [{"raw": body}]}), "hi", retries=0)
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["The answer is 42."]
    assert (result.text, result.error) == ("The answer is 42.", None)


# ---------------------------------------------------------------- found through real gateways


def test_end_turn_with_complete_tool_use_still_runs_the_tools(mock, tools_file):
    # LiteLLM maps an upstream "stop" that carried tool calls to end_turn.
    block = {"type": "tool_use", "id": "call_0", "name": "add", "json": ['{"a": 2, "b": 3}']}
    server, _, result = play(
        mock, {"raw": sse(*message_events(block, stop_reason="end_turn"))}, {"text": "{result:add}"}, tools=[tools_file]
    )
    assert (result.error, result.text, result.turns, result.exit_code) == (None, "5", 2, 0)
    assert server.requests[1].body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_0", "content": "5"}
    ]


def test_max_tokens_with_tool_use_still_runs_nothing(mock, tools_file):
    block = {"type": "tool_use", "id": "call_0", "name": "add", "json": ['{"a": 2, "b": 3}']}
    server, _, result = play(mock, {"raw": sse(*message_events(block, stop_reason="max_tokens"))}, tools=[tools_file])
    assert (result.incomplete, result.tool_calls, len(server.requests)) == ("max_tokens", [], 1)


def test_no_parallel_is_enforced_when_the_gateway_drops_it(mock, tools_file):
    calls = [{"id": "call_0", "name": "add", "input": {"a": 1, "b": 1}}, {"id": "call_1", "name": "ping", "input": {}}]
    server = mock({"turns": [{"tool_calls": calls}, {"text": "{results}"}]})
    events, result = run_chat(server, "hi", [tools_file], retries=0, parallel=False)
    assert server.requests[0].body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert server.requests[1].body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_0", "content": "2"},
        {
            "type": "tool_result",
            "tool_use_id": "call_1",
            "is_error": True,
            "content": "not run: at most one tool call per turn (--no-parallel); call the tools one at a time",
        },
    ]
    assert [(c.name, c.is_error) for c in result.tool_calls] == [("add", False), ("ping", True)]


def test_ids_reused_across_turns_never_answer_a_later_call_with_an_earlier_output(mock, tmp_path):
    # Gateways number calls per turn (call_0, call_1, ...). Turn 2 reuses call_0; the run stops
    # while turn 2's tools wait for approval: turn 1's output must not answer turn 2's call_0.
    (tmp_path / "h.py").write_text("def add(a, b):\n    return a + b\n")
    (tmp_path / "t.yaml").write_text(
        "tools:\n  - {name: add, input_schema: {type: object}, handler: h.py:add, confirm: true}\n"
    )
    server = mock(
        {
            "turns": [
                {"tool_calls": [{"id": "call_0", "name": "add", "input": {"a": 1, "b": 1}}]},
                {"tool_calls": [{"id": "call_0", "name": "add", "input": {"a": 5, "b": 5}}]},
            ]
        }
    )
    asked = []

    def approve(tool, call):
        asked.append(call.input)
        if len(asked) == 2:
            raise KeyboardInterrupt  # Ctrl-C at the second question
        return None

    from toolchat.chat import Chat
    from toolchat.dialects.anthropic import AnthropicDialect
    from toolchat.settings import Settings
    from toolchat.session import tool_runner
    from toolchat.transport import Transport, messages_url

    from conftest import TEST_KEY

    settings = Settings(
        base_url=server.url,
        api_key=TEST_KEY,
        key_source="TOOLCHAT_API_KEY",
        retries=0,
        tools=(str(tmp_path / "t.yaml"),),
    )
    transport = Transport(messages_url(server.url), AnthropicDialect().headers(settings))
    chat = Chat(settings, AnthropicDialect(), transport, tool_runner(settings, approve))
    messages = [{"role": "user", "content": "hi"}]
    # Ctrl-C ends the run like any failure: Chat settles the transcript and still ends with Finished.
    events = list(chat.run(messages))
    transport.close()
    assert (type(events[-1]).__name__, events[-1].result.error.type) == ("Finished", "interrupted")
    assert messages[2]["content"] == [{"type": "tool_result", "tool_use_id": "call_0", "content": "2"}]
    assert messages[-1] == {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "call_0",
                "is_error": True,
                "content": "not run: the run was stopped before this tool finished",
            }
        ],
    }
