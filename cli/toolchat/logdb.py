"""The conversation log: one SQLite file (the standard library's sqlite3), written as a run goes.

Where: `$TOOLCHAT_HOME/logs.db`, else `$XDG_DATA_HOME/toolchat/logs.db`, else
`~/.local/share/toolchat/logs.db`.

Tables (schema version 2, `PRAGMA user_version`):
  conversations  id (time-ordered, sortable, 26 characters of Crockford base32), created, updated,
                 model, system, dialect, endpoint (the host only: never a path, query or key), title
  runs           one per toolchat invocation on a conversation: started, ended, model, status
                 (running | ok | incomplete | error | interrupted), the error as JSON
  turns          one per model request: requested, duration_ms, stop_reason, usage (cache tokens
                 included), retries, error
  messages       the conversation in the Messages API's own shape, one row per message, in order
  tool_calls     name, source, input, output (as capped, as the model got it), is_error, duration_ms
  search         FTS5 over prompts, answers and tool outputs
  batch_*        (version 3) `toolchat batch` state: jobs keyed by the input file's content hash,
                 their lines by custom_id, the Message Batches submitted (see batch/state.py)

Nothing is lost: WAL mode, a busy timeout, and every write is a short transaction of its own (the
conversation and its prompt before the first request, each turn as it ends, each tool call as it
finishes). A process killed at any moment leaves the file intact with everything committed before.
Migrations only go forward; a file from a newer toolchat is refused and never rewritten.

Using it (every run goes through Session.run -> sinks/log.LogSink; other writers, e.g. a batch
runner keeping its state, use the same calls):
  LogDB(path, secrets=(key, ...))   open (create=True makes the file, 0600, and migrates); a
                                    context manager; raises LogError (a UsageError) when unusable
  start_run(cid | None, model=, system=, dialect=, endpoint=, messages=) -> (cid, run_id, stored)
  sync / end_turn / add_tool_call / end_run     the run as it goes; each is one transaction, and
                                    `stored` (messages known to be in the file) is passed along
  latest() / resolve(prefix) -> cid;  list(), search(text), conversation(cid), messages(cid),
  tool_calls(cid), turns(cid), runs(cid), continuation(cid) (ready to send again), delete(cid)
  transaction()                     BEGIN IMMEDIATE ... COMMIT for writes of one's own
  default_path(env), new_id(), load_conversation(path, prefix) (-c / --cid)
Every text written goes through the secrets filter; callers never redact themselves.
"""

from __future__ import annotations

import builtins  # `list` is also a method of LogDB: its annotations say builtins.list
import json
import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping
from urllib.parse import urlsplit

from .errors import UsageError

if TYPE_CHECKING:  # datetime is imported where it is used: a run that logs never needs it
    from datetime import datetime

SCHEMA_VERSION = 3
FILE_NAME = "logs.db"
BUSY_TIMEOUT_MS = 30_000  # many runs at once (xargs -P 8) wait for each other's short writes
TITLE_CHARS = 100

# Version 1: the first, minimal log (conversations and their messages). Kept as it was written, so
# that the migration to version 2 is tested on a file made by it.
SCHEMA_V1 = """
CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    model TEXT,
    title TEXT
);
CREATE TABLE messages (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    role TEXT NOT NULL,
    json TEXT NOT NULL,
    PRIMARY KEY (conversation_id, position)
);
"""

