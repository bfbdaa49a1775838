"""The mock server's chat.completions face: OpenAI's strictness (Bearer auth, known parameters,
tool messages paired with tool_calls both ways), the same scripts and faults as /v1/messages, and
OpenAI's wire shapes, checked with plain HTTP and with the official `openai` SDK as the client."""

from __future__ import annotations

import json

import pytest
import requests


KEY = "sk-test-openai-mock-0123"
TOOLS = [
    {"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "ping", "description": "p"}},
]


@pytest.fixture
def server(mock):
    return mock(api_key=KEY)


def post(server, body, key=KEY, headers=None, stream=False):
    h = {"authorization": f"Bearer {key}"} if key else {}
    h.update(headers or {})
    return requests.post(
        server.url + "/v1/chat/completions", data=json.dumps(body), headers=h, timeout=10, stream=stream
    )


def body(messages=None, **extra):
    return {"model": "m", "messages": messages or [{"role": "user", "content": "hi"}], **extra}


def error_of(response):
    return response.status_code, response.json()["error"]


# ---------------------------------------------------------------- auth


def test_a_bearer_key_is_required_and_an_x_api_key_is_not_one(server):
    status, error = error_of(post(server, body(), key=None, headers={"x-api-key": KEY}))
    assert status == 401
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("You didn't provide an API key.")
    assert set(error) == {"message", "type", "param", "code"}


def test_a_wrong_key_is_refused_without_echoing_it(server):
    response = post(server, body(), key="sk-wrong-key-9999")
    assert error_of(response) == (
        401,
        {
            "message": "Incorrect API key provided.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        },
    )
    assert "sk-wrong" not in response.text


def test_a_server_without_auth_like_a_local_model_server(mock):
    server = mock()
    server.require_auth = False
    response = post(server, body(), key=None)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "hi"


# ---------------------------------------------------------------- strictness


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"system": "s"}, "Unrecognized request argument supplied: system"),
        ({"max_tokens": 5, "max_completion_tokens": 5}, "max_tokens and max_completion_tokens cannot both be set"),
        ({"max_tokens": 0}, "Invalid 'max_tokens': integer below minimum value."),
        (
            {"tool_choice": "auto"},
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
        ),
        (
            {"parallel_tool_calls": False},
            "Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only allowed",
        ),
        (
            {"stream_options": {"include_usage": True}},
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
        ),
        ({"tools": TOOLS, "tool_choice": {"type": "tool", "name": "add"}}, "Invalid 'tool_choice'"),
        ({"tools": TOOLS, "tool_choice": "any"}, "Invalid value: 'any'."),
        (
            {"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}},
            "Invalid value for 'tool_choice': function 'nope' is not among the tools.",
        ),
        ({"tools": [{"name": "add", "input_schema": {"type": "object"}}]}, "Invalid value for 'tools[0].type'"),
        ({"tools": [{"type": "function", "function": {"name": "bad name"}}]}, "Invalid 'tools[0].function.name'"),
        ({"temperature": 2.5}, "Invalid 'temperature'"),
    ],
)
def test_requests_openai_refuses_are_refused(server, extra, message):
    status, error = error_of(post(server, body(**extra)))
    assert status == 400
    assert error["message"].startswith(message), error


ASSISTANT = {
    "role": "assistant",
    "content": None,
    "tool_calls": [
        {"id": "call_a", "type": "function", "function": {"name": "add", "arguments": '{"a": 1}'}},
        {"id": "call_b", "type": "function", "function": {"name": "ping", "arguments": "{}"}},
    ],
}


def tool(call_id, content="ok"):
    return {"role": "tool", "tool_call_id": call_id, "content": content}


