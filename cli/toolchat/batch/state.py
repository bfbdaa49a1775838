"""A batch job's progress in the conversation log's database (tables batch_* of logdb.py, schema 3).

A job is keyed by the SHA-256 of its input file's bytes; its lines by custom_id (a line without a
usable custom_id, malformed or a duplicate, by `line:N`). A line is `pending` until its result
document is stored (`done`), and `written` once that document is in the output. `state` holds the
conversation as it stood after its last finished tool turn (messages, tool calls, usage, turns), so a
restarted job continues from there and never runs a finished turn's tools again. With --via
batches, `batch_id` names the Message Batch holding the line's current request.

Every change is one short transaction; one connection serves all threads behind a lock.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import threading
from dataclasses import dataclass
from typing import Iterator

from ..logdb import LogDB, default_path, now_iso
from . import inputs


def file_hash(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def spool_stdin(stream) -> str:
    """Standard input copied to a temporary file (the job needs its hash before its lines)."""
    handle = tempfile.NamedTemporaryFile(prefix="toolchat-batch-", suffix=".jsonl", delete=False)
    with handle:
        shutil.copyfileobj(stream, handle, 1 << 20)
    return handle.name


def key_of(line: inputs.Line, duplicate: bool = False) -> str:
    return line.custom_id if line.custom_id is not None and not duplicate else f"line:{line.number}"


@dataclass
class Row:
    key: str
    line: int
    status: str
    request: dict | None
    state: dict | None
    batch_id: str | None
    result: dict | None
    written: bool

    @property
    def custom_id(self) -> str | None:
        return None if self.key.startswith("line:") else self.key


_COLUMNS = "custom_id, line, status, request, state, batch_id, result, written"


def _row(values) -> Row:
    key, line, status, request, state, batch_id, result, written = values
    load = lambda text: json.loads(text) if text else None  # noqa: E731
    return Row(key, line, status, load(request), load(state), batch_id, load(result), bool(written))


class Job:
    def __init__(self, db: LogDB, input_hash: str):
        self.db = db
        self.hash = input_hash
        self.lock = threading.RLock()

    @classmethod
    def open(cls, input_hash: str, path=None) -> "Job":
        return cls(LogDB(path or default_path()), input_hash)

    def close(self) -> None:
        self.db.close()

    # ---------------------------------------------------------------- registering the input

    def exists(self) -> bool:
        with self.lock:
            return (
                self.db.conn.execute("SELECT 1 FROM batch_jobs WHERE input_hash = ?", (self.hash,)).fetchone()
                is not None
            )

    def register(self, path: str, shown_name: str) -> int:
        """Record every line of the input, once per job (one transaction: a kill leaves none).
        Returns the number of lines."""
        with self.lock:
            if self.exists():
                return self.count()
            count = 0
            with self.db.transaction() as conn:
                stamp = now_iso()
                conn.execute(
                    "INSERT INTO batch_jobs (input_hash, input, created, updated) VALUES (?, ?, ?, ?)",
                    (self.hash, shown_name, stamp, stamp),
                )
                with open(path, "rb") as handle:
                    for line in inputs.read(handle):
                        count += 1
                        if line.error is None:
                            added = conn.execute(
                                "INSERT OR IGNORE INTO batch_lines (input_hash, custom_id, line, request)"
                                " VALUES (?, ?, ?, ?)",
                                (self.hash, line.custom_id, line.number, json.dumps(line.request, ensure_ascii=False)),
                            )
                            if added.rowcount:
                                continue
                            line.error = (
                                f"line {line.number}: custom_id {line.custom_id!r} is already used by an earlier line"
                            )
                        result = failed_document(line, line.error)
                        conn.execute(
                            "INSERT INTO batch_lines (input_hash, custom_id, line, status, result, outcome)"
                            " VALUES (?, ?, ?, 'done', ?, 'failed')",
                            (self.hash, key_of(line, duplicate=True), line.number, json.dumps(result)),
                        )
                conn.execute("UPDATE batch_jobs SET lines = ? WHERE input_hash = ?", (count, self.hash))
            return count

    def count(self) -> int:
        with self.lock:
            return self.db.conn.execute(
                "SELECT count(*) FROM batch_lines WHERE input_hash = ?", (self.hash,)
            ).fetchone()[0]

    # ---------------------------------------------------------------- reading

    def rows(self, where: str = "1", params: tuple = (), chunk: int = 500, after: int = 0) -> Iterator[Row]:
        """Rows in input order (those after line `after`), read a chunk at a time (memory stays
        flat for big inputs)."""
        last = after
        while True:
            with self.lock:
                found = self.db.conn.execute(
                    f"SELECT {_COLUMNS} FROM batch_lines WHERE input_hash = ? AND line > ? AND ({where})"
                    " ORDER BY line LIMIT ?",
                    (self.hash, last, *params, chunk),
                ).fetchall()
            if not found:
                return
            for values in found:
                yield _row(values)
            last = found[-1][1]

    def row(self, key: str) -> Row:
        with self.lock:
            return _row(
                self.db.conn.execute(
                    f"SELECT {_COLUMNS} FROM batch_lines WHERE input_hash = ? AND custom_id = ?", (self.hash, key)
                ).fetchone()
            )

    def outcomes(self) -> dict:
        """{"ok": n, "incomplete": n, "failed": n, "pending": n, "input_tokens": n, "output_tokens": n}"""
        with self.lock:
            counts = dict(
                self.db.conn.execute(
                    "SELECT coalesce(outcome, 'pending'), count(*) FROM batch_lines WHERE input_hash = ? GROUP BY 1",
                    (self.hash,),
                ).fetchall()
            )
            tokens = self.db.conn.execute(
                "SELECT coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0)"
                " FROM batch_lines WHERE input_hash = ?",
                (self.hash,),
            ).fetchone()
        summary = {k: counts.get(k, 0) for k in ("ok", "incomplete", "failed", "pending")}
        summary["input_tokens"], summary["output_tokens"] = tokens
        return summary

    # ---------------------------------------------------------------- writing

    def _update(self, key: str, **values) -> None:
        names = ", ".join(f"{name} = ?" for name in values)
        with self.lock, self.db.transaction() as conn:
            conn.execute(
                f"UPDATE batch_lines SET {names} WHERE input_hash = ? AND custom_id = ?",
                (*values.values(), self.hash, key),
            )

    def checkpoint(self, key: str, state: dict) -> None:
        """The conversation after a finished tool turn: a restart continues from here."""
        self._update(key, state=json.dumps(state, ensure_ascii=False))

    def finish(self, key: str, result: dict, outcome: str) -> None:
        usage = result.get("usage") or {}
        self._update(
            key,
            status="done",
            result=json.dumps(result, ensure_ascii=False),
            outcome=outcome,
            input_tokens=int(usage.get("input_tokens") or 0),
            output_tokens=int(usage.get("output_tokens") or 0),
            batch_id=None,
        )

    def mark_written(self, key: str, written: bool = True) -> None:
        self._update(key, written=int(written))

    def set_written(self, keys: set[str]) -> None:
        """After a restart: exactly the lines found whole in the output file count as written."""
        with self.lock, self.db.transaction() as conn:
            conn.execute("UPDATE batch_lines SET written = 0 WHERE input_hash = ?", (self.hash,))
            conn.executemany(
                "UPDATE batch_lines SET written = 1 WHERE input_hash = ? AND custom_id = ?",
                [(self.hash, key) for key in keys],
            )

    # ---------------------------------------------------------------- Message Batches

    def add_batch(self, batch_id: str, round_: int, keys: list[str]) -> None:
        with self.lock, self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO batch_batches (id, input_hash, round, requests, created) VALUES (?, ?, ?, ?, ?)",
                (batch_id, self.hash, round_, len(keys), now_iso()),
            )
            conn.executemany(
                "UPDATE batch_lines SET batch_id = ? WHERE input_hash = ? AND custom_id = ?",
                [(batch_id, self.hash, key) for key in keys],
            )

    def batches(self, open_only: bool = False) -> list[dict]:
        with self.lock:
            rows = self.db.conn.execute(
                "SELECT id, round, requests, created, status, consumed FROM batch_batches WHERE input_hash = ?"
                + (" AND consumed = 0" if open_only else "")
                + " ORDER BY created, id",
                (self.hash,),
            ).fetchall()
        return [dict(zip(("id", "round", "requests", "created", "status", "consumed"), r)) for r in rows]

    def batch_status(self, batch_id: str, status: str, consumed: bool = False) -> None:
        with self.lock, self.db.transaction() as conn:
            conn.execute(
                "UPDATE batch_batches SET status = ?, consumed = ? WHERE id = ?", (status, int(consumed), batch_id)
            )

    def advance(self, key: str, state: dict) -> None:
        """--via batches: a line's round is over and its tools have run; it waits for the next round."""
        self._update(key, state=json.dumps(state, ensure_ascii=False), batch_id=None)


def failed_document(line: inputs.Line, message: str) -> dict:
    """The output document of a line that could not be run."""
    return {
        "custom_id": None,
        "line": line.number,
        "text": "",
        "stop_reason": None,
        "stop_details": None,
        "incomplete": None,
        "model": None,
        "turns": 0,
        "tool_calls": [],
        "usage": {"input_tokens": 0, "output_tokens": 0},
        "messages": [],
        "error": {"type": "invalid_input", "message": message, "status": None, "request_id": None},
    }


def jobs(path=None) -> list[dict]:
    with LogDB(path or default_path()) as db:
        rows = db.conn.execute(
            "SELECT input_hash, input, created, lines FROM batch_jobs ORDER BY created DESC"
        ).fetchall()
    return [dict(zip(("input_hash", "input", "created", "lines"), r)) for r in rows]
