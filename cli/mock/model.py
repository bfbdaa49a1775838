"""The mock's "model": picks a scripted (or echo) turn and renders it as a message or SSE events.

Stateless by design: the turn to play is derived from the request alone (the number of
assistant messages already in `messages`), so parallel clients and retries behave predictably.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import yaml

from .validate import ERROR_STATUS, ApiError, invalid, redacted_data, thinking_signature

TURN_KEYS = frozenset({
    "thinking", "redacted_thinking", "text", "tool_calls", "stop_reason", "stop_sequence",
    "stop_details", "usage", "delta_size", "json_delta_size", "delay", "error", "headers",
    "stream_error", "truncate", "raw", "status", "content_type", "chunks", "framing",
})
FRAMINGS = ("chunked", "close", "length")
NO_MORE_TURNS = "(mock script has no more turns)"
_PLACEHOLDER = re.compile(r"\{(prompt|results|result:([^{}]+))\}")
_WORD = re.compile(r"\s*\S+\s*|\s+")


class ScriptError(ValueError):
    """A script or JSON-prompt turn that does not follow the turn format."""


# ---------------------------------------------------------------- script loading

def load_script(script: Any) -> dict | None:
    """Normalise a script argument (None, YAML path, dict, or bare list of turns)."""
    if script is None:
        return None
    if isinstance(script, (str, Path)):
        path = Path(script)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as e:
            raise ScriptError(f"cannot read mock script {path}: {e.strerror or e}") from None
        except yaml.YAMLError as e:
            raise ScriptError(f"mock script {path} is not valid YAML: {e}") from None
    else:
        data = script
    if isinstance(data, list):
        data = {"turns": data}
    if not isinstance(data, dict):
        raise ScriptError("mock script must be a mapping with a 'turns' list")
    unknown = set(data) - {"model", "turns"}
    if unknown:
        raise ScriptError(f"mock script: unknown keys {sorted(unknown)}")
    turns = data.get("turns") or []
    if not isinstance(turns, list):
        raise ScriptError("mock script: 'turns' must be a list")
    if data.get("model") is not None and not isinstance(data["model"], str):
        raise ScriptError("mock script: 'model' must be a string")
    for i, turn in enumerate(turns):
        check_turn(turn, f"turns[{i}]")
    return {"model": data.get("model"), "turns": list(turns)}


def check_turn(turn: Any, where: str = "turn") -> None:
    """Raise ScriptError if `turn` is not a valid TURN mapping."""
    def fail(msg: str) -> None:
        raise ScriptError(f"{where}: {msg}")

    if not isinstance(turn, dict):
        fail("a turn must be a mapping")
    unknown = set(turn) - TURN_KEYS
    if unknown:
        fail(f"unknown keys {sorted(unknown)}")
    for key in ("thinking", "text", "content_type", "stop_sequence"):
        if turn.get(key) is not None and not isinstance(turn[key], str):
            fail(f"'{key}' must be a string")
    if "redacted_thinking" in turn and not isinstance(turn["redacted_thinking"], (bool, str)):
        fail("'redacted_thinking' must be true or a string")
    if turn.get("stop_reason") is not None and not isinstance(turn["stop_reason"], str):
        fail("'stop_reason' must be a string or null")
    calls = turn.get("tool_calls")
    if calls is not None:
        if not isinstance(calls, list):
            fail("'tool_calls' must be a list")
        for j, call in enumerate(calls):
            if not isinstance(call, dict) or not isinstance(call.get("name"), str):
                fail(f"tool_calls[{j}] needs a string 'name'")
            if not isinstance(call.get("input") or {}, dict):
                fail(f"tool_calls[{j}].input must be a mapping")
            if "id" in call and not isinstance(call["id"], str):
                fail(f"tool_calls[{j}].id must be a string")
    for key in ("usage", "error", "headers", "stream_error", "stop_details"):
        if key in turn and not isinstance(turn[key], dict):
            fail(f"'{key}' must be a mapping")
    for key, lo in (("delta_size", 1), ("json_delta_size", -1), ("status", 100)):
        if key in turn and (not isinstance(turn[key], int) or isinstance(turn[key], bool) or turn[key] < lo):
            fail(f"'{key}' must be an integer >= {lo}")
    if "delay" in turn and (not isinstance(turn["delay"], (int, float)) or turn["delay"] < 0):
        fail("'delay' must be a number >= 0")
    if "truncate" in turn and turn["truncate"] not in (True, False, "abort"):
        fail("'truncate' must be true, false or 'abort'")
    if "framing" in turn and turn["framing"] not in FRAMINGS:
        fail(f"'framing' must be one of {', '.join(FRAMINGS)}")
    if "raw" in turn and not isinstance(turn["raw"], (str, bytes)):
        fail("'raw' must be a string or bytes")
    chunks = turn.get("chunks")
    if chunks is not None and chunks != "bytes" and not (
            isinstance(chunks, list) and all(isinstance(c, int) and c > 0 for c in chunks)):
        fail("'chunks' must be a list of positive sizes or 'bytes'")


# ---------------------------------------------------------------- reading the request

def _flatten(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(b["text"] for b in content
                         if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str))
    return ""


def _has_results(msg: dict) -> bool:
    c = msg.get("content")
    return isinstance(c, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in c)


def prompt_text(messages: list) -> str:
    """Text of the last user message that does not carry tool results."""
    for msg in reversed(messages):
        if msg.get("role") == "user" and not _has_results(msg):
            return _flatten(msg.get("content"))
    return ""


def tool_results(messages: list) -> list[tuple[str, str]]:
    """(tool name, result text) for each tool_result in the last user message, in order.

    Error results carry an "error: " prefix, as a reader of the transcript would want it.
    """
    idx = next((i for i in range(len(messages) - 1, -1, -1) if messages[i].get("role") == "user"), None)
    if idx is None or not _has_results(messages[idx]):
        return []
    names = {}
    if idx > 0 and isinstance(messages[idx - 1].get("content"), list):
        names = {b.get("id"): b.get("name") for b in messages[idx - 1]["content"]
                 if isinstance(b, dict) and b.get("type") == "tool_use"}
    out = []
    for b in messages[idx]["content"]:
        if isinstance(b, dict) and b.get("type") == "tool_result":
            text = _flatten(b.get("content", ""))
            if b.get("is_error"):
                text = "error: " + text
            out.append((names.get(b.get("tool_use_id")) or str(b.get("tool_use_id")), text))
    return out


def render(template: str, messages: list) -> str:
    """Fill {prompt}, {result:NAME} and {results}; anything else in braces stays as written."""
    results = tool_results(messages)

    def sub(m: re.Match) -> str:
        if m.group(1) == "prompt":
            return prompt_text(messages)
        if m.group(1) == "results":
            return "\n".join(f"{n}: {t}" for n, t in results)
        for name, text in results:
            if name == m.group(2):
                return text
        return m.group(0)

    return _PLACEHOLDER.sub(sub, template)


def _count_words(value: Any, skip=frozenset({"type", "role", "id", "tool_use_id", "signature", "data"})) -> int:
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(_count_words(v) for v in value)
    if isinstance(value, dict):
        return sum(_count_words(v) for k, v in value.items() if k not in skip)
    return 0


# ---------------------------------------------------------------- choosing the turn

def choose_turn(script: dict | None, body: dict) -> dict:
    """The TURN this request plays: scripted by assistant-message count, or the echo model."""
    messages = body["messages"]
    if script is not None:
        i = sum(1 for m in messages if m.get("role") == "assistant")
        turns = script["turns"]
        return turns[i] if i < len(turns) else {"text": NO_MORE_TURNS}
    results = tool_results(messages)
    if results:
        return {"text": "\n".join(f"{n}: {t}" for n, t in results)}
    prompt = prompt_text(messages)
    try:
        obj = json.loads(prompt)
    except ValueError:
        obj = None
    if isinstance(obj, dict) and obj and set(obj) <= TURN_KEYS:
        try:
            check_turn(obj, "prompt turn")
        except ScriptError as e:
            raise invalid(f"mock: {e}") from None
        return obj
    # Echo, but never as an empty text block: the real API rejects those when sent back.
    return {"_echo": prompt if prompt.strip() else "(empty prompt)"}


# ---------------------------------------------------------------- building the answer

@dataclass
class Reply:
    """A turn resolved against one request: the full message plus streaming options."""
    turn: dict
    message: dict

    @property
    def stream_options(self) -> dict:
        """The turn's delta sizing options (None where unset)."""
        return {k: self.turn.get(k) for k in ("delta_size", "json_delta_size")}


