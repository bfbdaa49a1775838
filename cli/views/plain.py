"""The plain view: answer text to stdout as it arrives, one-line tool traces on stderr."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from ..events import Finished, TextDelta, ToolCall, ToolResult, TurnStart

TRACE_WIDTH = 200


class PlainView:
    def __init__(self, out: TextIO | None = None, err: TextIO | None = None, show_text: bool = True,
                 quiet: bool = False):
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.show_text = show_text
        self.quiet = quiet  # no traces on stderr
        self._printed = False  # any answer text written
        self._at_line_start = True
        self._new_turn = False

    def handle(self, event: Any) -> None:
        if isinstance(event, TextDelta):
            if not self.show_text:
                return
            if self._new_turn and self._printed:
                # Text of a later turn starts on a line of its own, a blank line after the earlier one.
                self.out.write("\n" if self._at_line_start else "\n\n")
            self._new_turn = False
            self.out.write(event.text)
            self.out.flush()
            self._printed = True
            self._at_line_start = event.text.endswith("\n")
        elif isinstance(event, TurnStart):
            self._new_turn = event.turn > 1
        elif isinstance(event, ToolCall):
            self._trace(f"→ {event.name} {one_line(compact_json(event.input))}")
        elif isinstance(event, ToolResult):
            status = "error" if event.is_error else "ok"
            self._trace(f"← {event.name} {status} ({event.duration_ms} ms): {one_line(event.output)}")
        elif isinstance(event, Finished):
            self.finish()

    def finish(self) -> None:
        if self.show_text and self._printed and not self._at_line_start:
            self.out.write("\n")
            self._at_line_start = True
        self.out.flush()

    def _trace(self, line: str) -> None:
        if self.quiet:
            return
        if self._printed and not self._at_line_start and _same_stream(self.out, self.err):
            self.err.write("\n")
            self._at_line_start = True
        self.err.write(line + "\n")
        self.err.flush()


def compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)


def one_line(text: str, width: int = TRACE_WIDTH) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _same_stream(a: TextIO, b: TextIO) -> bool:
    try:
        import os

        return os.path.samestat(os.fstat(a.fileno()), os.fstat(b.fileno()))
    except (OSError, ValueError, AttributeError):
        return False
