"""The plain view: answer text to stdout as it arrives, one-line tool traces on stderr.

Everything it writes is neutralised (toolchat.text): the answer on stdout too, on a terminal or
piped, unless `raw=True` (`--raw`) asks for the model's text byte-exact.

With `spinners=True` and a terminal on stderr (stdout piped), tool activity there is drawn live as in
the live view; with `summary=True` and a terminal on stderr, a summary line ends the run. Neither
ever touches stdout, and without a terminal on stderr the traces stay the plain lines below.
"""

from __future__ import annotations

import sys
import threading
import time
from contextlib import nullcontext
from typing import Any, TextIO

from ..events import Finished, ReadDone, Retry, TextDelta, ToolCall, ToolResult, TurnStart
from ..text import compact_json, neutralise, one_line
from .format import is_terminal, retry_line, summary  # noqa: F401 (views.live imports them from here)

# Answer text waits at most this long for its flush. A stream sends an event per HTTP chunk, and a
# flush (a write to the pipe or file) per chunk cost more than the rest of the view; text that
# comes within the interval goes out with the next flush, or with the flusher thread's when the
# stream pauses.
FLUSH_INTERVAL = 0.01


class PlainView:
    def __init__(
        self,
        out: TextIO | None = None,
        err: TextIO | None = None,
        show_text: bool = True,
        quiet: bool = False,
        spinners: bool = False,
        summary: bool = False,
        color: str = "auto",
        raw: bool = False,
    ):
        if out is None:
            from ..stdio import own_stdout

            out = own_stdout()
        self.out = out
        self.err = err or sys.stderr
        self.show_text = show_text
        self.raw = raw  # the answer byte-exact, not neutralised (--raw)
        self.quiet = quiet  # no traces on stderr
        self.started = time.monotonic()
        on_terminal = not quiet and is_terminal(self.err)
        self.summary = summary and on_terminal
        self.activity = None  # tool spinners on a terminal stderr (views.activity, imported only then)
        if spinners and on_terminal:
            from .activity import activity_on_stderr

            self.activity = activity_on_stderr(color)
        self._printed = False  # any answer text written
        self._at_line_start = True
        self._new_turn = False
        # A text delta's trailing "\r": a CR LF line end if the next delta starts with "\n", a bare
        # CR (shown escaped) otherwise, so it waits for the next delta to decide.
        self._cr = ""
        self._unflushed = False  # text written to `out` and not flushed yet
        self._flushed_at = 0.0  # time.monotonic() of the last flush of answer text
        self._lock = threading.Lock()  # `out` is written here and flushed by the flusher thread too
        self._flusher: _Flusher | None = None

    def handle(self, event: Any) -> None:
        if isinstance(event, TextDelta):
            if not self.show_text:
                return
            if self._new_turn and self._printed:
                # Text of a later turn starts on a line of its own, a blank line after the earlier one.
                with self._lock:
                    self.out.write("\n" if self._at_line_start else "\n\n")
            self._new_turn = False
            self._write_text(event.text)
            return
        if isinstance(event, ReadDone):
            # The end of a network read: the text written since the last flush goes out, at once
            # when the last flush is FLUSH_INTERVAL old, else from the flusher thread if no other
            # flush comes first. A held CR still waits for the next delta.
            if self._unflushed:
                if time.monotonic() - self._flushed_at >= FLUSH_INTERVAL:
                    self._flush()
                else:
                    if self._flusher is None:
                        self._flusher = _Flusher(self)
                    self._flusher.due()
            return
        if self._unflushed:
            self._flush()  # before anything else is shown (a trace on a shared terminal)
        self._end_text()  # anything else ends a run of text deltas: a held CR was a bare one
        if isinstance(event, TurnStart):
            self._new_turn = event.turn > 1
        elif isinstance(event, (ToolCall, ToolResult)) and self.activity is not None:
            if isinstance(event, ToolCall):
                self.activity.call(event)
            else:
                self.activity.result(event)
        elif isinstance(event, ToolCall):
            self._trace(f"→ {one_line(event.name)} {one_line(compact_json(event.input))}")
        elif isinstance(event, ToolResult):
            status = "error" if event.is_error else "ok"
            self._trace(f"← {one_line(event.name)} {status} ({event.duration_ms} ms): {one_line(event.output)}")
        elif isinstance(event, Retry):
            self._trace(retry_line(event))
        elif isinstance(event, Finished):
            self.finish()
            if self.activity is not None:
                self.activity.stop()
            from ..errors import Interrupted

            if self.summary and not isinstance(event.result.error, Interrupted):
                self.err.write(summary(event.result, time.monotonic() - self.started) + "\n")
                self.err.flush()

    def close(self) -> None:
        """The run is over (Sink): the flusher thread ends."""
        if self._flusher is not None:
            self._flusher.stop()
        if self._unflushed:  # a run cut short before Finished
            try:
                self._flush()
            except (OSError, ValueError):  # the reader went away: the run has said so already
                pass

    def _flush(self, only_unflushed: bool = False) -> None:
        """Flush `out` (with `only_unflushed`, only if answer text waits: the flusher thread's case)."""
        with self._lock:
            if only_unflushed and not self._unflushed:
                return
            self.out.flush()
            self._unflushed = False
            self._flushed_at = time.monotonic()

    def paused(self):
        """For a question on the terminal: the spinners stop and the screen is left clean."""
        return self.activity.paused() if self.activity is not None else nullcontext()

    def _write_text(self, text: str) -> None:
        if self.raw:
            shown = text
        else:
            text = self._cr + text
            self._cr = ""
            if text.endswith("\r"):
                text, self._cr = text[:-1], "\r"
            shown = neutralise(text)
        if shown:
            with self._lock:
                self.out.write(shown)  # flushed at the end of the network read (ReadDone)
                self._unflushed = True
            self._printed = True
            self._at_line_start = shown.endswith("\n")

    def _end_text(self) -> None:
        """Write a held trailing CR: no line feed came after it, so it is a bare CR, shown escaped."""
        if self._cr:
            self._cr = ""
            with self._lock:
                self.out.write(neutralise("\r"))
            self._flush()
            self._printed = True
            self._at_line_start = False

    def finish(self) -> None:
        self._end_text()
        if self.show_text and self._printed and not self._at_line_start:
            with self._lock:
                self.out.write("\n")
            self._at_line_start = True
        self._flush()

    def _trace(self, line: str) -> None:
        if self.quiet:
            return
        if self._printed and not self._at_line_start and _same_stream(self.out, self.err):
            self.err.write("\n")
            self._at_line_start = True
        self.err.write(line + "\n")
        self.err.flush()


def _same_stream(a: TextIO, b: TextIO) -> bool:
    try:
        import os

        return os.path.samestat(os.fstat(a.fileno()), os.fstat(b.fileno()))
    except (OSError, ValueError, AttributeError):
        return False


class _Flusher(threading.Thread):
    """Flushes the view's answer text FLUSH_INTERVAL after due() (when the stream pauses and no
    other flush came first). A daemon, named as toolchat's own thread."""

    def __init__(self, view: PlainView):
        super().__init__(name="toolchat-flush", daemon=True)
        self._view = view
        self._wake = threading.Event()
        self._stopped = False
        self.start()

    def due(self) -> None:
        if not self._wake.is_set():  # set() takes a lock and notifies: once per round is enough
            self._wake.set()

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()
        self.join(timeout=1)

    def run(self) -> None:
        view = self._view
        while True:
            self._wake.wait()
            self._wake.clear()  # before the flush: a due() from now on is another round
            if self._stopped:
                return
            time.sleep(FLUSH_INTERVAL)
            try:
                view._flush(only_unflushed=True)
            except (OSError, ValueError):  # the reader went away: the main thread says so
                return
