"""The conversation log as a sink: the events of a run written to SQLite (logdb.py) as they come.

What is written when, so that a process killed at any moment has lost nothing that ended:
  Start       the conversation (new, or the one continued) and the run; the messages as they stand,
              the prompt among them: all before the first request is sent
  TurnStart   messages added since (the tool results of the turn before)
  ToolResult  the tool call: name, source, input, output as the model got it, is_error, duration
  TurnEnd     the turn's row (request time, duration, stop_reason, usage, retries) and the
              assistant message
  Finished    a turn cut short (with the error), the messages as the run left them (what an
              interrupted run showed), and the run's outcome

The sink reads the conversation from `messages`: the list the run appends to (the one handed to
`Chat.run`, which is also `Result.messages`); Finished's result has the last word. A failure to
write never stops the run: it is told once on stderr and the log stops for that run.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, Iterable

from ..errors import Interrupted
from ..events import Finished, Retry, Start, ToolResult, TurnEnd, TurnStart
from ..logdb import LogDB, endpoint_host, now_iso


class LogSink:
    def __init__(
        self,
        db: LogDB,
        messages: list[dict],
        *,
        model: str,
        system: str | None = None,
        dialect: str | None = "anthropic",
        base_url: str | None = None,
        conversation_id: str | None = None,
        sources: dict[str, str] | None = None,
        owns_db: bool = True,
        warn: Callable[[str], None] | None = None,
    ):
        self.db = db
        self.messages = messages
        self.model = model
        self.system = system
        self.dialect = dialect
        self.endpoint = endpoint_host(base_url)
        self.conversation_id = conversation_id  # set at Start for a new conversation
        self.sources = sources or {}  # tool name -> source, when the events do not carry it
        self.owns_db = owns_db
        self.warn = warn or _warn
        self.run_id: int | None = None
        self.stored = 0  # messages of `messages` known to be in the file
        self.turn: dict | None = None  # the model request under way
        self.turn_id: int | None = None  # the last turn that ended (tool calls belong to it)
        self.finished = False
        self.failed = False

    def handle(self, event: Any) -> None:
        if self.failed:
            return
        try:
            self._handle(event)
        except Exception as exc:  # sqlite3.Error, OSError...: the answer matters more than the log
            self.failed = True
            self.warn(
                f"warning: the conversation log could not be written ({type(exc).__name__}: "
                f"{exc}); the rest of this run is not logged"
            )

    def _handle(self, event: Any) -> None:
        db = self.db
        if isinstance(event, Start):
            self.model = event.model or self.model
            self.conversation_id, self.run_id, self.stored = db.start_run(
                self.conversation_id,
                model=self.model,
                system=self.system,
                dialect=self.dialect,
                endpoint=self.endpoint,
                messages=self.messages,
            )
            return
        if self.run_id is None:
            return  # nothing was opened (no Start): nothing to add to
        cid, run = self.conversation_id, self.run_id
        assert cid is not None
        if isinstance(event, TurnStart):
            if self.stored < len(self.messages):
                self.stored = db.sync(cid, run, self.messages, self.stored)
            self.turn = {"turn": event.turn, "requested": now_iso(), "started": time.monotonic(), "retries": 0}
        elif isinstance(event, Retry):
            if self.turn is not None:
                self.turn["retries"] += 1
        elif isinstance(event, TurnEnd):
            turn = self._turn_row(event.turn)
            turn.update(stop_reason=event.stop_reason, usage=event.usage)
            self.turn_id, self.stored = db.end_turn(cid, run, turn, self.messages, self.stored)
            self.turn = None
        elif isinstance(event, ToolResult):
            source = getattr(event, "source", None) or self.sources.get(event.name)
            db.add_tool_call(
                cid,
                run,
                self.turn_id,
                {
                    "id": event.id,
                    "name": event.name,
                    "source": source,
                    "input": event.input,
                    "output": event.output,
                    "is_error": event.is_error,
                    "duration_ms": event.duration_ms,
                },
            )
        elif isinstance(event, Finished):
            result = event.result
            error = result.error.to_json() if result.error is not None else None
            messages = result.messages if result.messages is not None else self.messages
            if self.turn is not None:  # the request under way failed or was cut short
                turn = self._turn_row(self.turn["turn"])
                turn["error"] = error
                self.turn_id, self.stored = db.end_turn(cid, run, turn, messages, self.stored)
                self.turn = None
            if isinstance(result.error, Interrupted):
                status = "interrupted"
            elif result.error is not None:
                status = "error"
            else:
                status = "incomplete" if result.incomplete else "ok"
            self.stored = db.end_run(cid, run, status, error, messages, self.stored)
            self.finished = True

    def _turn_row(self, number: int) -> dict:
        turn = self.turn or {"turn": number, "requested": now_iso(), "started": None, "retries": 0}
        started = turn.get("started")
        return {
            "turn": number,
            "requested": turn["requested"],
            "retries": turn.get("retries", 0),
            "duration_ms": int((time.monotonic() - started) * 1000) if started else None,
        }

    def close(self) -> None:
        """After Finished, or after an error that kept it from coming: the run is closed either way."""
        try:
            if not self.failed and self.run_id is not None and not self.finished:
                assert self.conversation_id is not None
                error = {
                    "type": "error",
                    "message": "the run ended without a result",
                    "status": None,
                    "request_id": None,
                }
                if self.turn is not None:
                    turn = self._turn_row(self.turn["turn"])
                    turn["error"] = error
                    self.turn_id, self.stored = self.db.end_turn(
                        self.conversation_id, self.run_id, turn, self.messages, self.stored
                    )
                    self.turn = None
                self.db.end_run(self.conversation_id, self.run_id, "error", error, self.messages, self.stored)
                self.finished = True
        except Exception as exc:
            self.warn(f"warning: the conversation log could not be written ({type(exc).__name__}: {exc})")
        finally:
            if self.owns_db:
                self.db.close()


def sources_of(tools: Iterable[Any]) -> dict[str, str]:
    """{tool name: where it came from} for tools that say (`source`, or a tools file `path`)."""
    found = {}
    for tool in tools:
        source = getattr(tool, "source", None) or getattr(tool, "path", None)
        if source:
            found[tool.name] = str(source)
    return found


def _warn(line: str) -> None:
    print(f"toolchat: {line}", file=sys.stderr, flush=True)
