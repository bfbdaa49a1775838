"""The Anthropic Messages dialect: request bodies out; streamed events or JSON bodies in, assembled
into the assistant message exactly as the API sent it (wire dicts, not model classes)."""

from __future__ import annotations

import json
from typing import Any, Iterable

from ..errors import APIError, StreamError
from ..events import BlockDone, TextDelta, ThinkingDelta
from ..sse import ServerSentEvent

# Stop reasons that end a run with an incomplete answer (exit 4).
INCOMPLETE_STOPS = {"max_tokens", "model_context_window_exceeded", "refusal"}


def build_body(*, model: str, max_tokens: int, messages: list[dict], system: str | None = None,
               temperature: float | None = None, tools: list[dict] | None = None,
               tool_choice: str | None = None, parallel: bool = True, stream: bool = True) -> dict:
    """The request body for POST /v1/messages."""
    body: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": messages}
    if system:
        body["system"] = system
    if temperature is not None:
        body["temperature"] = temperature
    if tools:
        body["tools"] = tools
        choice = _tool_choice(tool_choice or "auto")
        if not parallel and choice["type"] != "none":
            choice["disable_parallel_tool_use"] = True
        if tool_choice or not parallel:
            body["tool_choice"] = choice
    body["stream"] = stream
    return body


def _tool_choice(value: str) -> dict:
    if value in ("auto", "any", "none"):
        return {"type": value}
    return {"type": "tool", "name": value}


