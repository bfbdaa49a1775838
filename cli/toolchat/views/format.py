"""What the views write about a run besides the answer: retry lines, the summary line; and whether a
stream is a terminal. Shared by the plain and live views, so neither has to import the other for it."""

from __future__ import annotations

from typing import TextIO

from ..events import Retry
from ..text import one_line


def retry_line(event: Retry) -> str:
    """`toolchat: overloaded (529), retrying in 1.2 s (attempt 2 of 3)`."""
    delay = f"{event.delay:.1f}" if event.delay >= 1 else f"{event.delay:.2g}"
    of = f" of {event.attempts}" if event.attempts else ""
    return f"toolchat: {one_line(event.reason)}, retrying in {delay} s (attempt {event.attempt}{of})"


def summary(result, seconds: float) -> str:
    """`model · 2 turns · 3 tools · 812 in (75% cached) / 96 out tokens · $0.0042 · 1.4 s` (tools:
    calls run or refused; cached: the share of input read from the prompt cache; the cost when
    the model's price is known)."""
    usage = result.usage or {}
    tokens_in = sum(
        _count(usage.get(key)) for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )
    read = _count(usage.get("cache_read_input_tokens"))
    cached = f" ({100 * read / tokens_in:.0f}% cached)" if read and tokens_in else ""
    cost = usage.get("cost_usd")
    price = f" · ${cost:.4f}" if isinstance(cost, (int, float)) and not isinstance(cost, bool) else ""
    calls = len(result.tool_calls)
    return (
        f"{one_line(result.model)} · {result.turns} turn{'s' * (result.turns != 1)} · "
        f"{calls} tool{'s' * (calls != 1)} · {tokens_in:,} in{cached} / "
        f"{_count(usage.get('output_tokens')):,} out tokens{price} · {seconds:.1f} s"
    )


def _count(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def is_terminal(stream: TextIO) -> bool:
    """Whether `stream` is a terminal (False for anything that cannot say)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
