"""Input lines: a JSON string (a prompt) or an object with custom_id, prompt or messages, and
optional system, model, max_tokens, temperature. A line that breaks these rules is kept as a
failed line with the reason and its line number; the others go on."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Iterator

CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
KEYS = {"custom_id", "prompt", "messages", "system", "model", "max_tokens", "temperature"}


@dataclass
class Line:
    number: int  # 1-based line of the input file
    custom_id: str | None  # None: malformed (error says why)
    request: dict | None  # {"messages": [...], "system"?, "model"?, "max_tokens"?, "temperature"?}
    error: str | None = None


def parse(number: int, text: str) -> Line:
    """One input line (not blank) as a Line."""

    def bad(reason: str) -> Line:
        return Line(number, None, None, f"line {number}: {reason}")

    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return bad(f"not valid JSON ({exc})")
    if isinstance(value, str):
        value = {"prompt": value}
    if not isinstance(value, dict):
        return bad("expected a JSON string (the prompt) or an object")
    unknown = sorted(set(value) - KEYS)
    if unknown:
        return bad(f"unknown key {unknown[0]!r} (known: {', '.join(sorted(KEYS))})")
    custom_id = value.get("custom_id", str(number))
    if not isinstance(custom_id, str) or not CUSTOM_ID.match(custom_id):
        return bad(f"custom_id {custom_id!r} must match ^[a-zA-Z0-9_-]{{1,64}}$")
    request: dict = {}
    if ("prompt" in value) == ("messages" in value):
        return bad("give exactly one of 'prompt' and 'messages'")
    if "prompt" in value:
        if not isinstance(value["prompt"], str) or not value["prompt"].strip():
            return bad("'prompt' must be a non-empty string")
        request["messages"] = [{"role": "user", "content": value["prompt"]}]
    else:
        messages = value["messages"]
        if (
            not isinstance(messages, list)
            or not messages
            or not all(isinstance(m, dict) and m.get("role") in ("user", "assistant") for m in messages)
        ):
            return bad("'messages' must be a non-empty list of {role, content} objects")
        if messages[-1]["role"] != "user":
            return bad("'messages' must end with a user message")
        request["messages"] = messages
    for key, kind in (("system", str), ("model", str)):
        if key in value:
            if not isinstance(value[key], kind) or not value[key]:
                return bad(f"'{key}' must be a non-empty string")
            request[key] = value[key]
    if "max_tokens" in value:
        tokens = value["max_tokens"]
        if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 1:
            return bad("'max_tokens' must be a whole number >= 1")
        request["max_tokens"] = tokens
    if "temperature" in value:
        t = value["temperature"]
        if not isinstance(t, (int, float)) or isinstance(t, bool) or not 0 <= t <= 1:
            return bad("'temperature' must be a number from 0 to 1")
        request["temperature"] = float(t)
    return Line(number, custom_id, request)


def read(handle) -> Iterator[Line]:
    """Every non-blank line of a binary file, parsed (text decoded as UTF-8 with replacement)."""
    for number, raw in enumerate(handle, 1):
        text = raw.decode("utf-8", "replace").strip()
        if text:
            yield parse(number, text)
