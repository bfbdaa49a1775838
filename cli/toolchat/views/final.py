"""The view for --schema and -x/--extract: the answer is printed once, when the run ends, as
the parsed JSON object or as the fenced code blocks of the answer; tool traces stay on stderr."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from ..events import Finished
from ..structured import extracted
from ..text import dumps, neutralise
from .plain import PlainView


class FinalView:
    def __init__(self, settings, out: TextIO | None = None, err: TextIO | None = None):
        self.out = out or sys.stdout
        self.settings = settings
        self.traces = PlainView(
            out=self.out,
            err=err,
            show_text=False,
            quiet=settings.quiet,
            spinners=settings.output == "auto",
            summary=True,
            color=settings.color,
        )

    def handle(self, event: Any) -> None:
        if isinstance(event, Finished):
            shown = self.answer(event.result)
            if shown:
                self.out.write(shown if shown.endswith("\n") else shown + "\n")
                self.out.flush()
        self.traces.handle(event)

    def answer(self, result) -> str:
        """What stdout gets: the valid structured answer as JSON (nothing for one that is not, see
        --json), or the code blocks of the answer (all of it when it has none, as llm's -x does)."""
        s = self.settings
        if s.schema is not None:
            return dumps(result.output, indent=2) if result.output is not None and not result.incomplete else ""
        if result.error is not None:
            return ""
        text = extracted(result.text, last=s.extract_last)
        text = result.text if text is None else text
        return text if s.raw else neutralise(text)

    def close(self) -> None:
        """The run is over: nothing is left to release (Sink)."""

    def paused(self):
        return self.traces.paused()
