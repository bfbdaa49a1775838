"""The Anthropic Messages dialect: request bodies out; streamed events or JSON bodies in, assembled
into the assistant message exactly as the API sent it (wire dicts, not model classes)."""

from __future__ import annotations

from typing import Any, Iterable

from ..errors import APIError, StreamError
from ..events import BlockDone, TextDelta, ThinkingDelta
from ..text import clip
from ..sse import ServerSentEvent, SSEDecoder
from .base import Dialect, Request, StreamDecoder, endpoint, event_json, tool_input

ANTHROPIC_VERSION = "2023-06-01"
STRUCTURED_OUTPUTS_BETA = "structured-outputs-2025-11-13"
INTERLEAVED_THINKING_BETA = "interleaved-thinking-2025-05-14"


def build_body(
    *,
    model: str,
    max_tokens: int,
    messages: list[dict],
    system: str | None = None,
    temperature: float | None = None,
    tools: list[dict] | None = None,
    tool_choice: str | None = None,
    parallel: bool = True,
    stream: bool = True,
    stop_sequences: list[str] | None = None,
    top_p: float | None = None,
    top_k: int | None = None,
    thinking: int | None = None,
    output_schema: dict | None = None,
    schema_mode: str = "native",
    cache: str | None = None,
) -> dict:
    """The request body for POST /v1/messages; `cache` ("5m" | "1h"): with prompt-caching
    breakpoints (see cache.py)."""
    body: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": messages}
    if system:
        body["system"] = system
    if temperature is not None:
        body["temperature"] = temperature
    body.update(_sampling(stop_sequences, top_p, top_k, thinking, output_schema, schema_mode))
    if tools:
        body["tools"] = tools
        choice = _tool_choice(tool_choice or "auto")
        if not parallel and choice["type"] != "none":
            choice["disable_parallel_tool_use"] = True
        if tool_choice or not parallel:
            body["tool_choice"] = choice
    body["stream"] = stream
    if cache:
        from .cache import place_breakpoints

        body = place_breakpoints(body, cache)
    return body


def _sampling(stop_sequences, top_p, top_k, thinking, output_schema, schema_mode) -> dict:
    """Issue 16's fields: stop sequences, top_p/top_k, extended thinking, structured output."""
    fields: dict[str, Any] = {}
    if stop_sequences:
        fields["stop_sequences"] = list(stop_sequences)
    if top_p is not None:
        fields["top_p"] = top_p
    if top_k is not None:
        fields["top_k"] = top_k
    if thinking is not None:
        fields["thinking"] = {"type": "enabled", "budget_tokens": thinking}
    if output_schema is not None:
        form = {"type": "json_schema", "schema": output_schema}
        # GA: output_config.format; the earlier beta (with its anthropic-beta header): output_format.
        fields.update({"output_format": form} if schema_mode == "beta" else {"output_config": {"format": form}})
    return fields


def beta_header(request: Request) -> dict:
    """anthropic-beta for a request: the structured-outputs beta when its field is sent, and
    interleaved thinking when thinking is on and tools are offered (thinking between tool calls)."""
    extra = request.extra
    betas = []
    if extra.get("output_schema") is not None and extra.get("schema_mode") == "beta":
        betas.append(STRUCTURED_OUTPUTS_BETA)
    if extra.get("thinking") is not None and request.tools:
        betas.append(INTERLEAVED_THINKING_BETA)
    return {"anthropic-beta": ",".join(betas)} if betas else {}


def signed_only(messages: list[dict]) -> list[dict]:
    """The transcript without thinking blocks that carry no signature: reasoning another dialect
    produced (chat.completions' reasoning_content) cannot be sent back here, the API refuses an
    unsigned thinking block. Everything else goes back exactly as it was received."""

    def unsigned(block: Any) -> bool:
        return isinstance(block, dict) and block.get("type") == "thinking" and not block.get("signature")

    if not any(
        m.get("role") == "assistant" and isinstance(m.get("content"), list) and any(unsigned(b) for b in m["content"])
        for m in messages
    ):
        return messages
    out = []
    for message in messages:
        content = message.get("content")
        if message.get("role") == "assistant" and isinstance(content, list):
            message = {**message, "content": [b for b in content if not unsigned(b)]}
        out.append(message)
    return out


def _tool_choice(value: str) -> dict:
    if value in ("auto", "any", "none"):
        return {"type": value}
    return {"type": "tool", "name": value}


