"""Retries: the policy as plain functions (toolchat/retry.py), then the loop against the mock's faults."""

from __future__ import annotations

import json
import re
import time
from email.utils import formatdate

import pytest

from toolchat import retry
from toolchat.errors import APIError, StreamError, TransportError
from toolchat.events import Retry, TextDelta

from conftest import run_chat

OK = {"text": "All good."}


def api_error(status=None, type="api_error", message="boom", **hints):
    error = APIError(f"HTTP {status} {type}: {message}" if status else f"{type}: {message}", type=type, status=status)
    for name, value in hints.items():
        setattr(error, name, value)
    return error


# ------------------------------------------------------------------ the policy: which failures


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 529, 599])
def test_retryable_statuses(status):
    assert retry.retryable(api_error(status))


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 413, 422])
def test_final_statuses(status):
    assert not retry.retryable(api_error(status, "invalid_request_error"))


def test_x_should_retry_header_overrides_the_status():
    assert retry.retryable(api_error(400, "invalid_request_error", should_retry=True))
    assert not retry.retryable(api_error(529, "overloaded_error", should_retry=False))


@pytest.mark.parametrize(
    "error",
    [
        TransportError("could not connect to h: Connection refused"),
        TransportError("timed out connecting to h", type="timeout"),
        StreamError("the stream ended before message_stop", type="truncated_stream"),
        api_error(None, "overloaded_error"),
        api_error(None, "api_error"),
        api_error(None, "rate_limit_error", "slow down"),
        api_error(None, "timeout_error"),
    ],
    ids=["connect", "timeout", "truncated", "overloaded-event", "api-event", "rate-event", "timeout-event"],
)
def test_failures_without_a_status_that_heal(error):
    assert retry.retryable(error)


@pytest.mark.parametrize(
    "error",
    [
        TransportError("cannot send the request to h: bad header", type="request_error"),
        StreamError("malformed stream: event data is not JSON", type="malformed_stream"),
        api_error(None, "invalid_request_error"),
        APIError("HTTP 200 malformed_response: expected a stream", type="malformed_response", status=200),
    ],
    ids=["request-error", "malformed-stream", "invalid-request-event", "html-200"],
)
def test_failures_without_a_status_that_do_not_heal(error):
    assert not retry.retryable(error)


@pytest.mark.parametrize(
    "error",
    [
        api_error(429, "rate_limit_error", "limit", error_code="enforced_spend_limit_reached"),
        api_error(429, "insufficient_quota", "You exceeded your current quota"),
        api_error(429, "rate_limit_error", "quota", error_code="insufficient_quota"),
        api_error(429, "rate_limit_error", "Your credit balance is too low to access the API"),
        api_error(429, "rate_limit_error", "You have reached your spend limit"),
        api_error(429, "rate_limit_error", "Workspace spending limit reached"),
        api_error(429, "rate_limit_error", "check your plan and billing details"),
        api_error(402, "billing_error", "pay up"),
        api_error(None, "rate_limit_error", "spend limit reached"),
        api_error(429, "rate_limit_error", "limit", error_code="enforced_spend_limit_reached", should_retry=True),
    ],
    ids=[
        "details-code",
        "openai-type",
        "openai-code",
        "credit",
        "spend",
        "spending",
        "billing",
        "402",
        "event",
        "beats-x-should-retry",
    ],
)
def test_a_spend_limit_is_never_retried(error):
    assert retry.spend_limited(error)
    assert not retry.retryable(error)
    decision = retry.decide(error, 1, 2)
    assert (decision.retry, decision.note) == (False, "a spend limit or billing problem: not retried")


