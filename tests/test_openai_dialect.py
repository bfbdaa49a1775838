"""The chat.completions dialect's pure parts: endpoint, headers, the request body converted from the
Anthropic-shaped transcript, usage and error mapping, JSON replies, and the stream decoder's own
rules (commit points, truncation, malformed chunks). Wire quirks over HTTP: test_openai_quirks.py."""

from __future__ import annotations

import json

import pytest

from toolchat import retry
from toolchat.dialects.base import Request as BaseRequest
from toolchat.dialects.openai import (
    OpenAIDialect,
    OpenAIStreamDecoder,
    chat_completions_url,
    chat_messages,
    error_of,
    max_tokens_field,
    message_from_json,
    usage_of,
)
from toolchat.errors import APIError, StreamError, UsageError
from toolchat.events import BlockDone, TextDelta, ThinkingDelta


def Request(**fields) -> BaseRequest:
    """dialects/base.Request with a model, a token limit and a prompt unless given."""
    return BaseRequest(**{"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}], **fields})


ADD = {
    "name": "add",
    "description": "Add two numbers",
    "input_schema": {"type": "object", "properties": {"a": {"type": "number"}}},
}
PING = {"name": "ping", "description": "", "input_schema": {"type": "object"}}


# ---------------------------------------------------------------- endpoint and headers


@pytest.mark.parametrize(
    "base",
    [
        "http://h:1",
        "http://h:1/",
        "http://h:1/v1",
        "http://h:1/v1/",
        "http://h:1/v1/chat/completions",
        " http://h:1/v1/chat/completions/ ",
    ],
)
def test_the_endpoint_is_v1_chat_completions_whatever_the_base_ends_in(base):
    assert chat_completions_url(base) == "http://h:1/v1/chat/completions"


def test_a_base_with_a_path_prefix_keeps_it():
    assert chat_completions_url("https://openrouter.ai/api/v1") == "https://openrouter.ai/api/v1/chat/completions"


@pytest.mark.parametrize(
    "base, field_name",
    [
        ("https://api.openai.com", "max_completion_tokens"),
        ("https://API.openai.com/v1", "max_completion_tokens"),
        ("http://127.0.0.1:11434/v1", "max_tokens"),
        ("https://openrouter.ai/api/v1", "max_tokens"),
        ("https://gateway.example/v1", "max_tokens"),
        (None, "max_tokens"),
    ],
)
def test_max_tokens_goes_in_the_field_the_endpoint_accepts(base, field_name):
    assert max_tokens_field(base) == field_name
    body = OpenAIDialect(base).body(Request(max_tokens=77))
    assert body[field_name] == 77
    assert not ({"max_tokens", "max_completion_tokens"} - {field_name}) & set(body)


def settings(key=None, base="https://api.openai.com"):
    return type("S", (), {"api_key": key, "base_url": base})()


def test_headers_carry_a_bearer_key():
    dialect = OpenAIDialect()
    assert dialect.headers(settings("sk-1")) == {"authorization": "Bearer sk-1"}
    assert dialect.name == "openai"


@pytest.mark.parametrize(
    "base", ["http://127.0.0.1:11434/v1", "http://localhost:8080", "http://[::1]:1234", "http://127.3.2.1"]
)
def test_no_key_is_needed_for_a_loopback_server(base):
    assert OpenAIDialect().headers(settings(None, base)) == {}


@pytest.mark.parametrize("base", ["https://api.openai.com", "http://192.168.1.5:11434", "http://localhost.example.com"])
def test_a_missing_key_for_any_other_host_is_a_usage_error(base):
    with pytest.raises(UsageError) as caught:
        OpenAIDialect().headers(settings(None, base))
    assert (caught.value.exit_code, caught.value.type) == (2, "missing_credentials")
    assert "OPENAI_API_KEY" in caught.value.message


# ---------------------------------------------------------------- the request body


def test_a_plain_prompt_becomes_a_streamed_request_with_usage():
    assert OpenAIDialect().body(Request(system="Be brief.", temperature=0.5)) == {
        "model": "m",
        "max_tokens": 100,
        "temperature": 0.5,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_tools_tool_choice_and_no_parallel():
    body = OpenAIDialect().body(Request(tools=(ADD, PING), tool_choice="add", parallel=False))
    assert body["tools"] == [
        {
            "type": "function",
            "function": {"name": "add", "description": "Add two numbers", "parameters": ADD["input_schema"]},
        },
        {"type": "function", "function": {"name": "ping", "parameters": {"type": "object"}}},
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "add"}}
    assert body["parallel_tool_calls"] is False


@pytest.mark.parametrize(
    "choice, wire", [("auto", "auto"), ("any", "required"), ("none", "none"), ("required", "required")]
)
def test_tool_choice_words(choice, wire):
    assert OpenAIDialect().body(Request(tools=(ADD,), tool_choice=choice))["tool_choice"] == wire


def test_without_tools_there_is_no_tool_choice_and_no_parallel_flag():
    body = OpenAIDialect().body(Request(tool_choice="any", parallel=False))
    assert not {"tools", "tool_choice", "parallel_tool_calls"} & set(body)
    assert "tool_choice" not in OpenAIDialect().body(Request(tools=(ADD,)))
    assert "parallel_tool_calls" not in OpenAIDialect().body(Request(tools=(ADD,)))


PNG = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}

TRANSCRIPT = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "Add and look"},
            {"type": "image", "source": PNG},
            {"type": "image", "source": {"type": "url", "url": "https://x/y.jpg"}},
        ],
    },
    {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "plan", "signature": "sig"},
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "text", "text": "Working "},
            {"type": "text", "text": "on it."},
            {"type": "tool_use", "id": "call_1", "name": "add", "input": {"a": 1, "é": "ü"}},
            {"type": "tool_use", "id": "toolu_2", "name": "ping", "input": {}},
        ],
    },
    {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "2"},
            {
                "type": "tool_result",
                "tool_use_id": "toolu_2",
                "is_error": True,
                "content": [
                    {"type": "text", "text": "boom"},
                    {"type": "text", "text": "again"},
                    {"type": "image", "source": PNG},
                ],
            },
            {"type": "text", "text": "and now?"},
        ],
    },
    {"role": "assistant", "content": [{"type": "tool_use", "id": "c3", "name": "ping", "input": {}}]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c3", "content": ""}]},
    {"role": "assistant", "content": "plain string answer"},
    {"role": "user", "content": [{"type": "text", "text": "one block"}]},
]


