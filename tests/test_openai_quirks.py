"""What OpenAI-compatible servers and gateways really send over chat.completions (PROTOCOL.md §6-7):
each quirk served over real HTTP on loopback by the mock (a raw turn) and read as a turn is read,
Transport -> sniffed reply -> OpenAIStreamDecoder (or the JSON mapping), with exact outcomes."""

from __future__ import annotations

import json

import pytest

from toolchat import retry
from toolchat.dialects.base import Request
from toolchat.dialects.openai import OpenAIDialect
from toolchat.errors import APIError, StreamError
from toolchat.events import TextDelta, ThinkingDelta
from toolchat.mock.server import MockServer
from toolchat.transport import Transport

KEY = "sk-test-openai-quirks"
BASE = {"id": "chatcmpl-q", "object": "chat.completion.chunk", "created": 1, "model": "m"}


def ch(delta: dict | None = None, finish: str | None = None, **extra) -> dict:
    return {**BASE, "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}], **extra}


def call(index, arguments="", call_id=None, name=None, **extra) -> dict:
    out = {"index": index, "function": {"arguments": arguments}, **extra}
    if call_id is not None:
        out["id"] = call_id
    if name is not None:
        out["function"]["name"] = name
    return out


def sse(*chunks, done: bool = True, line_end: str = "\n") -> bytes:
    out = [f"data: {c if isinstance(c, str) else json.dumps(c)}{line_end}{line_end}" for c in chunks]
    if done:
        out.append(f"data: [DONE]{line_end}{line_end}")
    return "".join(out).encode()


@pytest.fixture(scope="module")
def server():
    with MockServer(api_key=KEY) as srv:
        yield srv


@pytest.fixture(scope="module")
def read(server):
    """read(raw_bytes, **turn) -> (events, message, bad_input) as one turn of the chat loop reads it."""
    dialect = OpenAIDialect(server.url)
    transport = Transport(
        dialect.url(server.url), dialect.headers(type("S", (), {"api_key": KEY})()), connect_timeout=5, read_timeout=20
    )

    def run(raw: bytes, **turn):
        server.script = {"model": None, "turns": [{"raw": raw, **turn}]}
        body = dialect.body(_Request())
        reply = transport.send(body)
        try:
            if reply.kind == "json":
                bad: dict = {}
                message = dialect.message_from_json(reply.json(), bad)
                return dialect.events_of_message(message), message, bad
            decoder = dialect.decoder()
            events = []
            for piece in reply.chunks():
                events += decoder.feed(piece)
            events += decoder.close()
            return events, decoder.message(), decoder.bad_input
        finally:
            reply.close()

    yield run
    transport.close()


def _Request() -> Request:
    return Request(model="m", max_tokens=64, messages=[{"role": "user", "content": "hi"}])


def shown(events) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def test_ids_names_and_types_repeated_in_every_fragment_are_kept_once(read):
    raw = sse(
        ch({"tool_calls": [call(0, "", "call_1", "add", type="function")]}),
        ch({"tool_calls": [call(0, '{"a": ', "call_1", "add", type="function")]}),
        ch({"tool_calls": [call(0, "1}", "call_1", "add", type="function")]}),
        ch({"tool_calls": [call(1, "{}", "call_2", "ping", type="function")]}),
        ch({"tool_calls": [call(1, "", "call_2", "ping", type="function")]}),
        ch(finish="tool_calls"),
    )
    _, message, bad = read(raw)
    assert message["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "add", "input": {"a": 1}},
        {"type": "tool_use", "id": "call_2", "name": "ping", "input": {}},
    ]
    assert (message["stop_reason"], bad) == ("tool_use", {})


def test_arguments_in_one_fragment_and_arguments_as_an_object(read):
    raw = sse(
        ch(
            {
                "tool_calls": [
                    call(0, '{"a": 1, "b": [2]}', "call_1", "add"),
                    {"index": 1, "id": "call_2", "function": {"name": "add", "arguments": {"a": 3}}},
                ]
            },
            "tool_calls",
        )
    )
    _, message, _ = read(raw)
    assert [b["input"] for b in message["content"]] == [{"a": 1, "b": [2]}, {"a": 3}]


def test_content_after_the_finish_reason_is_kept(read):
    raw = sse(ch({"content": "Hello"}), ch({"content": ","}, "stop"), ch({"content": " world"}))
    events, message, _ = read(raw)
    assert shown(events) == "Hello, world"
    assert (message["content"], message["stop_reason"]) == ([{"type": "text", "text": "Hello, world"}], "end_turn")


def test_an_empty_choices_usage_chunk_and_usage_null_on_every_other_chunk(read):
    raw = sse(
        ch({"content": "x"}, usage=None),
        ch(finish="length", usage=None),
        {
            **BASE,
            "choices": [],
            "usage": {
                "prompt_tokens": 12,
                "completion_tokens": 3,
                "total_tokens": 15,
                "prompt_tokens_details": {"cached_tokens": 2},
            },
        },
    )
    _, message, _ = read(raw)
    assert (message["stop_reason"], message["usage"]) == (
        "max_tokens",
        {"input_tokens": 10, "output_tokens": 3, "cache_read_input_tokens": 2},
    )


def test_usage_sent_on_every_chunk_is_cumulative(read):
    raw = sse(
        ch({"content": "a"}, usage={"prompt_tokens": 5, "completion_tokens": 1}),
        ch({"content": "b"}, usage={"prompt_tokens": 5, "completion_tokens": 2}),
        ch(finish="stop", usage={"prompt_tokens": 5, "completion_tokens": 3}),
    )
    assert read(raw)[1]["usage"] == {"input_tokens": 5, "output_tokens": 3}


def test_done_missing_after_a_finish_reason_is_a_complete_answer(read):
    _, message, _ = read(sse(ch({"content": "ok"}), ch(finish="stop"), done=False))
    assert (message["content"], message["stop_reason"]) == ([{"type": "text", "text": "ok"}], "end_turn")


def test_done_and_finish_reason_both_missing_is_a_truncated_answer(read):
    with pytest.raises(StreamError) as caught:
        read(sse(ch({"content": "cut"}), done=False))
    assert caught.value.type == "truncated_stream"
    assert retry.retryable(caught.value)  # retried when nothing was shown yet (chat.py decides)


def test_done_without_a_finish_reason_is_complete_with_no_stop_reason(read):
    _, message, _ = read(sse(ch({"content": "ok"})))
    assert message["stop_reason"] is None  # with complete tool calls the chat loop runs them anyway


def test_sse_comments_event_lines_crlf_and_empty_data_lines(read):
    raw = (
        b": OPENROUTER PROCESSING\r\n\r\n:ping\r\n\r\ndata:\r\n\r\n"
        + b"event: message\r\n"
        + sse(ch({"content": "a"}), done=False, line_end="\r\n")
        + b": keep-alive\n\n"
        + sse(ch({"content": "b"}, "stop"), line_end="\r")
    )
    events, message, _ = read(raw, chunks="bytes")
    assert shown(events) == "ab"
    assert message["stop_reason"] == "end_turn"


def test_a_json_body_where_a_stream_was_asked_for(read):
    body = {
        "id": "chatcmpl-j",
        "object": "chat.completion",
        "model": "gpt-x",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "reasoning": "why",
                    "tool_calls": [
                        {"id": "call_9", "type": "function", "function": {"name": "add", "arguments": '{"a": 4}'}}
                    ],
                },
            }
        ],
        "usage": {"prompt_tokens": 8, "completion_tokens": 2},
    }
    events, message, bad = read(json.dumps(body).encode(), content_type="application/json")
    assert events[0] == ThinkingDelta("why")
    assert message == {
        "id": "chatcmpl-j",
        "type": "message",
        "role": "assistant",
        "model": "gpt-x",
        "content": [
            {"type": "thinking", "thinking": "why"},
            {"type": "tool_use", "id": "call_9", "name": "add", "input": {"a": 4}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 8, "output_tokens": 2},
    }
    assert bad == {}


def test_a_json_body_sent_as_event_stream_is_still_json(read):
    body = {
        "object": "chat.completion",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "plain"}}],
    }
    _, message, _ = read(b"\n" + json.dumps(body).encode(), content_type="text/event-stream")
    assert message["content"] == [{"type": "text", "text": "plain"}]


