"""What the chat loop needs of a wire dialect: the request body out, stream bytes or a JSON body in.

Inside toolchat every transcript, message and tool spec is Anthropic-shaped; a dialect maps that
shape to its wire and back. The chat loop knows only these interfaces, never a concrete dialect.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Iterable

from ..errors import StreamError
from ..text import clip


@dataclass(frozen=True)
class Request:
    """One model request as the chat loop asks for it; a dialect turns it into its wire body."""

    model: str
    max_tokens: int
    messages: list[dict]  # Anthropic-shaped transcript
    system: str | None = None
    temperature: float | None = None
    tools: list[dict] = field(default_factory=list)  # {"name", "description", "input_schema"}
    tool_choice: str | None = None  # auto | any | none | TOOL_NAME
    parallel: bool = True
    cache: str | None = None  # prompt-caching breakpoints with this TTL ("5m" | "1h"); None: none
    extra: dict = field(default_factory=dict)  # later features (thinking, output format, ...)


class StreamDecoder(ABC):
    """One streamed reply, one attempt: bytes in, events out. Pure (no I/O).

    `committed` turns True once the attempt has gone past the point where it can be retried: an
    event was produced (something was shown), or a content block began that is not an empty text
    or thinking block (a tool_use, above all). `bad_input` maps tool_use ids to why their input
    JSON could not be used.
    """

    committed: bool = False
    bad_input: dict[str, str]

    @abstractmethod
    def feed(self, chunk: bytes) -> list:
        """The events (TextDelta, ThinkingDelta, BlockDone...) this chunk completes."""

    @abstractmethod
    def close(self) -> list:
        """End of the bytes: the last events; raises StreamError if the reply is truncated."""

    @abstractmethod
    def message(self) -> dict:
        """The assembled Anthropic-shaped assistant message (after close)."""

    @abstractmethod
    def snapshot(self) -> dict:
        """What has been assembled so far (also of a failed attempt)."""


def event_json(data: str, cut: bool = False) -> dict:
    """The JSON object an SSE event's (stripped, non-empty) data carries; the StreamError of both
    decoders otherwise. `cut`: the event was the last of a body that stopped without its blank
    line, so data that does not parse is a truncated answer, not a malformed one."""
    try:
        payload = json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        if cut:
            raise StreamError(
                "the stream ended in the middle of an event: the answer is truncated", type="truncated_stream"
            ) from None
        raise StreamError(
            f"malformed stream: event data is not JSON: {clip(data, 120)}", type="malformed_stream"
        ) from None
    if not isinstance(payload, dict):
        raise StreamError(f"malformed stream: unexpected event data {clip(data, 120)}", type="malformed_stream")
    return payload


def tool_input(raw: str) -> tuple[dict, str | None]:
    """A tool call's streamed arguments, parsed once: (the input, None), or ({}, what was wrong)
    when they are not a JSON object. Both dialects' assemblers use it."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return {}, f"the tool input was not valid JSON: {clip(raw, 120)}"
    if not isinstance(value, dict):
        return {}, f"the tool input was not a JSON object: {clip(raw, 120)}"
    return value, None


def endpoint(base_url: str, path: str) -> str:
    """`{base}{path}` for a base that may already end in `/`, `/v1` or the full path (`/v1/...`)."""
    base = base_url.strip().rstrip("/")
    version = path.rsplit("/", 1)[0]  # "/v1/messages" -> "/v1"
    for suffix in (path, version):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base.rstrip("/") + path


class Dialect(ABC):
    """A wire dialect: endpoint, headers, request body, and how replies are read."""

    name: str

    @abstractmethod
    def url(self, base_url: str) -> str:
        """The endpoint for `base_url` (normalised: trailing /, /v1, the full path...)."""

    @abstractmethod
    def headers(self, settings: Any) -> dict:
        """Auth and version headers (raises UsageError when no credential is configured)."""

    # The --schema modes this dialect can send, in the order they are tried (structured.MODES),
    # and how the fallback note names each.
    schema_modes: tuple[str, ...] = ("native", "tool")
    schema_forms: dict = {"native": "structured outputs", "tool": "a forced answer tool"}

    @abstractmethod
    def body(self, request: Request) -> dict:
        """The wire body of `request`, asking for a stream."""

    def request_headers(self, request: Request) -> dict:
        """Headers this request needs beyond the session's (e.g. anthropic-beta); none by default."""
        return {}

    @abstractmethod
    def decoder(self) -> StreamDecoder:
        """A fresh decoder for one streamed reply."""

    @abstractmethod
    def message_from_json(self, data: object, bad_input: dict) -> dict:
        """A complete JSON reply (any shape the dialect maps) as the assistant message."""

    @abstractmethod
    def events_of_message(self, message: dict) -> Iterable:
        """The events a complete message stands for (a JSON reply shown like a stream)."""