@pytest.mark.parametrize(
    "messages, message, param",
    [
        (
            [{"role": "user", "content": "q"}, tool("call_a")],
            "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
            "messages[1].role",
        ),
        (
            [{"role": "user", "content": "q"}, ASSISTANT, tool("call_a"), tool("call_x")],
            "Invalid parameter: 'tool_call_id' of 'call_x' not found in 'tool_calls' of previous message.",
            "messages[3].tool_call_id",
        ),
        (
            [{"role": "user", "content": "q"}, ASSISTANT, tool("call_a")],
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
            "'tool_call_id'. The following tool_call_ids did not have response messages: call_b",
            "messages.[1].role",
        ),
        (
            [
                {"role": "user", "content": "q"},
                ASSISTANT,
                tool("call_a"),
                {"role": "user", "content": "more"},
                tool("call_b"),
            ],
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
            "'tool_call_id'. The following tool_call_ids did not have response messages: call_b",
            "messages.[1].role",
        ),
        (
            [{"role": "user", "content": "q"}, {"role": "assistant", "content": None}],
            "Invalid value for 'messages[1].content': expected a string, got null.",
            "messages[1].content",
        ),
        (
            [
                {"role": "user", "content": "q"},
                {
                    **ASSISTANT,
                    "tool_calls": [{"id": "c", "type": "function", "function": {"name": "add", "arguments": {"a": 1}}}],
                },
                tool("c"),
            ],
            "Invalid type for 'messages[1].tool_calls[0].function.arguments': expected a string, but got an object instead.",
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "x", "content": "1"}]}],
            "Invalid value: 'tool_result'. Supported values are: 'text', 'image_url', 'input_audio', 'file'.",
            "messages[0].content[0].type",
        ),
        (
            [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "reasoning_content": "r"}],
            "Unrecognized request argument supplied: messages[1].reasoning_content",
            None,
        ),
    ],
)
def test_tool_messages_pair_with_tool_calls_both_ways_and_shapes_are_checked(server, messages, message, param):
    status, error = error_of(post(server, body(messages, tools=TOOLS)))
    assert (status, error["message"], error["param"]) == (400, message, param)


def test_a_well_paired_conversation_is_accepted(server):
    messages = [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "q"},
        ASSISTANT,
        tool("call_b", [{"type": "text", "text": "pong"}]),
        tool("call_a", "2"),
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "and?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
            ],
        },
    ]
    response = post(
        server, body(messages, tools=TOOLS, tool_choice="required", parallel_tool_calls=False, max_completion_tokens=9)
    )
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "ping: pong\nadd: 2"  # the echo model


# ---------------------------------------------------------------- the answers

SCRIPT = {
    "turns": [
        {
            "thinking": "let me see",
            "text": "Adding now.",
            "tool_calls": [{"id": "call_1", "name": "add", "input": {"a": 1}}, {"name": "ping"}],
            "usage": {"input_tokens": 7, "output_tokens": 3, "cache_read_input_tokens": 4},
        },
        {"text": "Got {results}"},
    ]
}