class StreamAssembler:
    """Decoded SSE events in; the assembled assistant message and the events to show out.

    Each event is first accumulated into the message (`_acc_*`: event + message so far -> message),
    then the events to show are derived from it (`_show_*`), as anthropic-sdk-python keeps
    `accumulate_event` apart from `build_events`.
    """

    def __init__(self) -> None:
        self.message: dict | None = None
        self.complete = False  # message_stop seen
        self.started_content = False  # a block began that is not an empty text or thinking block
        self.bad_input: dict[str, str] = {}  # tool_use id -> why its input could not be parsed
        self._blocks: dict[int, dict] = {}
        self._parts: dict[int, list[str]] = {}  # text / thinking / partial_json pieces, joined at stop
        self._open: set[int] = set()
        self._offset = 0  # added to block indexes after a second message_start

    def feed(self, sse: ServerSentEvent) -> list:
        data = sse.data.strip()
        if not data or data == "[DONE]":
            return []
        if not self.complete:
            # The hotter path: a text delta as the API spells it, read without json.loads.
            known = compact_text_delta(data)
            if known is not None:
                at = known[0] + self._offset
                if at in self._open and self._blocks[at].get("type") == "text":
                    self._parts[at].append(known[1])
                    return [TextDelta(known[1])] if known[1] else []
        payload = event_json(data, sse.cut)
        kind = payload.get("type") or sse.event
        if kind == "error":
            raise _stream_error(payload)
        if self.complete:
            return []  # gateways sometimes send more after message_stop
        if kind == "content_block_delta":
            # The hot path (nearly every event of a stream): a text delta into an open text block,
            # exactly what _acc_content_block_delta does for it; any other shape goes the long way.
            delta = payload.get("delta")
            index = payload.get("index")
            if type(delta) is dict and delta.get("type") == "text_delta" and type(index) is int:
                index += self._offset
                text = delta.get("text")
                if index in self._open and type(text) is str and self._blocks[index].get("type") == "text":
                    self._parts[index].append(text)
                    return [TextDelta(text)] if text else []
        handlers = _HANDLERS.get(kind) if isinstance(kind, str) else None
        if handlers is None:
            return []  # new event types are added without notice
        accumulate, show = handlers
        try:
            change = accumulate(self, payload)
            return show(self, change) if change is not None else []
        except (AttributeError, TypeError, KeyError, ValueError):
            # A field of the wrong shape (a string where an object belongs, ...).
            raise StreamError(
                f"malformed stream: unexpected {kind} event {clip(data, 120)}", type="malformed_stream"
            ) from None

    def result(self) -> dict:
        """The assembled message; a stream that never reached message_stop is an error."""
        if not self.complete:
            raise StreamError("the stream ended before message_stop: the answer is truncated", type="truncated_stream")
        return self.snapshot()

    def snapshot(self) -> dict:
        """The message as assembled so far (also for a failed turn, to keep what was received)."""
        for index in list(self._open):
            self._close(index)
        message = dict(self.message or {"role": "assistant"})
        message["content"] = [self._blocks[i] for i in sorted(self._blocks)]
        return message

    # -- accumulation: each returns what changed (None: nothing to show), for the _show_* below

    def _acc_message_start(self, payload: dict):
        message = payload.get("message") or {}
        if not isinstance(message, dict):
            raise TypeError("message is not an object")
        if self.message is None:
            _check_stop_reason(message.get("stop_reason"))
            # Some gateways put whole blocks in message_start; keep them.
            blocks = [_checked_block(block) for block in _content_list(message.get("content"))]
            usage = message.get("usage")
            self.message = {k: v for k, v in message.items() if k != "content"}
            self.message.setdefault("role", "assistant")
            self.message["usage"] = dict(usage) if isinstance(usage, dict) else {}
            self._blocks.update(enumerate(blocks))
            self.started_content = self.started_content or any(map(_has_content, blocks))
            return blocks
        if self._blocks:
            # A gateway glued a second message on: its block indexes start again at 0. Number them
            # after the blocks we have, so nothing already shown is overwritten.
            self._offset = max(self._blocks) + 1
        return None

    def _index(self, payload: dict, default: int | None = None) -> int:
        index = payload.get("index", default)
        if index is None:
            index = 0
        if not isinstance(index, int) or isinstance(index, bool):
            raise TypeError("index is not an integer")
        return index + self._offset

    def _acc_content_block_start(self, payload: dict):
        index = self._index(payload, len(self._blocks) - self._offset)
        block = _checked_block(dict(_object(payload.get("content_block"))))
        self._blocks[index] = block
        self._open.add(index)
        self._parts[index] = []
        if self.message is None:
            self.message = {"role": "assistant", "usage": {}}
        self.started_content = self.started_content or _has_content(block)
        return block

    def _acc_content_block_delta(self, payload: dict):
        index = self._index(payload)
        delta = _object(payload.get("delta"))
        kind = delta.get("type")
        if index not in self._open:
            if index in self._blocks or kind not in ("text_delta", "thinking_delta"):
                return None
            # A delta for a block that never started: start the block it implies.
            self._acc_content_block_start(
                {
                    "index": index - self._offset,
                    "content_block": {"type": "text" if kind == "text_delta" else "thinking"},
                }
            )
        block = self._blocks[index]
        block_type = block.get("type")
        # A delta that does not fit its block (text into a tool_use, ...) is ignored, as the SDK does:
        # joining it would show tool JSON as text or parse text as tool input.
        if kind == "text_delta" and block_type == "text":
            text = _string(delta.get("text"))
            self._parts[index].append(text)
            return TextDelta(text) if text else None
        if kind == "input_json_delta" and _takes_input(block_type):
            self._parts[index].append(_string(delta.get("partial_json")))
        elif kind == "thinking_delta" and block_type == "thinking":
            text = _string(delta.get("thinking"))
            self._parts[index].append(text)
            return ThinkingDelta(text) if text else None
        elif kind == "signature_delta" and block_type == "thinking":
            block["signature"] = delta.get("signature", "")
        elif kind == "citations_delta" and block_type == "text":
            block.setdefault("citations", []).append(delta.get("citation"))
        return None

    def _acc_content_block_stop(self, payload: dict):
        index = self._index(payload)
        if index not in self._open:
            return None  # a stray stop for a block that is not open
        self._close(index)
        return index

    def _acc_message_delta(self, payload: dict):
        if self.message is None:
            self.message = {"role": "assistant", "usage": {}}
        delta = _object(payload.get("delta"))
        _check_stop_reason(delta.get("stop_reason"))
        for key in ("stop_reason", "stop_sequence", "stop_details"):
            if key in delta:
                self.message[key] = delta[key]
        usage = payload.get("usage")
        if isinstance(usage, dict):
            # Cumulative counts: overwrite, never add.
            if not isinstance(self.message.get("usage"), dict):
                self.message["usage"] = {}
            self.message["usage"].update({k: v for k, v in usage.items() if v is not None})
        return None

    def _acc_message_stop(self, payload: dict):
        for index in list(self._open):
            self._close(index)
        self.complete = True
        return None

    # -- events to show, derived from what the accumulation changed

    def _show_message_start(self, blocks: list) -> list:
        # Text sent inside message_start is part of the answer: shown like any delta, so every
        # view agrees.
        return [event for block in blocks for event in _initial_text(block)]

    def _show_content_block_start(self, block: dict) -> list:
        if block.get("type") == "text" and block.get("text"):
            return [TextDelta(block["text"])]  # some gateways start a text block with its text
        return []

    def _show_delta(self, event) -> list:
        return [event]

    def _show_content_block_stop(self, index: int) -> list:
        return [BlockDone(index, self._blocks[index])]

    def _close(self, index: int) -> None:
        self._open.discard(index)
        block = self._blocks[index]
        parts = self._parts.pop(index, [])
        kind = block.get("type")
        if kind == "text":
            block["text"] = block.get("text", "") + "".join(parts)
        elif kind == "thinking":
            block["thinking"] = block.get("thinking", "") + "".join(parts)
        elif _takes_input(kind):
            raw = "".join(parts)
            if raw.strip():
                block["input"], problem = tool_input(raw)
                if problem:
                    self.bad_input[block.get("id", "")] = problem
            elif not isinstance(block.get("input"), dict):
                block["input"] = {}