def test_the_transcript_is_converted_on_every_turn():
    assert chat_messages(TRANSCRIPT, [{"type": "text", "text": "sys"}]) == [
        {"role": "system", "content": "sys"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Add and look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "https://x/y.jpg"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Working on it.",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": '{"a": 1, "é": "ü"}'}},
                {"id": "toolu_2", "type": "function", "function": {"name": "ping", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "2"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "error: boom\nagain"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "(images from the result of tool call toolu_2)"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "text", "text": "and now?"},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c3", "type": "function", "function": {"name": "ping", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c3", "content": ""},
        {"role": "assistant", "content": "plain string answer"},
        {"role": "user", "content": "one block"},
    ]


def test_the_transcript_itself_is_not_changed():
    before = json.dumps(TRANSCRIPT)
    OpenAIDialect().body(Request(messages=TRANSCRIPT, tools=(ADD, PING)))
    assert json.dumps(TRANSCRIPT) == before


def test_an_assistant_message_left_empty_by_an_interrupted_run_is_sent_as_empty_text():
    assert chat_messages([{"role": "user", "content": "q"}, {"role": "assistant", "content": []}])[1] == {
        "role": "assistant",
        "content": "",
    }


# ---------------------------------------------------------------- usage and errors


def test_usage_in_the_messages_api_terms():
    assert usage_of(
        {
            "prompt_tokens": 100,
            "completion_tokens": 7,
            "total_tokens": 107,
            "prompt_tokens_details": {"cached_tokens": 60},
        }
    ) == {"input_tokens": 40, "output_tokens": 7, "cache_read_input_tokens": 60}
    assert usage_of({"prompt_tokens": 5, "completion_tokens": 1}) == {"input_tokens": 5, "output_tokens": 1}
    assert usage_of(
        {"prompt_tokens": 9, "completion_tokens": 2, "prompt_cache_hit_tokens": 4, "prompt_cache_miss_tokens": 5}
    ) == {"input_tokens": 5, "output_tokens": 2, "cache_read_input_tokens": 4}  # DeepSeek's names
    assert usage_of({"prompt_tokens": None, "completion_tokens": "3", "prompt_tokens_details": None}) == {}
    assert usage_of(None) == {}


