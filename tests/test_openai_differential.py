"""Differential tests: toolchat's chat.completions stream assembly against the official `openai` SDK's.

Generated `chat.completion.chunk` streams (reasoning, text, several tool calls with their arguments
cut at random, several fragments in one chunk, a finish_reason on its own chunk or on the last
content chunk, a usage chunk with empty `choices` or usage on the finish chunk, `[DONE]`) are
encoded with random line ends and JSON spacing, served over real HTTP on loopback by the mock
server (a raw turn, cut into the drawn network writes) and read three ways:

  * the SDK: `client.chat.completions.stream(...)`, then `current_completion_snapshot` (its SSE
    decoder and its ChatCompletionStreamState accumulation), mapped to Anthropic's shape by
    `sdk_message` below;
  * toolchat over HTTP: Transport -> OpenAIStreamDecoder, as a turn is read;
  * toolchat in process, fed exactly the drawn chunks (splits inside a CRLF or a UTF-8 character).

All three must equal the message the stream was built from.

The mapping of the SDK's ChatCompletion to Anthropic's shape (`sdk_message`): `reasoning_content` /
`reasoning` (extra fields the SDK keeps and concatenates) -> one thinking block; `content` (or,
when empty, `refusal`) -> one text block; each tool call -> a tool_use block with its `arguments`
parsed (empty -> {}); finish_reason through the table stop -> end_turn, tool_calls -> tool_use,
length -> max_tokens, content_filter -> refusal; usage prompt_tokens - cached_tokens ->
input_tokens, completion_tokens -> output_tokens, cached_tokens -> cache_read_input_tokens (see
dialects/openai.usage_of for why the cached tokens are taken out). Blocks that would be empty are
left out, as toolchat leaves them out.

DELIBERATE_DIFFERENCES lists where toolchat knowingly parts from the SDK; each has its test below.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

openai = pytest.importorskip("openai")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from toolchat.dialects.openai import OpenAIStreamDecoder, chat_completions_url  # noqa: E402
from toolchat.errors import APIError, StreamError  # noqa: E402
from toolchat.mock.model import load_script  # noqa: E402
from toolchat.mock.server import MockServer  # noqa: E402
from toolchat.transport import Transport  # noqa: E402

from conftest import examples  # noqa: E402
from stream_strategies import LINE_ENDS, chunkings, ids, json_objects, names, split_at, texts  # noqa: E402

DELIBERATE_DIFFERENCES = {
    "repeated_id_and_name": "A gateway repeats a tool call's id and name in every fragment: the SDK "
    "concatenates them ('call_1call_1', 'addadd'); toolchat keeps the first.",
    "truncated_stream": "A stream that ends with neither a finish_reason nor [DONE]: the SDK returns what "
    "it has as the final completion; toolchat fails the turn with truncated_stream.",
    "invalid_tool_json": "Arguments that are not JSON: the SDK keeps the string (parsing is the caller's "
    "job); toolchat gives input {} and records the problem so the call gets an is_error "
    "tool_result instead of running.",
    "every_call_at_index_0": "A gateway numbers every tool call 0 but gives each its own id: the SDK merges "
    "them into one call with joined ids, names and arguments; toolchat keeps the "
    "calls apart by their ids.",
    "fragments_without_index": "Tool call fragments without `index`: the SDK raises TypeError; toolchat "
    "starts a call at each new id and continues the last call otherwise.",
    "both_reasoning_fields": "A delta carrying the same text in both `reasoning_content` and `reasoning`: "
    "the SDK keeps both fields; toolchat takes reasoning_content alone, so the "
    "thinking is not doubled.",
    "data_after_done": "Chunks after [DONE]: the SDK stops reading at [DONE] too, so both ignore them; "
    "listed because toolchat also closes its blocks at [DONE] (a finish_reason is "
    "not required when [DONE] came).",
}

SETTINGS = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
KEY = "sk-test-openai-differential"


# ---------------------------------------------------------------- generated streams


@dataclass
class ChunkStream:
    chunks: list[dict]  # the chunk payloads, in order ([DONE] is added by `encode`)
    message: dict  # what a correct client assembles from them


FINISH = {"stop": "end_turn", "tool_calls": "tool_use", "length": "max_tokens", "content_filter": "refusal"}


@st.composite
def chunk_streams(draw):
    base = {
        "id": "chatcmpl-" + draw(st.text("abc123", min_size=1, max_size=8)),
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": draw(st.sampled_from(["gpt-x", "m"])),
    }
    deltas: list[dict] = []
    if draw(st.booleans()):
        deltas.append({"role": "assistant", "content": ""})
    reasoning_key = draw(st.sampled_from(["reasoning_content", "reasoning"]))
    reasoning = draw(st.lists(texts, max_size=3))
    deltas += [{reasoning_key: piece} for piece in reasoning]
    content = draw(st.lists(texts, max_size=4))
    deltas += [{"content": piece} for piece in content]
    calls = draw(st.lists(st.tuples(ids, names, json_objects), max_size=3, unique_by=lambda c: c[0]))
    blocks: list[dict] = []
    for index, (call_id, name, tool_input) in enumerate(calls):
        raw = json.dumps(
            tool_input, ensure_ascii=draw(st.booleans()), separators=draw(st.sampled_from([(",", ":"), (", ", ": ")]))
        )
        how = draw(st.sampled_from(["pieces", "one-fragment", "in-the-first"]))
        first = {
            "index": index,
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": raw if how == "in-the-first" else ""},
        }
        fragments = [first]
        if how == "one-fragment":
            fragments.append({"index": index, "function": {"arguments": raw}})
        elif how == "pieces":
            fragments += [{"index": index, "function": {"arguments": p}} for p in split_at(draw, raw, 5)]
        # Several fragments of the same call may share one chunk (the SDK merges them in order).
        while fragments:
            take = draw(st.integers(1, len(fragments)))
            deltas.append({"tool_calls": fragments[:take]})
            fragments = fragments[take:]
        blocks.append({"type": "tool_use", "id": call_id, "name": name, "input": tool_input})
    finish = draw(st.sampled_from(sorted(FINISH)))
    usage = None
    if draw(st.booleans()):
        prompt = draw(st.integers(0, 10**6))
        usage = {"prompt_tokens": prompt, "completion_tokens": draw(st.integers(0, 10**5))}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if draw(st.booleans()):
            usage["prompt_tokens_details"] = {"cached_tokens": draw(st.integers(0, prompt))}
    chunks = [{**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]} for delta in deltas]
    where = draw(st.sampled_from(["own-chunk", "last-content"])) if chunks else "own-chunk"
    if where == "own-chunk":
        chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    else:
        chunks[-1]["choices"][0]["finish_reason"] = finish
    if usage is not None:
        if draw(st.booleans()):  # OpenAI: a last chunk with empty choices
            chunks.append({**base, "choices": [], "usage": usage})
        else:  # some servers: usage on the finish chunk itself
            chunks[-1]["usage"] = usage

    content_blocks = []
    if "".join(reasoning):
        content_blocks.append({"type": "thinking", "thinking": "".join(reasoning)})
    if "".join(content):
        content_blocks.append({"type": "text", "text": "".join(content)})
    message = {
        "id": base["id"],
        "type": "message",
        "role": "assistant",
        "model": base["model"],
        "content": content_blocks + blocks,
        "stop_reason": FINISH[finish],
        "stop_sequence": None,
        "usage": mapped_usage(usage),
    }
    return ChunkStream(chunks, message)


def mapped_usage(usage: dict | None) -> dict:
    if not usage:
        return {}
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    out = {"input_tokens": usage["prompt_tokens"] - (cached or 0), "output_tokens": usage["completion_tokens"]}
    if cached is not None:
        out["cache_read_input_tokens"] = cached
    return out


def encode(
    chunks: list, *, line_end: str = "\n", ensure_ascii: bool = False, compact: bool = True, done: bool = True
) -> bytes:
    """Data-only SSE events, one per chunk (a str payload is sent as it is), then `data: [DONE]`."""
    separators = (",", ":") if compact else (", ", ": ")
    out = []
    for chunk in chunks:
        payload = (
            chunk if isinstance(chunk, str) else json.dumps(chunk, ensure_ascii=ensure_ascii, separators=separators)
        )
        out.append("data: " + payload + line_end + line_end)
    if done:
        out.append("data: [DONE]" + line_end + line_end)
    return "".join(out).encode("utf-8")


@st.composite
def framings(draw):
    return {
        "line_end": draw(st.sampled_from(LINE_ENDS)),
        "ensure_ascii": draw(st.booleans()),
        "compact": draw(st.booleans()),
    }


# ---------------------------------------------------------------- the three readers


@pytest.fixture(scope="module")
def server():
    with MockServer(api_key=KEY) as srv:
        yield srv


@pytest.fixture(scope="module")
def sdk(server):
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0, timeout=20)
    yield client
    client.close()


@pytest.fixture(scope="module")
def transport(server):
    t = Transport(
        chat_completions_url(server.url), {"authorization": f"Bearer {KEY}"}, connect_timeout=5, read_timeout=20
    )
    yield t
    t.close()


def serve(server, data: bytes, chunks: list[bytes] | None = None) -> None:
    turn = {"raw": data}
    if chunks:
        turn["chunks"] = [len(c) for c in chunks]
    server.script = load_script({"turns": [turn]})


def sdk_completion(sdk, server, data: bytes, chunks=None):
    serve(server, data, chunks)
    with sdk.chat.completions.stream(
        model="m", messages=[{"role": "user", "content": "hi"}], stream_options={"include_usage": True}
    ) as stream:
        for _ in stream:
            pass
        # The accumulated snapshot, not get_final_completion(): that one raises for a finish_reason
        # of length or content_filter instead of returning what came.
        return stream.current_completion_snapshot


def sdk_message(completion) -> dict:
    """The SDK's final ChatCompletion in Anthropic's shape (see the module docstring)."""
    choice = completion.choices[0]
    message = choice.message.model_dump(warnings=False)
    blocks = []
    reasoning = "".join(message.get(k) or "" for k in ("reasoning_content", "reasoning"))
    if reasoning:
        blocks.append({"type": "thinking", "thinking": reasoning})
    text = message.get("content") or message.get("refusal")
    if text:
        blocks.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or []:
        arguments = call["function"]["arguments"]
        blocks.append(
            {
                "type": "tool_use",
                "id": call["id"],
                "name": call["function"]["name"],
                "input": json.loads(arguments) if arguments.strip() else {},
            }
        )
    usage = completion.usage.model_dump() if completion.usage is not None else None
    if usage and usage.get("prompt_tokens_details") is None:
        usage.pop("prompt_tokens_details", None)
    return {
        "id": completion.id,
        "type": "message",
        "role": "assistant",
        "model": completion.model,
        "content": blocks,
        "stop_reason": FINISH.get(choice.finish_reason, choice.finish_reason),
        "stop_sequence": None,
        "usage": mapped_usage(usage),
    }


def assemble(chunks) -> tuple[dict, dict]:
    decoder = OpenAIStreamDecoder()
    for chunk in chunks:
        decoder.feed(chunk)
    decoder.close()
    return decoder.message(), decoder.bad_input


def toolchat_http(transport, server, data: bytes, chunks=None) -> tuple[dict, dict]:
    serve(server, data, chunks)
    reply = transport.send(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    )
    try:
        assert reply.kind == "sse"
        return assemble(reply.chunks())
    finally:
        reply.close()


# ---------------------------------------------------------------- the differential property


def check(server, sdk, transport, stream, framing, draw) -> None:
    data = encode(stream.chunks, **framing)
    chunks = draw.draw(chunkings(data))
    assert sdk_message(sdk_completion(sdk, server, data, chunks)) == stream.message
    assert assemble(chunks) == (stream.message, {})
    assert toolchat_http(transport, server, data, chunks) == (stream.message, {})


@pytest.mark.thorough
@settings(max_examples=examples(600), **SETTINGS)
@given(chunk_streams(), framings(), st.data())
@pytest.mark.slow  # over 2.5 s: the slow set, which .ci/run plays after the default run
def test_toolchat_and_the_sdk_assemble_the_same_message(server, sdk, transport, stream, framing, draw):
    check(server, sdk, transport, stream, framing, draw)


# ---------------------------------------------------------------- the deliberate differences

BASE = {"id": "chatcmpl-d", "object": "chat.completion.chunk", "created": 1, "model": "m"}


def chunk(delta: dict | None = None, finish: str | None = None, **extra) -> dict:
    return {**BASE, "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}], **extra}


def fragment(index, arguments="", call_id=None, name=None) -> dict:
    out = {"index": index, "function": {"arguments": arguments}}
    if call_id is not None:
        out["id"], out["type"] = call_id, "function"
    if name is not None:
        out["function"]["name"] = name
    return out


def test_difference_repeated_id_and_name(server, sdk, transport):
    data = encode(
        [
            chunk({"tool_calls": [fragment(0, '{"a":', "call_1", "add")]}),
            chunk({"tool_calls": [fragment(0, " 1}", "call_1", "add")]}),
            chunk(finish="tool_calls"),
        ]
    )
    call = sdk_completion(sdk, server, data).choices[0].message.tool_calls[0]
    assert (call.id, call.function.name, call.function.arguments) == ("call_1call_1", "addadd", '{"a": 1}')
    message, _ = toolchat_http(transport, server, data)
    assert message["content"] == [{"type": "tool_use", "id": "call_1", "name": "add", "input": {"a": 1}}]


def test_difference_truncated_stream(server, sdk, transport):
    data = encode([chunk({"content": "cut "}), chunk({"content": "short"})], done=False)
    assert sdk_completion(sdk, server, data).choices[0].message.content == "cut short"
    with pytest.raises(StreamError) as caught:
        toolchat_http(transport, server, data)
    assert caught.value.type == "truncated_stream"


def test_difference_invalid_tool_json(server, sdk, transport):
    data = encode([chunk({"tool_calls": [fragment(0, '{"a" 1}', "call_1", "add")]}), chunk(finish="tool_calls")])
    assert sdk_completion(sdk, server, data).choices[0].message.tool_calls[0].function.arguments == '{"a" 1}'
    message, bad = toolchat_http(transport, server, data)
    assert message["content"][0]["input"] == {}
    assert bad == {"call_1": 'the tool input was not valid JSON: {"a" 1}'}


def test_difference_every_call_at_index_0(server, sdk, transport):
    data = encode(
        [
            chunk({"tool_calls": [fragment(0, '{"a": 1}', "call_a", "add")]}),
            chunk({"tool_calls": [fragment(0, "{}", "call_b", "ping")]}),
            chunk(finish="tool_calls"),
        ]
    )
    calls = sdk_completion(sdk, server, data).choices[0].message.tool_calls
    assert [(c.id, c.function.name) for c in calls] == [("call_acall_b", "addping")]
    message, bad = toolchat_http(transport, server, data)
    assert message["content"] == [
        {"type": "tool_use", "id": "call_a", "name": "add", "input": {"a": 1}},
        {"type": "tool_use", "id": "call_b", "name": "ping", "input": {}},
    ]
    assert bad == {}


def test_difference_fragments_without_index(server, sdk, transport):
    def bare(arguments, call_id=None, name=None):
        out = fragment(0, arguments, call_id, name)
        del out["index"]
        return out

    data = encode(
        [
            chunk({"tool_calls": [bare('{"a":', "call_a", "add")]}),
            chunk({"tool_calls": [bare(" 2}")]}),
            chunk({"tool_calls": [bare("", "call_b", "ping")]}),
            chunk(finish="tool_calls"),
        ]
    )
    with pytest.raises(TypeError, match="NoneType"):  # tool_calls[None]
        sdk_completion(sdk, server, data)
    message, _ = toolchat_http(transport, server, data)
    assert message["content"] == [
        {"type": "tool_use", "id": "call_a", "name": "add", "input": {"a": 2}},
        {"type": "tool_use", "id": "call_b", "name": "ping", "input": {}},
    ]


def test_difference_both_reasoning_fields(server, sdk, transport):
    data = encode([chunk({"reasoning_content": "hmm", "reasoning": "hmm"}), chunk({"content": "ok"}, "stop")])
    dumped = sdk_completion(sdk, server, data).choices[0].message.model_dump()
    assert (dumped["reasoning_content"], dumped["reasoning"]) == ("hmm", "hmm")
    message, _ = toolchat_http(transport, server, data)
    assert message["content"] == [{"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "ok"}]


def test_difference_data_after_done(server, sdk, transport):
    data = encode([chunk({"content": "one"})]) + encode([chunk({"content": "two"}, "length")], done=False)
    completion = sdk_completion(sdk, server, data)
    assert (completion.choices[0].message.content, completion.choices[0].finish_reason) == ("one", None)
    message, _ = toolchat_http(transport, server, data)
    assert (message["content"], message["stop_reason"]) == ([{"type": "text", "text": "one"}], None)


def test_every_deliberate_difference_has_its_test():
    tests = {name for name in globals() if name.startswith("test_difference_")}
    assert len(tests) == len(DELIBERATE_DIFFERENCES)


def test_the_sdk_and_toolchat_agree_on_a_mid_stream_error(server, sdk, transport):
    """Not a difference: both raise on a chunk that carries `error`."""
    data = encode(
        [chunk({"content": "part"}), {"error": {"message": "upstream died", "type": "server_error", "code": None}}],
        done=False,
    )
    with pytest.raises(openai.APIError, match="upstream died"):
        sdk_completion(sdk, server, data)
    with pytest.raises(APIError) as caught:
        toolchat_http(transport, server, data)
    assert (caught.value.type, caught.value.message) == ("api_error", "server_error: upstream died")


def test_the_sdk_and_toolchat_agree_on_comments_and_crlf(server, sdk, transport):
    data = b": OPENROUTER PROCESSING\r\n\r\n" + encode([chunk({"content": "q"}), chunk(finish="stop")], line_end="\r\n")
    expected = {
        "id": "chatcmpl-d",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [{"type": "text", "text": "q"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {},
    }
    assert sdk_message(sdk_completion(sdk, server, data)) == expected
    assert toolchat_http(transport, server, data) == (expected, {})


def test_sdk_version_under_test():
    # Recorded so a changed SDK behaviour is easy to date; the tests above pin the behaviour, not this.
    assert openai.__version__
    assert json.loads(json.dumps(DELIBERATE_DIFFERENCES))