def error_for(spec: dict) -> ApiError:
    """ApiError for an `error:` / `stream_error:` mapping; status defaults from the type."""
    etype = spec.get("type") or ("api_error" if "status" not in spec else
                                 {v: k for k, v in ERROR_STATUS.items()}.get(spec["status"], "api_error"))
    status = spec.get("status") or ERROR_STATUS.get(etype, 500)
    extra = {k: v for k, v in spec.items() if k not in ("status", "type", "message")}
    return ApiError(int(status), etype, str(spec.get("message", etype)), extra=extra)


def build_reply(script: dict | None, body: dict, number: int) -> Reply:
    """Resolve the turn for `body` into a complete message (raises ApiError for error turns)."""
    turn = choose_turn(script, body)
    if "error" in turn:
        err = error_for(turn["error"])
        err.headers.update({str(k): str(v) for k, v in (turn.get("headers") or {}).items()})
        raise err
    if "raw" in turn:
        return Reply(turn=turn, message={})
    messages = body["messages"]
    blocks: list[dict] = []
    if turn.get("thinking"):
        thought = render(turn["thinking"], messages)
        blocks.append({"type": "thinking", "thinking": thought, "signature": thinking_signature(thought)})
    if turn.get("redacted_thinking"):
        secret = turn["redacted_thinking"] if isinstance(turn["redacted_thinking"], str) else "hidden reasoning"
        blocks.append({"type": "redacted_thinking", "data": redacted_data(secret)})
    text = turn["_echo"] if "_echo" in turn else render(turn.get("text") or "", messages)
    if text:
        blocks.append({"type": "text", "text": text})
    calls = turn.get("tool_calls") or []
    for call in calls:
        blocks.append({"type": "tool_use", "id": call.get("id") or f"toolu_mock_{secrets.token_hex(12)}",
                       "name": call["name"], "input": call.get("input") or {}})
    stop_reason = turn["stop_reason"] if "stop_reason" in turn else ("tool_use" if calls else "end_turn")
    out_words = sum(_count_words(b.get("text") or b.get("thinking") or "") for b in blocks)
    out_words += sum(_count_words(json.dumps(b["input"])) for b in blocks if b["type"] == "tool_use")
    usage = {"input_tokens": max(1, _count_words(messages) + _count_words(body.get("system"))),
             "output_tokens": max(1, out_words),
             "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    usage.update(turn.get("usage") or {})
    message = {"id": f"msg_mock_{number}", "type": "message", "role": "assistant",
               "model": (script or {}).get("model") or body["model"], "content": blocks,
               "stop_reason": stop_reason, "stop_sequence": turn.get("stop_sequence"), "usage": usage}
    if "stop_details" in turn:
        message["stop_details"] = turn["stop_details"]
    return Reply(turn=turn, message=message)


# ---------------------------------------------------------------- SSE

def sse(name: str, data: dict) -> bytes:
    """One SSE event, `event:` line and JSON `data:` line, ending with the blank line."""
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {name}\ndata: {payload}\n\n".encode("utf-8")


def split_text(text: str, size: int | None) -> list[str]:
    """Delta pieces: one word with its trailing whitespace each, or `size`-character slices."""
    if size:
        return [text[i:i + size] for i in range(0, len(text), size)]
    return _WORD.findall(text)


def json_pieces(payload: str, size: int) -> list[str]:
    """input_json_delta pieces; the leading "" mirrors what the real API sends first."""
    if size == -1:
        return [payload]
    return [""] + [payload[i:i + size] for i in range(0, len(payload), size)]


def _block_events(i: int, block: dict, opts: dict) -> Iterator[bytes]:
    btype = block["type"]
    if btype == "tool_use":
        size = 8 if opts.get("json_delta_size") is None else opts["json_delta_size"]
        start = {"type": "tool_use", "id": block["id"], "name": block["name"],
                 "input": block["input"] if size == 0 else {}}
        yield sse("content_block_start", {"type": "content_block_start", "index": i, "content_block": start})
        if size != 0:
            for piece in json_pieces(json.dumps(block["input"], ensure_ascii=False), size):
                yield _delta(i, {"type": "input_json_delta", "partial_json": piece})
    elif btype == "text":
        yield sse("content_block_start", {"type": "content_block_start", "index": i,
                                          "content_block": {"type": "text", "text": ""}})
        for piece in split_text(block["text"], opts.get("delta_size")):
            yield _delta(i, {"type": "text_delta", "text": piece})
    elif btype == "thinking":
        yield sse("content_block_start", {"type": "content_block_start", "index": i,
                                          "content_block": {"type": "thinking", "thinking": "", "signature": ""}})
        for piece in split_text(block["thinking"], opts.get("delta_size")):
            yield _delta(i, {"type": "thinking_delta", "thinking": piece})
        yield _delta(i, {"type": "signature_delta", "signature": block["signature"]})
    else:  # redacted_thinking and anything opaque: complete in the start event
        yield sse("content_block_start", {"type": "content_block_start", "index": i, "content_block": block})
    yield sse("content_block_stop", {"type": "content_block_stop", "index": i})


def _delta(i: int, delta: dict) -> bytes:
    return sse("content_block_delta", {"type": "content_block_delta", "index": i, "delta": delta})


def stream_events(reply: Reply) -> list[bytes]:
    """The full SSE event sequence for a reply, honouring stream_error and truncate."""
    msg, turn = reply.message, reply.turn
    start = dict(msg, content=[], stop_reason=None, stop_sequence=None,
                 usage=dict(msg["usage"], output_tokens=1))
    start.pop("stop_details", None)
    events = [sse("message_start", {"type": "message_start", "message": start}),
              sse("ping", {"type": "ping"})]
    blocks = msg["content"]
    # stream_error fires once the text (and any thinking before it) has streamed: before any tool_use.
    cut = next((i for i, b in enumerate(blocks) if b["type"] == "tool_use"), len(blocks))
    for i, block in enumerate(blocks):
        if turn.get("stream_error") and i == cut:
            break
        events.extend(_block_events(i, block, reply.stream_options))
    if turn.get("stream_error"):
        err = error_for(turn["stream_error"])
        events.append(sse("error", {"type": "error", "error": {"type": err.type, "message": err.message,
                                                               **err.extra}}))
        return events
    if turn.get("truncate"):
        return events
    delta = {"stop_reason": msg["stop_reason"], "stop_sequence": msg["stop_sequence"]}
    if "stop_details" in msg:
        delta["stop_details"] = msg["stop_details"]
    events.append(sse("message_delta", {"type": "message_delta", "delta": delta,
                                        "usage": {"output_tokens": msg["usage"]["output_tokens"]}}))
    events.append(sse("message_stop", {"type": "message_stop"}))
    return events
