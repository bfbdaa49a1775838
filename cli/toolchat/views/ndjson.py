"""`--stream-json`: one JSON event per line on stdout, flushed as it happens.

The contract (README "Scripting", cli/toolchat/schemas/event.schema.json): the first line is `start` and
carries `version`; the last is `result`, which is the `--json` document plus `"type": "result"`.
In between: `text`, `thinking`, `tool_call`, `tool_result`, `turn`, `retry`.
"""

from __future__ import annotations

import sys
from typing import Any, Sequence, TextIO

from ..events import Finished, Result, Retry, Start, TextDelta, ThinkingDelta, ToolCall, ToolResult, TurnEnd
from ..text import dumps
from .plain import PlainView

# Bump when a field is removed or changes meaning; new fields and event types may appear without it.
VERSION = 1


def encode(event: dict) -> str:
    """One event as one line of JSON (no trailing newline).

    text.dumps escapes U+2028, U+2029 and U+0085, which JSON allows raw inside strings but line
    splitters (Python's str.splitlines, some JS readers) treat as line ends: every event is exactly
    one line for any reader. It escapes the C1 and BIDI controls too, so the line is inert on a
    terminal.
    """
    return dumps(event, default=str)


def start_event(model: str, tools: list[str], conversation_id: str | None = None) -> dict:
    return {
        "type": "start",
        "version": VERSION,
        "model": model,
        "tools": list(tools),
        "conversation_id": conversation_id,
    }


def start_line(model: str, tools: Sequence[str] = (), conversation_id: str | None = None) -> str:
    """The JSON text of a `start` event, no newline."""
    return encode(start_event(model, list(tools), conversation_id))


def result_line(result: Result) -> str:
    """The JSON text of the final `result` event (the `--json` document plus its type), no newline."""
    return encode({"type": "result", **result.to_json()})  # what event_of(Finished(result)) is


def event_of(event: Any) -> dict | None:
    """The NDJSON object for a loop event, or None for events the stream does not carry."""
    if isinstance(event, TextDelta):
        return {"type": "text", "text": event.text}
    if isinstance(event, ThinkingDelta):
        return {"type": "thinking", "text": event.text}
    if isinstance(event, ToolCall):
        return {"type": "tool_call", "id": event.id, "name": event.name, "input": event.input}
    if isinstance(event, ToolResult):
        return {
            "type": "tool_result",
            "id": event.id,
            "name": event.name,
            "output": event.output,
            "is_error": event.is_error,
            "duration_ms": event.duration_ms,
        }
    if isinstance(event, TurnEnd):
        return {"type": "turn", "turn": event.turn, "stop_reason": event.stop_reason, "usage": event.usage}
    if isinstance(event, Retry):
        attempts = getattr(event, "attempts", 0) or None  # 0: not known
        return {
            "type": "retry",
            "attempt": event.attempt,
            "attempts": attempts,
            "delay": event.delay,
            "reason": event.reason,
        }
    if isinstance(event, Start):
        return start_event(event.model, event.tools, event.conversation_id)
    if isinstance(event, Finished):
        return {"type": "result", **event.result.to_json()}
    return None  # TurnStart, BlockDone: implied by the lines around them


class NdjsonView:
    def __init__(self, out: TextIO | None = None, err: TextIO | None = None, quiet: bool = False):
        self.out = out or sys.stdout
        # The same stderr traces as --json (for a person watching); -q silences them.
        self.traces = PlainView(out=self.out, err=err, show_text=False, quiet=quiet)

    def handle(self, event: Any) -> None:
        self.traces.handle(event)
        data = event_of(event)
        if data is None:
            return
        # One write per line: a Ctrl-C between two writes cannot split a line.
        self.out.write(encode(data) + "\n")
        self.out.flush()

    def close(self) -> None:
        """The run is over: nothing is left to release (Sink)."""