def test_an_ordinary_rate_limit_is_not_a_spend_limit():
    error = api_error(429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit")
    assert not retry.spend_limited(error) and retry.retryable(error)
    # The words only count on a 429, 402 or a rate-limit/billing type: a 500 mentioning billing heals.
    assert retry.retryable(api_error(500, "api_error", "billing service hiccup"))


# ------------------------------------------------------------------ the policy: how long to wait


def test_backoff_doubles_from_half_a_second_up_to_eight():
    assert [retry.backoff(n, rand=lambda: 0.0) for n in range(1, 8)] == [0.5, 1, 2, 4, 8, 8, 8]


def test_backoff_jitter_takes_off_up_to_a_quarter():
    assert [retry.backoff(n, rand=lambda: 1.0) for n in (1, 2, 5)] == [0.375, 0.75, 6.0]
    for _ in range(200):
        assert 0.375 <= retry.backoff(1) <= 0.5


@pytest.mark.parametrize(
    "headers, expected",
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"Retry-After-Ms": "10"}, 0.01),
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "2.5"}, 2.5),
        ({"retry-after-ms": "250", "retry-after": "30"}, 0.25),
        ({"retry-after-ms": "soon", "retry-after": "4"}, 4.0),
        ({"retry-after": "whenever"}, None),
        ({}, None),
    ],
)
def test_server_delay_from_headers(headers, expected):
    assert retry.server_delay(headers) == expected


def test_server_delay_as_an_http_date():
    now = 1_700_000_000.0
    assert retry.server_delay({"retry-after": formatdate(now + 12, usegmt=True)}, now=now) == 12
    assert retry.server_delay({"retry-after": formatdate(now - 5, usegmt=True)}, now=now) == -5


@pytest.mark.parametrize(
    "headers, expected",
    [
        # The exhausted limit's reset, as a Go duration.
        (
            {
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": "1.5s",
                "x-ratelimit-remaining-tokens": "900",
                "x-ratelimit-reset-tokens": "6m0s",
            },
            1.5,
        ),
        (
            {
                "x-ratelimit-remaining-tokens": "0",
                "x-ratelimit-reset-tokens": "1m30s",
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": "20ms",
            },
            90.0,
        ),
        ({"X-RateLimit-Reset-Tokens": "250ms"}, 0.25),  # no remaining-* header: the reset is the hint
        ({"x-ratelimit-reset-requests": "1h2m3.5s"}, 3723.5),
        ({"x-ratelimit-reset-requests": "2"}, 2.0),
        ({"x-ratelimit-remaining-requests": "5", "x-ratelimit-reset-requests": "3s"}, None),  # not the one hit
        ({"x-ratelimit-reset-requests": "soon"}, None),
        ({"x-ratelimit-reset-requests": "5sx"}, None),
        ({}, None),
    ],
)
def test_ratelimit_delay_from_openais_headers(headers, expected):
    assert retry.ratelimit_delay(headers) == expected


@pytest.mark.parametrize("value, expected", [("true", True), ("FALSE", False), ("maybe", None)])
def test_x_should_retry_header(value, expected):
    assert retry.should_retry_header({"X-Should-Retry": value}) is expected
    assert retry.should_retry_header({}) is None


def test_decide_waits_what_the_server_asks_within_a_minute():
    assert retry.decide(api_error(429, "rate_limit_error", retry_after=2.0), 1, 2) == retry.Decision(
        True, 2.0, "rate limited (429)"
    )
    assert retry.decide(api_error(529, "overloaded_error", retry_after=60.0), 1, 2).delay == 60.0


@pytest.mark.parametrize("asked", [0, -3, None])
def test_decide_backs_off_when_the_server_asks_nothing_useful(asked):
    decision = retry.decide(api_error(529, "overloaded_error", retry_after=asked), 2, 2, rand=lambda: 0)
    assert (decision.retry, decision.delay) == (True, 1.0)


def test_decide_refuses_a_wait_over_a_minute_and_says_so():
    decision = retry.decide(api_error(429, "rate_limit_error", retry_after=3600.0), 1, 2)
    assert (decision.retry, decision.note) == (False, "the server asks to wait 3600 s before retrying: not retried")


def test_decide_stops_after_the_last_retry():
    error = api_error(529, "overloaded_error")
    assert [retry.decide(error, n, 2).retry for n in (1, 2, 3)] == [True, True, False]
    assert retry.decide(error, 1, 0).retry is False
    assert retry.decide(error, 3, 2).note == ""