# Version 1 -> 2: what a run is made of (runs, turns, tool calls), where it went, and search.
MIGRATE_V2 = """
ALTER TABLE conversations ADD COLUMN updated TEXT;
UPDATE conversations SET updated = created;
ALTER TABLE conversations ADD COLUMN system TEXT;
ALTER TABLE conversations ADD COLUMN dialect TEXT;
ALTER TABLE conversations ADD COLUMN endpoint TEXT;
CREATE INDEX conversations_updated ON conversations(updated);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    started TEXT NOT NULL,
    ended TEXT,
    model TEXT,
    status TEXT NOT NULL DEFAULT 'running',
    error TEXT,
    messages INTEGER
);
CREATE INDEX runs_conversation ON runs(conversation_id);
CREATE TABLE turns (
    id INTEGER PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    run_id INTEGER REFERENCES runs(id) ON DELETE CASCADE,
    turn INTEGER NOT NULL,
    requested TEXT NOT NULL,
    duration_ms INTEGER,
    stop_reason TEXT,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cache_creation_input_tokens INTEGER NOT NULL DEFAULT 0,
    cache_read_input_tokens INTEGER NOT NULL DEFAULT 0,
    usage TEXT,
    retries INTEGER NOT NULL DEFAULT 0,
    error TEXT
);
CREATE INDEX turns_conversation ON turns(conversation_id);
CREATE TABLE tool_calls (
    id INTEGER PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    run_id INTEGER REFERENCES runs(id) ON DELETE CASCADE,
    turn_id INTEGER REFERENCES turns(id) ON DELETE CASCADE,
    tool_use_id TEXT,
    name TEXT NOT NULL,
    source TEXT,
    input TEXT,
    output TEXT,
    is_error INTEGER NOT NULL DEFAULT 0,
    duration_ms INTEGER
);
CREATE INDEX tool_calls_conversation ON tool_calls(conversation_id);
CREATE TABLE search_text (
    id INTEGER PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    ref INTEGER,
    text TEXT NOT NULL
);
CREATE INDEX search_text_conversation ON search_text(conversation_id, kind, ref);
CREATE VIRTUAL TABLE search USING fts5(
    text, content = 'search_text', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER search_text_added AFTER INSERT ON search_text BEGIN
    INSERT INTO search (rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER search_text_removed AFTER DELETE ON search_text BEGIN
    INSERT INTO search (search, rowid, text) VALUES ('delete', old.id, old.text);
END;
"""


# Version 2 -> 3: `toolchat batch` keeps its progress here (batch/state.py reads and writes it).
MIGRATE_V3 = """
CREATE TABLE batch_jobs (
    input_hash TEXT PRIMARY KEY,
    input TEXT,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    lines INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE batch_lines (
    input_hash TEXT NOT NULL REFERENCES batch_jobs(input_hash) ON DELETE CASCADE,
    custom_id TEXT NOT NULL,
    line INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    request TEXT,
    state TEXT,
    batch_id TEXT,
    result TEXT,
    outcome TEXT,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    written INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (input_hash, custom_id)
);
CREATE INDEX batch_lines_line ON batch_lines(input_hash, line);
CREATE TABLE batch_batches (
    id TEXT PRIMARY KEY,
    input_hash TEXT NOT NULL REFERENCES batch_jobs(input_hash) ON DELETE CASCADE,
    round INTEGER NOT NULL,
    requests INTEGER NOT NULL,
    created TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'in_progress',
    consumed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX batch_batches_job ON batch_batches(input_hash);
"""


class LogError(UsageError):
    """The log cannot be used: a newer schema, not a database, a file that cannot be written."""

    type = "log_error"


# ---------------------------------------------------------------------------------------------
# Where, when, which