def test_reasoning_from_deepseek_vllm_and_openrouter_is_thinking(read):
    raw = sse(ch({"reasoning_content": "one "}), ch({"reasoning": "two"}), ch({"content": "answer"}, "stop"))
    events, message, _ = read(raw)
    assert [type(e).__name__ for e in events[:3]] == ["ThinkingDelta", "ThinkingDelta", "TextDelta"]
    assert message["content"][:2] == [{"type": "thinking", "thinking": "one two"}, {"type": "text", "text": "answer"}]


def test_a_refusal_is_the_text_of_a_content_filter_stop(read):
    events, message, _ = read(sse(ch({"refusal": "I can't help with that."}), ch(finish="content_filter")))
    assert shown(events) == "I can't help with that."
    assert message["stop_reason"] == "refusal"


def test_the_legacy_function_call_delta(read):
    raw = sse(
        ch({"function_call": {"name": "add", "arguments": '{"a":'}}),
        ch({"function_call": {"arguments": "5}"}}),
        ch(finish="function_call"),
    )
    _, message, _ = read(raw)
    assert message["content"] == [{"type": "tool_use", "id": "call_0", "name": "add", "input": {"a": 5}}]
    assert message["stop_reason"] == "tool_use"


def test_every_call_numbered_zero_with_its_own_id(read):
    raw = sse(
        ch({"tool_calls": [call(0, "", "call_a", "add")]}),
        ch({"tool_calls": [call(0, '{"a": 1}')]}),
        ch({"tool_calls": [call(0, "", "call_b", "add")]}),
        ch({"tool_calls": [call(0, '{"a": 2}')]}),
        ch(finish="tool_calls"),
    )
    _, message, _ = read(raw)
    assert [(b["id"], b["input"]) for b in message["content"]] == [("call_a", {"a": 1}), ("call_b", {"a": 2})]


