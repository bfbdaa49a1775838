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

rich draws every line (markdown.py: rich's Console, Text, Table, Syntax; rich's Spinner here); the
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
from typing import Any, Callable, Iterator

from rich.spinner import Spinner
from rich.text import Text

from ..events import (BlockDone, Finished, Retry, TextDelta, ThinkingDelta, ToolCall, ToolResult,
                      TurnEnd, TurnStart)
from ..text import compact_json, neutralise
from .markdown import Block, LineBlocks, MarkdownBlocks, Theme, render, safe_line, to_lines
from .plain import PlainView, is_terminal, retry_line, summary

REFRESH_PER_SECOND = 10


class _Screen:
    """What was printed last on the terminal, across stdout and stderr: decides the blank lines."""

    def __init__(self) -> None:
        self.printed = False
        self.blank = True

    def needs_gap(self) -> bool:
        return self.printed and not self.blank

    def wrote(self, lines: list[str]) -> None:
        if lines:
            self.printed, self.blank = True, lines[-1] == ""


class _Region:
    """The bottom of a terminal, on one stream: lines printed into the scrollback once, and below
    them a few live lines redrawn in place.

    Each live line ends with a newline, so the cursor waits at the start of the line below them: a
    "^C" the terminal echoes (or anything typed) lands there and is wiped by the next redraw,
    instead of wrapping a full line and throwing off the count of lines to clear.
    """

    def __init__(self, stream, redraw: bool = True):
        self.stream = stream
        self.redraw = redraw  # False on a dumb terminal: nothing live, finished lines only
        self.height = 0  # live lines on screen now
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
        self.unicode = encoding.startswith("utf")
        self.broken = False

    def size(self) -> tuple[int, int]:
        try:
            columns, rows = os.get_terminal_size(self.stream.fileno())
        except (OSError, ValueError, AttributeError):
            columns, rows = 80, 24
        return max(columns, 10), max(rows, 5)

    def draw(self, printed: list[str], live: list[str]) -> None:
        if not self.redraw:
            live = []
        parts = []
        if self.height:
            parts.append(f"\r\x1b[{self.height}A\x1b[J")
        elif live:
            parts.append("\x1b[?25l")  # no cursor blinking over the live lines
        parts += [line + "\n" for line in printed]
        parts += [line + "\n" for line in live]
        if self.height and not live:
            parts.append("\x1b[?25h")
        self.height = len(live)
        if parts and not self.broken:
            text = "".join(parts)
            if not self.unicode:
                encoding = self.stream.encoding or "ascii"
                text = text.encode(encoding, "replace").decode(encoding)
            try:
                self.stream.write(text)
                self.stream.flush()
            except (OSError, ValueError):  # the terminal went away: stop drawing
                self.broken = True


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
            live = live[-max(1, rows - 3):]  # never taller than the screen
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

    def _gap(self, block: Block, lines: list[str] = ()) -> bool:
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


class _Activity:
    """Tool calls on a terminal: a spinner row with elapsed time per running call, then one line
    for each result (✓ and its output, or ✗ and the error), printed once."""

    def __init__(self, region: _Region, screen: _Screen, theme: Theme):
        self.region = region
        self.screen = screen
        self.theme = theme
        self.running: dict[str, list] = {}  # id -> [name, input, started]
        self.ok, self.failed, self.left = ("✓", "✗", "◌") if region.unicode else ("+", "x", "o")
        self.spinner = Spinner("dots" if region.unicode else "line", style=theme["running"])

    def call(self, event: ToolCall) -> None:
        printed = []
        if not self.running and self.screen.needs_gap():
            printed = [""]
            self.screen.wrote(printed)
        self.running[event.id] = [event.name, event.input, time.monotonic()]
        self.region.draw(printed, self._rows())

    def result(self, event: ToolResult) -> None:
        self.running.pop(event.id, None)
        width = self.region.size()[0] - 1
        theme = self.theme
        if event.is_error:
            mark, style, output = self.failed, "error", "error: " + (event.output or "(no message)")
        else:
            mark, style, output = self.ok, "ok", event.output or "(no output)"
        head = self._call(Text(mark, theme[style]), event.name, event.input, width,
                          Text(f"  {event.duration_ms} ms", theme["meta"]))
        body = Text("  ⎿ " if self.region.unicode else "  > ", theme["meta"])
        body.append_text(_clip(safe_line(output, theme, theme["error" if event.is_error else "meta"]),
                               width - 4))
        lines = [_line(head, theme), _line(body, theme)]
        self.screen.wrote(lines)
        self.region.draw(lines, self._rows())

    def note(self, text: str, style: str) -> None:
        """A line of its own (a retry, redacted thinking), printed once."""
        width = self.region.size()[0] - 1
        lines = [_line(_clip(safe_line(text, self.theme, self.theme[style]), width), self.theme)]
        self.screen.wrote(lines)
        self.region.draw(lines, self._rows())

    def wants_paint(self) -> bool:
        return bool(self.running)  # the spinners turn and the clocks run

    def paint(self) -> None:
        self.region.draw([], self._rows())

    def clear(self) -> None:
        self.region.draw([], [])

    def stop(self) -> None:
        """The run ended: calls still running are left behind, each said so on its own line."""
        now = time.monotonic()
        width = self.region.size()[0] - 1
        lines = []
        for name, value, started in self.running.values():
            lines.append(_line(self._call(
                Text(self.left, self.theme["pending"]), name, value, width,
                Text(f"  not finished ({_duration(now - started)})", self.theme["pending"])), self.theme))
        self.running.clear()
        self.screen.wrote(lines)
        self.region.draw(lines, [])

    def restart_clocks(self) -> None:
        """After a question: the tools start now, not when they were asked for."""
        now = time.monotonic()
        for entry in self.running.values():
            entry[2] = now

    def _rows(self) -> list[str]:
        if not self.running:
            return []
        now = time.monotonic()
        frame = self.spinner.render(now)
        width = self.region.size()[0] - 1
        rows = []
        for name, value, started in list(self.running.values()):
            row = self._call(frame, name, value, width, Text(f"  {now - started:.1f} s", self.theme["meta"]),
                             live=True)
            rows.append(_line(row, self.theme))
        return rows

    def _call(self, mark: Text, name: str, value: Any, width: int, after: Text, live: bool = False) -> Text:
        """`✓ name {"input": ...}  after` in at most `width` columns: the input gives way first.

        A live row must never wrap (the redraw counts one line per row): on a very narrow
        terminal it drops `after`; a printed line keeps it and may wrap."""
        theme = self.theme
        room = width - after.cell_len - mark.cell_len - 1
        if room < 8:
            room = width - mark.cell_len - 1
            if live:
                after = Text()
        shown_name = safe_line(name, theme, theme["name"])
        shown_name = _clip(shown_name, max(1, min(shown_name.cell_len, room)))
        shown = safe_line(compact_json(value), theme, theme["input"])
        shown = _clip(Text(" ", theme["input"]).append_text(shown), max(0, room - shown_name.cell_len))
        return Text.assemble(mark, " ", shown_name, shown, after)