_HANDLERS: dict[str, tuple[Any, Any]] = {
    "message_start": (StreamAssembler._acc_message_start, StreamAssembler._show_message_start),
    "content_block_start": (StreamAssembler._acc_content_block_start, StreamAssembler._show_content_block_start),
    "content_block_delta": (StreamAssembler._acc_content_block_delta, StreamAssembler._show_delta),
    "content_block_stop": (StreamAssembler._acc_content_block_stop, StreamAssembler._show_content_block_stop),
    "message_delta": (StreamAssembler._acc_message_delta, StreamAssembler._show_delta),
    "message_stop": (StreamAssembler._acc_message_stop, StreamAssembler._show_delta),
}


def _has_content(block: dict) -> bool:
    """A block past which a retry would repeat something: anything but an empty text/thinking."""
    kind = block.get("type")
    return kind not in ("text", "thinking") or bool(block.get(kind))


class AnthropicDecoder(StreamDecoder):
    """SSE bytes -> events and the assembled message, for one attempt."""

    def __init__(self) -> None:
        self._sse = SSEDecoder()
        self._assembler = StreamAssembler()
        self.committed = False
        self.bad_input = self._assembler.bad_input
        self._failed: BaseException | None = None  # met mid-chunk, after events that must show first

    def feed(self, chunk: bytes) -> list:
        if self._failed is not None:
            raise self._failed
        decoded = self._sse.feed(chunk)
        if len(decoded) == 1 and self.committed:
            # The usual piece, one event into a committed attempt: what _events does, without
            # its bookkeeping (a failure with no event before it is raised at once there too).
            return self._assembler.feed(decoded[0])
        return self._events(decoded)

    def close(self) -> list:
        if self._failed is not None:
            raise self._failed
        return self._events(self._sse.flush())

    def message(self) -> dict:
        return self._assembler.result()

    def snapshot(self) -> dict:
        return self._assembler.snapshot()

    def _events(self, decoded: list) -> list:
        assembler = self._assembler
        events: list = []
        try:
            for sse in decoded:
                events += assembler.feed(sse)
        except (StreamError, APIError) as exc:
            if not events:
                self._commit(events)
                raise
            # Show what came before the failure first (it was received, and it commits the
            # attempt); the failure is raised by the next call.
            self._failed = exc
        self._commit(events)
        return events

    def _commit(self, events: list) -> None:
        if not self.committed and (events or self._assembler.started_content):
            self.committed = True