@pytest.mark.parametrize(
    "error, words",
    [
        (api_error(529, "overloaded_error"), "overloaded (529)"),
        (api_error(429, "rate_limit_error"), "rate limited (429)"),
        (api_error(500), "server error (500)"),
        (api_error(502), "bad gateway (502)"),
        (api_error(599), "server error (599)"),
        (api_error(None, "overloaded_error"), "overloaded (error event)"),
        (TransportError("x"), "connection failed"),
        (TransportError("x", type="timeout"), "timed out"),
        (StreamError("x", type="truncated_stream"), "stream cut off"),
    ],
)
def test_describe(error, words):
    assert retry.describe(error) == words


# ------------------------------------------------------------------ transport: the hints


def test_http_errors_carry_the_retry_hints(mock):
    from toolchat.transport import Transport, messages_url

    server = mock(
        {
            "turns": [
                {
                    "error": {
                        "status": 429,
                        "type": "rate_limit_error",
                        "message": "Slow down",
                        "details": {"error_code": "enforced_spend_limit_reached"},
                    },
                    "headers": {"retry-after": "7", "x-should-retry": "false"},
                }
            ]
        }
    )
    transport = Transport(messages_url(server.url), {"x-api-key": "k", "anthropic-version": "2023-06-01"})
    with pytest.raises(APIError) as caught:
        transport.send({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "stream": True})
    transport.close()
    error = caught.value
    assert (error.status, error.retry_after, error.should_retry, error.error_code) == (
        429,
        7.0,
        False,
        "enforced_spend_limit_reached",
    )
    assert error.message == "HTTP 429 rate_limit_error: Slow down"


# ------------------------------------------------------------------ the loop against the mock


def turn_with(*faults, **turn):
    """A turn (the plain answer OK unless text or tool_calls are given) spoilt by `faults`."""
    base = {} if "text" in turn or "tool_calls" in turn else dict(OK)
    return {**base, **turn, "faults": list(faults)}


def retries_of(events):
    return [(e.attempt, e.delay, e.reason, e.attempts) for e in events if isinstance(e, Retry)]


def test_overloaded_twice_then_the_answer(mock):
    fault = {"error": {"status": 529}, "headers": {"retry-after-ms": "20"}}
    server = mock({"turns": [turn_with(fault, fault)]})
    events, result = run_chat(server, "hi")
    assert (result.error, result.text) == (None, "All good.")
    assert retries_of(events) == [(2, 0.02, "overloaded (529)", 3), (3, 0.02, "overloaded (529)", 3)]
    assert len(server.requests) == 3
    # Every attempt sends exactly the same bytes.
    assert len({r.raw for r in server.requests}) == 1


def test_retries_run_out_and_the_last_error_is_reported_as_it_is(mock):
    fault = {"error": {"status": 529, "type": "overloaded_error", "message": "Overloaded"}}
    server = mock({"turns": [turn_with(fault, fault, fault)]})
    events, result = run_chat(server, "hi")
    assert result.error.message == "HTTP 529 overloaded_error: Overloaded"
    assert [e[0] for e in retries_of(events)] == [2, 3]
    assert (len(server.requests), result.exit_code) == (3, 3)


def test_retries_zero_means_one_attempt(mock):
    server = mock({"turns": [turn_with({"error": {"status": 503}})]})
    events, result = run_chat(server, "hi", retries=0)
    assert (retries_of(events), len(server.requests), result.exit_code) == ([], 1, 3)


def test_more_retries_than_the_default(mock):
    fault = {"error": {"status": 500}}
    server = mock({"turns": [turn_with(fault, fault, fault, fault)]})
    events, result = run_chat(server, "hi", retries=4)
    assert (result.text, len(server.requests)) == ("All good.", 5)
    assert [e[3] for e in retries_of(events)] == [5, 5, 5, 5]


