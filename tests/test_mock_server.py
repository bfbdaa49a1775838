"""Tests for toolchat/mock: real HTTP on loopback against the mock Anthropic server."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from toolchat.mock.server import DEMO_SCRIPT, MockServer

HEADERS = {"x-api-key": "test-key", "anthropic-version": "2023-06-01"}
TOOLS = [
    {"name": "calculate", "description": "math", "input_schema": {"type": "object", "properties": {}}},
    {"name": "get_weather", "input_schema": {"type": "object"}},
    {"name": "get_time", "input_schema": {"type": "object"}},
]


# ------------------------------------------------------------------ helpers


def body(messages=None, **extra):
    b = {
        "model": "mock-model",
        "max_tokens": 1024,
        "messages": messages if messages is not None else [{"role": "user", "content": "hello"}],
    }
    b.update(extra)
    return b


def post(srv, payload, headers=HEADERS, **kw):
    return requests.post(srv.url + "/v1/messages", headers=headers, json=payload, timeout=5, **kw)


def parse_sse(data: bytes) -> list[tuple[str, dict]]:
    """(event name, JSON data) pairs; the mock always sends both lines and a blank line."""
    events = []
    for raw in data.split(b"\n\n"):
        if not raw.strip():
            continue
        lines = raw.decode("utf-8").split("\n")
        name = next(line[len("event: ") :] for line in lines if line.startswith("event: "))
        payload = "\n".join(line[len("data: ") :] for line in lines if line.startswith("data: "))
        events.append((name, json.loads(payload)))
    return events


def stream(srv, payload, headers=HEADERS):
    r = post(srv, dict(payload, stream=True), headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/event-stream; charset=utf-8"
    return parse_sse(r.content)


def tool_inputs(events) -> dict:
    """Reassemble tool_use inputs from start events and input_json_delta pieces, by block index."""
    starts, parts = {}, {}
    for name, data in events:
        if name == "content_block_start" and data["content_block"]["type"] == "tool_use":
            starts[data["index"]] = data["content_block"]
            parts[data["index"]] = ""
        elif name == "content_block_delta" and data["delta"]["type"] == "input_json_delta":
            parts[data["index"]] += data["delta"]["partial_json"]
    return {i: (json.loads(parts[i]) if parts[i] else starts[i]["input"]) for i in starts}


def error_of(r) -> tuple[int, str, str]:
    j = r.json()
    assert j["type"] == "error"
    assert j["request_id"].startswith("req_mock_")
    assert r.headers["request-id"] == j["request_id"]
    assert r.headers["content-type"] == "application/json"
    return r.status_code, j["error"]["type"], j["error"]["message"]


def raw_exchange(srv, payload: dict) -> tuple[bytes, list[bytes]]:
    """Send one request on a bare socket; return (header bytes, body reads as they arrived)."""
    data = json.dumps(payload).encode()
    req = (
        f"POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: k\r\nanthropic-version: 2023-06-01\r\n"
        f"content-type: application/json\r\nconnection: close\r\ncontent-length: {len(data)}\r\n\r\n"
    ).encode() + data
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(req)
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(65536)
        head, rest = buf.split(b"\r\n\r\n", 1)
        reads = [rest] if rest else []
        while chunk := s.recv(65536):
            reads.append(chunk)
    return head, reads


@pytest.fixture
def echo():
    with MockServer() as srv:
        yield srv


def scripted(*turns, **top):
    return MockServer(script={"turns": list(turns), **top})


# ------------------------------------------------------------------ strictness


def test_missing_credentials_is_401_authentication_error(echo):
    r = post(echo, body(), headers={"anthropic-version": "2023-06-01"})
    assert error_of(r) == (401, "authentication_error", "x-api-key header is required")


def test_bearer_token_is_accepted_as_credentials(echo):
    r = post(echo, body(), headers={"authorization": "Bearer tok", "anthropic-version": "2023-06-01"})
    assert r.status_code == 200
    assert r.json()["content"] == [{"type": "text", "text": "hello"}]


def test_configured_api_key_rejects_other_values_and_never_echoes_them():
    with MockServer(api_key="right-key") as srv:
        bad = post(srv, body(), headers={"x-api-key": "wrong-secret", "anthropic-version": "2023-06-01"})
        assert error_of(bad) == (401, "authentication_error", "invalid x-api-key")
        assert b"wrong-secret" not in bad.content and b"right-key" not in bad.content
        ok = post(srv, body(), headers={"authorization": "Bearer right-key", "anthropic-version": "2023-06-01"})
        assert ok.status_code == 200


def test_missing_anthropic_version_is_400(echo):
    r = post(echo, body(), headers={"x-api-key": "k"})
    assert error_of(r) == (400, "invalid_request_error", "anthropic-version: header is required")


def test_extra_top_level_field_is_400(echo):
    r = post(echo, body(frequency_penalty=0.5))
    assert error_of(r) == (400, "invalid_request_error", "frequency_penalty: Extra inputs are not permitted")


def test_body_that_is_not_a_json_object_is_400(echo):
    r = requests.post(echo.url + "/v1/messages", headers=HEADERS, data=b"[1, 2]", timeout=5)
    assert error_of(r)[:2] == (400, "invalid_request_error")
    r = requests.post(echo.url + "/v1/messages", headers=HEADERS, data=b"{not json", timeout=5)
    assert error_of(r)[:2] == (400, "invalid_request_error")


def test_unknown_path_is_404_and_other_methods_405(echo):
    r = requests.post(echo.url + "/v1/complete", headers=HEADERS, json=body(), timeout=5)
    assert error_of(r) == (404, "not_found_error", "Not Found")
    r = requests.get(echo.url + "/v1/messages", headers=HEADERS, timeout=5)
    assert r.status_code == 405 and r.json()["type"] == "error"


@pytest.mark.parametrize(
    "payload, message",
    [
        (body(model=""), "model: String should have at least 1 character"),
        (body(max_tokens=0), "max_tokens: Input should be greater than or equal to 1"),
        (body(max_tokens="5"), "max_tokens: Input should be a valid integer"),
        (body(messages=[]), "messages: at least one message is required"),
        (
            body(messages=[{"role": "assistant", "content": "hi"}]),
            'messages.0.role: first message must use the "user" role',
        ),
        (
            body(messages=[{"role": "system", "content": "hi"}]),
            "messages.0.role: Input should be 'user' or 'assistant'",
        ),
        (body(messages=[{"role": "user", "content": [{"text": "x"}]}]), "messages.0.content.0.type: Field required"),
        (body(system=[{"type": "image"}]), "system.0.type: Input should be 'text'"),
        (
            body(tools=[{"name": "bad name", "input_schema": {"type": "object"}}]),
            "tools.0.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'",
        ),
        (body(tools=[TOOLS[0], TOOLS[0]]), "tools: Tool names must be unique."),
        (
            body(tools=[{"name": "t", "input_schema": {"type": "array"}}]),
            "tools.0.custom.input_schema.type: Input should be 'object'",
        ),
        (body(tools=[{"name": "t", "parameters": {}}]), "tools.0.custom.parameters: Extra inputs are not permitted"),
        (
            body(tools=TOOLS, tool_choice={"type": "tool", "name": "nope"}),
            "tool_choice.tool.name: Tool 'nope' not found in tools",
        ),
        (
            body(tools=TOOLS, tool_choice={"type": "none", "disable_parallel_tool_use": True}),
            "tool_choice.none.disable_parallel_tool_use: Extra inputs are not permitted",
        ),
        (
            body(tools=TOOLS, tool_choice={"type": "required"}),
            "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'",
        ),
    ],
)
def test_body_schema_violations_are_400_with_the_api_wording(echo, payload, message):
    assert error_of(post(echo, payload)) == (400, "invalid_request_error", message)


def test_valid_optional_fields_are_accepted(echo):
    payload = body(
        system=[{"type": "text", "text": "be brief"}],
        temperature=0.5,
        top_p=0.9,
        top_k=5,
        stop_sequences=["END"],
        tools=TOOLS + [{"type": "web_search_20250305", "name": "web_search"}],
        tool_choice={"type": "tool", "name": "calculate", "disable_parallel_tool_use": True},
        max_tokens=2048,
        metadata={"user_id": "u1"},
        service_tier="auto",
    )
    assert post(echo, payload).status_code == 200
    # Thinking takes no temperature but 1, no top_k and no forced tool_choice (test_request_options).
    thinking = body(
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        temperature=1,
        top_p=0.95,
        tools=TOOLS,
        tool_choice={"type": "auto"},
        output_config={
            "format": {
                "type": "json_schema",
                "schema": {"type": "object", "properties": {}, "additionalProperties": False},
            }
        },
    )
    assert post(echo, thinking).status_code == 200


def _tool_history(ids=("toolu_a", "toolu_b")):
    return [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "calling"}]
            + [{"type": "tool_use", "id": i, "name": "calculate", "input": {"expression": "1+1"}} for i in ids],
        },
    ]


def test_tool_use_without_tool_result_is_400_with_the_exact_message(echo):
    msgs = _tool_history() + [
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_a", "content": "2"}]}
    ]
    assert error_of(post(echo, body(msgs, tools=TOOLS))) == (
        400,
        "invalid_request_error",
        "messages.2: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_b. "
        "Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
    )
    msgs = _tool_history() + [{"role": "user", "content": "never mind"}]
    assert error_of(post(echo, body(msgs, tools=TOOLS)))[2].startswith(
        "messages.2: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_a, toolu_b."
    )


def test_tool_results_after_a_text_block_do_not_count_as_immediately_after(echo):
    msgs = _tool_history(("toolu_a",)) + [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "here"},
                {"type": "tool_result", "tool_use_id": "toolu_a", "content": "2"},
            ],
        }
    ]
    assert "toolu_a" in error_of(post(echo, body(msgs, tools=TOOLS)))[2]


def test_unexpected_tool_use_id_is_400_with_the_exact_message(echo):
    msgs = _tool_history(("toolu_a",)) + [
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_a", "content": "2"},
                {"type": "tool_result", "tool_use_id": "toolu_zzz", "content": "?"},
            ],
        }
    ]
    assert error_of(post(echo, body(msgs, tools=TOOLS))) == (
        400,
        "invalid_request_error",
        "messages.2.content.1: unexpected `tool_use_id` found in `tool_result` blocks: toolu_zzz. "
        "Each `tool_result` block must have a corresponding `tool_use` block in the previous message.",
    )


def test_tool_result_content_must_be_text_or_image_blocks(echo):
    msgs = _tool_history(("toolu_a",)) + [
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_a", "content": [{"type": "tool_use"}]}],
        }
    ]
    assert error_of(post(echo, body(msgs, tools=TOOLS)))[:2] == (400, "invalid_request_error")
    msgs[-1]["content"][0]["content"] = "2"
    msgs[-1]["content"][0]["is_error"] = "yes"
    assert (
        error_of(post(echo, body(msgs, tools=TOOLS)))[2]
        == "messages.2.content.0.tool_result.is_error: Input should be a valid boolean"
    )


def test_empty_assistant_message_in_history_is_400(echo):
    msgs = [{"role": "user", "content": "a"}, {"role": "assistant", "content": []}, {"role": "user", "content": "b"}]
    assert error_of(post(echo, body(msgs)))[2] == (
        "messages.1: all messages must have non-empty content except for the optional final assistant message"
    )


def test_thinking_and_redacted_thinking_echoed_exactly_are_accepted():
    turns = [{"thinking": "Let me think.", "redacted_thinking": True, "text": "Done thinking."}, {"text": "ok"}]
    with scripted(*turns) as srv:
        first = post(srv, body()).json()
        thinking, redacted = first["content"][0], first["content"][1]
        expected_sig = base64.b64encode(hashlib.sha256(b"mock-thinking:Let me think.").digest()).decode()
        assert thinking == {"type": "thinking", "thinking": "Let me think.", "signature": expected_sig}
        assert base64.b64decode(redacted["data"]).startswith(b"mock-redacted:")
        msgs = [
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": first["content"]},
            {"role": "user", "content": "next"},
        ]
        r = post(srv, body(msgs))
        assert r.status_code == 200 and r.json()["content"] == [{"type": "text", "text": "ok"}]


def test_edited_thinking_or_bad_signature_is_400(echo):
    sig = base64.b64encode(hashlib.sha256(b"mock-thinking:original").digest()).decode()
    for block in (
        {"type": "thinking", "thinking": "edited", "signature": sig},
        {"type": "thinking", "thinking": "original"},
    ):
        msgs = [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": [block, {"type": "text", "text": "x"}]},
            {"role": "user", "content": "b"},
        ]
        assert error_of(post(echo, body(msgs))) == (
            400,
            "invalid_request_error",
            "messages.1.content.0: Invalid `signature` in `thinking` block",
        )


def test_undecodable_redacted_thinking_data_is_400(echo):
    msgs = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": [{"type": "redacted_thinking", "data": "!!not base64"}]},
        {"role": "user", "content": "b"},
    ]
    assert error_of(post(echo, body(msgs)))[:2] == (400, "invalid_request_error")
    assert "redacted_thinking" in error_of(post(echo, body(msgs)))[2]


# ------------------------------------------------------------------ streaming


def test_streamed_text_turn_follows_the_sse_grammar():
    with scripted({"text": "Hello there, world!"}) as srv:
        events = stream(srv, body())
    names = [n for n, _ in events]
    assert names == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(data["type"] == name for name, data in events)
    start = events[0][1]["message"]
    assert start["id"].startswith("msg_mock_") and start["model"] == "mock-model"
    assert (start["type"], start["role"], start["content"], start["stop_reason"]) == ("message", "assistant", [], None)
    assert start["usage"]["output_tokens"] == 1 and start["usage"]["input_tokens"] >= 1
    assert events[2][1] == {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    assert [d["delta"]["text"] for n, d in events if n == "content_block_delta"] == ["Hello ", "there, ", "world!"]
    assert events[-2][1]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert events[-2][1]["usage"]["output_tokens"] == 3


def test_delta_size_option_sets_text_piece_length():
    with scripted({"text": "abcdefghij", "delta_size": 4}) as srv:
        events = stream(srv, body())
    assert [d["delta"]["text"] for n, d in events if n == "content_block_delta"] == ["abcd", "efgh", "ij"]


@pytest.mark.parametrize(
    "size, expected_deltas",
    [
        (8, ["", '{"expres', 'sion": "', '2+2", "p', "recision", '": 3}']),
        (0, []),
        (-1, ['{"expression": "2+2", "precision": 3}']),
    ],
)
def test_tool_use_input_json_deltas_reassemble_to_the_input(size, expected_deltas):
    args = {"expression": "2+2", "precision": 3}
    turn = {"tool_calls": [{"name": "calculate", "input": args, "id": "toolu_fixed"}], "json_delta_size": size}
    with scripted(turn) as srv:
        events = stream(srv, body(tools=TOOLS))
    start = next(d for n, d in events if n == "content_block_start")["content_block"]
    assert (start["id"], start["name"]) == ("toolu_fixed", "calculate")
    assert start["input"] == (args if size == 0 else {})
    deltas = [d["delta"]["partial_json"] for n, d in events if n == "content_block_delta"]
    assert deltas == expected_deltas
    assert tool_inputs(events) == {0: args}
    assert next(d for n, d in events if n == "message_delta")["delta"]["stop_reason"] == "tool_use"


def test_thinking_streams_thinking_deltas_then_one_signature_delta_before_stop():
    with scripted({"thinking": "Hmm ok", "text": "Hi"}) as srv:
        events = stream(srv, body())
    block0 = [(n, d) for n, d in events if d.get("index") == 0]
    assert [d["delta"]["type"] for n, d in block0 if n == "content_block_delta"] == [
        "thinking_delta",
        "thinking_delta",
        "signature_delta",
    ]
    assert block0[-1][0] == "content_block_stop"
    assert (
        block0[-2][1]["delta"]["signature"]
        == base64.b64encode(hashlib.sha256(b"mock-thinking:Hmm ok").digest()).decode()
    )


def test_non_stream_request_returns_one_message_json_body():
    turn = {
        "text": "Sure.",
        "tool_calls": [{"name": "get_time", "input": {"timezone": "UTC"}}],
        "usage": {"input_tokens": 42},
    }
    with scripted(turn) as srv:
        r = post(srv, body(tools=TOOLS))
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    m = r.json()
    assert (m["type"], m["role"], m["model"], m["stop_reason"], m["stop_sequence"]) == (
        "message",
        "assistant",
        "mock-model",
        "tool_use",
        None,
    )
    assert m["content"][0] == {"type": "text", "text": "Sure."}
    assert m["content"][1]["id"].startswith("toolu_mock_")
    assert {k: m["content"][1][k] for k in ("type", "name", "input")} == {
        "type": "tool_use",
        "name": "get_time",
        "input": {"timezone": "UTC"},
    }
    assert m["usage"]["input_tokens"] == 42 and m["usage"]["output_tokens"] >= 1


def test_events_are_flushed_as_produced_not_at_the_end():
    with scripted({"text": "one two three four", "delay": 0.15}) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
        conn.request(
            "POST", "/v1/messages", json.dumps(body(stream=True)), {**HEADERS, "content-type": "application/json"}
        )
        resp = conn.getresponse()
        t0, first_text_at, buf = time.monotonic(), None, b""
        while chunk := resp.read1(65536):
            buf += chunk
            if first_text_at is None and b'"text_delta"' in buf:
                first_text_at = time.monotonic() - t0
        total = time.monotonic() - t0
        conn.close()
    assert total >= 0.15 * 8
    assert first_text_at < total - 0.5
    assert [n for n, _ in parse_sse(buf)][-1] == "message_stop"


# ------------------------------------------------------------------ the model


def test_echo_model_echoes_a_plain_prompt(echo):
    assert post(echo, body([{"role": "user", "content": [{"type": "text", "text": "ping me"}]}])).json()["content"] == [
        {"type": "text", "text": "ping me"}
    ]


def test_echo_model_json_prompt_drives_tool_calls_then_echoes_results(echo):
    prompt = json.dumps(
        {
            "text": "hi",
            "tool_calls": [{"name": "calculate", "input": {"expression": "2+2"}}, {"name": "get_time", "input": {}}],
        }
    )
    msgs = [{"role": "user", "content": prompt}]
    events = stream(echo, body(msgs, tools=TOOLS))
    assert tool_inputs(events) == {1: {"expression": "2+2"}, 2: {}}
    first = post(echo, body(msgs, tools=TOOLS)).json()
    assert first["stop_reason"] == "tool_use"
    ids = [b["id"] for b in first["content"] if b["type"] == "tool_use"]
    msgs += [
        {"role": "assistant", "content": first["content"]},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": ids[0], "content": [{"type": "text", "text": "4"}]},
                {"type": "tool_result", "tool_use_id": ids[1], "content": "no clock", "is_error": True},
            ],
        },
    ]
    second = post(echo, body(msgs, tools=TOOLS)).json()
    assert second["stop_reason"] == "end_turn"
    assert second["content"] == [{"type": "text", "text": "calculate: 4\nget_time: error: no clock"}]


def test_echo_model_json_prompt_can_drive_stop_reason_and_errors(echo):
    cut = post(echo, body([{"role": "user", "content": '{"text":"cut","stop_reason":"max_tokens"}'}])).json()
    assert (cut["content"], cut["stop_reason"]) == ([{"type": "text", "text": "cut"}], "max_tokens")
    r = post(
        echo, body([{"role": "user", "content": '{"error":{"status":429,"type":"rate_limit_error","message":"slow"}}'}])
    )
    assert error_of(r) == (429, "rate_limit_error", "slow")
    plain = post(echo, body([{"role": "user", "content": '{"a": 1}'}])).json()
    assert plain["content"] == [{"type": "text", "text": '{"a": 1}'}]


def test_result_and_prompt_templates_are_filled_and_unknown_braces_kept():
    turns = [
        {
            "tool_calls": [
                {"name": "get_weather", "input": {"location": "Paris"}},
                {"name": "get_time", "input": {"timezone": "Europe/Paris"}},
            ]
        },
        {
            "text": 'Asked "{prompt}". W={result:get_weather} T={result:get_time} X={result:nope} {"k": 1} {other}\n{results}'
        },
    ]
    with scripted(*turns) as srv:
        first = post(srv, body([{"role": "user", "content": "weather in Paris?"}], tools=TOOLS)).json()
        ids = [b["id"] for b in first["content"]]
        msgs = [
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": first["content"]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": ids[0], "content": "offline", "is_error": True},
                    {"type": "tool_result", "tool_use_id": ids[1], "content": [{"type": "text", "text": "09:00"}]},
                ],
            },
        ]
        text = post(srv, body(msgs, tools=TOOLS)).json()["content"][0]["text"]
    assert text == (
        'Asked "weather in Paris?". W=error: offline T=09:00 X={result:nope} {"k": 1} {other}\n'
        "get_weather: error: offline\nget_time: 09:00"
    )


def test_turn_index_is_the_number_of_assistant_messages_and_runs_out_politely():
    with scripted({"text": "first"}, model="scripted-model") as srv:
        m = post(srv, body()).json()
        assert (m["content"][0]["text"], m["model"]) == ("first", "scripted-model")
        msgs = [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "first"},
            {"role": "user", "content": "b"},
        ]
        again = post(srv, body(msgs)).json()
    assert again["content"] == [{"type": "text", "text": "(mock script has no more turns)"}]
    assert again["stop_reason"] == "end_turn"


def test_demo_script_calls_two_tools_then_reports_results():
    with MockServer(script=DEMO_SCRIPT) as srv:
        events = stream(srv, body(tools=TOOLS))
        text = "".join(
            d["delta"]["text"] for n, d in events if n == "content_block_delta" and d["delta"]["type"] == "text_delta"
        )
        assert text == "I'll check the weather and the local time in San Francisco."
        assert list(tool_inputs(events).values()) == [
            {"location": "San Francisco, CA"},
            {"timezone": "America/Los_Angeles"},
        ]
        content = [{"type": "text", "text": text}] + [
            {"type": "tool_use", "id": d["content_block"]["id"], "name": d["content_block"]["name"], "input": inp}
            for (n, d), inp in zip(
                [e for e in events if e[0] == "content_block_start"][1:], tool_inputs(events).values()
            )
        ]
        msgs = [
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": content},
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": content[1]["id"],
                        "content": "network unreachable",
                        "is_error": True,
                    },
                    {"type": "tool_result", "tool_use_id": content[2]["id"], "content": "14:05 PDT"},
                ],
            },
        ]
        answer = post(srv, body(msgs, tools=TOOLS)).json()["content"][0]["text"]
    assert answer == (
        "Here's what I found for San Francisco:\n\n- Weather: error: network unreachable\n- Local time: 14:05 PDT\n"
    )


def test_invalid_script_is_rejected_at_construction():
    with pytest.raises(ValueError, match=r"turns\[0\].*tool_calls\[0\]"):
        MockServer(script={"turns": [{"tool_calls": [{"input": {}}]}]})
    with pytest.raises(ValueError, match="unknown keys"):
        MockServer(script={"turns": [{"txt": "typo"}]})


# ------------------------------------------------------------------ failure turns


def test_error_turn_answers_with_that_http_error_and_headers():
    turn = {
        "error": {"status": 529, "type": "overloaded_error", "message": "Overloaded"},
        "headers": {"retry-after": "1"},
    }
    with scripted(turn) as srv:
        r = post(srv, body(stream=True))
    assert error_of(r) == (529, "overloaded_error", "Overloaded")
    assert r.headers["retry-after"] == "1"


def test_stream_error_turn_emits_error_event_after_the_text_block():
    turn = {
        "text": "partial answer",
        "tool_calls": [{"name": "calculate", "input": {}}],
        "stream_error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    with scripted(turn) as srv:
        events = stream(srv, body(tools=TOOLS))
        plain = post(srv, body(tools=TOOLS))
    assert [n for n, _ in events] == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "error",
    ]
    assert events[-1][1] == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    assert error_of(plain) == (529, "overloaded_error", "Overloaded")


def test_truncate_turn_stops_before_message_delta_and_message_stop():
    with scripted({"text": "cut short", "truncate": True}) as srv:
        events = stream(srv, body())
    names = [n for n, _ in events]
    assert names[-1] == "content_block_stop"
    assert "message_delta" not in names and "message_stop" not in names


def test_truncate_abort_drops_the_chunked_stream_without_terminator():
    with scripted({"text": "cut", "truncate": "abort"}) as srv:
        _, reads = raw_exchange(srv, body(stream=True))
    data = b"".join(reads)
    assert b"content_block_stop" in data and not data.endswith(b"0\r\n\r\n")


def test_raw_turn_with_close_framing_delivers_chunks_as_separate_reads():
    raw = 'data: {"type":"ping"}\n\n: keep-alive\r\ndata: [DONE]\n\n'
    turn = {"raw": raw, "chunks": [10, 15], "delay": 0.1, "framing": "close", "status": 200}
    with scripted(turn) as srv:
        head, reads = raw_exchange(srv, body(stream=True))
    assert b"connection: close" in head.lower()
    assert b"content-length" not in head.lower() and b"transfer-encoding" not in head.lower()
    assert b"content-type: text/event-stream" in head.lower()
    data = raw.encode()
    assert reads == [data[:10], data[10:25], data[25:]]


def test_raw_turn_bytes_chunks_default_to_chunked_framing_and_custom_status():
    turn = {
        "raw": "<html><title>502 Bad Gateway</title></html>",
        "chunks": "bytes",
        "status": 502,
        "content_type": "text/html",
    }
    with scripted(turn) as srv:
        head, reads = raw_exchange(srv, body())
        r = post(srv, body())
    assert head.startswith(b"HTTP/1.1 502") and b"transfer-encoding: chunked" in head.lower()
    assert b"".join(reads).startswith(b"1\r\n<\r\n1\r\nh\r\n")
    assert (r.status_code, r.headers["content-type"], r.text) == (502, "text/html", turn["raw"])


def test_length_framing_sends_content_length():
    with scripted({"text": "sized", "framing": "length"}) as srv:
        head, reads = raw_exchange(srv, body(stream=True))
    length = int(
        next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    )
    assert length == len(b"".join(reads))
    assert [n for n, _ in parse_sse(b"".join(reads))][-1] == "message_stop"


# ------------------------------------------------------------------ server plumbing


def test_every_request_is_recorded_including_rejected_ones(echo):
    post(echo, body(), headers={"anthropic-version": "2023-06-01", "X-Custom": "v"})
    post(echo, body(stream=True))
    requests.get(echo.url + "/nope", timeout=5)
    assert [(r.method, r.path) for r in echo.requests] == [
        ("POST", "/v1/messages"),
        ("POST", "/v1/messages"),
        ("GET", "/nope"),
    ]
    first = echo.requests[0]
    assert first.headers["x-custom"] == "v" and "x-api-key" not in first.headers
    assert first.body == body() and json.loads(first.raw) == body()
    assert echo.requests[1].body["stream"] is True and echo.requests[2].body is None


def test_four_concurrent_clients_are_served_in_parallel():
    turn = {"raw": "data: {}\n\n" * 3, "chunks": [10, 10], "delay": 0.3}
    results, barrier = [None] * 4, threading.Barrier(4)
    with scripted(turn) as srv:

        def worker(i):
            barrier.wait()
            results[i] = post(srv, body([{"role": "user", "content": f"client {i}"}], stream=True)).content

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
        assert len(srv.requests) == 4
    assert results == [b"data: {}\n\n" * 3] * 4
    assert elapsed < 1.5  # one request takes 0.6 s; serialised they would take 2.4 s


def test_main_prints_the_listening_line_and_exits_0_on_ctrl_c():
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from toolchat.mock.server import main; sys.exit(main())"],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("mock server listening on http://127.0.0.1:")
        url = line.strip().rsplit(" ", 1)[1]
        assert post(type("S", (), {"url": url}), body()).json()["content"][0]["text"] == "hello"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=5) == 0
        assert proc.stdout.read() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