class AnthropicDialect(Dialect):
    """The Anthropic Messages API: POST {base}/v1/messages, SSE or a JSON message back."""

    name = "anthropic"
    schema_modes = ("native", "beta", "tool")
    schema_forms = {
        "native": "output_config.format",
        "beta": f"the beta output_format ({STRUCTURED_OUTPUTS_BETA})",
        "tool": "a forced answer tool",
    }

    def url(self, base_url: str) -> str:
        return endpoint(base_url, "/v1/messages")

    def headers(self, settings) -> dict:
        return {"anthropic-version": ANTHROPIC_VERSION, **settings.credential_header()}

    def body(self, request: Request) -> dict:
        return build_body(
            model=request.model,
            max_tokens=request.max_tokens,
            messages=signed_only(request.messages),
            system=request.system,
            temperature=request.temperature,
            tools=list(request.tools),
            tool_choice=request.tool_choice,
            parallel=request.parallel,
            cache=request.cache,
            **request.extra,
        )

    def request_headers(self, request: Request) -> dict:
        return beta_header(request)

    def decoder(self) -> AnthropicDecoder:
        return AnthropicDecoder()

    def models_url(self, base_url: str) -> str:
        """GET /v1/models (toolchat models)."""
        from .models import models_url

        return models_url(self.url(base_url), "/messages")

    def count_tokens_url(self, base_url: str) -> str:
        """POST /v1/messages/count_tokens (toolchat count-tokens)."""
        return self.url(base_url) + "/count_tokens"

    def message_from_json(self, data: object, bad_input: dict) -> dict:
        return assemble_json(data, bad_input)

    def events_of_message(self, message: dict) -> Iterable:
        return events_of_message(message)


