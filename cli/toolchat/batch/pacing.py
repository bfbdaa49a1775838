"""Pacing a whole batch by the server's rate-limit headers, so it runs just under the limit.

Every answer's `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,
reset}` (or OpenAI's `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`) updates a model of
each bucket: its level (remaining, minus the requests sent since that are not in it yet) refills
at limit per minute. A request goes when every bucket has room for it; while a bucket is low the
requests are spaced at its refill rate, and when it fills again they go at once. A 429 closes
the gate for every worker until its `retry-after` has passed, and the request waits its turn
again: 429s never turn into a retry storm, and they do not use up the request's retries.
"""

from __future__ import annotations

import re
import threading
import time
from datetime import datetime

from ..errors import APIError

_ANTHROPIC = re.compile(r"^anthropic-ratelimit-(requests|tokens|input-tokens|output-tokens)-(limit|remaining|reset)$")
_OPENAI = re.compile(r"^x-ratelimit-(limit|remaining|reset)-(requests|tokens)$")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
MAX_429_WAITS = 50  # a server that never lets a request through still ends the line


def _seconds_until(value: str, now: float) -> float | None:
    """A reset: RFC 3339 time (Anthropic) or a duration like `6s`, `1m30s`, `120ms` (OpenAI)."""
    value = value.strip()
    parts = _DURATION.findall(value)
    if parts and "".join(n + u for n, u in parts) == value:
        scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
        return sum(float(n) * scale[u] for n, u in parts)
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() - now
    except ValueError:
        return None


def read_headers(headers) -> dict:
    """{bucket: {"limit", "remaining", "reset"}} from a response's headers (a bucket: requests,
    tokens, input-tokens, output-tokens)."""
    found: dict = {}
    now = time.time()
    for name, value in headers.items():
        name = str(name).lower()
        match = _ANTHROPIC.match(name)
        if match:
            bucket, field = match.groups()
        else:
            match = _OPENAI.match(name)
            if not match:
                continue
            field, bucket = match.groups()
        if field == "reset":
            parsed = _seconds_until(str(value), now)
        else:
            try:
                parsed = float(value)
            except ValueError:
                parsed = None
        if parsed is not None:
            found.setdefault(bucket, {})[field] = parsed
    return {b: v for b, v in found.items() if "limit" in v and "remaining" in v and v["limit"] > 0}


class _Bucket:
    def __init__(self, limit: float, remaining: float, now: float):
        self.limit = limit
        self.level = remaining
        self.at = now
        # How full the bucket gets: the limit on Anthropic's API, but a gateway or proxy may allow
        # a smaller burst; the most ever seen remaining (plus the request that was counted) tells.
        self.capacity = min(limit, remaining + 1)

    def rate(self) -> float:
        return self.limit / 60.0  # Anthropic's and OpenAI's limits are per minute

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.at) * self.rate())
        self.at = now


class Pacer:
    """Shared by every worker of a batch. `acquire()` before a request, `observe(headers)` after
    an answer, `refused(retry_after)` after a 429."""

    def __init__(self, clock=time.monotonic, sleep=time.sleep):
        self.clock, self.sleep = clock, sleep
        self.lock = threading.Lock()
        self.buckets: dict[str, _Bucket] = {}
        self.gate = 0.0  # no request before this moment (a 429's retry-after)
        self.cost = {"tokens": 1.0, "input-tokens": 1.0, "output-tokens": 1.0}  # per request, averaged
        self.in_flight = 0
        self.answered = False  # an answer (with or without rate-limit headers) has come
        self.requests = 0
        self.refusals = 0
        self.waited = 0.0

    def acquire(self) -> None:
        while True:
            with self.lock:
                now = self.clock()
                wait = self.gate - now
                if not self.answered and self.in_flight:
                    wait = max(wait, 0.02)  # slow start: the first answer tells the limits
                for name, bucket in self.buckets.items():
                    bucket.refill(now)
                    need = 1.0 if name == "requests" else min(self.cost[name], bucket.limit)
                    if bucket.level < need:
                        wait = max(wait, (need - bucket.level) / bucket.rate())
                if wait <= 0:
                    for name, bucket in self.buckets.items():
                        bucket.level -= 1.0 if name == "requests" else self.cost[name]
                    self.in_flight += 1
                    self.requests += 1
                    return
                self.waited += wait
            self.sleep(min(wait, 5.0))

    def release(self) -> None:
        with self.lock:
            self.in_flight = max(0, self.in_flight - 1)

    def spent(self, usage: dict) -> None:
        """A turn's usage: the running estimate of what one request costs in tokens."""
        inp, out = float(usage.get("input_tokens") or 0), float(usage.get("output_tokens") or 0)
        with self.lock:
            for name, value in (("input-tokens", inp), ("output-tokens", out), ("tokens", inp + out)):
                self.cost[name] = 0.8 * self.cost[name] + 0.2 * max(1.0, value)

    def observe(self, headers) -> None:
        """An answer came: its headers say where each bucket stands (the requests still in flight
        are not counted in it yet)."""
        seen = read_headers(headers)
        with self.lock:
            self.answered = True
            now = self.clock()
            others = max(0, self.in_flight - 1)
            for name, values in seen.items():
                bucket = self.buckets.get(name)
                if bucket is None or bucket.limit != values["limit"]:
                    bucket = self.buckets[name] = _Bucket(values["limit"], values["remaining"], now)
                bucket.refill(now)
                bucket.capacity = max(bucket.capacity, min(bucket.limit, values["remaining"] + 1))
                spent = others * (1.0 if name == "requests" else self.cost[name])
                bucket.level = values["remaining"] - spent
                bucket.at = now

    def refused(self, retry_after: float | None) -> None:
        """A 429: nobody sends until the server's wait is over (1 s when it named none)."""
        with self.lock:
            self.refusals += 1
            self.answered = True
            now = self.clock()
            delay = retry_after if retry_after is not None and 0 < retry_after <= 600 else 1.0
            self.gate = max(self.gate, now + delay)
            bucket = self.buckets.get("requests")
            if bucket is not None:
                bucket.level = min(bucket.level, 0.0)
                bucket.at = now


class PacedTransport:
    """A transport (transport.Transport) whose sends wait for the pacer; a 429 waits and goes
    again (up to MAX_429_WAITS times) instead of failing the line."""

    def __init__(self, inner, pacer: Pacer):
        self.inner = inner
        self.pacer = pacer

    def send(self, body: dict):
        for _ in range(MAX_429_WAITS):
            self.pacer.acquire()
            try:
                reply = self.inner.send(body)
            except APIError as exc:
                self.pacer.release()
                if exc.status == 429 and exc.error_code != "enforced_spend_limit_reached":
                    self.pacer.refused(exc.retry_after)
                    continue
                raise
            self.pacer.release()
            response = getattr(reply, "response", None)
            if response is not None:
                self.pacer.observe(response.headers)
            return reply
        raise APIError(
            f"HTTP 429 rate_limit_error: still refused after {MAX_429_WAITS} waits", type="rate_limit_error", status=429
        )

    def scrubbed(self, error):
        return self.inner.scrubbed(error)

    def close(self) -> None:
        self.inner.close()
