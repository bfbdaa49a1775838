"""Conversations on disk: `--save FILE` writes one, `--messages FILE` continues one.

A saved transcript is {"format": "toolchat-transcript", "version": 1, "model", "system",
"messages"}, the messages in the Messages API's own shape, so it can be sent again as it is.
`--messages` also takes a bare messages array, a `--json` document, or `--stream-json` output.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UsageError
from .files import write_atomically

FORMAT = "toolchat-transcript"
VERSION = 1


@dataclass
class Loaded:
    messages: list[dict] = field(default_factory=list)
    model: str | None = None
    system: str | None = None


def save_transcript(path: str, messages: list[dict], model: str, system: str | None = None) -> None:
    """Write the transcript atomically: a temporary file in the same folder, then a rename.

    A reader (or a crash, or a second Ctrl-C) sees the old file or the new one, never half of one.
    """
    document = {"format": FORMAT, "version": VERSION, "model": model, "system": system, "messages": messages}
    data = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    # Through a symlink, replace the file it points to, not the link.
    target = Path(os.path.realpath(path))
    write_atomically(target, data, mode=_mode_for(target), durable=True)
    _sync_folder(target.parent)


def check_save_target(path: str) -> None:
    """Fail before anything is sent (and paid for) if `--save path` could not be written later:
    the same temporary file in the same folder is made and removed at once."""
    target = Path(os.path.realpath(path))
    if target.is_dir():
        raise OSError(21, "it is a folder")
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    os.unlink(temporary)


def _mode_for(target: Path) -> int:
    """An existing file keeps its permissions; a new one gets what open() would give it."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (best effort: not every platform can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_transcript(source: str) -> Loaded:
    """Read `--messages FILE` ('-' = stdin) in any of the shapes it accepts."""
    label = "stdin" if source == "-" else source
    from .stdio import decode, read_stdin, read_text, warn_replaced

    if source == "-":
        try:
            text, replaced = decode(read_stdin())
        except OSError as exc:
            raise UsageError(f"--messages {label}: cannot read it: {exc.strerror or exc}") from None
        warn_replaced(f"--messages {label}", replaced)
    else:
        try:
            text = read_text(Path(source), f"--messages {label}")
        except FileNotFoundError:
            raise UsageError(f"--messages {label}: file not found") from None
        except OSError as exc:
            raise UsageError(f"--messages {label}: cannot read it: {exc.strerror or exc}") from None
    loaded = parse_transcript(text, label)
    # JSON can spell lone surrogates ("\\ud800"), which no UTF-8 request can carry.
    loaded.messages, replaced = _repaired(loaded.messages)
    warn_replaced(f"--messages {label}", replaced)
    return loaded


def _repaired(value):
    """`value` with every string made valid text (lone surrogates -> U+FFFD); (value, count)."""
    from .stdio import repair

    if isinstance(value, str):
        return repair(value)
    if isinstance(value, list):
        pairs = [_repaired(item) for item in value]
        return [item for item, _ in pairs], sum(count for _, count in pairs)
    if isinstance(value, dict):
        fixed = {key: _repaired(item) for key, item in value.items()}
        return {key: item for key, (item, _) in fixed.items()}, sum(count for _, count in fixed.values())
    return value, 0


# Deeper than any conversation needs, shallow enough that nothing later (json.dumps, the request)
# meets Python's recursion limit.
MAX_DEPTH = 200


def strict_json(text: str):
    """json.loads that refuses what JSON does not allow (NaN, Infinity) and absurd nesting."""

    def refuse(constant: str):
        raise ValueError(f"{constant} is not valid JSON")

    try:
        data = json.loads(text, parse_constant=refuse)
    except RecursionError:
        raise ValueError(f"nested more than {MAX_DEPTH} levels deep") from None
    if _depth_over(data, MAX_DEPTH):
        raise ValueError(f"nested more than {MAX_DEPTH} levels deep")
    return data


def _depth_over(value, limit: int) -> bool:
    """Whether `value` nests deeper than `limit` (iterative: no recursion of its own)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def parse_transcript(text: str, label: str) -> Loaded:
    try:
        data = strict_json(text)
    except ValueError as exc:
        data = _last_result_line(text)
        if data is None:
            raise UsageError(f"--messages {label}: not valid JSON ({exc})") from None
    if isinstance(data, list):
        loaded = Loaded(messages=data)
    elif isinstance(data, dict) and isinstance(data.get("messages"), list):
        version = data.get("version")
        if data.get("format") == FORMAT and isinstance(version, int) and version > VERSION:
            raise UsageError(
                f"--messages {label}: transcript version {version} is newer than this "
                f"toolchat reads ({VERSION}); upgrade toolchat"
            )
        system = data.get("system")
        loaded = Loaded(
            messages=data["messages"],
            model=data.get("model") or None,
            system=system if isinstance(system, str) and system else None,
        )
    else:
        raise UsageError(
            f"--messages {label}: expected a saved conversation, a messages array or --json / --stream-json output"
        )
    for position, message in enumerate(loaded.messages):
        problem = _message_problem(message)
        if problem:
            raise UsageError(f"--messages {label}: message {position + 1}: {problem}")
    return loaded


def continue_from(messages: list[dict], prompt: str, label: str, flag: str = "--messages") -> list[dict]:
    """The loaded messages with the new prompt appended (if any), ready to send. Errors name them
    as `flag label` (`--messages FILE`, `--cid ID`, or `-c` with an empty label)."""
    label = f"{flag} {label}" if label else flag
    messages = [dict(m) for m in messages]
    if prompt and messages and messages[-1]["role"] == "assistant" and _tool_uses(messages[-1]):
        raise UsageError(
            f"{label}: the conversation ends with tool calls that have no results; it cannot be continued with a prompt"
        )
    if prompt:
        if messages and messages[-1]["role"] == "user":
            # Two user messages in a row: the prompt joins the last one (after any tool results).
            content = messages[-1]["content"]
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
            messages[-1]["content"] = blocks + [{"type": "text", "text": prompt}]
        else:
            messages.append({"role": "user", "content": prompt})
    if not messages:
        raise UsageError(f"{label}: the conversation is empty and no prompt was given")
    if messages[-1]["role"] != "user":
        raise UsageError(f"{label}: the conversation ends with the model's answer; give a prompt to continue it")
    return messages


def _tool_uses(message: dict) -> list:
    content = message.get("content")
    return [b for b in content if b.get("type") == "tool_use"] if isinstance(content, list) else []


def _last_result_line(text: str):
    """`--stream-json` output: its final `result` event (which carries the messages)."""
    # Split on newlines only: NDJSON lines end with "\n", whatever else a string holds.
    for line in reversed([line for line in text.split("\n") if line.strip()]):
        try:
            event = strict_json(line)
        except ValueError:
            return None
        if isinstance(event, dict) and event.get("type") == "result":
            return event
    return None


def _message_problem(message) -> str | None:
    if not isinstance(message, dict):
        return "not an object"
    if message.get("role") not in ("user", "assistant"):
        return f"role must be 'user' or 'assistant', not {message.get('role')!r}"
    content = message.get("content")
    if isinstance(content, str):
        return None
    if not isinstance(content, list) or not all(isinstance(b, dict) and "type" in b for b in content):
        return "content must be a string or a list of content blocks"
    return None