def default_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("TOOLCHAT_HOME"):
        return Path(env["TOOLCHAT_HOME"]).expanduser() / FILE_NAME
    base = env.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "toolchat" / FILE_NAME


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(now: float | None = None) -> str:
    """A ULID: 48 bits of milliseconds then 80 random bits, 26 characters; sorts by time."""
    ms = int((time.time() if now is None else now) * 1000)
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def now_iso() -> str:
    """UTC with milliseconds, `2026-12-01T20:15:03.123Z`: sorts as text, compares as time."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


def iso(moment: datetime) -> str:
    from datetime import timezone

    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_since(text: str, now: datetime | None = None) -> str:
    """`--since`: `30m`, `2h`, `3d`, `1w` ago, or a date or time (`2026-12-01`, `2026-12-01 14:30`,
    ISO 8601; local time unless it says otherwise). The ISO UTC text to compare with."""
    from datetime import datetime, timedelta, timezone

    now = now or datetime.now(timezone.utc)
    value = text.strip()
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    if len(value) >= 2 and value[-1].lower() in units and value[:-1].isdigit():
        return iso(now - timedelta(**{units[value[-1].lower()]: int(value[:-1])}))
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--since: {text!r} is neither a duration (30m, 2h, 3d, 1w) nor a date "
            "or time (2026-12-01, 2026-12-01 14:30)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # a naive time is local time
    return iso(moment)


def endpoint_host(base_url: str | None) -> str | None:
    """The host (and a port other than the scheme's) of the endpoint: no user, password, path or
    query, any of which can carry a credential."""
    if not base_url:
        return None
    parts = urlsplit(base_url)
    host = parts.hostname
    if not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return host if port is None or port == default else f"{host}:{port}"


def title_of(messages: list[dict]) -> str | None:
    """The first prompt's text, folded to one line and clipped."""
    for message in messages:
        if message.get("role") != "user":
            continue
        words = " ".join(texts_of(message)).split()
        if words:
            title = " ".join(words)
            return title if len(title) <= TITLE_CHARS else title[: TITLE_CHARS - 1] + "…"
    return None


def texts_of(message: dict) -> list[str]:
    """The text of a message's text blocks (a user message's string content included)."""
    content = message.get("content")
    if isinstance(content, str):
        return [content] if content else []
    if not isinstance(content, list):
        return []
    return [
        b["text"]
        for b in content
        if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str) and b["text"]
    ]


def result_text(block: dict) -> str:
    """The text of a tool_result block (a string, or text blocks)."""
    content = block.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            b.get("text", "")
            for b in content
            if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        )
    return ""


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


# ---------------------------------------------------------------------------------------------
# The database


