"""`--via batches`: the Message Batches API, tool loops round by round.

Round k: every line waiting for a model turn becomes one request (split over batches at 100,000
requests or 256 MB); the batch ids are stored at once, so a restart polls them instead of creating
them again. When a batch ends its results are read (in any order, matched by custom_id): a line
whose turn ended in tool_use has its tools run here (concurrently, with every tool policy) and
waits for round k+1; the others end. Each line is played by the same Chat as locally: its
transport hands the batch's message over as a JSON reply, and stops the loop at the next request.
"""

from __future__ import annotations

import json
import queue
import threading
import time

from ..events import ToolResult
from . import lines
from .api import BatchesAPI, error_of

MAX_POLL = 60.0


class _NextRequest(Exception):
    """The line's chat wants another model turn: it goes into the next round's batch."""

    def __init__(self, body: dict):
        super().__init__("next request")
        self.body = body


class _Reply:
    kind = "json"

    def __init__(self, message: dict):
        self.message = message

    def json(self):
        return self.message

    def close(self) -> None:
        pass


class _RoundTransport:
    """Answers the first send with the batch's message (if any); the next send ends the round."""

    def __init__(self, message: dict | None):
        self.message = message

    def send(self, body: dict):
        if self.message is None:
            raise _NextRequest(body)
        message, self.message = self.message, None
        return _Reply(message)

    def scrubbed(self, error):
        return error

    def close(self) -> None:
        pass


class RoundsEngine:
    def __init__(self, session, job, writer, progress, plan, api=None, sleep=time.sleep):
        self.session, self.job, self.writer, self.progress, self.plan = session, job, writer, progress, plan
        self.api = api or BatchesAPI(session.settings, session.dialect)
        self.sleep = sleep

    def run(self) -> None:
        try:
            while True:
                for batch in self.job.batches(open_only=True):  # a restart: poll, never create again
                    self._consume(batch)
                if not self._submit_round():
                    return
        finally:
            self.api.close()

    # ---------------------------------------------------------------- a round out

    def _play(self, row, message: dict | None):
        """Play a line with the batch's message: (chat, messages, next request body or None)."""
        chat, messages = lines.start(
            self.session.settings, self.session.dialect, _RoundTransport(message), self.session.tools, row
        )
        counter = _Tools(self.progress)
        try:
            for event in chat.run(messages):
                counter.handle(event)
        except _NextRequest as wanted:
            return chat, messages, wanted.body
        return chat, messages, None

    def _submit_round(self) -> bool:
        number = 1 + max((b["round"] for b in self.job.batches()), default=0)
        chunk: list[dict] = []
        size = 0
        submitted = 0
        for row in self.job.rows("status = 'pending' AND batch_id IS NULL"):
            chat, messages, body = self._play(row, None)
            if body is None:  # nothing to ask (--max-turns reached): the line is over
                self._end(row, chat)
                continue
            body.pop("stream", None)
            request = {"custom_id": row.key, "params": body}
            data = len(json.dumps(request, ensure_ascii=False).encode("utf-8"))
            if chunk and (len(chunk) >= self.plan.max_requests or size + data > self.plan.max_bytes):
                self._create(number, chunk)
                chunk, size = [], 0
            chunk.append(request)
            size += data
            submitted += 1
            if row.state is None:
                self.progress.line_started(row)  # its first round
        if chunk:
            self._create(number, chunk)
        return submitted > 0

    def _create(self, number: int, requests: list[dict]) -> None:
        batch = self.api.create(requests)
        self.job.add_batch(batch["id"], number, [r["custom_id"] for r in requests])
        self.progress.waiting(f"round {number}: batch {batch['id']} created ({len(requests)} requests)")

    # ---------------------------------------------------------------- a round back

    def _consume(self, stored: dict) -> None:
        batch = self._wait(stored)
        work: queue.Queue = queue.Queue(maxsize=self.plan.concurrency * 2)
        errors: list[BaseException] = []

        def worker():
            while True:
                item = work.get()
                if item is None:
                    return
                try:
                    self._apply(*item)
                except Exception as exc:  # noqa: BLE001 - reported after the batch
                    errors.append(exc)

        threads = [
            threading.Thread(target=worker, daemon=True, name=f"toolchat-round-{i}")
            for i in range(self.plan.concurrency)
        ]
        for thread in threads:
            thread.start()
        try:
            for line in self.api.results(batch):
                work.put((stored["id"], line))
        finally:
            for _ in threads:
                work.put(None)
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.2)
                    self.progress.tick()
        if errors:
            raise errors[0]
        for row in self.job.rows("batch_id = ?", (stored["id"],)):  # a request the results left out
            from ..errors import APIError

            self._fail(
                row, APIError(f"batch {stored['id']} ended without a result for this line", type="missing_result")
            )
        self.job.batch_status(stored["id"], batch.get("processing_status", "ended"), consumed=True)

    def _wait(self, stored: dict) -> dict:
        delay = self.plan.poll_interval
        while True:
            batch = self.api.retrieve(stored["id"])
            status = batch.get("processing_status")
            counts = batch.get("request_counts") or {}
            self.progress.waiting(
                f"round {stored['round']}: batch {stored['id']} {status}, {counts.get('processing', 0)} processing"
            )
            if status == "ended":
                return batch
            self.job.batch_status(stored["id"], str(status))
            self.sleep(delay)
            delay = min(MAX_POLL, delay * 2)

    def _apply(self, batch_id: str, line: dict) -> None:
        key, result = line["custom_id"], line["result"]
        try:
            row = self.job.row(key)
        except TypeError:  # not one of this job's lines
            return
        if row.batch_id != batch_id or row.status != "pending":
            return  # applied before a restart
        if result.get("type") != "succeeded":
            self._fail(row, error_of(result))
            return
        chat, messages, body = self._play(row, result.get("message") or {})
        if body is None:
            self._end(row, chat)
        else:
            self.job.advance(row.key, lines.snapshot(chat, messages, chat.result.turns - 1))

    def _fail(self, row, error) -> None:
        chat, _ = lines.start(self.session.settings, self.session.dialect, None, self.session.tools, row)
        chat.result.messages = row.state["messages"] if row.state else row.request["messages"]
        chat.result.error = error
        self._end(row, chat)

    def _end(self, row, chat) -> None:
        doc, outcome = lines.document(row, chat.result)
        self.job.finish(row.key, doc, outcome)
        self.writer.finished(row.key, doc)
        self.progress.tokens(chat.result.usage)
        self.progress.line_ended(row, doc, outcome)


class _Tools:
    def __init__(self, progress):
        self.progress = progress

    def handle(self, event) -> None:
        if isinstance(event, ToolResult):
            self.progress.tool_call()
