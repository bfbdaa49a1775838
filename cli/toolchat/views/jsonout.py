"""`--json`: one JSON document on stdout when the run ends, also when it fails."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from ..events import Finished
from ..text import dumps
from .plain import PlainView


class JsonView:
    def __init__(self, out: TextIO | None = None, err: TextIO | None = None, quiet: bool = False):
        self.out = out or sys.stdout
        # Tool traces still go to stderr for the person watching; stdout stays pure JSON.
        self.traces = PlainView(out=self.out, err=err, show_text=False, quiet=quiet)

    def handle(self, event: Any) -> None:
        self.traces.handle(event)
        if isinstance(event, Finished):
            self.out.write(dumps(event.result.to_json()) + "\n")
            self.out.flush()

    def close(self) -> None:
        """The run is over: nothing is left to release (Sink)."""
