"""Differential tests: toolchat's stream assembly against the official `anthropic` SDK's.

The same bytes are served over real HTTP on loopback by the mock server (a raw turn, cut into the same
network writes) and read three ways:

  * the SDK: `client.messages.stream(...)` then `get_final_message()` (its SSE decoder, its event
    filter and its `accumulate_event`);
  * toolchat over HTTP: Transport -> SSEDecoder -> StreamAssembler, as chat.py reads a turn;
  * toolchat in process, fed exactly the drawn chunks (TCP may merge the server's writes; this one
    cannot, so splits inside a CRLF or a UTF-8 character are certain to be exercised).

All three must agree with each other and with the message the stream was built from.

Normalisation before comparing (`normal`):
  * The SDK message is `model_dump()`ed (Python mode) to plain dicts.
  * Keys whose value is None are dropped at three levels only: the message, `usage`, and each content
    block's top level. The SDK's models carry every optional field (`citations`, `stop_details`,
    `container`, `cache_creation`, `service_tier`, `parsed_output`, ...) as None, while toolchat keeps
    the wire dicts, which hold only what the server sent. Values inside a tool's `input` are never
    touched: a JSON null there is data.
  * Nothing else: ids, model, stop_reason, stop_sequence, usage numbers, block order, text, thinking,
    signatures and tool input must be equal as they are.

`names`: the SDK reads events only when they carry an `event:` line (difference 2 below), so it is
always served the named form; toolchat is also served the data-only form of the same stream, and the
two results compared.

DELIBERATE_DIFFERENCES lists where toolchat knowingly parts from the SDK; each has its test below.
"""

from __future__ import annotations

import json

import pytest

anthropic = pytest.importorskip("anthropic")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from toolchat.errors import APIError, StreamError, ToolchatError  # noqa: E402
from toolchat.mock.model import load_script  # noqa: E402
from toolchat.mock.server import MockServer  # noqa: E402
from toolchat.dialects.anthropic import StreamAssembler  # noqa: E402
from toolchat.sse import SSEDecoder  # noqa: E402
from toolchat.transport import Transport, messages_url  # noqa: E402

from stream_strategies import chunkings, encode, framings, streams  # noqa: E402
from conftest import examples  # noqa: E402

pytestmark = pytest.mark.thorough

DELIBERATE_DIFFERENCES = {
    "truncated_stream": "A stream that ends without message_stop: the SDK returns what it has as the final "
    "message; toolchat fails the turn with truncated_stream (PROTOCOL §2).",
    "data_only_events": "Events without an `event:` line: the SDK skips them all (and then has no message); "
    "toolchat routes on the JSON `type` (PROTOCOL §2, §6).",
    "data_only_error": "An `error` event without an `event:` line: the SDK ignores it and returns the partial "
    "message as a success; toolchat raises the APIError it carries.",
    "last_event_unterminated": "A last event without its blank line: the SDK drops it; toolchat dispatches it.",
    "invalid_tool_json": "Tool input that is not JSON: the SDK raises ValueError in the middle of the stream; "
    "toolchat completes the message with input {} and records the problem so the call "
    "gets an is_error tool_result instead of running.",
    "cut_tool_json": "Tool input JSON cut short (max_tokens): the SDK's partial parser returns the part it "
    "read ({'a': 1}); toolchat never guesses: input {} and a recorded problem.",
    "tool_input_not_an_object": "Tool input that is JSON but not an object: the SDK keeps it (a list); "
    "toolchat gives {} and records the problem.",
    "delta_before_start": "A delta for a block that never started: the SDK fails with IndexError; toolchat "
    "starts the text block the delta implies.",
    "stray_block_stop": "content_block_stop for a block that does not exist: the SDK fails with IndexError; "
    "toolchat ignores it.",
    "second_message_start": "A second message_start whose blocks count from 0 again: the SDK appends the new "
    "block but applies its deltas to the old block 0; toolchat numbers the new blocks "
    "after the old ones.",
    "events_after_message_stop": "Events after message_stop: the SDK applies them (a late message_delta changes "
    "stop_reason and usage); toolchat ignores them.",
    "null_usage_in_message_delta": "message_delta with `usage: null`: the SDK fails with AttributeError; "
    "toolchat keeps the usage it has.",
}

