"""Conversations on disk: `--save FILE` writes one, `--messages FILE` continues one.

A saved transcript is {"format": "toolchat-transcript", "version": 1, "model", "system",
"messages"}, the messages in the Messages API's own shape, so it can be sent again as it is.
`--messages` also takes a bare messages array, a `--json` document, or `--stream-json` output.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UsageError

FORMAT = "toolchat-transcript"
VERSION = 1


@dataclass
class Loaded:
    messages: list[dict] = field(default_factory=list)
    model: str | None = None
    system: str | None = None


def save_transcript(path: str, messages: list[dict], model: str, system: str | None = None) -> None:
    """Write the transcript atomically: a temporary file in the same folder, then a rename."""
    target = Path(path)
    document = {"format": FORMAT, "version": VERSION, "model": model, "system": system,
                "messages": messages}
    data = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    folder = target.parent if str(target.parent) else Path(".")
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def load_transcript(source: str) -> Loaded:
    """Read `--messages FILE` ('-' = stdin) in any of the shapes it accepts."""
    label = "stdin" if source == "-" else source
    if source == "-":
        text = sys.stdin.read()
    else:
        try:
            text = Path(source).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UsageError(f"--messages {label}: file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--messages {label}: cannot read it: {exc}") from None
    return parse_transcript(text, label)


def parse_transcript(text: str, label: str) -> Loaded:
    try:
        data = json.loads(text)
    except ValueError as exc:
        data = _last_result_line(text)
        if data is None:
            raise UsageError(f"--messages {label}: not valid JSON ({exc})") from None
    if isinstance(data, list):
        loaded = Loaded(messages=data)
    elif isinstance(data, dict) and isinstance(data.get("messages"), list):
        system = data.get("system")
        loaded = Loaded(messages=data["messages"], model=data.get("model") or None,
                        system=system if isinstance(system, str) and system else None)
    else:
        raise UsageError(f"--messages {label}: expected a saved conversation, a messages array "
                         "or a --json document")
    for position, message in enumerate(loaded.messages):
        problem = _message_problem(message)
        if problem:
            raise UsageError(f"--messages {label}: message {position + 1}: {problem}")
    return loaded


def continue_from(messages: list[dict], prompt: str, label: str) -> list[dict]:
    """The loaded messages with the new prompt appended (if any), ready to send."""
    messages = [dict(m) for m in messages]
    if prompt:
        if messages and messages[-1]["role"] == "user":
            # Two user messages in a row: the prompt joins the last one (after any tool results).
            content = messages[-1]["content"]
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
            messages[-1]["content"] = blocks + [{"type": "text", "text": prompt}]
        else:
            messages.append({"role": "user", "content": prompt})
    if not messages:
        raise UsageError(f"--messages {label}: the conversation is empty and no prompt was given")
    if messages[-1]["role"] != "user":
        raise UsageError(f"--messages {label}: the conversation ends with the model's answer; "
                         "give a prompt to continue it")
    return messages


def _last_result_line(text: str):
    """`--stream-json` output: the messages of its final `result` line."""
    for line in reversed(text.strip().splitlines()):
        try:
            event = json.loads(line)
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
