"""The mock's prompt cache: Anthropic's accounting of `cache_control` breakpoints, so tests and
benchmarks can measure what a client's breakpoints would save.

As the API documents it: a request is a sequence of blocks, tools -> system -> messages; a
breakpoint (a block with cache_control) ends a prefix. For each breakpoint the cache is looked up at
that block and at each of the 20 blocks before it; the longest prefix found (and still alive) is
read (`cache_read_input_tokens`, its lifetime refreshed). Every breakpoint past it whose prefix has
at least `min_tokens` tokens is written, with its lifetime (5 minutes unless `"ttl": "1h"`): the
tokens from the read prefix up to the last written breakpoint are `cache_creation_input_tokens`
(split by lifetime in `cache_creation`). The rest is `input_tokens`. A prefix shorter than the
minimum is silently not cached. Tokens are the mock's tokens: words (model.count_words).

The rules on breakpoints are checked like the API does (400s): at most 4, each
`{"type": "ephemeral"}` with an optional ttl of "5m" or "1h", 1h ones before 5m ones, none on
thinking blocks or empty text blocks.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from typing import Any, Callable

from .validate import invalid

MAX_BREAKPOINTS = 4
LOOKBACK = 20  # blocks looked at before each breakpoint
TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}
DEFAULT_MIN_TOKENS = 1024  # Claude Sonnet 4.x's minimum cacheable prompt


def segments(body: dict) -> list[tuple[dict, dict | None]]:
    """The request as (block without cache_control, cache_control or None), in prefix order."""
    out: list[tuple[dict, dict | None]] = []

    def add(where: str, block: Any) -> None:
        if isinstance(block, str):
            block = {"type": "text", "text": block}
        if not isinstance(block, dict):
            return
        mark = block.get("cache_control")
        plain = {k: v for k, v in block.items() if k != "cache_control"}
        out.append(({"at": where, **plain}, mark))

    for tool in body.get("tools") or []:
        add("tools", tool)
    system = body.get("system")
    for block in [system] if isinstance(system, str) and system else system or []:
        add("system", block)
    for n, message in enumerate(body.get("messages") or []):
        content = message.get("content") if isinstance(message, dict) else None
        role = message.get("role") if isinstance(message, dict) else None
        for m, block in enumerate([content] if isinstance(content, str) else content or []):
            # A message boundary is part of the prefix: the same blocks split differently differ.
            add(f"{role}:{'start' if m == 0 else 'more'}", block)
    return out


def check_breakpoints(body: dict) -> None:
    """The API's rules on cache_control (400 invalid_request_error otherwise)."""
    marks = []
    for block, mark in segments(body):
        if mark is None:
            continue
        if not isinstance(mark, dict) or mark.get("type") != "ephemeral":
            raise invalid("cache_control.type: Input should be 'ephemeral'")
        extra = set(mark) - {"type", "ttl"}
        if extra:
            raise invalid(f"cache_control.ephemeral.{sorted(extra)[0]}: Extra inputs are not permitted")
        if mark.get("ttl", "5m") not in TTL_SECONDS:
            raise invalid("cache_control.ephemeral.ttl: Input should be '5m' or '1h'")
        if block.get("type") in ("thinking", "redacted_thinking"):
            raise invalid(f"cache_control cannot be set on {block['type']} blocks")
        if block.get("type") == "text" and not str(block.get("text") or "").strip():
            raise invalid("cache_control cannot be set for empty text blocks")
        marks.append(mark.get("ttl", "5m"))
    if len(marks) > MAX_BREAKPOINTS:
        raise invalid(f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {len(marks)}.")
    seen_short = False
    for ttl in marks:
        if ttl == "5m":
            seen_short = True
        elif seen_short:
            raise invalid(
                "a ttl='1h' cache_control block must not come after a ttl='5m' "
                "cache_control block (longer lifetimes first)"
            )


class PromptCache:
    """Entries by prefix digest, with expiry times on `clock` (seconds; tests may replace it)."""

    def __init__(
        self,
        min_tokens: int = DEFAULT_MIN_TOKENS,
        clock: Callable[[], float] = time.monotonic,
        count: Callable[[Any], int] | None = None,
    ):
        self.min_tokens = min_tokens
        self.clock = clock
        self._count = count
        self._entries: dict[str, tuple[float, str]] = {}  # digest -> (expiry, ttl)
        self._lock = threading.Lock()

    def account(self, body: dict) -> dict:
        """The input side of `usage` for this request (checks the breakpoints first), and the
        cache read and written as the API would."""
        from .model import count_words

        count = self._count or count_words
        check_breakpoints(body)
        parts = segments(body)
        digest = hashlib.sha256(json.dumps(body.get("model"), ensure_ascii=False).encode())
        keys, cumulative, total = [], [], 0
        for block, _ in parts:
            digest.update(json.dumps(block, sort_keys=True, ensure_ascii=False).encode())
            keys.append(digest.copy().hexdigest())
            total += count({k: v for k, v in block.items() if k != "at"})
            cumulative.append(total)
        marks = [(i, mark.get("ttl", "5m")) for i, (_, mark) in enumerate(parts) if mark is not None]
        with self._lock:
            now = self.clock()
            read = -1
            for position, _ in marks:
                for p in range(position, max(-1, position - LOOKBACK - 1), -1):
                    entry = self._entries.get(keys[p])
                    if entry is not None and entry[0] > now:
                        read = max(read, p)
                        break
            if read >= 0:
                expiry, ttl = self._entries[keys[read]]
                self._entries[keys[read]] = (max(expiry, now + TTL_SECONDS[ttl]), ttl)
            written = {"5m": 0, "1h": 0}
            start = cumulative[read] if read >= 0 else 0
            for position, ttl in marks:
                if position <= read or cumulative[position] < self.min_tokens:
                    continue
                self._entries[keys[position]] = (now + TTL_SECONDS[ttl], ttl)
                written[ttl] += cumulative[position] - start
                start = cumulative[position]
            self._expire(now)
        read_tokens = cumulative[read] if read >= 0 else 0
        created = written["5m"] + written["1h"]
        return {
            "input_tokens": max(0, total - read_tokens - created),
            "cache_creation_input_tokens": created,
            "cache_read_input_tokens": read_tokens,
            "cache_creation": {"ephemeral_5m_input_tokens": written["5m"], "ephemeral_1h_input_tokens": written["1h"]},
        }

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _expire(self, now: float) -> None:
        if len(self._entries) > 10_000:  # a long-running mock server does not grow for ever
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
