"""Properties of the stream path (SSEDecoder -> StreamAssembler) over arbitrary and damaged input.

Whatever the bytes, toolchat either assembles a message of the shape the chat loop relies on or
raises one of its own errors (ToolchatError); never a KeyError, TypeError, RecursionError, ... And a
valid stream assembles to the same message however it is cut into reads and framed.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolchat.errors import StreamError, ToolchatError
from toolchat.events import BlockDone, TextDelta, ThinkingDelta
from toolchat.dialects.anthropic import StreamAssembler, assemble_json
from toolchat.sse import ServerSentEvent, SSEDecoder

from stream_strategies import chunkings, encode, framings, json_values, streams
from conftest import examples

pytestmark = pytest.mark.thorough

SETTINGS = settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_events(out: list) -> None:
    for event in out:
        assert isinstance(event, (TextDelta, ThinkingDelta, BlockDone)), event
        if isinstance(event, BlockDone):
            assert isinstance(event.index, int) and isinstance(event.block, dict)
        else:
            assert isinstance(event.text, str) and event.text


def check_message(message: dict) -> None:
    """The shape chat.py, the views and the next request rely on."""
    assert isinstance(message, dict)
    assert isinstance(message.get("content"), list)
    for block in message["content"]:
        assert isinstance(block, dict) and isinstance(block.get("type"), str)
        if block["type"] in ("text", "thinking"):
            assert isinstance(block.get(block["type"], ""), str)
        if block["type"].endswith("tool_use"):
            assert isinstance(block.get("id", ""), str) and isinstance(block.get("name", ""), str)
    assert message.get("stop_reason") is None or isinstance(message["stop_reason"], str)
    assert isinstance(message.get("usage", {}), dict)


def run(chunks: list[bytes]) -> tuple[dict | None, ToolchatError | None, StreamAssembler]:
    """Feed chunks as chat.py does; return (message or None, toolchat error or None, assembler)."""
    decoder, assembler = SSEDecoder(), StreamAssembler()
    try:
        for chunk in chunks:
            for sse in decoder.feed(chunk):
                check_events(assembler.feed(sse))
        for sse in decoder.flush():
            check_events(assembler.feed(sse))
        message = assembler.result()
    except ToolchatError as exc:
        # After any failure the partial message must still be readable (chat.py keeps its text).
        check_message(assembler.snapshot())
        return None, exc, assembler
    check_message(message)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in assembler.bad_input.items())
    return message, None, assembler


# ---------------------------------------------------------------- arbitrary bytes

sse_tokens = st.sampled_from(
    [
        b"\n",
        b"\r",
        b"\r\n",
        b"data: ",
        b"data:",
        b"event: ",
        b": ping",
        b"id: 1",
        b"retry: x",
        b"{",
        b"}",
        b"[",
        b"]",
        b'"',
        b",",
        b":",
        b"\xef\xbb\xbf",
        b"\xff",
        b"\xe2\x80\xa8",
        b'"type"',
        b'"index"',
        b"0",
        b"null",
        b"[DONE]",
        b'"message_start"',
        b'"content_block_start"',
        b'"content_block_delta"',
        b'"content_block_stop"',
        b'"message_delta"',
        b'"message_stop"',
        b'"error"',
    ]
)
noise = st.lists(st.one_of(st.binary(max_size=8), sse_tokens), max_size=60).map(b"".join)


@SETTINGS
@given(noise, st.data())
def test_arbitrary_bytes_raise_only_toolchat_errors(data, draw):
    run(draw.draw(chunkings(data)))


# ---------------------------------------------------------------- valid streams, damaged


@st.composite
def damaged(draw):
    stream = draw(streams())
    data = encode(stream.events, names=draw(st.booleans()), **draw(framings()))
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["drop", "insert", "duplicate", "flip"]))
        if action == "drop":
            data = data[:where] + data[where + draw(st.integers(1, 40)) :]
        elif action == "insert":
            data = data[:where] + draw(st.one_of(sse_tokens, st.binary(min_size=1, max_size=6))) + data[where:]
        elif action == "duplicate":
            size = draw(st.integers(1, 80))
            data = data[: where + size] + data[where : where + size] + data[where + size :]
        elif where < len(data):
            data = data[:where] + bytes([data[where] ^ draw(st.integers(1, 255))]) + data[where + 1 :]
    return data


@SETTINGS
@given(damaged(), st.data())
def test_valid_streams_with_bytes_dropped_inserted_or_changed_raise_only_toolchat_errors(data, draw):
    run(draw.draw(chunkings(data)))


@SETTINGS
@given(streams(), st.data())
def test_valid_stream_assembles_the_same_message_whatever_the_framing_and_chunking(stream, draw):
    data = encode(stream.events, names=draw.draw(st.booleans()), **draw.draw(framings()))
    message, error, assembler = run(draw.draw(chunkings(data)))
    assert error is None, error
    assert message == stream.message
    assert assembler.bad_input == {}


@SETTINGS
@given(streams(), st.data())
def test_valid_stream_cut_anywhere_is_truncated_or_complete_never_a_crash(stream, draw):
    data = encode(stream.events, **draw.draw(framings()))
    cut = draw.draw(st.integers(0, len(data)))
    message, error, _ = run(draw.draw(chunkings(data[:cut])))
    if error is not None:
        assert isinstance(error, StreamError) and error.type in ("truncated_stream", "malformed_stream"), error
    else:
        assert message == stream.message  # only a cut inside the trailing blank line can still succeed


# ---------------------------------------------------------------- valid streams, one field changed


def paths(value, prefix=()):
    """Every (path, value) inside a JSON value, the value itself first."""
    yield prefix, value
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from paths(inner, prefix + (key,))
    elif isinstance(value, list):
        for position, inner in enumerate(value):
            yield from paths(inner, prefix + (position,))


def replaced(value, path, new, delete=False):
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    if len(path) == 1 and delete:
        del copy[path[0]]
    else:
        copy[path[0]] = replaced(value[path[0]], path[1:], new, delete)
    return copy


# Small values of every JSON type: a string index, a number where text belongs, an object for a list...
confusers = st.sampled_from(
    [
        "",
        "x",
        "0",
        "text",
        "tool_use",
        0,
        1,
        -1,
        2**70,
        1.5,
        True,
        False,
        None,
        [],
        [0],
        ["x"],
        {},
        {"type": "text"},
        {"a": 1},
    ]
)


@st.composite
def retyped(draw):
    """A valid stream with some fields replaced by any JSON value or removed, maybe cut short."""
    events = list(draw(streams(min_blocks=2)).events)
    # Events with fields worth retyping: block and message events, not ping or message_stop.
    targets = [i for i, e in enumerate(events) if e["type"] not in ("ping", "message_stop")]
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.sampled_from(targets))
        inside = list(paths(events[at]))[1:]
        path, _ = draw(st.sampled_from(inside)) if inside else ((), None)
        events[at] = replaced(
            events[at], path, draw(st.one_of(confusers, json_values)), delete=draw(st.integers(0, 4)) == 0
        )
    return events[: draw(st.integers(0, len(events)))] if draw(st.booleans()) else events


@settings(SETTINGS, max_examples=examples(300))
@given(retyped(), st.booleans())
def test_valid_streams_with_fields_retyped_or_removed_raise_only_toolchat_errors(events, names):
    run([encode(events, names=names)])


# ---------------------------------------------------------------- well-framed events of the wrong shape

EVENT_TYPES = [
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "ping",
    "error",
    "future_event",
    None,
]
DELTA_TYPES = ["text_delta", "input_json_delta", "thinking_delta", "signature_delta", "citations_delta", "x"]
BLOCK_TYPES = ["text", "thinking", "tool_use", "server_tool_use", "redacted_thinking", "x"]
anything = json_values


def loose(keys: dict) -> st.SearchStrategy:
    """An object with some of `keys`, each holding its usual kind of value or anything at all."""
    return st.fixed_dictionaries({}, optional={k: st.one_of(v, anything) for k, v in keys.items()})


blocks_any = loose(
    {
        "type": st.sampled_from(BLOCK_TYPES),
        "text": st.text(max_size=4),
        "thinking": st.text(max_size=4),
        "id": st.text(max_size=4),
        "name": st.text(max_size=4),
        "input": st.just({}),
        "signature": st.text(max_size=4),
    }
)
events_any = loose(
    {
        "type": st.sampled_from(EVENT_TYPES),
        "index": st.integers(-2, 4),
        "message": loose(
            {
                "content": st.lists(st.one_of(blocks_any, anything), max_size=2),
                "usage": anything,
                "stop_reason": st.sampled_from(["end_turn", None]),
            }
        ),
        "content_block": blocks_any,
        "delta": loose(
            {
                "type": st.sampled_from(DELTA_TYPES),
                "text": st.text(max_size=4),
                "partial_json": st.sampled_from(['{"a":', "1}", "", "[", "x"]),
                "thinking": st.text(max_size=4),
                "signature": st.text(max_size=4),
                "stop_reason": st.sampled_from(["end_turn", "tool_use", None]),
                "citation": anything,
            }
        ),
        "usage": loose({"output_tokens": st.integers(0, 9), "input_tokens": st.integers(0, 9)}),
        "error": anything,
    }
)


@SETTINGS
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["", "message_start", "content_block_delta", "error"]), st.one_of(events_any, anything)
        ),
        max_size=12,
    )
)
def test_events_with_fields_of_any_shape_raise_only_toolchat_errors(events):
    data = b"".join(
        (f"event: {name}\n" if name else "").encode() + b"data: " + json.dumps(payload).encode() + b"\n\n"
        for name, payload in events
    )
    run([data])


@SETTINGS
@given(
    st.one_of(
        st.fixed_dictionaries(
            {},
            optional={
                "content": st.one_of(st.lists(st.one_of(blocks_any, anything), max_size=3), anything),
                "choices": st.one_of(
                    st.lists(
                        loose(
                            {
                                "message": loose(
                                    {
                                        "content": st.one_of(st.text(max_size=4), anything),
                                        "tool_calls": st.lists(
                                            loose(
                                                {
                                                    "id": st.text(max_size=4),
                                                    "function": loose(
                                                        {
                                                            "name": st.text(max_size=4),
                                                            "arguments": st.sampled_from(['{"a": 1}', "", "[", "{}"]),
                                                        }
                                                    ),
                                                }
                                            ),
                                            max_size=2,
                                        ),
                                        "function_call": anything,
                                        "refusal": anything,
                                    }
                                ),
                                "finish_reason": st.sampled_from(["stop", "tool_calls", "length", None]),
                            }
                        ),
                        max_size=2,
                    ),
                    anything,
                ),
                "object": st.sampled_from(["chat.completion", "x"]),
                "type": st.sampled_from(["message", "error"]),
                "error": anything,
                "usage": anything,
                "stop_reason": anything,
            },
        ),
        anything,
    )
)
def test_json_bodies_of_any_shape_map_or_raise_toolchat_errors(body):
    try:
        message = assemble_json(body)
    except ToolchatError:
        return
    check_message(message)


def test_stream_that_is_one_endless_line_is_truncated_not_a_crash():
    message, error, _ = run([b"data: " + b"x" * 100_000])
    assert (message, error.type) == (None, "truncated_stream")


def test_server_sent_event_without_data_is_ignored():
    assert StreamAssembler().feed(ServerSentEvent("message_start", "")) == []


# ---------------------------------------------------------------------------------------------
# The assembler's compact text-delta path reads what json.loads reads, or leaves it to json.loads


@SETTINGS
@given(text=st.text(), index=st.integers(0, 10**6), ascii_only=st.booleans())
def test_the_compact_text_delta_path_reads_exactly_what_json_reads(text, index, ascii_only):
    from toolchat.dialects.anthropic import compact_text_delta

    event = {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}}
    data = json.dumps(event, separators=(",", ":"), ensure_ascii=ascii_only)
    known = compact_text_delta(data)
    assert known is None or known == (index, text)
    if text.isprintable() and '"' not in text and "\\" not in text and (text.isascii() or not ascii_only):
        assert known == (index, text)  # the common case does take the path


@SETTINGS
@given(
    tail=st.text(alphabet=st.sampled_from(list('0123456789 ,:"{}\\abtx\n\u00e9')), max_size=60),
)
def test_the_compact_text_delta_path_never_reads_what_json_would_not(tail):
    """Any data that starts as a text delta: the path's answer, when it gives one, is json.loads'."""
    from toolchat.dialects.anthropic import compact_text_delta

    data = '{"type":"content_block_delta","index":' + tail
    known = compact_text_delta(data)
    if known is None:
        return
    payload = json.loads(data)
    assert payload["type"] == "content_block_delta" and payload["delta"]["type"] == "text_delta"
    assert (payload["index"], payload["delta"]["text"]) == known
    assert set(payload) == {"type", "index", "delta"} and set(payload["delta"]) == {"type", "text"}


@pytest.mark.parametrize(
    "data",
    [
        '{"type":"content_block_delta","index":01,"delta":{"type":"text_delta","text":"a"}}',  # not JSON
        '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a\\nb"}}',  # an escape
        '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a","x":"b"}}',
        '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a"},"index":1}',
        '{"type":"content_block_delta","index":0, "delta":{"type":"text_delta","text":"a"}}',
        '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\x01"}}',  # not JSON
        "x" * 38 + '5,"delta":{"type":"text_delta","text":"a"}}',  # the shape after another opening
    ],
)
def test_the_compact_text_delta_path_leaves_other_spellings_to_json(data):
    from toolchat.dialects.anthropic import compact_text_delta

    assert compact_text_delta(data) is None