class StreamAssembler:
    """Turns decoded SSE events into normalized events and the assembled assistant message."""

    def __init__(self) -> None:
        self.message: dict | None = None
        self.complete = False  # message_stop seen
        self.bad_input: dict[str, str] = {}  # tool_use id -> why its input could not be parsed
        self._blocks: dict[int, dict] = {}
        self._parts: dict[int, list[str]] = {}  # text / thinking / partial_json pieces, joined at stop
        self._open: set[int] = set()

    def feed(self, sse: ServerSentEvent) -> list:
        data = sse.data.strip()
        if not data or data == "[DONE]":
            return []
        try:
            payload = json.loads(data)
        except ValueError:
            raise StreamError(f"malformed stream: event data is not JSON: {_clip(data)}",
                              type="malformed_stream") from None
        if not isinstance(payload, dict):
            raise StreamError(f"malformed stream: unexpected event data {_clip(data)}",
                              type="malformed_stream")
        kind = payload.get("type") or sse.event
        if kind == "error":
            raise _stream_error(payload)
        if self.complete:
            return []  # gateways sometimes send more after message_stop
        handler = getattr(self, "_on_" + str(kind), None)
        if handler is None:
            return []  # new event types are added without notice
        try:
            return handler(payload)
        except (AttributeError, TypeError, KeyError, ValueError):
            # A field of the wrong shape (a string where an object belongs, ...).
            raise StreamError(f"malformed stream: unexpected {kind} event {_clip(data)}",
                              type="malformed_stream") from None

    def result(self) -> dict:
        """The assembled message; a stream that never reached message_stop is an error."""
        if not self.complete:
            raise StreamError("the stream ended before message_stop: the answer is truncated",
                              type="truncated_stream")
        return self.snapshot()

    def snapshot(self) -> dict:
        """The message as assembled so far (also for a failed turn, to keep what was received)."""
        for index in list(self._open):
            self._close(index)
        message = dict(self.message or {"role": "assistant"})
        message["content"] = [self._blocks[i] for i in sorted(self._blocks)]
        return message

    def _on_message_start(self, payload: dict) -> list:
        message = payload.get("message") or {}
        if self.message is None:
            self.message = {k: v for k, v in message.items() if k != "content"}
            self.message.setdefault("role", "assistant")
            self.message["usage"] = dict(message.get("usage") or {})
            # Some gateways put whole blocks in message_start; keep them.
            for index, block in enumerate(message.get("content") or []):
                self._blocks[index] = block
        return []

    def _on_content_block_start(self, payload: dict) -> list:
        index = payload.get("index", len(self._blocks))
        block = dict(payload.get("content_block") or {})
        self._blocks[index] = block
        self._open.add(index)
        self._parts[index] = []
        if self.message is None:
            self.message = {"role": "assistant", "usage": {}}
        if block.get("type") == "text" and block.get("text"):
            return [TextDelta(block["text"])]  # some gateways start a text block with its text
        return []

    def _on_content_block_delta(self, payload: dict) -> list:
        index = payload.get("index", 0)
        delta = payload.get("delta") or {}
        kind = delta.get("type")
        if index not in self._open:
            if index in self._blocks or kind not in ("text_delta", "thinking_delta"):
                return []
            # A delta for a block that never started: start the block it implies.
            self._on_content_block_start({"index": index, "content_block": {
                "type": "text" if kind == "text_delta" else "thinking"}})
        block = self._blocks[index]
        if kind == "text_delta":
            text = delta.get("text") or ""
            self._parts[index].append(text)
            return [TextDelta(text)] if text else []
        if kind == "input_json_delta":
            self._parts[index].append(delta.get("partial_json") or "")
        elif kind == "thinking_delta":
            text = delta.get("thinking") or ""
            self._parts[index].append(text)
            return [ThinkingDelta(text)] if text else []
        elif kind == "signature_delta":
            block["signature"] = delta.get("signature", "")
        elif kind == "citations_delta":
            block.setdefault("citations", []).append(delta.get("citation"))
        return []

    def _on_content_block_stop(self, payload: dict) -> list:
        index = payload.get("index", 0)
        if index not in self._open:
            return []  # a stray stop for a block that is not open
        self._close(index)
        return [BlockDone(index, self._blocks[index])]

    def _on_message_delta(self, payload: dict) -> list:
        if self.message is None:
            self.message = {"role": "assistant", "usage": {}}
        delta = payload.get("delta") or {}
        for key in ("stop_reason", "stop_sequence", "stop_details"):
            if key in delta:
                self.message[key] = delta[key]
        usage = payload.get("usage")
        if isinstance(usage, dict):
            # Cumulative counts: overwrite, never add.
            self.message.setdefault("usage", {}).update(
                {k: v for k, v in usage.items() if v is not None})
        return []

    def _on_message_stop(self, payload: dict) -> list:
        for index in list(self._open):
            self._close(index)
        self.complete = True
        return []

    def _close(self, index: int) -> None:
        self._open.discard(index)
        block = self._blocks[index]
        parts = self._parts.pop(index, [])
        kind = block.get("type")
        if kind == "text":
            block["text"] = block.get("text", "") + "".join(parts)
        elif kind == "thinking":
            block["thinking"] = block.get("thinking", "") + "".join(parts)
        elif kind == "tool_use":
            raw = "".join(parts)
            if raw.strip():
                try:
                    block["input"] = json.loads(raw)
                except ValueError:
                    block["input"] = {}
                    self.bad_input[block.get("id", "")] = f"the tool input was not valid JSON: {_clip(raw)}"
            elif not isinstance(block.get("input"), dict):
                block["input"] = {}


def assemble_json(body: dict) -> dict:
    """A complete (non-streamed) response body as the assistant message."""
    if body.get("type") == "error" or ("error" in body and "content" not in body):
        raise _stream_error(body)
    if not isinstance(body.get("content"), list):
        raise StreamError("the response is neither a stream nor a message: no `content` list",
                          type="malformed_response")
    message = dict(body)
    message.setdefault("role", "assistant")
    message["usage"] = dict(body.get("usage") or {})
    return message


def events_of_message(message: dict) -> Iterable:
    """The normalized events a complete message stands for (a JSON answer shown like a stream)."""
    for index, block in enumerate(message.get("content", [])):
        if block.get("type") == "text" and block.get("text"):
            yield TextDelta(block["text"])
        elif block.get("type") == "thinking" and block.get("thinking"):
            yield ThinkingDelta(block["thinking"])
        yield BlockDone(index, block)


def _stream_error(payload: dict) -> APIError:
    error = payload.get("error")
    if isinstance(error, dict):
        kind = str(error.get("type") or "api_error")
        message = str(error.get("message") or kind)
    else:
        kind, message = "api_error", str(error or payload)
    return APIError(f"{kind}: {message}", type=kind, request_id=payload.get("request_id"))


def _clip(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