def test_backoff_without_headers_doubles(mock):
    fault = {"error": {"status": 502}}
    server = mock({"turns": [turn_with(fault, fault)]})
    events, result = run_chat(server, "hi")
    first, second = [e[1] for e in retries_of(events)]
    assert 0.375 <= first <= 0.5 and 0.75 <= second <= 1.0
    assert result.text == "All good."


def test_a_429_waits_what_retry_after_says(mock):
    server = mock({"turns": [turn_with({"error": {"status": 429}, "headers": {"retry-after": "2"}})]})
    events, result = run_chat(server, "hi")
    assert retries_of(events) == [(2, 2.0, "rate limited (429)", 3)]
    assert result.text == "All good."


@pytest.mark.parametrize("api", ["anthropic", "openai"])
def test_a_429_without_retry_after_waits_for_the_exhausted_rate_limit(mock, api):
    headers = {
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "1.25s",
        "x-ratelimit-remaining-tokens": "10",
        "x-ratelimit-reset-tokens": "30s",
    }
    server = mock({"turns": [turn_with({"error": {"status": 429}, "headers": headers})]})
    events, result = run_chat(server, "hi", api=api)
    assert retries_of(events) == [(2, 1.25, "rate limited (429)", 3)]
    assert result.text == "All good."
    assert {r.path for r in server.requests} == {"/v1/messages" if api == "anthropic" else "/v1/chat/completions"}
    # retry-after wins over them; on a 5xx they say nothing about the wait (backoff).
    server = mock({"turns": [turn_with({"error": {"status": 429}, "headers": {**headers, "retry-after": "2"}})]})
    events, _ = run_chat(server, "hi", api=api)
    server = mock({"turns": [turn_with({"error": {"status": 503}, "headers": headers})]})
    events2, _ = run_chat(server, "hi", api=api)
    assert retries_of(events)[0][1] == 2.0
    assert 0.375 <= retries_of(events2)[0][1] <= 0.5


@pytest.mark.parametrize("api", ["anthropic", "openai"])
def test_openai_shaped_http_errors_are_typed_like_anthropics(mock, api):
    server = mock({"turns": [turn_with({"error": {"status": 500, "type": "server_error", "message": "boom"}})]})
    _, result = run_chat(server, "hi", api=api, retries=0)
    assert (result.error.type, result.error.message) == ("api_error", "HTTP 500 server_error: boom")
    server = mock(
        {
            "turns": [
                turn_with(
                    {"error": {"status": 429, "type": "requests", "message": "Slow", "code": "rate_limit_exceeded"}}
                )
            ]
        }
    )
    _, result = run_chat(server, "hi", api=api, retries=0)
    assert (result.error.type, result.error.message) == ("rate_limit_error", "HTTP 429 requests: Slow")


def test_a_wait_over_a_minute_is_not_retried_and_the_error_says_so(mock):
    server = mock(
        {"turns": [turn_with({"error": {"status": 429, "message": "Slow down"}, "headers": {"retry-after": "120"}})]}
    )
    events, result = run_chat(server, "hi")
    assert retries_of(events) == [] and len(server.requests) == 1
    assert result.error.message == (
        "HTTP 429 rate_limit_error: Slow down (the server asks to wait 120 s before retrying: not retried)"
    )


def test_a_spend_limit_429_is_not_retried(mock):
    server = mock(
        {
            "turns": [
                turn_with(
                    {
                        "error": {
                            "status": 429,
                            "type": "rate_limit_error",
                            "message": "Spend limit reached",
                            "details": {"error_code": "enforced_spend_limit_reached"},
                        }
                    }
                )
            ]
        }
    )
    events, result = run_chat(server, "hi")
    assert retries_of(events) == [] and len(server.requests) == 1
    assert result.error.message == (
        "HTTP 429 rate_limit_error: Spend limit reached (a spend limit or billing problem: not retried)"
    )


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413])
def test_client_errors_are_not_retried(mock, status):
    server = mock({"turns": [turn_with({"error": {"status": status}})]})
    events, result = run_chat(server, "hi")
    assert (retries_of(events), len(server.requests), result.error.status) == ([], 1, status)


