"""The mock's rate limit: token buckets for requests, input and output tokens, as Anthropic runs
them (capacity refilled continuously up to the per-minute limit), with the real headers.

Every Messages response carries `anthropic-ratelimit-{requests,input-tokens,output-tokens}-
{limit,remaining,reset}` (reset: RFC 3339, when the bucket is full again); over the limit the
answer is 429 `rate_limit_error` with `retry-after` (whole seconds until there is room again).
"""

from __future__ import annotations

import math
import threading
import time
from datetime import datetime, timezone

KINDS = ("requests", "input_tokens", "output_tokens")


def _rfc3339(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Bucket:
    def __init__(self, limit: int, burst: int | None, now: float):
        self.limit = limit  # per minute
        self.capacity = float(burst if burst is not None else limit)
        self.level = self.capacity
        self.at = now

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.at) * self.limit / 60.0)
        self.at = now

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` fits (0 when it does now)."""
        need = min(amount, self.capacity) - self.level
        return 0.0 if need <= 0 else need * 60.0 / self.limit

    def headers(self, name: str, now: float) -> dict:
        full_in = max(0.0, (self.capacity - self.level) * 60.0 / self.limit)
        prefix = f"anthropic-ratelimit-{name}"
        return {
            f"{prefix}-limit": str(self.limit),
            f"{prefix}-remaining": str(max(0, int(self.level))),
            f"{prefix}-reset": _rfc3339(now + full_in),
        }


class RateLimit:
    """`limits`: {"requests": per minute, "input_tokens": per minute, "output_tokens": per minute}
    (any subset) and optionally "burst": the requests bucket's capacity (default: the limit, as
    the real API; a smaller burst makes a short run show the steady rate). Thread-safe."""

    def __init__(self, limits: dict, clock=time.monotonic, wall=time.time):
        unknown = set(limits) - {*KINDS, "burst"}
        if unknown:
            raise ValueError(f"rate_limit: unknown keys {sorted(unknown)}")
        self.clock, self.wall = clock, wall
        now = clock()
        self.buckets = {
            kind: _Bucket(int(limits[kind]), limits.get("burst") if kind == "requests" else None, now)
            for kind in KINDS
            if limits.get(kind)
        }
        for bucket in self.buckets.values():
            if bucket.limit <= 0:
                raise ValueError("rate_limit: limits must be positive")
        self.lock = threading.Lock()
        self.accepted = 0
        self.refused = 0

    def admit(self, input_tokens: int) -> tuple[bool, dict]:
        """Take one request (and its input tokens) if there is room: (admitted, headers). Refused:
        the headers include `retry-after`. Output tokens are only checked to be above zero (the
        real API estimates them); `spend` takes them after the answer is built."""
        with self.lock:
            now = self.clock()
            for bucket in self.buckets.values():
                bucket.refill(now)
            need = {"requests": 1, "input_tokens": input_tokens, "output_tokens": 1}
            wait = max((b.wait_for(need[k]) for k, b in self.buckets.items()), default=0.0)
            if wait > 0:
                self.refused += 1
                headers = self._headers(now)
                headers["retry-after"] = str(max(1, math.ceil(wait)))
                return False, headers
            for kind, bucket in self.buckets.items():
                if kind != "output_tokens":
                    bucket.level -= need[kind]
            self.accepted += 1
            return True, self._headers(now)

    def spend(self, output_tokens: int) -> dict:
        """The answer's output tokens taken; the headers to send with it."""
        with self.lock:
            now = self.clock()
            bucket = self.buckets.get("output_tokens")
            if bucket is not None:
                bucket.refill(now)
                bucket.level -= output_tokens  # may go below zero: the next requests wait
            return self._headers(now)

    def _headers(self, now: float) -> dict:
        wall = self.wall()
        return {
            k: v
            for kind, bucket in self.buckets.items()
            for k, v in bucket.headers(kind.replace("_", "-"), wall).items()
        }
