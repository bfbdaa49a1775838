"""Streams as real servers and gateways send them, through real HTTP to the mock server."""

from __future__ import annotations

import json

import pytest

from toolchat.errors import APIError, StreamError
from toolchat.events import TextDelta, ThinkingDelta

from conftest import clean_env, message_events, popen_toolchat, run_chat, sse, TEST_KEY, tokens


def text_turn(*pieces: str, **raw_options) -> dict:
    events = message_events({"type": "text", "text": "".join(pieces), "pieces": list(pieces)})
    return {"raw": sse(*events, line_end=raw_options.pop("line_end", "\n")), **raw_options}


def answer(mock, *turns, prompt="hi", **overrides):
    server = mock({"turns": list(turns)})
    return run_chat(server, prompt, **overrides)


def test_crlf_line_ends_split_across_one_byte_chunks(mock):
    events, result = answer(mock, text_turn("Hel", "lo ", "wörld", line_end="\r\n", chunks="bytes"))
    assert result.error is None
    assert result.text == "Hello wörld"
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hel", "lo ", "wörld"]


def test_crlf_split_exactly_between_cr_and_lf(mock):
    body = sse(*message_events({"type": "text", "text": "split"}), line_end="\r\n")
    first_cr = body.index("\r\n") + 1  # the first chunk ends with CR, the next starts with LF
    events, result = answer(mock, {"raw": body, "chunks": [first_cr, 1, 5]})
    assert (result.error, result.text) == (None, "split")


def test_bare_cr_line_ends(mock):
    events, result = answer(mock, text_turn("bare ", "cr", line_end="\r"))
    assert (result.error, result.text) == (None, "bare cr")


def test_comment_lines_and_data_only_events(mock):
    body = ": keep-alive\n\n" + sse(*message_events({"type": "text", "text": "ok"}), with_names=False)
    body = body.replace('data: {"type": "ping"}', ': OPENROUTER PROCESSING\ndata: {"type": "ping"}')
    events, result = answer(mock, {"raw": body})
    assert (result.error, result.text) == (None, "ok")


def test_multi_line_data_is_joined_before_parsing(mock):
    events = message_events({"type": "text", "text": "joined"})
    body = sse(*events)
    delta = "data: " + json.dumps(events[3])
    assert delta in body
    body = body.replace(
        delta,
        'data: {"type": "content_block_delta",\ndata:  "index": 0,\n'
        'data: "delta": {"type": "text_delta", "text": "joined"}}',
    )
    _, result = answer(mock, {"raw": body})
    assert (result.error, result.text) == (None, "joined")


def test_u2028_and_u2029_inside_json_strings_survive(mock):
    text = "line\u2028sep\u2029para\x85nel"
    events, result = answer(
        mock, {"raw": sse(*message_events({"type": "text", "text": text})).replace("\\u2028", "\u2028")}
    )
    assert result.text == text


def test_utf8_character_split_across_chunks(mock):
    body = sse(*message_events({"type": "text", "text": "naïve 😀"}))
    raw = body.encode()
    cut = raw.index("😀".encode()) + 2
    _, result = answer(
        mock, {"raw": body.encode().replace(b"\\ud83d\\ude00", "😀".encode()), "chunks": [cut - 1, 1, 1]}
    )
    assert result.text == "naïve 😀"


def test_last_event_without_its_blank_line(mock):
    body = sse(*message_events({"type": "text", "text": "end"}))
    assert body.endswith("\n\n")
    _, result = answer(mock, {"raw": body[:-2], "framing": "close"})
    assert (result.error, result.text) == (None, "end")


def test_json_padding_and_unknown_event_and_delta_types_are_ignored(mock):
    events = message_events({"type": "text", "text": "fine"})
    body = sse(*events).replace('{"type": "message_stop"}', '{"type":"message_stop"   }')
    body = sse({"type": "future_event", "x": 1}) + body
    body = body.replace(
        "event: ping",
        'event: ping\ndata: {"type": "ping"}\n\nevent: content_block_delta'
        '\ndata: {"type": "content_block_delta", "index": 0, "delta": '
        '{"type": "future_delta"}}\n\nevent: x',
        1,
    )
    _, result = answer(mock, {"raw": body})
    assert (result.error, result.text) == (None, "fine")


def test_usage_is_cumulative_overwritten_not_added(mock):
    events = message_events({"type": "text", "text": "u"}, usage_out=7)
    events.insert(-1, {"type": "message_delta", "delta": {}, "usage": {"output_tokens": 9}})
    _, result = answer(mock, {"raw": sse(*events)})
    assert tokens(tokens(result.usage)) == {"input_tokens": 10, "output_tokens": 9}