def test_a_streamed_answer_is_data_only_chunks_then_usage_then_done(mock):
    server = mock(SCRIPT, api_key=KEY)
    response = post(server, body(stream=True, stream_options={"include_usage": True}, tools=TOOLS), stream=True)
    assert response.headers["content-type"].startswith("text/event-stream")
    raw = response.content.decode()
    assert "event:" not in raw
    events = [line[6:] for line in raw.split("\n\n") if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert "".join(d.get("reasoning_content", "") for d in deltas) == "let me see"
    assert "".join(d.get("content") or "" for d in deltas) == "Adding now."
    fragments = [f for d in deltas for f in d.get("tool_calls", [])]
    assert [(f["index"], f["id"], f["function"]["name"]) for f in fragments if "id" in f][0] == (0, "call_1", "add")
    assert fragments[-1]["index"] == 1
    assert "".join(f["function"]["arguments"] for f in fragments if f["index"] == 0) == '{"a": 1}'
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "tool_calls"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["prompt_tokens"] == 11
    assert chunks[-1]["usage"]["prompt_tokens_details"]["cached_tokens"] == 4


def test_without_include_usage_there_is_no_usage_chunk(mock):
    server = mock({"turns": [{"text": "x"}]}, api_key=KEY)
    raw = post(server, body(stream=True)).text
    assert "usage" not in raw
    assert raw.endswith("data: [DONE]\n\n")


def test_the_sdk_plays_a_scripted_tool_conversation(mock):
    openai = pytest.importorskip("openai")
    server = mock(SCRIPT, api_key=KEY)
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0)
    messages = [{"role": "user", "content": "add"}]
    with client.chat.completions.stream(
        model="m", messages=messages, tools=TOOLS, stream_options={"include_usage": True}
    ) as stream:
        for _ in stream:
            pass
        first = stream.current_completion_snapshot
    reply = first.choices[0].message
    assert (reply.content, first.choices[0].finish_reason) == ("Adding now.", "tool_calls")
    assert [c.function.name for c in reply.tool_calls] == ["add", "ping"]
    assert reply.tool_calls[1].id.startswith("call_mock_")
    # The snapshot's tool calls keep their stream `index`, which a request must not carry.
    sent = reply.model_dump(exclude_none=True, exclude={"parsed", "reasoning_content"})
    for c in sent["tool_calls"]:
        c.pop("index", None)
    messages.append(sent)
    for c in reply.tool_calls:
        messages.append({"role": "tool", "tool_call_id": c.id, "content": f"{c.function.name} done"})
    second = client.chat.completions.create(model="m", messages=messages, tools=TOOLS)
    assert second.choices[0].message.content == "Got add: add done\nping: ping done"
    assert second.choices[0].finish_reason == "stop"
    client.close()


def test_error_turns_and_faults_answer_in_openai_shape(mock):
    server = mock(
        {
            "turns": [
                {
                    "text": "fine",
                    "faults": [
                        {
                            "error": {"status": 529, "type": "overloaded_error", "message": "busy"},
                            "headers": {"retry-after": "1"},
                        },
                        {"error_event": {"type": "server_error", "message": "died"}, "at": 2},
                        {"truncate": 2},
                        None,
                    ],
                }
            ]
        },
        api_key=KEY,
    )
    request = body(stream=True)
    first = post(server, request)
    assert (first.status_code, first.headers["retry-after"]) == (529, "1")
    assert first.json()["error"] == {"message": "busy", "type": "overloaded_error", "param": None, "code": None}
    second = post(server, request).text.split("\n\n")
    assert json.loads(second[2][6:]) == {
        "error": {"message": "died", "type": "server_error", "param": None, "code": None}
    }
    third = post(server, request).text
    assert "[DONE]" not in third and third.count("data: ") == 2
    assert post(server, request).text.endswith("data: [DONE]\n\n")


def test_a_stream_error_turn_and_a_truncated_turn(mock):
    server = mock(
        {"turns": [{"text": "partial answer", "stream_error": {"type": "api_error", "message": "x"}}]}, api_key=KEY
    )
    raw = post(server, body(stream=True)).text
    assert raw.rstrip().endswith('"code":null}}') and 'finish_reason":"stop' not in raw
    server.script = {"model": None, "turns": [{"text": "cut here", "truncate": True}]}
    raw = post(server, body(stream=True)).text
    assert "[DONE]" not in raw and '"finish_reason":null' in raw and '"finish_reason":"' not in raw


def test_a_json_answer_is_a_chat_completion(mock):
    server = mock({"turns": [{"thinking": "t", "text": "done", "stop_reason": "max_tokens"}]}, api_key=KEY)
    answer = post(server, body(max_tokens=3)).json()
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"] == {
        "role": "assistant",
        "content": "done",
        "refusal": None,
        "reasoning_content": "t",
    }
    assert answer["choices"][0]["finish_reason"] == "length"
    assert set(answer["usage"]) >= {"prompt_tokens", "completion_tokens", "total_tokens"}


def test_the_messages_route_is_unchanged(server):
    # The same server still speaks Anthropic's dialect on /v1/messages, with its own error shape.
    response = requests.post(
        server.url + "/v1/messages",
        json={"model": "m"},
        headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"},
        timeout=10,
    )
    assert (response.status_code, response.json()["type"]) == (400, "error")
