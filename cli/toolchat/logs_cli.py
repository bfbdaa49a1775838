"""`toolchat logs`: list, show, search, export and remove logged conversations; where the log is;
turn logging off or on.

Piped, everything is plain text (or JSON with --json: cli/toolchat/schemas/logs.schema.json); on a
terminal, the styles of the live view. Text from the log (prompts, answers, tool input and output)
was written by a model, a tool or a person: it reaches a terminal only through toolchat.text.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, List, Optional

import typer

from . import commands  # the help formatting and the error guard of every command
from .errors import UsageError

logs_app = typer.Typer(
    help="The conversation log: list, show, search, export, remove.",
    context_settings=commands.HELP,
    invoke_without_command=True,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (cli/toolchat/schemas/logs.schema.json).")]
Limit = Annotated[int, typer.Option("-n", "--limit", metavar="N", help="Show at most N conversations (0: all).")]
ModelFilter = Annotated[
    Optional[str],
    typer.Option("--model", "-m", metavar="MODEL", help="Only conversations with this model.", show_default=False),
]
Since = Annotated[
    Optional[str],
    typer.Option(
        "--since",
        metavar="WHEN",
        help="Only conversations active since WHEN: 30m, 2h, 3d, 1w, or a date/time (2026-12-01 14:30).",
        show_default=False,
    ),
]
Id = Annotated[str, typer.Argument(metavar="ID", help="A conversation id, or a unique start of one.")]


@logs_app.callback()
def logs(
    ctx: typer.Context, limit: Limit = 20, model: ModelFilter = None, since: Since = None, json_output: JsonFlag = False
) -> None:
    """The conversation log. Without a command: the most recent conversations (as `logs list`)."""
    if ctx.invoked_subcommand is None:
        raise typer.Exit(commands._guard(lambda: _list(limit, model, since, json_output), False))


@logs_app.command("list", cls=commands._Command)
def logs_list(limit: Limit = 20, model: ModelFilter = None, since: Since = None, json_output: JsonFlag = False) -> None:
    """The most recent conversations, newest first: id, time, model, turns, tools, tokens, title."""
    raise typer.Exit(commands._guard(lambda: _list(limit, model, since, json_output), False))


@logs_app.command("show", cls=commands._Command)
def logs_show(conversation: Id, json_output: JsonFlag = False) -> None:
    """A conversation as it went: prompts, answers and tool calls."""

    def action() -> int:
        with _open() as db:
            cid = db.resolve(conversation)
            summary = db.conversation(cid)
            messages, calls, runs = db.messages(cid), db.tool_calls(cid), db.runs(cid)
            if json_output:
                _print_json(
                    {
                        "conversation": summary,
                        "messages": messages,
                        "tool_calls": calls,
                        "turns": db.turns(cid),
                        "runs": runs,
                    }
                )
                return 0
        _Out().show(summary, messages, calls, runs)
        return 0

    raise typer.Exit(commands._guard(action, False))


@logs_app.command("search", cls=commands._Command)
def logs_search(
    words: Annotated[
        List[str],
        typer.Argument(metavar="TEXT", help="Words to find (all of them) in prompts, answers and tool outputs."),
    ],
    limit: Limit = 20,
    json_output: JsonFlag = False,
) -> None:
    """Conversations holding every word of TEXT, best match first, with the matching passage."""

    def action() -> int:
        from .logdb import split_marks

        text = " ".join(words)
        try:
            db = _open()
        except _NoLog:
            found: list[dict] = []
        else:
            with db:
                found = db.search(text, limit=limit or 1_000_000_000)
        if json_output:
            results = []
            for row in found:
                match = row.pop("match")
                plain, highlights = "", []
                for piece, is_match in split_marks(match["snippet"]):
                    if is_match:
                        highlights.append([len(plain), len(plain) + len(piece)])
                    plain += piece
                results.append(
                    {
                        **row,
                        "match": {
                            "kind": match["kind"],
                            "snippet": plain,
                            "highlights": highlights,
                            "rank": match["rank"],
                        },
                    }
                )
            _print_json({"query": text, "results": results})
            return 0
        _Out().search(found)
        return 0

    raise typer.Exit(commands._guard(action, False))


@logs_app.command("export", cls=commands._Command)
def logs_export(
    conversation: Id,
    output: Annotated[
        Optional[str],
        typer.Option("-o", "--output", metavar="FILE", help="Write it to FILE instead of stdout.", show_default=False),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """A conversation as a --save transcript, which --messages FILE continues."""

    def action() -> int:
        from .transcript import FORMAT, VERSION, save_transcript

        with _open() as db:
            cid = db.resolve(conversation)
            summary = db.conversation(cid)
            messages = db.continuation(cid)  # tool calls a killed run left open are answered
        if output is not None:
            try:
                save_transcript(output, messages, model=summary["model"], system=summary["system"])
            except OSError as exc:
                raise _usage(f"--output {output}: cannot write it: {exc.strerror or exc}") from None
            return 0
        document = {
            "format": FORMAT,
            "version": VERSION,
            "model": summary["model"],
            "system": summary["system"],
            "messages": messages,
        }
        print(json.dumps(document, ensure_ascii=False, indent=None if json_output else 2))
        return 0

    raise typer.Exit(commands._guard(action, False))


@logs_app.command("rm", cls=commands._Command)
def logs_rm(
    conversations: Annotated[
        List[str], typer.Argument(metavar="ID", help="Conversation ids (or unique starts of them).")
    ],
    json_output: JsonFlag = False,
) -> None:
    """Remove conversations from the log, with everything logged of them."""

    def action() -> int:
        with _open() as db:
            ids = [db.resolve(conversation) for conversation in conversations]  # all known first
            for cid in dict.fromkeys(ids):
                db.delete(cid)
        if json_output:
            _print_json({"deleted": list(dict.fromkeys(ids))})
        else:
            for cid in dict.fromkeys(ids):
                print(f"deleted {cid}")
        return 0

    raise typer.Exit(commands._guard(action, False))


@logs_app.command("path", cls=commands._Command)
def logs_path(json_output: JsonFlag = False) -> None:
    """Where the log is ($TOOLCHAT_HOME/logs.db, else $XDG_DATA_HOME/toolchat/logs.db)."""
    from .logdb import default_path

    path = default_path()
    if json_output:
        _print_json({"path": str(path), "exists": path.exists()})
    else:
        print(path)


@logs_app.command("off", cls=commands._Command)
def logs_off(json_output: JsonFlag = False) -> None:
    """Stop logging runs: sets `log: false` in the config file."""
    raise typer.Exit(commands._guard(lambda: _switch(False, json_output), False))


@logs_app.command("on", cls=commands._Command)
def logs_on(json_output: JsonFlag = False) -> None:
    """Log every run again: sets `log: true` in the config file."""
    raise typer.Exit(commands._guard(lambda: _switch(True, json_output), False))


# ---------------------------------------------------------------------------------------------


def _usage(message: str) -> UsageError:
    return UsageError(message)


def _open():
    """The log, for reading; _NoLog when nothing was logged yet."""
    from .logdb import LogDB, default_path

    path = default_path()
    try:
        return LogDB(path, create=False)
    except FileNotFoundError:
        raise _NoLog(path) from None


class _NoLog(UsageError):
    """Nothing was logged yet: commands that need a conversation say so (exit 2); list and search
    simply find nothing."""

    def __init__(self, path: Path):
        super().__init__(f"nothing is logged yet ({path} does not exist)")
        self.path = path


def _list(limit: int, model: str | None, since: str | None, json_output: bool) -> int:
    from .logdb import parse_since

    after = parse_since(since) if since else None
    if limit < 0:
        raise _usage("-n: must be at least 0")
    try:
        with _open() as db:
            rows = db.list(limit=limit or None, model=model, since=after)
    except _NoLog:
        rows = []
    if json_output:
        _print_json({"conversations": rows})
    else:
        _Out().table(rows)
    return 0


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False))


def _switch(on: bool, json_output: bool) -> int:
    """Set `log: true|false` in the config file, keeping the rest of it as written (comments too)."""
    import re

    from .settings import config_path, load_config

    path = config_path(os.environ)
    if path.exists() and path.is_char_device():
        raise _usage(f"{path}: not a config file that can be written (TOOLCHAT_CONFIG)")
    load_config(path)  # refuse to edit a file that does not load
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
    except OSError as exc:
        raise _usage(f"{path}: cannot read the config file: {exc.strerror or exc}") from None
    line = f"log: {'true' if on else 'false'}"
    pattern = re.compile(r"^log[ \t]*:.*$", re.MULTILINE)
    if pattern.search(text):
        updated = pattern.sub(line, text, count=1)
    else:
        updated = text + ("" if not text or text.endswith("\n") else "\n") + line + "\n"
    _write_atomically(path, updated)
    if load_config(path).get("log") is not on:  # a layout the line edit could not handle
        _write_atomically(path, text)
        raise _usage(f"{path}: could not set log: {str(on).lower()} in it; edit it by hand")
    if json_output:
        _print_json({"log": on, "config": str(path)})
    else:
        print(f"logging {'on' if on else 'off'} ({path})")
    return 0


def _write_atomically(path: Path, text: str) -> None:
    import tempfile

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        target = Path(os.path.realpath(path))
        mode = target.stat().st_mode & 0o7777 if target.exists() else 0o644
        fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            os.fchmod(handle.fileno(), mode)
        os.replace(temporary, target)
    except OSError as exc:
        raise _usage(f"{path}: cannot write the config file: {exc.strerror or exc}") from None


# ---------------------------------------------------------------------------------------------
# Rendering: plain when piped, the live view's styles on a terminal


def local_time(stamp: str | None) -> str:
    """`2026-12-01 20:15` in local time, from the log's UTC text."""
    from datetime import datetime

    if not stamp:
        return "-"
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


