"""Hypothesis strategies for Anthropic Messages streams, shared by the property and differential tests.

A drawn `Stream` is a list of event payloads (the wire JSON objects) plus the message they should
assemble into. `encode` turns the payloads into SSE bytes in a chosen framing; `chunkings` cuts bytes
into network reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from hypothesis import strategies as st

LINE_ENDS = ("\n", "\r\n", "\r")
STOP_REASONS = ("end_turn", "tool_use", "max_tokens", "stop_sequence", "pause_turn", "refusal", None)

# Text as models write it: any code point but surrogates (which UTF-8 cannot carry), with quotes,
# backslashes, control characters, CR/LF and U+2028/U+2029/U+0085 made likely.
_SPECIALS = st.sampled_from(
    ['"', "\\", "\n", "\r", "\r\n", "\t", "\u2028", "\u2029", "\x85", "\x00", "é", "😀", "data: "]
)
texts = st.lists(st.one_of(st.text(max_size=8), _SPECIALS), max_size=4).map("".join)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | texts | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
json_objects = st.dictionaries(texts, json_values, max_size=4)
ids = st.builds(
    lambda prefix, tail: prefix + tail,
    st.sampled_from(["toolu_", "call_", "srvtoolu_"]),
    st.text("abcdefXYZ0123456789", min_size=1, max_size=12),
)
names = st.from_regex(r"[a-zA-Z0-9_-]{1,16}", fullmatch=True)


@dataclass
class Stream:
    events: list[dict]
    message: dict  # what a correct client assembles from `events`


def split_at(draw, text: str, max_pieces: int = 4) -> list[str]:
    """`text` cut at random points (pieces may be empty, as the API's first input_json_delta is)."""
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=max_pieces - 1)))
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]


@st.composite
def blocks(draw):
    """(start block, deltas, final block) for one content block."""
    kind = draw(st.sampled_from(["text", "thinking", "tool_use", "server_tool_use", "redacted_thinking"]))
    if kind == "text":
        pieces = draw(st.lists(texts, min_size=draw(st.integers(0, 1)), max_size=4))
        return (
            {"type": "text", "text": ""},
            [{"type": "text_delta", "text": p} for p in pieces],
            {"type": "text", "text": "".join(pieces)},
        )
    if kind == "thinking":
        pieces = draw(st.lists(texts, max_size=3))
        signature = draw(st.text("abcdefABCDEF0123456789+/=", min_size=1, max_size=40))
        deltas = [{"type": "thinking_delta", "thinking": p} for p in pieces]
        deltas.append({"type": "signature_delta", "signature": signature})
        return (
            {"type": "thinking", "thinking": "", "signature": ""},
            deltas,
            {"type": "thinking", "thinking": "".join(pieces), "signature": signature},
        )
    if kind == "redacted_thinking":
        data = draw(st.text("abcdefABCDEF0123456789+/=", min_size=1, max_size=40))
        block = {"type": "redacted_thinking", "data": data}
        return dict(block), [], block
    tool_input = draw(json_objects)
    block = {"type": kind, "id": draw(ids), "name": draw(names)}
    how = draw(st.sampled_from(["deltas", "one-delta", "start-only"]))
    if how == "start-only":  # gateways: the whole input in the start event, no deltas
        return dict(block, input=tool_input), [], dict(block, input=tool_input)
    raw = json.dumps(
        tool_input, ensure_ascii=draw(st.booleans()), separators=draw(st.sampled_from([(",", ":"), (", ", ": ")]))
    )
    pieces = [raw] if how == "one-delta" else [""] + split_at(draw, raw)
    return (
        dict(block, input={}),
        [{"type": "input_json_delta", "partial_json": p} for p in pieces],
        dict(block, input=tool_input),
    )


@st.composite
def streams(draw, max_blocks: int = 4, min_blocks: int = 0):
    """A complete, valid stream with random blocks, pings, usage and stop reason."""
    usage_in = {"input_tokens": draw(st.integers(0, 10**6)), "output_tokens": draw(st.integers(0, 5))}
    if draw(st.booleans()):
        usage_in["cache_read_input_tokens"] = draw(st.integers(0, 1000))
    start = {
        "id": "msg_" + draw(st.text("abc123", min_size=1, max_size=8)),
        "type": "message",
        "role": "assistant",
        "model": draw(st.sampled_from(["claude-x", "m"])),
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage_in,
    }
    events = [{"type": "message_start", "message": start}]
    pings = st.booleans()
    if draw(pings):
        events.append({"type": "ping"})
    content = []
    for index in range(draw(st.integers(min_blocks, max_blocks))):
        first, deltas, final = draw(blocks())
        events.append({"type": "content_block_start", "index": index, "content_block": first})
        for delta in deltas:
            events.append({"type": "content_block_delta", "index": index, "delta": delta})
            if draw(st.integers(0, 9)) == 0:
                events.append({"type": "ping"})
        events.append({"type": "content_block_stop", "index": index})
        content.append(final)
    stop_reason = draw(st.sampled_from(STOP_REASONS))
    stop_sequence = draw(st.sampled_from([None, "END"])) if stop_reason == "stop_sequence" else None
    usage_out = {"output_tokens": draw(st.integers(0, 10**5))}
    events.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
            "usage": usage_out,
        }
    )
    events.append({"type": "message_stop"})
    message = {k: v for k, v in start.items() if k != "content"}
    message.update(
        content=content, stop_reason=stop_reason, stop_sequence=stop_sequence, usage={**usage_in, **usage_out}
    )
    return Stream(events, message)


def encode(
    events: list[dict], *, line_end: str = "\n", names: bool = True, ensure_ascii: bool = False, compact: bool = True
) -> bytes:
    """SSE bytes: optional `event:` line, one `data:` line, blank line; all lines ending in `line_end`."""
    out = []
    separators = (",", ":") if compact else (", ", ": ")
    for payload in events:
        name = payload.get("type") if isinstance(payload, dict) else None
        lines = [f"event: {name}"] if names and isinstance(name, str) else []
        lines.append("data: " + json.dumps(payload, ensure_ascii=ensure_ascii, separators=separators))
        out.append(line_end.join(lines) + line_end + line_end)
    return "".join(out).encode("utf-8")


@st.composite
def framings(draw):
    """Keyword arguments for `encode`, all but `names`."""
    return {
        "line_end": draw(st.sampled_from(LINE_ENDS)),
        "ensure_ascii": draw(st.booleans()),
        "compact": draw(st.booleans()),
    }


@st.composite
def chunkings(draw, data: bytes, max_cuts: int = 12) -> list[bytes]:
    """`data` cut into network reads at random points (possibly inside a CRLF or a UTF-8 character)."""
    if draw(st.integers(0, 9)) == 0:
        return [data[i : i + 1] for i in range(len(data))]
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(data) - 1)), max_size=max_cuts))))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)]) if data[a:b]]
