"""The mock's "model": picks a scripted (or echo) turn and renders it as a message or SSE events.

Stateless by design: the turn to play is derived from the request alone (the number of
assistant messages already in `messages`), so parallel clients and retries behave predictably.
The one exception is a turn's `faults` list: the server counts how often it has seen each exact
request body, and attempt N of a turn meets faults[N] (a retry must send the same bytes).
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

TURN_KEYS = frozenset(
    {
        "thinking",
        "redacted_thinking",
        "text",
        "tool_calls",
        "stop_reason",
        "stop_sequence",
        "stop_details",
        "usage",
        "delta_size",
        "json_delta_size",
        "delay",
        "error",
        "headers",
        "stream_error",
        "truncate",
        "raw",
        "status",
        "content_type",
        "chunks",
        "framing",
        "faults",
    }
)
# One fault spoils one attempt of a turn; see check_fault for the keys.
FAULT_KEYS = frozenset({"error", "headers", "reset", "close", "truncate", "stall", "at", "error_event", "garbage"})
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
    unknown = set(data) - {"model", "turns", "reject_fields"}
    if unknown:
        raise ScriptError(f"mock script: unknown keys {sorted(unknown)}")
    turns = data.get("turns") or []
    if not isinstance(turns, list):
        raise ScriptError("mock script: 'turns' must be a list")
    if data.get("model") is not None and not isinstance(data["model"], str):
        raise ScriptError("mock script: 'model' must be a string")
    for i, turn in enumerate(turns):
        check_turn(turn, f"turns[{i}]")
    # reject_fields: body fields the mock refuses as a strict gateway would (400 "Extra inputs").
    reject = data.get("reject_fields") or []
    if not isinstance(reject, list) or not all(isinstance(f, str) for f in reject):
        raise ScriptError("mock script: 'reject_fields' must be a list of field names")
    return {"model": data.get("model"), "turns": list(turns), "reject_fields": list(reject)}


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
    if (
        chunks is not None
        and chunks != "bytes"
        and not (isinstance(chunks, list) and all(isinstance(c, int) and c > 0 for c in chunks))
    ):
        fail("'chunks' must be a list of positive sizes or 'bytes'")
    if "faults" in turn:
        if not isinstance(turn["faults"], list):
            fail("'faults' must be a list (one entry per attempt; null = a normal attempt)")
        for j, fault in enumerate(turn["faults"]):
            check_fault(fault, f"{where}: faults[{j}]")


def check_fault(fault: Any, where: str = "fault") -> None:
    """Raise ScriptError if `fault` is not a valid FAULT mapping (or null, a normal attempt).

    FAULT keys (all optional; a position is "headers" = before the status line, an integer N =
    after N body pieces (SSE events), or {bytes: N} = after N body bytes):
      error: {status, type, message, ...} + headers: {...}  answer with this HTTP error instead
                                                      (after `stall` seconds, if given)
      reset: POSITION        drop the connection there with a TCP reset
      close: POSITION        close the connection there (FIN; a chunked body loses its terminator)
      truncate: N            send only the first N pieces, then end the body properly
      stall: SECONDS + at: POSITION (default "headers")   go silent there, then carry on
      error_event: {type, message, ...} + at: N           an SSE error event after N pieces; the end
      garbage: TEXT + at: N                               these bytes after N pieces
    """

    def fail(msg: str) -> None:
        raise ScriptError(f"{where}: {msg}")

    if fault is None:
        return
    if not isinstance(fault, dict):
        fail("a fault must be a mapping or null")
    unknown = set(fault) - FAULT_KEYS
    if unknown:
        fail(f"unknown keys {sorted(unknown)}")
    for key in ("error", "headers", "error_event"):
        if key in fault and not isinstance(fault[key], dict):
            fail(f"'{key}' must be a mapping")
    if "headers" in fault and "error" not in fault:
        fail("'headers' goes with 'error'")
    for key in ("reset", "close", "at"):
        if key in fault and not _position(fault[key]):
            fail(f"'{key}' must be \"headers\", a number of pieces >= 0 or {{bytes: N}}")
    if "reset" in fault and "close" in fault:
        fail("'reset' and 'close' cannot both end one attempt")
    if "truncate" in fault and (
        not isinstance(fault["truncate"], int) or isinstance(fault["truncate"], bool) or fault["truncate"] < 0
    ):
        fail("'truncate' must be a number of pieces >= 0")
    if "stall" in fault and (
        isinstance(fault["stall"], bool) or not isinstance(fault["stall"], (int, float)) or fault["stall"] < 0
    ):
        fail("'stall' must be a number of seconds >= 0")
    if "garbage" in fault and not isinstance(fault["garbage"], (str, bytes)):
        fail("'garbage' must be a string or bytes")
    if "error_event" in fault and "garbage" in fault:
        fail("one fault takes 'error_event' or 'garbage', not both")
    if ("error_event" in fault or "garbage" in fault) and not isinstance(fault.get("at", 0), int):
        fail("'at' for 'error_event' / 'garbage' must be a number of pieces")
    if "at" in fault and not any(k in fault for k in ("stall", "error_event", "garbage")):
        fail("'at' goes with 'stall', 'error_event' or 'garbage'")


def _position(value: Any) -> bool:
    if value == "headers":
        return True
    if isinstance(value, int) and not isinstance(value, bool):
        return value >= 0
    return (
        isinstance(value, dict)
        and set(value) == {"bytes"}
        and isinstance(value["bytes"], int)
        and not isinstance(value["bytes"], bool)
        and value["bytes"] >= 0
    )


def fault_for(turn: dict, attempt: int) -> dict | None:
    """The fault spoiling attempt number `attempt` (0 = the first) of `turn`, or None."""
    faults = turn.get("faults") or []
    return faults[attempt] if attempt < len(faults) else None


def apply_fault(pieces: list[bytes], fault: dict | None) -> list[bytes]:
    """The body pieces a fault leaves: truncated, an error event or garbage put in."""
    if not fault:
        return pieces
    if "truncate" in fault:
        pieces = pieces[: fault["truncate"]]
    at = fault.get("at", 0)
    if "error_event" in fault:
        err = error_for(fault["error_event"])
        pieces = pieces[:at] + [
            sse("error", {"type": "error", "error": {"type": err.type, "message": err.message, **err.extra}})
        ]
    if "garbage" in fault:
        junk = fault["garbage"]
        pieces = pieces[:at] + [junk.encode("utf-8") if isinstance(junk, str) else bytes(junk)] + pieces[at:]
    return pieces


# ---------------------------------------------------------------- reading the request


def _flatten(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            b["text"]
            for b in content
            if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        )
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
        names = {
            b.get("id"): b.get("name")
            for b in messages[idx - 1]["content"]
            if isinstance(b, dict) and b.get("type") == "tool_use"
        }
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


def count_words(
    value: Any, skip=frozenset({"type", "role", "id", "tool_use_id", "signature", "data", "cache_control", "source"})
) -> int:
    """The mock's token count: words of the strings in `value` (ids, signatures, media left out)."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(count_words(v) for v in value)
    if isinstance(value, dict):
        return sum(count_words(v) for k, v in value.items() if k not in skip)
    return 0