def test_x_should_retry_false_stops_a_529_and_true_retries_a_400(mock):
    server = mock({"turns": [turn_with({"error": {"status": 529}, "headers": {"x-should-retry": "false"}})]})
    _, result = run_chat(server, "hi")
    assert (result.error.status, len(server.requests)) == (529, 1)
    server = mock(
        {"turns": [turn_with({"error": {"status": 400}, "headers": {"x-should-retry": "true", "retry-after-ms": "1"}})]}
    )
    _, result = run_chat(server, "hi")
    assert (result.text, len(server.requests)) == ("All good.", 2)


@pytest.mark.parametrize(
    "fault, reason",
    [
        ({"reset": "headers"}, "connection failed"),
        ({"close": "headers"}, "connection failed"),
        ({"reset": 0}, "connection failed"),
        ({"reset": 2}, "connection failed"),  # after message_start and ping: nothing shown yet
        ({"reset": {"bytes": 40}}, "connection failed"),
        ({"close": 2}, "connection failed"),  # a chunked body without its last chunk
        ({"truncate": 3}, "stream cut off"),  # a text block started, empty: nothing shown yet
        ({"error_event": {"type": "overloaded_error", "message": "Overloaded"}, "at": 1}, "overloaded (error event)"),
        ({"error_event": {"type": "api_error", "message": "Internal"}, "at": 3}, "server error (error event)"),
    ],
    ids=[
        "reset-before-headers",
        "close-before-headers",
        "reset-after-headers",
        "reset-after-2-events",
        "reset-mid-event",
        "close-after-2-events",
        "truncated",
        "overloaded-event",
        "api-error-event",
    ],
)
def test_failures_before_anything_was_shown_are_retried(mock, fault, reason):
    server = mock({"turns": [turn_with(fault)]})
    events, result = run_chat(server, "hi")
    assert (result.error, result.text) == (None, "All good.")
    [(attempt, delay, why, _)] = retries_of(events)
    assert (attempt, why) == (2, reason) and 0.375 <= delay <= 0.5
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["All ", "good."]  # shown once
    assert len(server.requests) == 2 and server.requests[0].raw == server.requests[1].raw


@pytest.mark.parametrize(
    "fault",
    [
        {"reset": 4},
        {"close": 4},
        {"truncate": 4},
        {"error_event": {"type": "overloaded_error", "message": "Overloaded"}, "at": 4},
    ],
    ids=["reset", "close", "truncated", "error-event"],
)
def test_failures_after_text_was_shown_are_not_retried(mock, fault):
    # Pieces: message_start, ping, content_block_start, first text delta "All ", ...
    server = mock({"turns": [turn_with(fault)]})
    events, result = run_chat(server, "hi")
    assert result.error is not None and result.exit_code == 3
    assert retries_of(events) == [] and len(server.requests) == 1
    assert result.text == "All "


def test_a_body_closed_early_is_a_cut_off_stream_and_is_retried(mock):
    server = mock({"turns": [turn_with({"close": 3}, framing="close")]})
    events, result = run_chat(server, "hi")
    assert (result.error, result.text) == (None, "All good.")
    assert [e[2] for e in retries_of(events)] == ["stream cut off"]


def test_a_cut_after_a_tool_use_block_began_is_not_retried(mock):
    # Pieces: message_start, ping, content_block_start (tool_use): nothing shown, but a tool call began.
    turn = turn_with({"reset": 3}, tool_calls=[{"name": "add", "input": {"a": 1, "b": 2}}])
    server = mock({"turns": [turn]})
    events, result = run_chat(server, "hi")
    assert isinstance(result.error, TransportError)
    assert retries_of(events) == [] and len(server.requests) == 1


def test_a_cut_after_thinking_was_shown_is_not_retried(mock):
    server = mock({"turns": [turn_with({"reset": 4}, thinking="Hmm, let me see.", text="x")]})
    events, result = run_chat(server, "hi")
    assert result.error is not None and retries_of(events) == []