class _Out:
    """Writes lines of (text, style) pieces: styled through rich on a terminal, plain otherwise.
    Every piece is neutralised first (the log holds untrusted text)."""

    def __init__(self, stream=None):
        from .views.plain import is_terminal

        self.stream = stream or sys.stdout
        self.last = ""  # what was written last: "" | "text" | "tool" | "blank" (for blank lines)
        self.console = None
        if is_terminal(self.stream):
            from rich.console import Console

            self.console = Console(file=self.stream, highlight=False, markup=False, emoji=False)

    @property
    def width(self) -> int:
        return self.console.width if self.console is not None else 100

    def gap(self, kind: str) -> None:
        """A blank line where the kind of what is written changes (answer text / tool traces)."""
        if self.last not in ("", "blank", kind):
            self.line(("", ""))
        self.last = kind

    def line(self, *pieces: tuple[str, str]) -> None:
        from .text import neutralise

        self.last = "blank" if not any(text for text, _ in pieces) else self.last
        if self.console is None:
            self.stream.write("".join(neutralise(text) for text, _ in pieces) + "\n")
            return
        from rich.text import Text

        line = Text(no_wrap=False, overflow="fold")
        for text, style in pieces:
            line.append(neutralise(text), style=style or None)
        self.console.print(line, soft_wrap=False)

    def markdown(self, text: str) -> None:
        """An answer: markdown on a terminal, as the live view shows it; as written when piped."""
        from .text import neutralise

        safe = neutralise(text)
        if self.console is None:
            self.stream.write(safe + ("" if safe.endswith("\n") else "\n"))
            return
        from rich.markdown import Markdown

        self.console.print(Markdown(safe, code_theme="monokai"))

    def flush(self) -> None:
        self.stream.flush()

    # -- the commands ---------------------------------------------------------------------------

    def table(self, rows: list[dict]) -> None:
        from .text import clip, one_line

        if not rows:
            return
        cells = [
            (
                row["id"],
                local_time(row["updated"]),
                one_line(row["model"] or "-", 40),
                str(row["turns"]),
                str(row["tool_calls"]),
                f"{row['input_tokens'] + row['output_tokens']:,}",
            )
            for row in rows
        ]
        head = ("ID", "TIME", "MODEL", "TURNS", "TOOLS", "TOKENS")
        widths = [max(len(head[i]), *(len(c[i]) for c in cells)) for i in range(len(head))]
        right = {3, 4, 5}

        def fit(text: str, i: int) -> str:
            return text.rjust(widths[i]) if i in right else text.ljust(widths[i])

        used = sum(widths) + 2 * len(widths)
        room = max(20, self.width - used) if self.console is not None else 80
        self.line(("  ".join(fit(h, i) for i, h in enumerate(head)) + "  TITLE", "dim"))
        for row, cell in zip(rows, cells):
            title = clip(one_line(row["title"] or "", 10_000), room)
            self.line(
                (fit(cell[0], 0), "bold"),
                ("  " + fit(cell[1], 1), "dim"),
                ("  " + fit(cell[2], 2), "cyan"),
                ("  " + "  ".join(fit(cell[i], i) for i in (3, 4, 5)), ""),
                ("  " + title, ""),
            )
        self.flush()

    def search(self, found: list[dict]) -> None:
        from .logdb import split_marks
        from .text import one_line

        for row in found:
            self.line(
                (row["id"], "bold"),
                ("  " + local_time(row["updated"]), "dim"),
                ("  " + one_line(row["model"] or "-", 40), "cyan"),
                ("  " + one_line(row["title"] or "", 80), ""),
            )
            match = row["match"]
            pieces: list[tuple[str, str]] = [(f"    {match['kind']}: ", "dim")]
            for text, is_match in split_marks(" ".join(match["snippet"].split())):
                pieces.append((text, "bold yellow" if is_match else ""))
            self.line(*pieces)
        self.flush()

    def show(self, summary: dict, messages: list[dict], calls: list[dict], runs: list[dict]) -> None:
        from .text import compact_json, one_line

        turns, tools = summary["turns"], summary["tool_calls"]
        self.line(
            (summary["id"], "bold"),
            (
                f" · {one_line(summary['model'] or '-', 60)} · {local_time(summary['created'])} · "
                f"{turns} turn{'s' * (turns != 1)} · {tools} tool{'s' * (tools != 1)} · "
                f"{summary['input_tokens']:,} in / {summary['output_tokens']:,} out tokens",
                "dim",
            ),
        )
        if summary.get("system"):
            self.line(("system: ", "dim"), (one_line(summary["system"], 10_000), ""))
        # Tool calls by tool_use id, in the order they were logged (ids may repeat across turns).
        queue: dict[str, list[dict]] = {}
        for call in calls:
            queue.setdefault(call["id"] or "", []).append(call)
        names: dict[str, str] = {}
        # Where each run ended (its outcome is told there); a run that never ended: at the end.
        ends = {run["messages"]: run for run in runs if run.get("messages") is not None}
        if runs and runs[-1].get("status") == "running":
            ends[len(messages)] = runs[-1]
        for position, message in enumerate(messages):
            content = message.get("content")
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
            if message.get("role") == "user":
                prompt = "\n\n".join(
                    b["text"]
                    for b in blocks
                    if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
                )
                for block in blocks:
                    if isinstance(block, dict) and block.get("type") == "tool_result":
                        self.gap("tool")
                        self._result(block, queue, names)
                if prompt:
                    if self.last != "blank":
                        self.line(("", ""))
                    for text in prompt.splitlines() or [""]:
                        self.line(("> ", "dim"), (text, "bold"))
                    self.line(("", ""))
            else:
                for block in blocks:
                    if not isinstance(block, dict):
                        continue
                    kind = block.get("type")
                    if kind == "text" and block.get("text"):
                        self.gap("text")
                        self.markdown(block["text"])
                    elif kind == "tool_use":
                        self.gap("tool")
                        names[block.get("id", "")] = block.get("name", "?")
                        self.line(
                            ("→ ", "magenta"),
                            (str(block.get("name", "?")), "bold"),
                            (" " + one_line(compact_json(block.get("input", {}))), "cyan"),
                        )
            run = ends.get(position + 1)
            if run is not None and run.get("status") not in ("ok", None):
                self.gap("outcome")
                self._outcome(run)
        self.flush()

    def _result(self, block: dict, queue: dict[str, list[dict]], names: dict[str, str]) -> None:
        from .logdb import result_text
        from .text import one_line

        use_id = block.get("tool_use_id", "")
        logged = queue.get(use_id) or []
        call = logged.pop(0) if logged else None
        name = call["name"] if call else names.get(use_id, "?")
        failed = bool(block.get("is_error"))
        took = f" ({call['duration_ms']} ms)" if call and call.get("duration_ms") is not None else ""
        self.line(
            ("← ", "red" if failed else "green"),
            (name, "bold"),
            (f" {'error' if failed else 'ok'}{took}: ", "red" if failed else "green"),
            (one_line(result_text(block)), ""),
        )

    def _outcome(self, run: dict) -> None:
        from .text import one_line

        error = run.get("error") or {}
        status = run.get("status")
        message = error.get("message") if isinstance(error, dict) else None
        if status == "interrupted":
            self.line((f"({one_line(message or 'interrupted')})", "yellow"))
        elif status == "incomplete":
            self.line(("(incomplete answer)", "yellow"))
        elif status == "running":
            self.line(("(the run did not finish: it was stopped or is still going)", "yellow"))
        else:
            self.line((f"error: {one_line(message or status or 'unknown')}", "red"))