@pytest.mark.parametrize(
    "error, kind, message, retried",
    [
        (
            {"message": "The server had an error", "type": "server_error", "code": None},
            "api_error",
            "server_error: The server had an error",
            True,
        ),
        (
            {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"},
            "rate_limit_error",
            "requests: Rate limit reached",
            True,
        ),
        (
            {"message": "You exceeded your current quota", "type": "insufficient_quota", "code": "insufficient_quota"},
            "insufficient_quota",
            "insufficient_quota: You exceeded your current quota",
            False,
        ),
        ({"message": "Provider returned error", "code": 502}, "api_error", "api_error: Provider returned error", True),
        (
            {"message": "Too many\nrequests", "code": 429},
            "rate_limit_error",
            "rate_limit_error: Too many requests",
            True,
        ),
        (
            {"message": "bad", "type": "invalid_request_error", "code": "context_length_exceeded"},
            "invalid_request_error",
            "invalid_request_error: bad",
            False,
        ),
    ],
)
def test_openai_shaped_errors_become_typed_errors_the_retry_policy_knows(error, kind, message, retried):
    err = error_of({"error": error})
    assert isinstance(err, APIError)
    assert (err.type, err.message, err.exit_code) == (kind, message, 3)
    assert retry.retryable(err) is retried


def test_an_error_string_is_an_api_error():
    err = error_of({"error": "overloaded"})
    assert (err.type, err.message) == ("api_error", "api_error: overloaded")


# ---------------------------------------------------------------- JSON replies

COMPLETION = {
    "id": "chatcmpl-9",
    "object": "chat.completion",
    "model": "gpt-x",
    "choices": [
        {
            "index": 0,
            "finish_reason": "tool_calls",
            "message": {
                "role": "assistant",
                "content": "Let me add.",
                "reasoning_content": "thinking hard",
                "tool_calls": [
                    {"id": "call_a", "type": "function", "function": {"name": "add", "arguments": '{"a": 2}'}},
                    {"id": "call_b", "type": "function", "function": {"name": "add", "arguments": "{oops"}},
                ],
            },
        }
    ],
    "usage": {"prompt_tokens": 50, "completion_tokens": 9, "prompt_tokens_details": {"cached_tokens": 20}},
}


def test_a_json_completion_maps_to_the_same_message_shape_as_a_stream():
    bad: dict = {}
    message = message_from_json(COMPLETION, bad)
    assert message == {
        "id": "chatcmpl-9",
        "type": "message",
        "role": "assistant",
        "model": "gpt-x",
        "content": [
            {"type": "thinking", "thinking": "thinking hard"},
            {"type": "text", "text": "Let me add."},
            {"type": "tool_use", "id": "call_a", "name": "add", "input": {"a": 2}},
            {"type": "tool_use", "id": "call_b", "name": "add", "input": {}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 30, "output_tokens": 9, "cache_read_input_tokens": 20},
    }
    assert bad == {"call_b": "the tool input was not valid JSON: {oops"}
    events = OpenAIDialect().events_of_message(message)
    assert events[:3] == [ThinkingDelta("thinking hard"), BlockDone(0, message["content"][0]), TextDelta("Let me add.")]


def test_a_json_error_body_with_status_200_is_an_api_error():
    with pytest.raises(APIError) as caught:
        OpenAIDialect().message_from_json({"error": {"message": "nope", "type": "server_error"}}, {})
    assert (caught.value.type, caught.value.message) == ("api_error", "server_error: nope")


def test_a_json_body_of_another_shape_is_malformed():
    with pytest.raises(StreamError) as caught:
        message_from_json([1, 2], {})
    assert caught.value.type == "malformed_response"


# ---------------------------------------------------------------- the decoder's own rules


def data(*chunks, done: bool = True) -> bytes:
    out = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks)
    return out + (b"data: [DONE]\n\n" if done else b"")


def ch(delta=None, finish=None, **extra) -> dict:
    return {"id": "c1", "model": "m", "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}], **extra}


def test_text_and_reasoning_are_shown_as_they_arrive_and_blocks_close_at_the_end():
    decoder = OpenAIStreamDecoder()
    assert decoder.feed(data(ch({"role": "assistant", "content": ""}), done=False)) == []
    assert decoder.feed(data(ch({"reasoning": "hm"}), done=False)) == [ThinkingDelta("hm")]
    assert decoder.feed(data(ch({"content": "Hi"}), done=False)) == [TextDelta("Hi")]
    assert decoder.feed(data(ch(finish="stop"), done=False)) == []
    assert decoder.feed(b"data: [DONE]\n\n") == [
        BlockDone(0, {"type": "thinking", "thinking": "hm"}),
        BlockDone(1, {"type": "text", "text": "Hi"}),
    ]
    assert decoder.close() == []
    assert decoder.message()["stop_reason"] == "end_turn"


def test_a_role_chunk_or_empty_text_does_not_commit_but_text_or_a_tool_call_does():
    decoder = OpenAIStreamDecoder()
    decoder.feed(data(ch({"role": "assistant", "content": ""}), ch({"content": ""}), done=False))
    assert decoder.committed is False
    decoder.feed(data(ch({"content": "x"}), done=False))
    assert decoder.committed is True
    tools = OpenAIStreamDecoder()
    assert (
        tools.feed(
            data(
                ch(
                    {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": "add", "arguments": ""},
                            }
                        ]
                    }
                ),
                done=False,
            )
        )
        == []
    )
    assert tools.committed is True