class LogDB:
    """One connection to the log. `create=False` opens an existing file only (readers); a missing
    file then raises FileNotFoundError."""

    def __init__(self, path: str | os.PathLike, create: bool = True, secrets: tuple[str, ...] = ()):
        self.path = Path(path)
        # Credentials (the key, header values) are never written, even where a server echoed one
        # into an error or a tool printed one: each is replaced before anything is stored.
        self.secrets = tuple(sorted({s for s in secrets if s and len(s) >= 8}, key=len, reverse=True))
        if not self.path.exists():
            if not create:
                raise FileNotFoundError(str(self.path))
            self._create_file()
        try:
            self.conn = sqlite3.connect(
                str(self.path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise LogError(f"{self.path}: cannot open the log: {exc}") from None
        try:
            self._prepare()
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise LogError(f"{self.path}: not a toolchat log, or damaged ({exc})") from None
        except BaseException:
            self.conn.close()
            raise

    def _create_file(self) -> None:
        """A new log is readable by its owner only: it holds every prompt and answer."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        except OSError as exc:
            raise LogError(f"{self.path}: cannot create the log: {exc.strerror or exc}") from None

    def _prepare(self) -> None:
        conn = self.conn
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # Read before anything is written: a newer file is left exactly as it is.
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        self._refuse_newer(version)
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode = WAL")  # persistent: done once per file
        # In WAL mode, NORMAL loses nothing when a process dies (only on power loss may the last
        # commits roll back, never corrupting the file) and saves an fsync per commit.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        if version < SCHEMA_VERSION:
            self._migrate()

    def _refuse_newer(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise LogError(
                f"{self.path}: this log was written by a newer toolchat (log schema {version}; this "
                f"one reads up to {SCHEMA_VERSION}); upgrade toolchat, or run with --no-log"
            )

    def _migrate(self) -> None:
        """Bring the file to SCHEMA_VERSION, one step at a time, in one transaction (so two
        processes starting at once do it once: the second sees the new version and does nothing)."""
        with self.transaction():
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            self._refuse_newer(version)
            if version < 1:
                self._script(SCHEMA_V1)
                version = 1
            if version < 2:
                self._script(MIGRATE_V2)
                self._backfill_v2()
                version = 2
            if version < 3:
                self._script(MIGRATE_V3)
                version = 3
            self.conn.execute(f"PRAGMA user_version = {version}")

    def _script(self, script: str) -> None:
        # executescript() would COMMIT first; statements one by one stay inside the transaction.
        statement = ""
        for line in script.splitlines(keepends=True):
            statement += line
            if sqlite3.complete_statement(statement):
                self.conn.execute(statement)
                statement = ""
        assert not statement.strip(), f"incomplete statement in a migration: {statement!r}"

    def _backfill_v2(self) -> None:
        """Version 1 kept messages only: tool calls are recovered from them (each tool_use and its
        tool_result) and everything is indexed for search."""
        conn = self.conn
        rows = conn.execute("SELECT conversation_id, position, json FROM messages ORDER BY conversation_id, position")
        uses: dict[str, dict] = {}
        for conversation_id, position, text in rows.fetchall():
            try:
                message = json.loads(text)
            except ValueError:
                continue
            if not isinstance(message, dict):
                continue
            self._index_message(conversation_id, position, message)
            content = message.get("content")
            if not isinstance(content, list):
                continue
            for block in content:
                if not isinstance(block, dict):
                    continue
                if block.get("type") == "tool_use":
                    uses[block.get("id", "")] = block
                elif block.get("type") == "tool_result":
                    use = uses.pop(block.get("tool_use_id", ""), {})
                    output = result_text(block)
                    call_id = conn.execute(
                        "INSERT INTO tool_calls (conversation_id, tool_use_id, name, input, output,"
                        " is_error) VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            conversation_id,
                            block.get("tool_use_id"),
                            use.get("name") or "?",
                            dumps(use.get("input", {})),
                            output,
                            int(bool(block.get("is_error"))),
                        ),
                    ).lastrowid
                    self._index(conversation_id, "tool", call_id, output)

    def _index_message(self, conversation_id: str, position: int, message: dict) -> None:
        """A prompt or an answer, searchable (tool results are indexed as the tool calls end)."""
        role = message.get("role")
        kind = "prompt" if role == "user" else "answer" if role == "assistant" else None
        if kind is not None:
            self._index(conversation_id, kind, position, "\n\n".join(texts_of(message)))

    def _index(self, conversation_id: str, kind: str, ref: int | None, text: str | None) -> None:
        if text:
            text = self._clean(text)
            self.conn.execute(
                "INSERT INTO search_text (conversation_id, kind, ref, text) VALUES (?, ?, ?, ?)",
                (conversation_id, kind, ref, text),
            )

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE: the write lock up front, so concurrent writers queue on the busy
        timeout instead of failing to upgrade a read lock."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "LogDB":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _clean(self, text):
        if text is None or not self.secrets:
            return text
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, "[redacted]")
        return text

    def _dumps(self, value: Any) -> str:
        return self._clean(dumps(value))

    # -- writing (the log sink) ----------------------------------------------------------------

    def start_run(
        self,
        conversation_id: str | None,
        *,
        model: str,
        system: str | None,
        dialect: str | None,
        endpoint: str | None,
        messages: list[dict],
    ) -> tuple[str, int, int]:
        """Open a run: the conversation (new unless `conversation_id`), the run row, and the
        messages as they stand (the prompt). Returns (conversation id, run id, messages stored)."""
        stamp = now_iso()
        with self.transaction() as conn:
            known: int | None = None  # messages of a continued conversation compared with the file
            if conversation_id is None or not self._exists(conversation_id):
                conversation_id = conversation_id or new_id()
                conn.execute(
                    "INSERT INTO conversations (id, created, updated, model, system, dialect, endpoint,"
                    " title) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        conversation_id,
                        stamp,
                        stamp,
                        model,
                        self._clean(system),
                        dialect,
                        endpoint,
                        self._clean(title_of(messages)),
                    ),
                )
                known = 0  # a new conversation: nothing stored to compare with
            else:
                conn.execute(
                    "UPDATE conversations SET updated = ?, model = ?, system = ?, dialect = ?,"
                    " endpoint = ? WHERE id = ?",
                    (stamp, model, self._clean(system), dialect, endpoint, conversation_id),
                )
            stored = self._sync_messages(conversation_id, messages, known)
            run_id = conn.execute(
                "INSERT INTO runs (conversation_id, started, model, messages) VALUES (?, ?, ?, ?)",
                (conversation_id, stamp, model, stored),
            ).lastrowid
        return conversation_id, int(run_id or 0), stored

    def _exists(self, conversation_id: str) -> bool:
        return self.conn.execute("SELECT 1 FROM conversations WHERE id = ?", (conversation_id,)).fetchone() is not None

    def _sync_messages(self, conversation_id: str, messages: list[dict], stored: int | None) -> int:
        """Store `messages` from the first one that differs from what is stored. `stored`: how many
        this process has written and knows unchanged (None: compare with the file)."""
        conn = self.conn
        if stored is None:
            have = [
                row[0]
                for row in conn.execute(
                    "SELECT json FROM messages WHERE conversation_id = ? ORDER BY position", (conversation_id,)
                )
            ]
            stored = 0
            while stored < min(len(have), len(messages)) and have[stored] == self._dumps(messages[stored]):
                stored += 1
            if stored < len(have):
                # The run changed a stored message (a prompt joined to the last user message):
                # from there on the file follows the run. Their search rows are rebuilt with them.
                self._drop_messages(conversation_id, stored)
        elif stored > len(messages):
            stored = len(messages)
            self._drop_messages(conversation_id, stored)
        for position in range(stored, len(messages)):
            message = messages[position]
            conn.execute(
                "INSERT INTO messages (conversation_id, position, role, json) VALUES (?, ?, ?, ?)",
                (conversation_id, position, str(message.get("role")), self._dumps(message)),
            )
            self._index_message(conversation_id, position, message)
        return len(messages)

    def _drop_messages(self, conversation_id: str, start: int) -> None:
        self.conn.execute(
            "DELETE FROM search_text WHERE conversation_id = ? AND kind IN ('prompt', 'answer') AND ref >= ?",
            (conversation_id, start),
        )
        self.conn.execute("DELETE FROM messages WHERE conversation_id = ? AND position >= ?", (conversation_id, start))

    def sync(self, conversation_id: str, run_id: int, messages: list[dict], stored: int) -> int:
        with self.transaction():
            stored = self._sync_messages(conversation_id, messages, stored)
            self._touch(conversation_id)
        return stored

    def _touch(self, conversation_id: str) -> str:
        """The conversation was active now."""
        stamp = now_iso()
        self.conn.execute("UPDATE conversations SET updated = ? WHERE id = ?", (stamp, conversation_id))
        return stamp

    def end_turn(
        self, conversation_id: str, run_id: int, turn: dict, messages: list[dict], stored: int
    ) -> tuple[int, int]:
        """A model request ended (or failed): its row, and the messages as they now stand."""
        usage = turn.get("usage") or {}

        def tokens(key: str) -> int:
            value = usage.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) else 0

        with self.transaction() as conn:
            turn_id = conn.execute(
                "INSERT INTO turns (conversation_id, run_id, turn, requested, duration_ms, stop_reason,"
                " input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens,"
                " usage, retries, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    conversation_id,
                    run_id,
                    turn["turn"],
                    turn["requested"],
                    turn.get("duration_ms"),
                    turn.get("stop_reason"),
                    tokens("input_tokens"),
                    tokens("output_tokens"),
                    tokens("cache_creation_input_tokens"),
                    tokens("cache_read_input_tokens"),
                    self._dumps(usage) if usage else None,
                    turn.get("retries", 0),
                    self._dumps(turn["error"]) if turn.get("error") is not None else None,
                ),
            ).lastrowid
            stored = self._sync_messages(conversation_id, messages, stored)
            self._touch(conversation_id)
        return int(turn_id or 0), stored

    def add_tool_call(self, conversation_id: str, run_id: int, turn_id: int | None, call: dict) -> None:
        with self.transaction() as conn:
            call_id = conn.execute(
                "INSERT INTO tool_calls (conversation_id, run_id, turn_id, tool_use_id, name, source,"
                " input, output, is_error, duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    conversation_id,
                    run_id,
                    turn_id,
                    call.get("id"),
                    call["name"],
                    call.get("source"),
                    self._dumps(call.get("input")),
                    self._clean(call.get("output")),
                    int(bool(call.get("is_error"))),
                    call.get("duration_ms"),
                ),
            ).lastrowid
            self._index(conversation_id, "tool", call_id, self._clean(call.get("output")))

    def end_run(
        self, conversation_id: str, run_id: int, status: str, error: dict | None, messages: list[dict], stored: int
    ) -> int:
        with self.transaction() as conn:
            stored = self._sync_messages(conversation_id, messages, stored)
            stamp = self._touch(conversation_id)
            conn.execute(
                "UPDATE runs SET ended = ?, status = ?, error = ?, messages = ? WHERE id = ?",
                (stamp, status, self._dumps(error) if error is not None else None, stored, run_id),
            )
        return stored

    # -- reading (toolchat logs, -c) -----------------------------------------------------------

    def resolve(self, prefix: str) -> str:
        """The id of the one conversation whose id starts with `prefix` (any case)."""
        wanted = prefix.strip().upper()
        if not wanted or any(c not in _CROCKFORD for c in wanted):
            raise UsageError(f"{prefix!r} is not a conversation id (see toolchat logs list)")
        # A range on the primary key, not LIKE: the index answers it.
        upper = wanted + "\x7f"
        rows = self.conn.execute(
            "SELECT id FROM conversations WHERE id >= ? AND id < ? LIMIT 2", (wanted, upper)
        ).fetchall()
        if not rows:
            raise UsageError(f"no logged conversation has an id starting with {wanted}")
        if len(rows) > 1:
            raise UsageError(f"more than one logged conversation has an id starting with {wanted}; give more of it")
        return rows[0][0]

    def latest(self) -> str | None:
        row = self.conn.execute("SELECT id FROM conversations ORDER BY updated DESC, id DESC LIMIT 1").fetchone()
        return row[0] if row else None

    _SUMMARY = """
        SELECT c.id, c.created, c.updated, c.model, c.system, c.dialect, c.endpoint, c.title,
          (SELECT count(*) FROM turns t WHERE t.conversation_id = c.id),
          (SELECT count(*) FROM tool_calls k WHERE k.conversation_id = c.id),
          (SELECT coalesce(sum(input_tokens + cache_creation_input_tokens + cache_read_input_tokens), 0)
             FROM turns t WHERE t.conversation_id = c.id),
          (SELECT coalesce(sum(output_tokens), 0) FROM turns t WHERE t.conversation_id = c.id),
          (SELECT count(*) FROM runs r WHERE r.conversation_id = c.id),
          (SELECT status FROM runs r WHERE r.conversation_id = c.id ORDER BY r.id DESC LIMIT 1)
        FROM conversations c"""

    @staticmethod
    def _summary(row) -> dict:
        keys = (
            "id",
            "created",
            "updated",
            "model",
            "system",
            "dialect",
            "endpoint",
            "title",
            "turns",
            "tool_calls",
            "input_tokens",
            "output_tokens",
            "runs",
            "status",
        )
        return dict(zip(keys, row))

    def list(self, limit: int | None = 20, model: str | None = None, since: str | None = None) -> builtins.list[dict]:
        where: builtins.list[str] = []
        args: builtins.list[object] = []
        if model:
            where.append("c.model = ?")
            args.append(model)
        if since:
            where.append("c.updated >= ?")
            args.append(since)
        sql = self._SUMMARY + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY c.updated DESC, c.id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [self._summary(row) for row in self.conn.execute(sql, args)]

    def conversation(self, conversation_id: str) -> dict:
        row = self.conn.execute(self._SUMMARY + " WHERE c.id = ?", (conversation_id,)).fetchone()
        if row is None:
            raise UsageError(f"no logged conversation {conversation_id}")
        return self._summary(row)

    def messages(self, conversation_id: str) -> builtins.list[dict]:
        return [
            json.loads(text)
            for (text,) in self.conn.execute(
                "SELECT json FROM messages WHERE conversation_id = ? ORDER BY position", (conversation_id,)
            )
        ]

    def tool_calls(self, conversation_id: str) -> builtins.list[dict]:
        keys = ("id", "name", "source", "input", "output", "is_error", "duration_ms", "turn_id", "run_id")
        calls = []
        for row in self.conn.execute(
            "SELECT tool_use_id, name, source, input, output, is_error, duration_ms, turn_id, run_id"
            " FROM tool_calls WHERE conversation_id = ? ORDER BY id",
            (conversation_id,),
        ):
            call = dict(zip(keys, row))
            call["input"] = json.loads(call["input"]) if call["input"] is not None else None
            call["is_error"] = bool(call["is_error"])
            calls.append(call)
        return calls

    def turns(self, conversation_id: str) -> builtins.list[dict]:
        keys = ("id", "run_id", "turn", "requested", "duration_ms", "stop_reason", "usage", "retries", "error")
        turns = []
        for row in self.conn.execute(
            "SELECT id, run_id, turn, requested, duration_ms, stop_reason, usage, retries, error"
            " FROM turns WHERE conversation_id = ? ORDER BY id",
            (conversation_id,),
        ):
            turn = dict(zip(keys, row))
            turn["usage"] = json.loads(turn["usage"]) if turn["usage"] else {}
            turn["error"] = json.loads(turn["error"]) if turn["error"] else None
            turns.append(turn)
        return turns

    def runs(self, conversation_id: str) -> builtins.list[dict]:
        keys = ("id", "started", "ended", "model", "status", "error", "messages")
        runs = []
        for row in self.conn.execute(
            "SELECT id, started, ended, model, status, error, messages FROM runs WHERE conversation_id = ? ORDER BY id",
            (conversation_id,),
        ):
            run = dict(zip(keys, row))
            run["error"] = json.loads(run["error"]) if run["error"] else None
            runs.append(run)
        return runs

    def search(self, text: str, limit: int = 20) -> builtins.list[dict]:
        """Conversations matching every word of `text` (FTS5, best first by bm25), one row each
        with the best match's snippet; matches are wrapped in MARK_START / MARK_END.

        Ranking costs time for every passage that matches: for words found in more than
        SEARCH_WINDOW passages, the newest SEARCH_WINDOW of them are ranked (finding where they
        begin is cheap: the index is ordered by rowid, which grows as passages are written)."""
        query = fts_query(text)
        if not query:
            raise UsageError("search: give at least one word to look for")
        row = self.conn.execute(
            "SELECT rowid FROM search WHERE search MATCH ? ORDER BY rowid DESC LIMIT 1 OFFSET ?",
            (query, SEARCH_WINDOW - 1),
        ).fetchone()
        oldest = row[0] if row else 0
        seen: dict[str, dict] = {}
        fetch = limit * 4
        while True:
            rows = self.conn.execute(
                "SELECT s.conversation_id, s.kind, snippet(search, 0, ?, ?, '…', 16), search.rank"
                " FROM search JOIN search_text s ON s.id = search.rowid"
                " WHERE search MATCH ? AND search.rowid >= ? ORDER BY search.rank LIMIT ?",
                (MARK_START, MARK_END, query, oldest, fetch),
            ).fetchall()
            for conversation_id, kind, snippet, rank in rows:
                if conversation_id not in seen and len(seen) < limit:
                    seen[conversation_id] = {"kind": kind, "snippet": snippet, "rank": rank}
            if len(seen) >= limit or len(rows) < fetch:
                break
            fetch *= 4  # many matches in few conversations: look further
        found = []
        for conversation_id, match in seen.items():
            try:
                summary = self.conversation(conversation_id)
            except UsageError:
                continue
            found.append({**summary, "match": match})
        return found

    def delete(self, conversation_id: str) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM search_text WHERE conversation_id = ?", (conversation_id,))
            conn.execute("DELETE FROM tool_calls WHERE conversation_id = ?", (conversation_id,))
            conn.execute("DELETE FROM turns WHERE conversation_id = ?", (conversation_id,))
            conn.execute("DELETE FROM runs WHERE conversation_id = ?", (conversation_id,))
            conn.execute("DELETE FROM messages WHERE conversation_id = ?", (conversation_id,))
            conn.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    def continuation(self, conversation_id: str) -> builtins.list[dict]:
        """The stored messages, ready to continue: tool calls a killed run left without results get
        the results that were logged, or an error saying they were not run (as Chat settles them)."""
        messages = self.messages(conversation_id)
        if not messages or messages[-1].get("role") != "assistant":
            return messages
        content = messages[-1].get("content")
        uses = (
            [b for b in content if isinstance(b, dict) and b.get("type") == "tool_use"]
            if isinstance(content, list)
            else []
        )
        if not uses:
            return messages
        done = {call["id"]: call for call in self.tool_calls(conversation_id)}
        blocks = []
        for use in uses:
            call = done.get(use.get("id"))
            block = {
                "type": "tool_result",
                "tool_use_id": use.get("id", ""),
                "content": call["output"] if call else "not run: the run was stopped before this tool finished",
            }
            if call is None or call["is_error"]:
                block["is_error"] = True
            blocks.append(block)
        return messages + [{"role": "user", "content": blocks}]


SEARCH_WINDOW = 5_000  # passages ranked at most (the newest); see LogDB.search

# Private-use characters mark matches in snippets: they cannot occur in text that was neutralised
# for a terminal, and are replaced before anything is shown.
MARK_START, MARK_END = "\ue000", "\ue001"


def fts_query(text: str) -> str:
    """Every word of `text` as a quoted FTS5 string, so punctuation and FTS5 operators in what a
    person types are searched for, not obeyed (`"a"` AND `"b"`...)."""
    words = text.split()
    return " ".join('"' + word.replace('"', '""') + '"' for word in words)


def split_marks(snippet: str) -> list[tuple[str, bool]]:
    """A snippet as (text, is_match) pieces."""
    pieces: list[tuple[str, bool]] = []
    rest = snippet
    while rest:
        start = rest.find(MARK_START)
        if start < 0:
            pieces.append((rest, False))
            break
        if start:
            pieces.append((rest[:start], False))
        end = rest.find(MARK_END, start + 1)
        if end < 0:
            end = len(rest)
        pieces.append((rest[start + 1 : end], True))
        rest = rest[end + 1 :]
    return [(text.replace(MARK_START, "").replace(MARK_END, ""), match) for text, match in pieces if text]


# ---------------------------------------------------------------------------------------------
# Continuing a conversation (-c / --cid)


class Continued:
    """A logged conversation to continue: its id, its messages (ready to send again, tool calls a
    killed run left open answered), and the model and system prompt of its latest run."""

    def __init__(self, conversation_id: str, messages: list[dict], model: str | None, system: str | None):
        self.conversation_id = conversation_id
        self.messages = messages
        self.model = model
        self.system = system


def load_conversation(path: str | os.PathLike, prefix: str | None) -> Continued:
    """The conversation `prefix` names (a unique start of its id), or the most recent one."""
    flag = "--cid" if prefix is not None else "-c"
    try:
        db = LogDB(path, create=False)
    except FileNotFoundError:
        raise UsageError(f"{flag}: nothing to continue: no conversation is logged yet ({path})") from None
    with db:
        if prefix is None:
            conversation_id = db.latest()
            if conversation_id is None:
                raise UsageError(f"-c: nothing to continue: no conversation is logged yet ({path})")
        else:
            try:
                conversation_id = db.resolve(prefix)
            except UsageError as exc:
                raise UsageError(f"--cid: {exc.message}") from None
        summary = db.conversation(conversation_id)
        return Continued(conversation_id, db.continuation(conversation_id), summary["model"], summary["system"])