def _clip(text: Text, width: int) -> Text:
    """`text` in at most `width` columns, cut with an ellipsis (tool lines only, never the answer)."""
    if width <= 0:
        return Text()
    if text.cell_len > width:
        text = text.copy()
        text.truncate(max(0, width), overflow="ellipsis")
    return text


def _line(text: Text, theme: Theme) -> str:
    """One line of rich Text for the terminal, as rich writes it; it may wrap only on the terminal."""
    return "".join(to_lines(text, max(1, text.cell_len), theme))


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


class _Painter(threading.Thread):
    """Redraws the live part of a view (anything with a `_tick()`), at most REFRESH_PER_SECOND
    times a second."""

    def __init__(self, view):
        super().__init__(name="toolchat-live", daemon=True)
        self.view = view
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(1 / REFRESH_PER_SECOND):
            try:
                self.view._tick()
            except Exception:  # drawing must never take the run down; the final print still comes
                return


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
        self.text = _Pane(self.out, self.screen, MarkdownBlocks(),
                          lambda block, width: render(block, width, self.theme))
        # Thinking and tool activity need a terminal on stderr; without one, plain trace lines.
        self.fancy_err = is_terminal(err) and not self.quiet
        err_theme = Theme(color=color, unicode=self.err.unicode, styled=smart)
        self.thinking = _Pane(self.err, self.screen, LineBlocks(),
                              lambda block, width: render(block, width, err_theme))
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
                lines = ([""] if self.screen.needs_gap() else []) + [_line(safe_line(line, theme, theme["meta"]), theme)]
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


def activity_on_stderr(color: str):
    """Tool activity for a terminal on stderr, on its own (the plain view's, when stdout is piped)."""
    return _StderrActivity(color)


class _StderrActivity:
    """Spinners and result lines on stderr for the plain view: the live view's, without the rest."""

    def __init__(self, color: str):
        smart = os.environ.get("TERM") != "dumb"
        self.region = _Region(sys.stderr, smart)
        theme = Theme(color=color != "never", unicode=self.region.unicode, styled=smart)
        self.activity = _Activity(self.region, _Screen(), theme)
        self.lock = threading.RLock()
        self._painter: _Painter | None = None
        self.active = None

    def call(self, event: ToolCall) -> None:
        with self.lock:
            self.activity.call(event)
            self.active = self.activity
            if self._painter is None:
                self._painter = _Painter(self)
                self._painter.start()

    def result(self, event: ToolResult) -> None:
        with self.lock:
            self.activity.result(event)

    def stop(self) -> None:
        painter, self._painter = self._painter, None
        if painter is not None:
            painter.done.set()
            painter.join(timeout=2)
        with self.lock:
            self.activity.stop()

    @contextmanager
    def paused(self) -> Iterator[None]:
        with self.lock:
            self.active = None
            self.activity.clear()
        try:
            yield
        finally:
            with self.lock:
                self.activity.restart_clocks()
                self.active = self.activity

    def _tick(self) -> None:
        with self.lock:
            if self.active is not None and self.activity.wants_paint():
                self.activity.paint()
