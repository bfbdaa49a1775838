"""Retry policy: which failures are worth another attempt, and how long to wait first. Pure functions.

The rules follow the official SDKs (PROTOCOL.md §5): 408, 409, 429 and every 5xx (529 included) and
connection failures are retried; an `x-should-retry: true|false` header overrides the status; the
wait is the server's `retry-after-ms` or `retry-after` when it gives one (for a 429 without them,
OpenAI's `x-ratelimit-reset-*`), else an exponential backoff with jitter. Two additions: a spend-limit or billing failure is never retried (it will not heal),
and a server asking for more than MAX_SERVER_DELAY seconds is not waited for (the run fails at once
and says why). The chat loop decides separately whether anything of the turn was already shown.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Callable, Mapping

from .errors import APIError

RETRY_STATUSES = frozenset({408, 409, 429})  # and every status >= 500
BACKOFF_START = 0.5  # seconds before the first retry, doubling for each one after
BACKOFF_CAP = 8.0
JITTER = 0.25  # the backoff is cut by up to this fraction, at random
MAX_SERVER_DELAY = 60.0  # a retry-after longer than this is not waited for

# Error types that a stream `error` event (or a JSON error body with status 200) may carry and that
# heal by themselves; any other type (invalid_request_error, ...) is final.
RETRY_TYPES = frozenset({"overloaded_error", "api_error", "rate_limit_error", "timeout_error"})
# Failures without an HTTP status that are worth a retry: connection failures and timeouts
# (TransportError) and a stream that stopped early (StreamError). A malformed stream is not: a
# server that sends garbage once tends to send it again.
RETRY_KINDS = frozenset({"connection_error", "timeout", "truncated_stream"})

# A spend limit, an exhausted quota or a billing problem: the error type / code (Anthropic's
# error.details.error_code, an OpenAI-shaped gateway's error.code), or these words in the message.
SPEND_CODES = frozenset(
    {"enforced_spend_limit_reached", "billing_error", "insufficient_quota", "billing_hard_limit_reached"}
)
SPEND_WORDS = re.compile(r"spend(?:ing)? limit|credit balance|insufficient[ _]quota|billing", re.I)

_LABELS = {
    408: "request timeout",
    409: "conflict",
    429: "rate limited",
    500: "server error",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
    529: "overloaded",
}
_TYPE_LABELS = {
    "overloaded_error": "overloaded",
    "rate_limit_error": "rate limited",
    "api_error": "server error",
    "timeout_error": "server timeout",
    "connection_error": "connection failed",
    "timeout": "timed out",
    "truncated_stream": "stream cut off",
}


@dataclass(frozen=True)
class Decision:
    """What to do about one failed attempt."""

    retry: bool
    delay: float = 0.0  # seconds to wait before the next attempt
    reason: str = ""  # a few words for the retry line: "overloaded (529)"
    note: str = ""  # why a failure of a retryable kind is not retried, for the error message


def decide(error: BaseException, failed: int, retries: int, rand: Callable[[], float] | None = None) -> Decision:
    """Retry `error`, the failure of attempt number `failed` (1 = the first), given `retries`?"""
    reason = describe(error)
    if spend_limited(error):
        return Decision(False, reason=reason, note="a spend limit or billing problem: not retried")
    if not retryable(error):
        return Decision(False, reason=reason)
    if failed > retries:
        return Decision(False, reason=reason)
    asked = getattr(error, "retry_after", None)
    if asked is not None and asked > MAX_SERVER_DELAY:
        return Decision(False, reason=reason, note=f"the server asks to wait {asked:g} s before retrying: not retried")
    if asked is not None and asked > 0:
        return Decision(True, asked, reason)
    return Decision(True, backoff(failed, rand), reason)


def retryable(error: BaseException) -> bool:
    """Whether this kind of failure may heal by itself (without looking at the attempt count)."""
    return not spend_limited(error) and _heals(error)


def _heals(error: BaseException) -> bool:
    """retryable() once a spend limit is ruled out."""
    should = getattr(error, "should_retry", None)
    if should is not None:
        return bool(should)
    status = getattr(error, "status", None)
    if status is not None and status >= 400:
        return status in RETRY_STATUSES or status >= 500
    kind = getattr(error, "type", None)
    if isinstance(error, APIError):
        return kind in RETRY_TYPES  # an error event, or an error body sent with status 200
    return kind in RETRY_KINDS


def spend_limited(error: BaseException) -> bool:
    """A failure that will not heal by waiting: spend limit reached, quota exhausted, billing.

    Precisely: the error type or error code (details.error_code, or an OpenAI-shaped `code`) is one
    of SPEND_CODES, or the message mentions a spend(ing) limit, the credit balance, insufficient
    quota or billing.
    """
    codes = {getattr(error, "type", None), getattr(error, "error_code", None)}
    if codes & SPEND_CODES:
        return True
    status = getattr(error, "status", None)
    kind = str(getattr(error, "type", None) or "")
    if status == 429 or status == 402 or kind in ("rate_limit_error", "billing_error"):
        return bool(SPEND_WORDS.search(str(getattr(error, "message", "") or "")))
    return False


def backoff(failed: int, rand: Callable[[], float] | None = None) -> float:
    """0.5 s before the first retry, doubling up to 8 s, cut by up to 25 % at random."""
    if rand is None:
        import random  # only when a retry is due: the module costs more than most of a run

        rand = random.random
    delay = min(BACKOFF_START * 2 ** max(0, failed - 1), BACKOFF_CAP)
    return delay * (1 - JITTER * rand())


def server_delay(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """The wait the server asks for, in seconds: `retry-after-ms`, else `retry-after` (seconds or
    an HTTP date). None when neither is there or parses; the value may be <= 0 or very long."""
    lower = {str(k).lower(): str(v) for k, v in headers.items()}
    millis = _number(lower.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000
    value = lower.get("retry-after")
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return seconds
    from email.utils import parsedate_to_datetime  # the email package: only for an HTTP date

    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return when.timestamp() - (time.time() if now is None else now)


# OpenAI's rate-limit headers (sent by OpenAI and the gateways that copy it): how much of each limit
# is left and when it resets, as a Go duration ("1s", "6m0s", "20ms", "1h2m3.5s").
_RATELIMIT = (
    ("x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"),
    ("x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"),
)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def ratelimit_delay(headers: Mapping[str, str]) -> float | None:
    """For a 429 without retry-after: the wait until the exhausted limit resets, from OpenAI's
    `x-ratelimit-reset-requests` / `-tokens` (a limit whose `x-ratelimit-remaining-*` is above 0 was
    not the one hit). The official openai SDK reads only retry-after(-ms); these headers say the
    same thing where a server sends no retry-after. None when they do not say."""
    lower = {str(k).lower(): str(v) for k, v in headers.items()}
    waits = []
    for remaining, reset in _RATELIMIT:
        left = _number(lower.get(remaining))
        if reset in lower and (left is None or left <= 0):
            wait = _duration(lower[reset])
            if wait is not None:
                waits.append(wait)
    return max(waits) if waits else None


def _duration(text: str) -> float | None:
    text = text.strip()
    seconds = _number(text)
    if seconds is not None:
        return seconds  # a bare number: seconds
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _UNITS[u] for n, u in parts)


def should_retry_header(headers: Mapping[str, str]) -> bool | None:
    """`x-should-retry: true|false` as a bool; None when absent or anything else."""
    for name, value in headers.items():
        if str(name).lower() == "x-should-retry":
            text = str(value).strip().lower()
            return True if text == "true" else False if text == "false" else None
    return None


def describe(error: BaseException) -> str:
    """A few words for the retry line: 'overloaded (529)', 'connection failed'."""
    status = getattr(error, "status", None)
    kind = str(getattr(error, "type", None) or "")
    if status is not None and status >= 400:
        label = _LABELS.get(status) or _TYPE_LABELS.get(kind) or ("server error" if status >= 500 else "HTTP error")
        return f"{label} ({status})"
    label = _TYPE_LABELS.get(kind, kind or "error")
    if isinstance(error, APIError):
        return f"{label} (error event)"
    return label


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if value == value and value not in (float("inf"), float("-inf")) else None