def input_tokens(body: dict) -> int:
    """The input tokens the mock counts for a request (as its usage reports them)."""
    return max(1, count_words(body.get("messages")) + count_words(body.get("system")) + count_words(body.get("tools")))


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
    etype = spec.get("type") or (
        "api_error"
        if "status" not in spec
        else {v: k for k, v in ERROR_STATUS.items()}.get(spec["status"], "api_error")
    )
    status = spec.get("status") or ERROR_STATUS.get(etype, 500)
    extra = {k: v for k, v in spec.items() if k not in ("status", "type", "message")}
    return ApiError(int(status), etype, str(spec.get("message", etype)), extra=extra)


def build_reply(script: dict | None, body: dict, number: int, cache=None) -> Reply:
    """Resolve the turn for `body` into a complete message (raises ApiError for error turns).
    `cache` (a cache.PromptCache): the input side of the usage is its accounting of the request."""
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
    stopped = _first_stop(text, body.get("stop_sequences") or [])
    if stopped is not None:
        text = text[: text.index(stopped)]  # the API stops before the sequence and leaves it out
    if text:
        blocks.append({"type": "text", "text": text})
    # Generation that ended at a stop sequence inside the text never reached the tool calls.
    calls = [] if stopped is not None else turn.get("tool_calls") or []
    for call in calls:
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id") or f"toolu_mock_{secrets.token_hex(12)}",
                "name": call["name"],
                "input": call.get("input") or {},
            }
        )
    stop_reason = (
        turn["stop_reason"]
        if "stop_reason" in turn
        else ("stop_sequence" if stopped is not None else "tool_use" if calls else "end_turn")
    )
    out_words = sum(count_words(b.get("text") or b.get("thinking") or "") for b in blocks)
    out_words += sum(count_words(json.dumps(b["input"])) for b in blocks if b["type"] == "tool_use")
    usage = {
        "input_tokens": input_tokens(body),
        "output_tokens": max(1, out_words),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    if cache is not None:
        usage.update(cache.account(body))
    usage.update(turn.get("usage") or {})
    message = {
        "id": f"msg_mock_{number}",
        "type": "message",
        "role": "assistant",
        "model": (script or {}).get("model") or body["model"],
        "content": blocks,
        "stop_reason": stop_reason,
        "stop_sequence": stopped if stopped is not None else turn.get("stop_sequence"),
        "usage": usage,
    }
    if "stop_details" in turn:
        message["stop_details"] = turn["stop_details"]
    return Reply(turn=turn, message=message)


def _first_stop(text: str, sequences: list) -> str | None:
    """The stop sequence that occurs first in `text`, if any."""
    found = [(text.index(seq), seq) for seq in sequences if isinstance(seq, str) and seq and seq in text]
    return min(found)[1] if found else None


# ---------------------------------------------------------------- SSE


def sse(name: str, data: dict) -> bytes:
    """One SSE event, `event:` line and JSON `data:` line, ending with the blank line."""
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {name}\ndata: {payload}\n\n".encode("utf-8")


def split_text(text: str, size: int | None) -> list[str]:
    """Delta pieces: one word with its trailing whitespace each, or `size`-character slices."""
    if size:
        return [text[i : i + size] for i in range(0, len(text), size)]
    return _WORD.findall(text)


def json_pieces(payload: str, size: int) -> list[str]:
    """input_json_delta pieces; the leading "" mirrors what the real API sends first."""
    if size == -1:
        return [payload]
    return [""] + [payload[i : i + size] for i in range(0, len(payload), size)]


def _block_events(i: int, block: dict, opts: dict) -> Iterator[bytes]:
    btype = block["type"]
    if btype == "tool_use":
        size = 8 if opts.get("json_delta_size") is None else opts["json_delta_size"]
        start = {
            "type": "tool_use",
            "id": block["id"],
            "name": block["name"],
            "input": block["input"] if size == 0 else {},
        }
        yield sse("content_block_start", {"type": "content_block_start", "index": i, "content_block": start})
        if size != 0:
            for piece in json_pieces(json.dumps(block["input"], ensure_ascii=False), size):
                yield _delta(i, {"type": "input_json_delta", "partial_json": piece})
    elif btype == "text":
        yield sse(
            "content_block_start",
            {"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}},
        )
        for piece in split_text(block["text"], opts.get("delta_size")):
            yield _delta(i, {"type": "text_delta", "text": piece})
    elif btype == "thinking":
        yield sse(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": i,
                "content_block": {"type": "thinking", "thinking": "", "signature": ""},
            },
        )
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
    start = dict(msg, content=[], stop_reason=None, stop_sequence=None, usage=dict(msg["usage"], output_tokens=1))
    start.pop("stop_details", None)
    events = [sse("message_start", {"type": "message_start", "message": start}), sse("ping", {"type": "ping"})]
    blocks = msg["content"]
    # stream_error fires once the text (and any thinking before it) has streamed: before any tool_use.
    cut = next((i for i, b in enumerate(blocks) if b["type"] == "tool_use"), len(blocks))
    for i, block in enumerate(blocks):
        if turn.get("stream_error") and i == cut:
            break
        events.extend(_block_events(i, block, reply.stream_options))
    if turn.get("stream_error"):
        err = error_for(turn["stream_error"])
        events.append(sse("error", {"type": "error", "error": {"type": err.type, "message": err.message, **err.extra}}))
        return events
    if turn.get("truncate"):
        return events
    delta = {"stop_reason": msg["stop_reason"], "stop_sequence": msg["stop_sequence"]}
    if "stop_details" in msg:
        delta["stop_details"] = msg["stop_details"]
    events.append(
        sse(
            "message_delta",
            {"type": "message_delta", "delta": delta, "usage": {"output_tokens": msg["usage"]["output_tokens"]}},
        )
    )
    events.append(sse("message_stop", {"type": "message_stop"}))
    return events