def assemble_json(body: object, bad_input: dict | None = None) -> dict:
    """A complete (non-streamed) response body as the assistant message.

    The body may be an Anthropic message or, from an OpenAI-compatible gateway, a `chat.completion`;
    both come out as the Anthropic-shaped assistant message. `bad_input` collects tool calls whose
    arguments are not a JSON object (see openai_json.message_from_chat_completion).
    """
    if not isinstance(body, dict):
        raise StreamError(
            f"the response is neither a stream nor a message: a JSON {type(body).__name__}", type="malformed_response"
        )
    if body.get("type") == "error" or (body.get("error") and "content" not in body):
        raise _stream_error(body)
    if body.get("object") == "chat.completion" or "choices" in body:
        from .openai_json import message_from_chat_completion

        return message_from_chat_completion(body, bad_input)
    if not isinstance(body.get("content"), list):
        raise StreamError(
            "the response is neither a stream nor a message: no `content` list", type="malformed_response"
        )
    message = dict(body)
    message.setdefault("role", "assistant")
    usage = body.get("usage")
    message["usage"] = dict(usage) if isinstance(usage, dict) else {}
    try:
        _check_stop_reason(message.get("stop_reason"))
        message["content"] = [_checked_block(block) for block in body["content"]]
    except (TypeError, ValueError) as exc:
        raise StreamError(f"malformed response: {exc}", type="malformed_response") from None
    return message


def events_of_message(message: dict) -> Iterable:
    """The normalized events a complete message stands for (a JSON answer shown like a stream)."""
    for index, block in enumerate(message.get("content", [])):
        if block.get("type") == "text" and block.get("text"):
            yield TextDelta(block["text"])
        elif block.get("type") == "thinking" and block.get("thinking"):
            yield ThinkingDelta(block["thinking"])
        yield BlockDone(index, block)


def _initial_text(block: dict) -> list:
    if block.get("type") == "text" and block.get("text"):
        return [TextDelta(block["text"])]
    if block.get("type") == "thinking" and block.get("thinking"):
        return [ThinkingDelta(block["thinking"])]
    return []


_DELTA_HEAD = '{"type":"content_block_delta","index":'
_DELTA_TEXT = ',"delta":{"type":"text_delta","text":"'


def compact_text_delta(data: str) -> tuple[int, str] | None:
    """(index, text) of a text delta spelt as the API sends it, compact and in this key order
    (`{"type":"content_block_delta","index":N,"delta":{"type":"text_delta","text":"..."}}`) with a
    text that JSON carries as it is (no escape, no quote, only printable characters), else None:
    anything else (an escaped newline, other spacing or order) takes json.loads, the long way."""
    if not data.startswith(_DELTA_HEAD) or not data.endswith('"}}'):
        return None
    start = len(_DELTA_HEAD)
    middle = data.find(_DELTA_TEXT, start)
    if middle < 0:
        return None
    digits = data[start:middle]
    if not (digits.isascii() and digits.isdigit()) or (len(digits) > 1 and digits[0] == "0"):
        return None  # not a JSON integer (leading zeros are not JSON)
    text = data[middle + len(_DELTA_TEXT) : -3]
    if "\\" in text or '"' in text or not text.isprintable():
        return None
    return int(digits), text


def _stream_error(payload: dict) -> APIError:
    error = payload.get("error")
    if isinstance(error, dict):
        # OpenAI-shaped errors often have a null `type` and the useful word in `code`.
        kind = str(error.get("type") or error.get("code") or "api_error")
        message = str(error.get("message") or kind)
    else:
        kind, message = "api_error", str(error or payload)
    return APIError(f"{kind}: {message}", type=kind, request_id=payload.get("request_id"))


def _takes_input(block_type: object) -> bool:
    """Blocks whose `input` streams as input_json_delta: tool_use, server_tool_use, mcp_tool_use."""
    return isinstance(block_type, str) and block_type.endswith("tool_use")


def _object(value: object) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError("expected an object")
    return value


def _string(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value


def _content_list(value: object) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise TypeError("content is not a list")
    return value


def _check_stop_reason(value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError("stop_reason is not a string")


def _checked_block(block: object) -> dict:
    """The block, if it has the shape the chat loop and the views rely on; TypeError otherwise."""
    if not isinstance(block, dict):
        raise TypeError("a content block is not an object")
    kind = block.get("type")
    if not isinstance(kind, str):
        raise TypeError("a content block has no type")
    if kind in ("text", "thinking") and not isinstance(block.get(kind, ""), str):
        raise TypeError(f"a {kind} block's {kind} is not a string")
    if _takes_input(kind):
        for key in ("id", "name"):
            if not isinstance(block.get(key, ""), str):
                raise TypeError(f"a {kind} block's {key} is not a string")
    return block