def test_garbage_in_the_stream_is_not_retried(mock):
    server = mock({"turns": [turn_with({"garbage": "data: {nope\n\n", "at": 1})]})
    events, result = run_chat(server, "hi")
    assert (result.error.type, retries_of(events), len(server.requests)) == ("malformed_stream", [], 1)


def test_a_read_timeout_before_the_first_byte_is_retried(mock):
    server = mock({"turns": [turn_with({"stall": 3})]})
    started = time.monotonic()
    events, result = run_chat(server, "hi", read_timeout=0.5)
    assert (result.error, result.text) == (None, "All good.")
    assert [e[2] for e in retries_of(events)] == ["timed out"]
    assert time.monotonic() - started < 2.5


def test_a_read_timeout_after_text_is_not_retried(mock):
    server = mock({"turns": [turn_with({"stall": 3, "at": 4})]})
    events, result = run_chat(server, "hi", read_timeout=0.5)
    assert (result.error.type, result.text, retries_of(events)) == ("timeout", "All ", [])


def test_a_stall_shorter_than_the_timeout_is_just_slow(mock):
    server = mock({"turns": [turn_with({"stall": 0.3, "at": 4})]})
    events, result = run_chat(server, "hi", read_timeout=2)
    assert (result.error, result.text, retries_of(events)) == (None, "All good.", [])


def test_a_retry_in_a_later_turn_resends_that_turn_exactly(mock, tmp_path):
    (tmp_path / "h.py").write_text("def add(a, b):\n    return a + b\n")
    (tmp_path / "t.yaml").write_text("tools:\n  - name: add\n    input_schema: {type: object}\n    handler: h.py:add\n")
    fault = {"error": {"status": 529}, "headers": {"retry-after-ms": "1"}}
    server = mock(
        {
            "turns": [
                {"tool_calls": [{"name": "add", "input": {"a": 1, "b": 2}}]},
                turn_with(fault, text="Sum: {result:add}"),
            ]
        }
    )
    events, result = run_chat(server, "hi", [tmp_path / "t.yaml"])
    assert (result.error, result.text, result.turns) == (None, "Sum: 3", 2)
    assert len(server.requests) == 3 and server.requests[1].raw == server.requests[2].raw
    assert len(retries_of(events)) == 1