def test_a_stream_without_finish_reason_or_done_is_truncated_and_the_snapshot_keeps_the_text():
    decoder = OpenAIStreamDecoder()
    decoder.feed(
        data(
            ch({"content": "half"}),
            ch({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "add", "arguments": '{"a": '}}]}),
            done=False,
        )
    )
    with pytest.raises(StreamError) as caught:
        decoder.close()
    assert caught.value.type == "truncated_stream"
    assert caught.value.exit_code == 3
    with pytest.raises(StreamError):
        decoder.message()
    assert decoder.snapshot()["content"] == [
        {"type": "text", "text": "half"},
        {"type": "tool_use", "id": "c", "name": "add", "input": {}},
    ]
    assert decoder.bad_input == {}  # nothing is reported for a call that never completed


def test_an_event_cut_mid_line_is_truncated_and_garbage_is_malformed():
    cut = OpenAIStreamDecoder()
    cut.feed(data(ch({"content": "a"}), done=False) + b'data: {"id": "c1", "choi')
    with pytest.raises(StreamError) as caught:
        cut.close()
    assert caught.value.type == "truncated_stream"
    with pytest.raises(StreamError) as caught:
        OpenAIStreamDecoder().feed(b"data: {not json}\n\n")
    assert caught.value.type == "malformed_stream"
    for bad in (
        [1],
        {"choices": {"index": 0}},
        ch({"content": 5}),
        ch({"tool_calls": {"index": 0}}),
        ch(finish=3),
        ch({"tool_calls": [{"index": "0", "function": {"name": "x"}}]}),
    ):
        with pytest.raises(StreamError) as caught:
            OpenAIStreamDecoder().feed(data(bad, done=False))
        assert caught.value.type == "malformed_stream", bad


def test_a_tool_call_that_never_gets_a_name_is_malformed():
    decoder = OpenAIStreamDecoder()
    decoder.feed(
        data(
            ch({"tool_calls": [{"index": 0, "id": "c", "function": {"arguments": "{}"}}]}),
            ch(finish="tool_calls"),
            done=False,
        )
    )
    with pytest.raises(StreamError) as caught:
        decoder.close()
    assert caught.value.type == "malformed_stream"


