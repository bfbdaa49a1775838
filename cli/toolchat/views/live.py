"""The live view (stdout is a terminal): the answer rendered as markdown while it streams, tool
activity with spinners, thinking dimmed, and a summary line.

Bounded cost on long answers: the stream is cut into top-level markdown blocks (markdown.py). A
finished block is rendered and printed once into the normal scrollback; only the unfinished block
is redrawn in place, at most REFRESH_PER_SECOND times a second, by one painter thread, and it is
never taller than the screen (a long code block goes out in chunks, a long list at its items; any
other block shows its last lines until it is finished and printed whole). So nothing is cropped,
duplicated or lost, and the work per token does not grow with the length of the answer.

One part is live at a time (the answer on stdout, thinking or tool spinners on stderr), so the two
streams never interleave on a shared terminal.

rich draws every line (markdown.py: rich's Console, Text, Table, Syntax; rich's Spinner in activity.py); the
redraw in place is toolchat's own (_Region): rich.live re-renders the whole renderable each frame
and crops what is taller than the screen, which would break both promises above. Untrusted text
(the answer, thinking, tool names, inputs and outputs, the summary) reaches rich only through
markdown.safe_text / safe_line, which neutralise it (text.neutralise) and dim the escapes.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

from ..events import BlockDone, Finished, Retry, TextDelta, ThinkingDelta, ToolCall, ToolResult, TurnEnd, TurnStart
from ..text import neutralise
from .activity import _Activity, _line, _Painter, _Region, _Screen
from .markdown import Block, LineBlocks, MarkdownBlocks, Theme, render, safe_line
from .plain import PlainView, is_terminal, retry_line, summary


class _Pane:
    """A stream of blocks on one region: finished blocks printed once, the last one live."""

    def __init__(self, region: _Region, screen: _Screen, splitter, draw: Callable[[Block, int], list[str]]):
        self.region = region
        self.screen = screen
        self.splitter = splitter
        self.draw = draw  # block, width -> lines
        self.queue: list[Block] = []  # finished, not printed yet
        self.dirty = False
        self.started = False  # printed something since the last flush

    def feed(self, text: str, rows: int) -> None:
        if isinstance(self.splitter, MarkdownBlocks):
            self.splitter.chunk_lines = max(2, min(16, rows // 2))
        self.queue += self.splitter.feed(text)
        self.dirty = True

    def wants_paint(self) -> bool:
        return self.dirty

    def paint(self) -> None:
        columns, rows = self.region.size()
        width = columns - 1
        printed = self._printed(width)
        live: list[str] = []
        tail = self.splitter.tail()
        if tail is not None:
            live = self.draw(tail, width)
            if self._gap(tail):
                live.insert(0, "")
            live = live[-max(1, rows - 3) :]  # never taller than the screen
        self.region.draw(printed, live)
        self.dirty = False

    def flush(self) -> None:
        """The stream is over (or was stopped): print what is left, once, and stop being live."""
        self.queue += self.splitter.close()
        self.region.draw(self._printed(self.region.size()[0] - 1), [])
        self.started = False
        self.dirty = False

    def clear(self) -> None:
        """Take the live lines off the screen (they come back at the next paint)."""
        self.region.draw([], [])
        self.dirty = True

    def _gap(self, block: Block, lines: Sequence[str] = ()) -> bool:
        """A blank line before `block`: between blocks, unless it continues the one before."""
        blank_before = lines[-1] == "" if lines else self.screen.blank
        anything_before = bool(lines) or self.screen.printed
        return anything_before and not blank_before and not (block.joined and self.started)

    def _printed(self, width: int) -> list[str]:
        lines: list[str] = []
        for block in self.queue:
            if self._gap(block, lines):
                lines.append("")
            lines += self.draw(block, width)
            self.started = True
        self.queue = []
        self.screen.wrote(lines)
        return lines


class LiveView:
    """The view for a terminal: events in, markdown and tool activity out."""

    def __init__(self, settings, out=None, err=None, clock: Callable[[], float] = time.monotonic):
        self.quiet = settings.quiet
        self.clock = clock
        self.started = clock()
        out, err = out or sys.stdout, err or sys.stderr
        # A dumb terminal can neither move the cursor nor show styles: finished blocks, plain.
        smart = os.environ.get("TERM") != "dumb"
        self.out = _Region(out, smart)
        self.err = _Region(err, smart)
        color = settings.color != "never"
        self.theme = Theme(color=color, unicode=self.out.unicode, styled=smart)
        self.lock = threading.RLock()
        self.screen = _Screen()
        self.text = _Pane(
            self.out, self.screen, MarkdownBlocks(), lambda block, width: render(block, width, self.theme)
        )
        # Thinking and tool activity need a terminal on stderr; without one, plain trace lines.
        self.fancy_err = is_terminal(err) and not self.quiet
        err_theme = Theme(color=color, unicode=self.err.unicode, styled=smart)
        self.thinking = _Pane(self.err, self.screen, LineBlocks(), lambda block, width: render(block, width, err_theme))
        self.activity = _Activity(self.err, self.screen, err_theme)
        self.traces = PlainView(out=out, err=err, show_text=False, quiet=self.quiet)
        self.active = None  # the part drawn live now: text, thinking or activity
        self._painter: _Painter | None = None
        self._rows = self.out.size()[1]

    def handle(self, event: Any) -> None:
        if isinstance(event, Finished):
            self.finish(event.result)
            return
        with self.lock:
            if isinstance(event, TextDelta):
                if self.active is self.thinking:
                    self._flush(self.thinking)
                self.text.feed(event.text, self._rows)
                self._show(self.text)
            elif isinstance(event, ThinkingDelta):
                if self.fancy_err:
                    self._flush(self.text)
                    self.thinking.feed(event.text, self._rows)
                    self._show(self.thinking)
            elif isinstance(event, BlockDone):
                kind = event.block.get("type")
                if kind == "thinking" and self.fancy_err:
                    self._flush(self.thinking)
                elif kind == "redacted_thinking" and self.fancy_err:
                    self._flush_all()
                    self.activity.note("✻ thinking (redacted)", "thinking")
            elif isinstance(event, (TurnStart, TurnEnd)):
                self._flush_all()
            elif isinstance(event, ToolCall):
                self._flush_all()
                if self.fancy_err:
                    self.activity.call(event)
                    self._show(self.activity)
                else:
                    self.traces.handle(event)
            elif isinstance(event, ToolResult):
                if self.fancy_err:
                    self.activity.result(event)
                    if not self.activity.running and self.active is self.activity:
                        self.active = None
                else:
                    self.traces.handle(event)
            elif isinstance(event, Retry):
                self._flush_all()
                if self.fancy_err:
                    self.activity.note(retry_line(event), "note")
                else:
                    self.traces.handle(event)

    def finish(self, result) -> None:
        """Stop drawing, keep everything shown, and say how the run went (unless quiet)."""
        painter, self._painter = self._painter, None
        if painter is not None:
            painter.done.set()
            painter.join(timeout=2)
        from ..errors import Interrupted

        with self.lock:
            self._flush_all()
            self.activity.stop()
            self.active = None
            if self.quiet or isinstance(result.error, Interrupted):
                return  # interrupted: main says so in one line
            line = summary(result, self.clock() - self.started)
            if self.fancy_err:
                theme = self.activity.theme
                lines = ([""] if self.screen.needs_gap() else []) + [
                    _line(safe_line(line, theme, theme["meta"]), theme)
                ]
                self.err.draw(lines, [])
            else:
                self.traces.err.write(neutralise(line) + "\n")
                self.traces.err.flush()

    def close(self) -> None:
        """The run is over: nothing is left to release (Sink)."""

    @contextmanager
    def paused(self) -> Iterator[None]:
        """While a question is asked on the terminal: nothing redrawn, a clean screen."""
        with self.lock:
            part, self.active = self.active, None
            if part is not None:
                part.clear()
            if self.screen.needs_gap():  # a blank line before the question, on the terminal
                (self.err if self.fancy_err else self.out).draw([""], [])
            self.screen.wrote(["?"])  # the question's line
        try:
            yield
        finally:
            with self.lock:
                self.activity.restart_clocks()
                if part is not None:
                    self._show(part)

    # -- internals (called with the lock held)

    def _show(self, part) -> None:
        if self.active is not part:
            if self.active is not None:
                self.active.clear()
            self.active = part
        if self._painter is None:
            self._painter = _Painter(self)
            self._painter.start()

    def _tick(self) -> None:
        with self.lock:
            part = self.active
            if part is not None and part.wants_paint():
                part.paint()
                self._rows = self.out.size()[1]

    def _flush(self, pane: _Pane) -> None:
        if self.active is pane:
            self.active = None
        pane.flush()

    def _flush_all(self) -> None:
        self._flush(self.thinking)
        self._flush(self.text)
