"""The local engine: N conversations at once, each the full tool loop (chat.py), paced by the
server's rate-limit headers (pacing.py), every finished tool turn and every result stored before
the next step (state.py), each result written whole as its line ends (output.py)."""

from __future__ import annotations

import queue
import threading

from ..events import Retry, ToolResult, TurnEnd
from ..text import one_line
from . import lines
from .pacing import Pacer, PacedTransport

_DONE = object()


class LocalEngine:
    def __init__(self, session, job, writer, progress, concurrency: int):
        self.session = session  # built once: dialect, tools (one runner for every line), settings
        self.job = job
        self.writer = writer
        self.progress = progress
        self.concurrency = concurrency
        self.pacer = Pacer()
        self.stopping = False  # Ctrl-C / SIGTERM: the workers stop quietly (the state is stored)

    def transport(self):
        from ..transport import Transport

        s = self.session.settings
        headers = {**self.session.dialect.headers(s), **s.extra_headers()}
        inner = Transport(
            self.session.dialect.url(s.base_url),
            headers,
            connect_timeout=s.connect_timeout,
            read_timeout=s.read_timeout,
            debug=s.debug,
        )
        return PacedTransport(inner, self.pacer)

    def run(self) -> None:
        work: queue.Queue = queue.Queue(maxsize=self.concurrency * 2)
        # Named toolchat-*: stdio.py lets their writes (the output on stdout) through.
        workers = [
            threading.Thread(target=self._worker, args=(work,), daemon=True, name=f"toolchat-batch-{i}")
            for i in range(self.concurrency)
        ]
        for worker in workers:
            worker.start()
        try:
            for row in self.job.rows("status = 'pending'"):
                while True:
                    try:
                        work.put(row, timeout=0.2)
                        break
                    except queue.Full:
                        self.progress.tick()
            for _ in workers:
                work.put(_DONE)
            for worker in workers:
                while worker.is_alive():
                    worker.join(0.2)
                    self.progress.tick()
        except BaseException:
            self.stopping = True  # what the lines in flight did is in their checkpoints
            raise

    def _worker(self, work: queue.Queue) -> None:
        transport = self.transport()  # one HTTP session per worker thread
        try:
            while not self.stopping:
                row = work.get()
                if row is _DONE:
                    return
                self._line(row, transport)
        except Exception:
            if not self.stopping:
                raise
        finally:
            transport.close()

    def _line(self, row, transport) -> None:
        self.progress.line_started(row)
        try:
            chat, messages = lines.start(
                self.session.settings, self.session.dialect, transport, self.session.tools, row
            )
            sinks: list = [
                lines.Checkpoints(lambda state: self.job.checkpoint(row.key, state), chat, messages),
                _Counter(self.progress, self.pacer),
            ]
            for event in chat.run(messages):
                for sink in sinks:
                    sink.handle(event)
            doc, outcome = lines.document(row, chat.result)
        except Exception as exc:  # a bug must cost one line, not the batch
            doc = {
                "custom_id": row.custom_id,
                "line": row.line,
                "error": {
                    "type": "internal_error",
                    "message": one_line(f"{type(exc).__name__}: {exc}", 300),
                    "status": None,
                    "request_id": None,
                },
            }
            outcome = "failed"
        if self.stopping:
            return  # the batch is being stopped: this line is finished on the next run
        self.job.finish(row.key, doc, outcome)
        self.writer.finished(row.key, doc)
        self.progress.line_ended(row, doc, outcome)


class _Counter:
    """A sink feeding the progress display and the pacer's token estimate."""

    def __init__(self, progress, pacer):
        self.progress, self.pacer = progress, pacer

    def handle(self, event) -> None:
        if isinstance(event, TurnEnd):
            self.pacer.spent(event.usage or {})
            self.progress.tokens(event.usage or {})
        elif isinstance(event, ToolResult):
            self.progress.tool_call()
        elif isinstance(event, Retry):
            self.progress.retry()

    def close(self) -> None:
        pass