def test_bad_arguments_are_reported_for_that_call_only(read):
    raw = sse(
        ch({"tool_calls": [call(0, '{"a": 1', "call_a", "add"), call(1, '{"a": 2}', "call_b", "add")]}),
        ch(finish="tool_calls"),
    )
    _, message, bad = read(raw)
    assert [b["input"] for b in message["content"]] == [{}, {"a": 2}]
    assert bad == {"call_a": 'the tool input was not valid JSON: {"a": 1'}


def test_a_mid_stream_error_chunk_is_an_api_error(read):
    raw = sse(
        ch({"content": "par"}),
        {
            "error": {"message": "Provider returned error", "code": 502},
            "choices": [{"index": 0, "delta": {}, "finish_reason": "error"}],
        },
    )
    with pytest.raises(APIError) as caught:
        read(raw)
    assert (caught.value.type, caught.value.message) == ("api_error", "api_error: Provider returned error")


def test_a_quota_error_mid_stream_is_not_retried(read):
    raw = sse(
        {
            "error": {
                "message": "You exceeded your current quota",
                "type": "insufficient_quota",
                "code": "insufficient_quota",
            }
        },
        done=False,
    )
    with pytest.raises(APIError) as caught:
        read(raw)
    assert retry.spend_limited(caught.value)


def test_an_http_error_in_openai_shape_is_typed_like_anthropics(server, read):
    server.script = {
        "model": None,
        "turns": [
            {
                "error": {"status": 429, "type": "rate_limit_error", "message": "slow down"},
                "headers": {"retry-after": "3"},
            }
        ],
    }
    dialect = OpenAIDialect(server.url)
    transport = Transport(dialect.url(server.url), {"authorization": f"Bearer {KEY}"})
    try:
        with pytest.raises(APIError) as caught:
            transport.send(dialect.body(_Request()))
    finally:
        transport.close()
    err = caught.value
    assert (err.status, err.type, err.retry_after) == (429, "rate_limit_error", 3.0)
    assert err.message == "HTTP 429 rate_limit_error: slow down"
    assert retry.decide(err, 1, 2).delay == 3.0