def test_a_json_answer_that_is_an_error_is_retried(mock):
    body = json.dumps({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    server = mock({"turns": [{"raw": body, "content_type": "application/json", "faults": [None]}]})
    events, result = run_chat(server, "hi", retries=1)
    # The raw turn answers the same way every time: one retry, then the error.
    assert [e[2] for e in retries_of(events)] == ["overloaded (error event)"]
    assert (result.error.type, len(server.requests)) == ("overloaded_error", 2)


# ------------------------------------------------------------------ as a user sees it


def prompt_turn(*faults, **turn):
    return json.dumps(turn_with(*faults, **turn))


def test_each_retry_is_one_line_on_stderr(toolchat, mock):
    fault = {"error": {"status": 529}, "headers": {"retry-after-ms": "10"}}
    run = toolchat(prompt_turn(fault, {"reset": "headers"}), server=mock())
    assert (run.code, run.out) == (0, "All good.\n"), run
    lines = run.err.splitlines()
    assert lines[0] == "toolchat: overloaded (529), retrying in 0.01 s (attempt 2 of 3)"
    # The second wait is 1 s of backoff cut by up to 25 % at random: shown as 0.75 to 0.99, or as 1
    # when the cut is under 0.5 % (2 significant digits), which "starts with 0." failed about 1 in 50.
    shown = re.fullmatch(r"toolchat: connection failed, retrying in ([0-9.]+) s \(attempt 3 of 3\)", lines[1])
    assert shown and 0.75 <= float(shown.group(1)) <= 1.0, lines[1]
    assert len(lines) == 2


def test_retries_flag_environment_and_config(toolchat, mock, tmp_path):
    fault = {"error": {"status": 503}, "headers": {"retry-after-ms": "1"}}
    server = mock()
    run = toolchat("--retries", "0", prompt_turn(fault, text="one"), server=server)
    assert (run.code, run.err) == (3, "toolchat: error: HTTP 503 api_error: api_error\n")
    run = toolchat(prompt_turn(fault, fault, fault, text="env"), server=server, env={"TOOLCHAT_RETRIES": "3"})
    assert (run.code, run.out, run.err.count("retrying in")) == (0, "env\n", 3)
    config = tmp_path / "config" / "toolchat"
    config.mkdir(parents=True)
    (config / "config.yaml").write_text("retries: 1\n")
    run = toolchat(prompt_turn(fault, fault, text="config"), server=server)
    assert (run.code, run.err.count("retrying in")) == (3, 1)
    assert "(attempt 2 of 2)" in run.err


def test_quiet_hides_the_retry_lines(toolchat, mock):
    run = toolchat("-q", prompt_turn({"error": {"status": 529}, "headers": {"retry-after-ms": "1"}}), server=mock())
    assert (run.code, run.out, run.err) == (0, "All good.\n", "")


def test_json_output_stays_one_document_and_retries_go_to_stderr(toolchat, mock):
    run = toolchat("--json", prompt_turn({"error": {"status": 529}, "headers": {"retry-after-ms": "1"}}), server=mock())
    assert run.code == 0
    assert (run.json()["text"], run.json()["error"]) == ("All good.", None)
    assert run.err == "toolchat: overloaded (529), retrying in 0.001 s (attempt 2 of 3)\n"


def test_timeout_flag_retries_a_silent_server(toolchat, mock):
    run = toolchat("--timeout", "0.5", prompt_turn({"stall": 5}), server=mock())
    assert (run.code, run.out) == (0, "All good.\n"), run
    assert run.err.startswith("toolchat: timed out, retrying in 0.")


def test_the_refused_wait_is_in_the_error_line(toolchat, mock):
    run = toolchat(
        prompt_turn({"error": {"status": 429, "message": "Slow down"}, "headers": {"retry-after": "600"}}),
        server=mock(),
    )
    assert (run.code, run.err) == (
        3,
        "toolchat: error: HTTP 429 rate_limit_error: Slow down (the server "
        "asks to wait 600 s before retrying: not retried)\n",
    )


def test_a_refused_connection_is_retried_then_reported(toolchat):
    run = toolchat("--retries", "1", "hi", env={"TOOLCHAT_BASE_URL": "http://127.0.0.1:9"})
    lines = run.err.splitlines()
    assert run.code == 3 and len(lines) == 2
    assert lines[0].startswith("toolchat: connection failed, retrying in 0.")
    assert lines[1] == "toolchat: error: could not connect to 127.0.0.1:9: Connection refused"


@pytest.mark.parametrize(
    "fault, line",
    [
        ({"reset": "headers"}, "the connection to 127.0.0.1:PORT failed before a response: Connection reset by peer"),
        (
            {"close": "headers"},
            "the connection to 127.0.0.1:PORT failed before a response: Remote end closed connection without response",
        ),
        ({"reset": 5}, "the connection failed mid-response: Connection reset by peer"),
        ({"close": 5}, "the connection failed mid-response: the server closed it before the end of the response"),
        ({"stall": 5}, "no response from 127.0.0.1:PORT within 0.5 s"),
        ({"stall": 5, "at": 5}, "no data from the server for 0.5 s (--timeout)"),
    ],
    ids=[
        "reset-before-headers",
        "close-before-headers",
        "reset-mid-stream",
        "close-mid-stream",
        "silent-before-headers",
        "silent-mid-stream",
    ],
)
def test_connection_failures_are_one_plain_line(toolchat, mock, fault, line):
    server = mock()
    run = toolchat("--retries", "0", "--timeout", "0.5", prompt_turn(fault, text="hello there friend"), server=server)
    assert run.code == 3
    assert run.err == "toolchat: error: " + line.replace("PORT", str(server.port)) + "\n"
