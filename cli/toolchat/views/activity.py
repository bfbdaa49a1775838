"""What the live view and the plain view both draw on a terminal: the redraw region at the bottom
of a stream (_Region), the record of what was printed last (_Screen), tool activity with spinners
(_Activity), the painter thread, and the plain view's spinners on stderr (_StderrActivity).

Imported by views.live, and by views.plain only when it draws spinners, so neither view imports
the other's module for them.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator

from rich.spinner import Spinner
from rich.text import Text

from ..events import ToolCall, ToolResult
from ..text import compact_json
from .markdown import Theme, safe_line, to_lines

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
        head = self._call(
            Text(mark, theme[style]), event.name, event.input, width, Text(f"  {event.duration_ms} ms", theme["meta"])
        )
        body = Text("  ⎿ " if self.region.unicode else "  > ", theme["meta"])
        body.append_text(_clip(safe_line(output, theme, theme["error" if event.is_error else "meta"]), width - 4))
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
            lines.append(
                _line(
                    self._call(
                        Text(self.left, self.theme["pending"]),
                        name,
                        value,
                        width,
                        Text(f"  not finished ({_duration(now - started)})", self.theme["pending"]),
                    ),
                    self.theme,
                )
            )
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
        if not isinstance(frame, Text):  # rich's Spinner renders Text; a str would be one too
            frame = Text(str(frame))
        width = self.region.size()[0] - 1
        rows = []
        for name, value, started in list(self.running.values()):
            row = self._call(frame, name, value, width, Text(f"  {now - started:.1f} s", self.theme["meta"]), live=True)
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
        self.active: _Activity | None = None

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