def test_arguments_that_are_json_but_not_an_object_are_recorded_not_run():
    decoder = OpenAIStreamDecoder()
    decoder.feed(
        data(
            ch({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "add", "arguments": "[1]"}}]}, "tool_calls")
        )
    )
    decoder.close()
    assert decoder.message()["content"] == [{"type": "tool_use", "id": "c", "name": "add", "input": {}}]
    assert decoder.bad_input == {"c": "the tool input was not a JSON object: [1]"}


def test_a_call_without_an_id_gets_one_by_position():
    decoder = OpenAIStreamDecoder()
    decoder.feed(
        data(
            ch(
                {
                    "tool_calls": [
                        {"index": 0, "function": {"name": "ping", "arguments": ""}},
                        {"index": 1, "function": {"name": "add", "arguments": '{"a":1}'}},
                    ]
                },
                "tool_calls",
            )
        )
    )
    decoder.close()
    assert [(b["id"], b["input"]) for b in decoder.message()["content"]] == [("call_0", {}), ("call_1", {"a": 1})]


def test_other_choices_and_unknown_fields_are_ignored():
    decoder = OpenAIStreamDecoder()
    decoder.feed(
        data(
            {
                "id": "c",
                "choices": [
                    {"index": 1, "delta": {"content": "other"}},
                    {"index": 0, "delta": {"content": "mine", "audio": None, "annotations": []}},
                ],
                "obfuscation": "xx",
                "service_tier": "default",
            },
            ch(finish="stop"),
        )
    )
    decoder.close()
    assert decoder.message()["content"] == [{"type": "text", "text": "mine"}]


def test_a_future_finish_reason_passes_through():
    decoder = OpenAIStreamDecoder()
    decoder.feed(data(ch({"content": "x"}, "guardrail_intervened")))
    decoder.close()
    assert decoder.message()["stop_reason"] == "guardrail_intervened"


def test_a_converted_transcript_is_accepted_by_the_strict_mock_and_read_as_on_the_messages_route(mock):
    """Both routes of the mock, one transcript: the echo model answers with the tool results it
    sees, and the error noted in the text reads exactly as an is_error result reads."""
    import requests

    server = mock(api_key="sk-test-both-routes")
    # Without the made-up thinking blocks, whose signatures the Messages route checks.
    transcript = [TRANSCRIPT[0], {"role": "assistant", "content": TRANSCRIPT[1]["content"][2:]}, TRANSCRIPT[2]]
    anthropic = requests.post(
        server.url + "/v1/messages",
        timeout=10,
        json={"model": "m", "max_tokens": 50, "messages": transcript},
        headers={"x-api-key": "sk-test-both-routes", "anthropic-version": "2023-06-01"},
    )
    dialect = OpenAIDialect(server.url)
    body = dict(dialect.body(Request(messages=transcript, tools=(ADD, PING), parallel=False)), stream=False)
    del body["stream_options"]
    chat = requests.post(
        dialect.url(server.url),
        json=body,
        timeout=10,
        headers=dialect.headers(type("S", (), {"api_key": "sk-test-both-routes"})()),
    )
    assert anthropic.status_code == chat.status_code == 200, chat.text
    assert anthropic.json()["content"][0]["text"] == "add: 2\nping: error: boom\nagain"
    assert chat.json()["choices"][0]["message"]["content"] == "add: 2\nping: error: boom\nagain"


def test_text_before_an_error_in_the_same_read_is_shown_then_the_error_is_raised():
    decoder = OpenAIStreamDecoder()
    events = decoder.feed(
        data(ch({"content": "so far"}), {"error": {"message": "gone", "type": "server_error"}}, done=False)
    )
    assert (events, decoder.committed) == ([TextDelta("so far")], True)
    with pytest.raises(APIError) as caught:
        decoder.close()
    assert caught.value.message == "server_error: gone"
    assert decoder.snapshot()["content"] == [{"type": "text", "text": "so far"}]


def test_the_decoder_and_the_dialect_implement_the_seam():
    from toolchat.dialects.base import Dialect, StreamDecoder

    assert isinstance(OpenAIDialect(), Dialect)
    assert isinstance(OpenAIDialect().decoder(), StreamDecoder)
