"""Progress of a batch: a rich progress bar on stderr when it is a terminal, one line every few
seconds when it is not, or --stream-json events (batch_start, line_start, line_end, progress,
batch_end) on standard output for programs. The summary line at the end always goes to stderr."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from ..text import dumps, one_line


class Progress:
    def __init__(
        self,
        mode: str,
        total: int,
        done: int,
        concurrency: int,
        *,
        interval: float = 5.0,
        out=None,
        err=None,
        failed: int = 0,
        color: bool = True,
    ):
        """mode: bar | lines | json | quiet. `done`: lines already done before this run, `failed`
        of them failed (malformed lines are failed from the start)."""
        self.mode, self.total, self.concurrency, self.interval = mode, total, concurrency, interval
        self.out, self.err = out or sys.stdout, err or sys.stderr
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.before = done
        self.ended = {"ok": 0, "incomplete": 0, "failed": 0}
        self.usage = {"input_tokens": 0, "output_tokens": 0}
        self.tools = self.retries = self.running = 0
        self.last = self.started
        self.bar: Any = None  # rich.progress.Progress in the bar mode
        self.task: Any = None
        self.note = ""  # what the engine is waiting for (--via batches: a batch's status)
        self.failed_before = failed
        self.color = color

    # ---------------------------------------------------------------- from the engine

    def begin(self, source: str, via: str) -> None:
        if self.mode == "json":
            self._event(
                {
                    "type": "batch_start",
                    "input": source,
                    "via": via,
                    "total": self.total,
                    "done": self.before,
                    "concurrency": self.concurrency,
                }
            )
        elif self.mode == "bar":
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress as Bar,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bar = Bar(
                TextColumn("batch"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
                console=Console(file=self.err, color_system="auto" if self.color else None),
                transient=False,
            )
            self.task = self.bar.add_task("batch", total=self.total, completed=self.before, info="")
            self.bar.start()

    def line_started(self, row) -> None:
        with self.lock:
            self.running += 1
        if self.mode == "json":
            self._event({"type": "line_start", "custom_id": row.custom_id, "line": row.line})

    def line_ended(self, row, doc: dict, outcome: str) -> None:
        with self.lock:
            self.running = max(0, self.running - 1)
            self.ended[outcome] += 1
        if self.mode == "json":
            self._event(
                {
                    "type": "line_end",
                    "custom_id": row.custom_id,
                    "line": row.line,
                    "outcome": outcome,
                    "usage": doc.get("usage"),
                    "error": doc.get("error"),
                }
            )
        self.tick()

    def tokens(self, usage: dict) -> None:
        with self.lock:
            for key in self.usage:
                self.usage[key] += int(usage.get(key) or 0)

    def tool_call(self) -> None:
        with self.lock:
            self.tools += 1

    def retry(self) -> None:
        with self.lock:
            self.retries += 1

    def waiting(self, note: str) -> None:
        self.note = note
        self.tick()

    def tick(self) -> None:
        """Show where the batch stands (the bar: now; lines and events: every `interval` s)."""
        now = time.monotonic()
        if self.mode == "bar" and self.bar is not None:
            self.bar.update(self.task, completed=self.before + sum(self.ended.values()), info=self._info())
            return
        if self.mode not in ("lines", "json") or now - self.last < self.interval:
            return
        self.last = now
        if self.mode == "lines":
            print(
                f"toolchat: batch: {self.before + sum(self.ended.values())}/{self.total} done, {self._info()}",
                file=self.err,
                flush=True,
            )
        else:
            self._event({"type": "progress", **self.counts()})

    def finish(self, summary: dict, elapsed: float) -> None:
        if self.bar is not None:
            self.tick()
            self.bar.stop()
        if self.mode == "json":
            self._event({"type": "batch_end", **summary, "elapsed_s": round(elapsed, 3)})

    # ---------------------------------------------------------------- shown

    def counts(self) -> dict:
        with self.lock:
            return {
                "done": self.before + sum(self.ended.values()),
                "total": self.total,
                "failed": self.failed_before + self.ended["failed"],
                "incomplete": self.ended["incomplete"],
                "running": self.running,
                "tool_calls": self.tools,
                "retries": self.retries,
                "input_tokens": self.usage["input_tokens"],
                "output_tokens": self.usage["output_tokens"],
            }

    def _info(self) -> str:
        c = self.counts()
        elapsed = max(1e-6, time.monotonic() - self.started)
        rate = sum(self.ended.values()) / elapsed
        parts = [
            f"{rate:.1f} lines/s",
            f"{c['input_tokens'] + c['output_tokens']:,} tokens",
            f"{c['failed']} failed",
            f"{c['running']}/{self.concurrency} running",
        ]
        if self.note:
            parts.append(one_line(self.note, 80))
        return ", ".join(parts)

    def _event(self, event: dict) -> None:
        with self.lock:
            self.out.write(dumps(event) + "\n")
            self.out.flush()