def test_stream_without_message_stop_is_a_truncation_error(mock):
    events = message_events({"type": "text", "text": "cut here"})[:-2]
    _, result = answer(mock, {"raw": sse(*events), "framing": "close"})
    assert isinstance(result.error, StreamError)
    assert result.error.type == "truncated_stream"
    assert result.text == "cut here"  # what was received is kept
    assert result.exit_code == 3


def test_error_event_mid_stream_carries_its_type(mock):
    events = message_events({"type": "text", "text": "partial"})[:5]
    events.append({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    _, result = answer(mock, {"raw": sse(*events)})
    assert isinstance(result.error, APIError)
    assert result.error.type == "overloaded_error"
    assert "Overloaded" in result.error.message
    assert result.text == "partial"
    assert result.exit_code == 3


def test_events_after_message_stop_are_ignored(mock):
    body = sse(*message_events({"type": "text", "text": "done"}))
    body += sse({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "X"}})
    body += "data: [DONE]\n\n"
    _, result = answer(mock, {"raw": body})
    assert (result.error, result.text) == (None, "done")


def test_json_body_answer_to_a_stream_request(mock):
    message = {
        "id": "msg_j",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [{"type": "text", "text": "as json"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 3, "output_tokens": 2},
    }
    events, result = answer(mock, {"raw": json.dumps(message), "content_type": "application/json"})
    assert (result.error, result.text, tokens(result.usage)) == (
        None,
        "as json",
        {"input_tokens": 3, "output_tokens": 2},
    )
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["as json"]


def test_thinking_streams_and_is_kept_in_the_message(mock):
    events = message_events(
        {"type": "thinking", "thinking": "hmm", "signature": "sig=="}, {"type": "text", "text": "answer"}
    )
    got, result = answer(mock, {"raw": sse(*events)})
    assert [e.text for e in got if isinstance(e, ThinkingDelta)] == ["hmm"]
    assert result.messages[-1]["content"][0] == {"type": "thinking", "thinking": "hmm", "signature": "sig=="}


@pytest.mark.parametrize("framing", ["close", "chunked"])
def test_tokens_reach_stdout_while_the_stream_is_still_open(mock, tmp_path, framing):
    body = sse(*message_events({"type": "text", "text": "first\nsecond\n", "pieces": ["first\n", "second\n"]}))
    first_end = body.index("first\\n") + 40
    server = mock({"turns": [{"raw": body, "framing": framing, "delay": 1.5, "chunks": [first_end]}]})
    env = clean_env(tmp_path, TOOLCHAT_BASE_URL=server.url, TOOLCHAT_API_KEY=TEST_KEY)
    proc = popen_toolchat(["hi"], env)
    try:
        line = proc.stdout.readline()
        still_running = proc.poll() is None
        rest, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert line == b"first\n"
    assert still_running, "the first line arrived only after the stream ended"
    assert rest == b"second\n"
    assert proc.returncode == 0, err


def test_event_with_fields_of_the_wrong_shape_is_a_stream_error(mock):
    events = message_events({"type": "text", "text": "x"})
    events[3] = {"type": "content_block_delta", "index": 0, "delta": "not an object"}
    _, result = answer(mock, {"raw": sse(*events)})
    assert isinstance(result.error, StreamError)
    assert result.error.message.startswith("malformed stream: unexpected content_block_delta event")


def test_event_data_that_is_not_json_is_a_stream_error(mock):
    _, result = answer(mock, {"raw": "event: message_start\ndata: {not json\n\n"})
    assert isinstance(result.error, StreamError)
    assert result.error.message == "malformed stream: event data is not JSON: {not json"


@pytest.mark.parametrize(
    "status, content_type, body, message",
    [
        (
            502,
            "text/html",
            "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
            "HTTP 502 api_error: HTML page: 502 Bad Gateway",
        ),
        (
            429,
            "application/json",
            '{"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}',
            "HTTP 429 requests: Rate limit reached",
        ),
        (503, "text/plain", "upstream connect error\nmore detail", "HTTP 503 api_error: upstream connect error"),
        (
            400,
            "application/json",
            '{"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: too big"}, "request_id": "req_42"}',
            "HTTP 400 invalid_request_error: max_tokens: too big",
        ),
    ],
)
def test_error_bodies_of_every_shape_become_one_line(mock, status, content_type, body, message):
    _, result = answer(mock, {"raw": body, "status": status, "content_type": content_type})
    assert isinstance(result.error, APIError)
    assert (result.error.message, result.error.status, result.exit_code) == (message, status, 3)
