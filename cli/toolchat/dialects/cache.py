"""Prompt-caching breakpoints for a Messages request body (Anthropic's `cache_control`).

A breakpoint marks the end of a prefix (tools -> system -> messages, in that order) that the API
may write to its cache and read back on a later request that starts the same way. Placed here:

1. on the last tool (the tool definitions: the same on every turn and every run with these tools),
2. on the system prompt,
3. on the newest message of the previous turn (three messages back: the prefix the previous
   request wrote, so it is read even when this turn added more than the ~20 blocks the API looks
   back from a breakpoint, e.g. many parallel tool results),
4. on the newest message (what this turn writes for the next one to read).

At most 4, the API's limit; as the transcript grows, 3 and 4 move forward. With ttl "1h" the tools
and the system prompt get the 1-hour lifetime (they outlive a pause between runs) and the messages
keep the default 5 minutes: longer lifetimes must come before shorter ones, and a tool loop reads
its messages back within seconds. The transcript itself is never changed: the body gets copies.
"""

from __future__ import annotations

import json

MAX_BREAKPOINTS = 4
# Blocks that may carry cache_control (thinking and redacted_thinking may not).
MARKABLE = frozenset({"text", "image", "document", "tool_use", "tool_result", "search_result"})


def place_breakpoints(body: dict, ttl: str = "5m") -> dict:
    """A copy of `body` with cache_control breakpoints (see the module docstring)."""
    long = {"type": "ephemeral", "ttl": "1h"} if ttl == "1h" else {"type": "ephemeral"}
    short = {"type": "ephemeral"}
    body = dict(body)
    # A transcript from elsewhere (--messages) may carry breakpoints already: they count.
    used = len(breakpoints(body))
    tools = body.get("tools")
    if tools:
        used += "cache_control" not in tools[-1]
        body["tools"] = [*tools[:-1], {**tools[-1], "cache_control": long}]
    system = body.get("system")
    if isinstance(system, str) and system:
        body["system"] = [{"type": "text", "text": system, "cache_control": long}]
        used += 1
    elif isinstance(system, list) and system and isinstance(system[-1], dict):
        used += "cache_control" not in system[-1]
        body["system"] = [*system[:-1], {**system[-1], "cache_control": long}]
    messages = list(body.get("messages") or [])
    for index in (len(messages) - 3, len(messages) - 1):
        if index < 0 or used >= MAX_BREAKPOINTS:
            continue
        if "cache_control" in json.dumps(messages[index].get("content")):
            continue  # already marked (a transcript from elsewhere)
        marked = _marked(messages[index], short)
        if marked is not None:
            messages[index] = marked
            used += 1
    body["messages"] = messages
    return body


def _marked(message: dict, mark: dict) -> dict | None:
    """A copy of the message whose last markable block carries `mark`; None if it has none."""
    content = message.get("content")
    if isinstance(content, str):
        if not content.strip():
            return None
        return {**message, "content": [{"type": "text", "text": content, "cache_control": mark}]}
    if not isinstance(content, list):
        return None
    for position in range(len(content) - 1, -1, -1):
        block = content[position]
        if not isinstance(block, dict) or block.get("type") not in MARKABLE:
            continue
        if block.get("type") == "text" and not str(block.get("text") or "").strip():
            continue  # the API refuses cache_control on an empty text block
        blocks = list(content)
        blocks[position] = {**block, "cache_control": mark}
        return {**message, "content": blocks}
    return None


def breakpoints(body: dict) -> list[str]:
    """Where a body's breakpoints are, as short paths (`tools.2`, `system.0`, `messages.4.1`): for
    tests and --debug."""
    found = []
    for i, tool in enumerate(body.get("tools") or []):
        if isinstance(tool, dict) and "cache_control" in tool:
            found.append(f"tools.{i}")
    system = body.get("system")
    for i, block in enumerate(system if isinstance(system, list) else []):
        if isinstance(block, dict) and "cache_control" in block:
            found.append(f"system.{i}")
    for n, message in enumerate(body.get("messages") or []):
        content = message.get("content") if isinstance(message, dict) else None
        for m, block in enumerate(content if isinstance(content, list) else []):
            if isinstance(block, dict) and "cache_control" in block:
                found.append(f"messages.{n}.{m}")
    return found