SETTINGS = settings(
    max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@pytest.fixture(scope="module")
def server():
    with MockServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def sdk(server):
    client = anthropic.Anthropic(base_url=server.url, api_key="test", max_retries=0, timeout=20)
    yield client
    client.close()


@pytest.fixture(scope="module")
def transport(server):
    t = Transport(
        messages_url(server.url),
        {"x-api-key": "test", "anthropic-version": "2023-06-01"},
        connect_timeout=5,
        read_timeout=20,
    )
    yield t
    t.close()


def serve(server, data: bytes, chunks: list[bytes] | None = None, framing: str = "chunked") -> None:
    """The next request to `server` is answered with `data`, written in `chunks`."""
    turn = {"raw": data, "framing": framing}
    if chunks:
        turn["chunks"] = [len(c) for c in chunks]
    server.script = load_script({"turns": [turn]})


def sdk_read(sdk, server, data: bytes, chunks=None) -> tuple[dict | None, list[str]]:
    """(final message as plain dicts, the event types the SDK yielded)."""
    serve(server, data, chunks)
    with sdk.messages.stream(model="m", max_tokens=64, messages=[{"role": "user", "content": "hi"}]) as stream:
        kinds = [event.type for event in stream]
        return normal(stream.get_final_message().model_dump(warnings=False)), kinds


def toolchat_http(transport, server, data: bytes, chunks=None) -> tuple[dict, dict]:
    """(message, bad_input) as chat.py assembles a streamed turn over HTTP; raises ToolchatError."""
    serve(server, data, chunks)
    reply = transport.send(
        {"model": "m", "max_tokens": 64, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    )
    try:
        assert reply.kind == "sse"
        return assemble(reply.chunks())
    finally:
        reply.close()


def assemble(chunks) -> tuple[dict, dict]:
    decoder, assembler = SSEDecoder(), StreamAssembler()
    for chunk in chunks:
        for sse in decoder.feed(chunk):
            assembler.feed(sse)
    for sse in decoder.flush():
        assembler.feed(sse)
    return normal(assembler.result()), assembler.bad_input


def normal(message: dict) -> dict:
    """Drop None values from the message, its usage and each block's top level (see the docstring)."""
    out = {k: v for k, v in message.items() if v is not None}
    out["usage"] = {k: v for k, v in (out.get("usage") or {}).items() if v is not None}
    out["content"] = [{k: v for k, v in block.items() if v is not None} for block in out.get("content", [])]
    return out


# ---------------------------------------------------------------- the differential property


@SETTINGS
@given(streams(), framings(), st.booleans(), st.data())
def test_toolchat_and_the_sdk_assemble_the_same_message(server, sdk, transport, stream, framing, names, draw):
    named = encode(stream.events, names=True, **framing)
    chunks = draw.draw(chunkings(named))
    expected = normal(stream.message)

    sdk_message, _ = sdk_read(sdk, server, named, chunks)
    assert sdk_message == expected

    ours, bad = assemble(chunks)
    assert (ours, bad) == (expected, {})
    assert toolchat_http(transport, server, named, chunks) == (expected, {})

    if not names:  # the same stream without `event:` lines: toolchat alone can read it
        bare = encode(stream.events, names=False, **framing)
        assert assemble(draw.draw(chunkings(bare))) == (expected, {})


# ---------------------------------------------------------------- the deliberate differences


def body(*events: dict, names: bool = True) -> bytes:
    return encode(list(events), names=names)


START = {
    "type": "message_start",
    "message": {
        "id": "msg_d",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 1},
    },
}
STOP = [
    {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": 4},
    },
    {"type": "message_stop"},
]


def text_block(index: int, *pieces: str) -> list[dict]:
    return (
        [{"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}]
        + [{"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": p}} for p in pieces]
        + [{"type": "content_block_stop", "index": index}]
    )


def tool_block(index: int, *pieces: str, stop: bool = True) -> list[dict]:
    events = [
        {
            "type": "content_block_start",
            "index": index,
            "content_block": {"type": "tool_use", "id": "toolu_d", "name": "add", "input": {}},
        }
    ]
    events += [
        {"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": p}}
        for p in pieces
    ]
    return events + ([{"type": "content_block_stop", "index": index}] if stop else [])


def test_difference_truncated_stream(server, sdk, transport):
    data = body(START, *text_block(0, "cut ", "short"))
    message, _ = sdk_read(sdk, server, data)
    assert [b["text"] for b in message["content"]] == ["cut short"]  # the SDK calls it a success
    with pytest.raises(StreamError) as caught:
        toolchat_http(transport, server, data)
    assert caught.value.type == "truncated_stream"


def test_difference_data_only_events(server, sdk, transport):
    data = body(START, *text_block(0, "bare"), *STOP, names=False)
    with pytest.raises(AssertionError):  # no event reached the SDK's accumulator: no final message
        sdk_read(sdk, server, data)
    message, _ = toolchat_http(transport, server, data)
    assert message["content"] == [{"type": "text", "text": "bare"}]


def test_difference_data_only_error_event(server, sdk, transport):
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    data = body(START, *text_block(0, "partial")) + body(error, names=False)
    message, _ = sdk_read(sdk, server, data)
    assert message["content"] == [{"type": "text", "text": "partial"}]
    with pytest.raises(APIError) as caught:
        toolchat_http(transport, server, data)
    assert (caught.value.type, caught.value.message) == ("overloaded_error", "overloaded_error: Overloaded")


def test_difference_last_event_without_its_blank_line(server, sdk, transport):
    data = body(START, *text_block(0, "end"), *STOP)
    assert data.endswith(b"\n\n")
    message, kinds = sdk_read(sdk, server, data[:-1])
    assert "message_stop" not in kinds  # dropped by the SDK
    assert message["content"] == [{"type": "text", "text": "end"}]
    ours, _ = toolchat_http(transport, server, data[:-1])  # result() succeeds only after message_stop
    assert ours == message


def test_difference_invalid_tool_json(server, sdk, transport):
    data = body(START, *tool_block(0, '{"a" 1}'), *STOP)
    with pytest.raises(ValueError, match="Unable to parse tool parameter JSON"):
        sdk_read(sdk, server, data)
    message, bad = toolchat_http(transport, server, data)
    assert message["content"][0]["input"] == {}
    assert bad == {"toolu_d": 'the tool input was not valid JSON: {"a" 1}'}


def test_difference_tool_json_cut_short(server, sdk, transport):
    data = body(
        START,
        *tool_block(0, '{"a": 1, "b": ', stop=False),
        {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 9}},
        {"type": "message_stop"},
    )
    message, _ = sdk_read(sdk, server, data)
    assert message["content"][0]["input"] == {"a": 1}  # half the arguments, silently
    ours, bad = toolchat_http(transport, server, data)
    assert (ours["content"][0]["input"], ours["stop_reason"]) == ({}, "max_tokens")
    assert bad == {"toolu_d": 'the tool input was not valid JSON: {"a": 1, "b": '}


def test_difference_tool_input_not_an_object(server, sdk, transport):
    data = body(START, *tool_block(0, "[1, 2]"), *STOP)
    message, _ = sdk_read(sdk, server, data)
    assert message["content"][0]["input"] == [1, 2]
    ours, bad = toolchat_http(transport, server, data)
    assert (ours["content"][0]["input"], bad) == ({}, {"toolu_d": "the tool input was not a JSON object: [1, 2]"})


def test_difference_delta_for_a_block_that_never_started(server, sdk, transport):
    data = body(START, *text_block(0, "implied")[1:], *STOP)
    with pytest.raises(IndexError):
        sdk_read(sdk, server, data)
    message, _ = toolchat_http(transport, server, data)
    assert message["content"] == [{"type": "text", "text": "implied"}]


def test_difference_stray_content_block_stop(server, sdk, transport):
    data = body(START, *text_block(0, "x"), {"type": "content_block_stop", "index": 3}, *STOP)
    with pytest.raises(IndexError):
        sdk_read(sdk, server, data)
    message, _ = toolchat_http(transport, server, data)
    assert message["content"] == [{"type": "text", "text": "x"}]


def test_difference_second_message_start(server, sdk, transport):
    data = body(START, *text_block(0, "one"), START, *text_block(0, "two"), *STOP)
    message, _ = sdk_read(sdk, server, data)
    assert [b["text"] for b in message["content"]] == ["onetwo", ""]
    ours, _ = toolchat_http(transport, server, data)
    assert [b["text"] for b in ours["content"]] == ["one", "two"]


def test_difference_events_after_message_stop(server, sdk, transport):
    late = {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 99}}
    data = body(START, *text_block(0, "x"), *STOP, late)
    message, _ = sdk_read(sdk, server, data)
    assert (message["stop_reason"], message["usage"]["output_tokens"]) == ("max_tokens", 99)
    ours, _ = toolchat_http(transport, server, data)
    assert (ours["stop_reason"], ours["usage"]["output_tokens"]) == ("end_turn", 4)


def test_difference_null_usage_in_message_delta(server, sdk, transport):
    data = body(
        START,
        *text_block(0, "x"),
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": None},
        {"type": "message_stop"},
    )
    with pytest.raises(AttributeError):
        sdk_read(sdk, server, data)
    ours, _ = toolchat_http(transport, server, data)
    assert (ours["stop_reason"], ours["usage"]) == ("end_turn", {"input_tokens": 3, "output_tokens": 1})


def test_every_deliberate_difference_has_its_test():
    tests = {name for name in globals() if name.startswith("test_difference_")}
    assert len(tests) == len(DELIBERATE_DIFFERENCES)


def test_the_sdk_and_toolchat_agree_on_gateway_quirks_both_handle(server, sdk, transport):
    """Not differences: comments, [DONE], pings without data, CRLF, input only in the start event."""
    start_only = {
        "type": "content_block_start",
        "index": 1,
        "content_block": {"type": "tool_use", "id": "call_1", "name": "add", "input": {"a": 1}},
    }
    data = (
        b": keepalive\r\n\r\n"
        + encode(
            [START, *text_block(0, "q"), start_only, {"type": "content_block_stop", "index": 1}, *STOP], line_end="\r\n"
        )
        + b"event: ping\r\n\r\ndata: [DONE]\r\n\r\n"
    )
    message, _ = sdk_read(sdk, server, data)
    assert toolchat_http(transport, server, data) == (message, {})
    assert message["content"][1]["input"] == {"a": 1}


def test_toolchat_errors_are_its_own(server, transport):
    # A guard for the helpers above: failures come out as ToolchatError, not as a test-helper crash.
    with pytest.raises(ToolchatError):
        toolchat_http(transport, server, b"data: {not json\n\n")


def test_sdk_version_under_test():
    # Recorded so a changed SDK behaviour is easy to date; the tests above pin the behaviour, not this.
    assert anthropic.__version__
    assert json.loads(json.dumps(DELIBERATE_DIFFERENCES))
