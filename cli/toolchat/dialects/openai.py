"""The OpenAI Chat Completions dialect (`POST {base}/v1/chat/completions`): local servers (Ollama,
llama.cpp, vLLM, LM Studio), OpenAI itself and the OpenAI-first gateways (one-api, new-api, ...).

Inside toolchat the transcript stays in Anthropic's shape; this module converts it to chat
messages at the edge on every turn (`body`), and turns the reply (a `chat.completion.chunk` stream
or a `chat.completion` body) back into toolchat's events and an Anthropic-shaped assistant message,
so the chat loop, the views and `--save` never learn which dialect was spoken (PROTOCOL.md §6-7).

The stream is decoded as anthropic-sdk-python / openai-python do it, with accumulation (chunk +
state -> state) apart from the events shown, and with the gateway quirks of PROTOCOL.md §6 handled
(see OpenAIStreamDecoder).
"""

from __future__ import annotations

import json
from typing import Any, Iterable
from urllib.parse import urlsplit

from ..errors import APIError, StreamError, UsageError, status_type
from ..events import BlockDone, TextDelta, ThinkingDelta
from ..sse import ServerSentEvent, SSEDecoder
from ..text import clip
from .base import Dialect, Request, StreamDecoder, event_json, tool_input
from .openai_json import STOP_REASONS  # finish_reason -> stop_reason: one table for JSON and streams

DEFAULT_BASE_URL = "https://api.openai.com"


# Where --max-tokens goes. openai-python documents `max_tokens` as "deprecated in favor of
# `max_completion_tokens`, and not compatible with o-series models" (types/chat/
# completion_create_params.py), and OpenAI's API answers 400 unsupported_parameter for
# `max_tokens` on its reasoning models. Elsewhere the old name is the one that works: Ollama's
# OpenAI layer reads only `max_tokens` (max_completion_tokens support is still an open PR,
# ollama/ollama#14464), vLLM and other pydantic-validated servers with extra="forbid" reject an
# unknown `max_completion_tokens` with a 400 (voideditor/void#128), and gateways such as LiteLLM
# translate either name for their upstreams. So: the new name for OpenAI's own host, the old one
# everywhere else (as devnullvoid/dms-ai-assistant and others settled on). Sending both is not an
# option: strict servers reject the unknown one, and OpenAI rejects both at once.
OFFICIAL_HOSTS = frozenset({"api.openai.com"})


def chat_completions_url(base_url: str) -> str:
    """`{base}/v1/chat/completions`, accepting a base that already ends in `/`, `/v1` or
    `/v1/chat/completions` (OPENAI_BASE_URL conventionally includes the `/v1`)."""
    base = base_url.strip().rstrip("/")
    for suffix in ("/v1/chat/completions", "/v1"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base.rstrip("/") + "/v1/chat/completions"


def is_loopback(base_url: str) -> bool:
    """Whether the URL's host is this machine (localhost, 127.0.0.0/8, ::1)."""
    import ipaddress

    host = (urlsplit(base_url.strip()).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def max_tokens_field(base_url: str | None) -> str:
    """The body field that carries --max-tokens for this endpoint (see OFFICIAL_HOSTS)."""
    host = (urlsplit(base_url or "").hostname or "").lower()
    return "max_completion_tokens" if host in OFFICIAL_HOSTS else "max_tokens"


# ---------------------------------------------------------------- requests: Anthropic -> chat


def chat_messages(messages: list[dict], system: Any = None) -> list[dict]:
    """The Anthropic-shaped transcript as chat messages.

    system -> a system message; text -> content; tool_use -> the assistant's `tool_calls` with the
    input as a JSON string; each tool_result -> one `role: "tool"` message with its
    `tool_call_id` (an is_error result says so in its text); images -> `image_url` parts (a tool
    message carries text only, so images in a tool result follow in a user message). Thinking,
    redacted thinking and server-tool blocks are not sent: chat.completions has no field that
    carries them back.
    """
    out: list[dict] = []
    system_text = _plain_text(system)
    if system_text:
        out.append({"role": "system", "content": system_text})
    for message in messages:
        role, content = message.get("role"), message.get("content")
        if role == "assistant":
            out.append(_assistant_message(content))
        elif role == "user":
            out.extend(_user_messages(content))
    return out


def _assistant_message(content: Any) -> dict:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    blocks = [b for b in content or [] if isinstance(b, dict)]
    text = "".join(b.get("text") or "" for b in blocks if b.get("type") == "text")
    calls = [
        {
            "id": b.get("id", ""),
            "type": "function",
            "function": {"name": b.get("name", ""), "arguments": json.dumps(b.get("input") or {}, ensure_ascii=False)},
        }
        for b in blocks
        if b.get("type") == "tool_use"
    ]
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if calls:
        # null, not "", beside tool calls: what OpenAI itself returns and every server takes back.
        message["content"] = text or None
        message["tool_calls"] = calls
    return message


def _user_messages(content: Any) -> list[dict]:
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    tools: list[dict] = []
    parts: list[dict] = []
    tool_images: list[dict] = []
    for block in content or []:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "tool_result":
            text, images = _result_content(block.get("content"))
            if block.get("is_error"):
                text = f"error: {text}"
            tools.append({"role": "tool", "tool_call_id": block.get("tool_use_id", ""), "content": text})
            if images:
                tool_images.append(
                    {"type": "text", "text": f"(images from the result of tool call {block.get('tool_use_id', '')})"}
                )
                tool_images.extend(images)
        elif kind == "text" and isinstance(block.get("text"), str):
            parts.append({"type": "text", "text": block["text"]})
        elif kind == "image":
            part = _image_part(block)
            if part is not None:
                parts.append(part)
        elif kind == "document":  # an attached PDF (-a): chat.completions' `file` part
            parts.append(_document_part(block))
    parts = tool_images + parts
    if not parts:
        return tools
    if len(parts) == 1 and parts[0]["type"] == "text":
        # A plain string where one will do: some local servers take nothing else.
        return [*tools, {"role": "user", "content": parts[0]["text"]}]
    return [*tools, {"role": "user", "content": parts}]


def _result_content(content: Any) -> tuple[str, list[dict]]:
    if isinstance(content, str):
        return content, []
    texts, images = [], []
    for block in content or []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif block.get("type") == "image":
            part = _image_part(block)
            if part is not None:
                images.append(part)
    return "\n".join(texts), images


def _image_part(block: dict) -> dict | None:
    source = block.get("source")
    if not isinstance(source, dict):
        return None
    if source.get("type") == "base64" and isinstance(source.get("data"), str):
        url = f"data:{source.get('media_type') or 'image/png'};base64,{source['data']}"
    elif source.get("type") == "url" and isinstance(source.get("url"), str):
        url = source["url"]
    else:
        return None  # a file id: chat.completions cannot refer to Anthropic's files
    return {"type": "image_url", "image_url": {"url": url}}


def _document_part(block: dict) -> dict:
    """A PDF document block as a `file` part (base64 data URL); a URL one as a text note, as
    chat.completions takes no file URLs."""
    source = block.get("source")
    if not isinstance(source, dict):
        source = {}
    if source.get("type") == "base64" and isinstance(source.get("data"), str):
        media_type = source.get("media_type") or "application/pdf"
        return {
            "type": "file",
            "file": {
                "filename": str(block.get("title") or "document.pdf"),
                "file_data": f"data:{media_type};base64,{source['data']}",
            },
        }
    if source.get("type") == "text" and isinstance(source.get("data"), str):
        return {"type": "text", "text": source["data"]}
    return {"type": "text", "text": f"(document: {source.get('url') or 'not sendable here'})"}


def _plain_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # system as text blocks
        return "\n".join(b["text"] for b in value if isinstance(b, dict) and isinstance(b.get("text"), str))
    return ""


def chat_tools(tools: Iterable[dict]) -> list[dict]:
    """Anthropic tool specs as `{"type": "function", "function": {name, description, parameters}}`."""
    out = []
    for tool in tools or ():
        if "input_schema" not in tool:
            continue  # a server tool of Anthropic's: nothing to offer here
        function = {"name": tool["name"]}
        if tool.get("description"):
            function["description"] = tool["description"]
        function["parameters"] = tool["input_schema"]
        out.append({"type": "function", "function": function})
    return out


def chat_tool_choice(value: str) -> Any:
    """--tool-choice auto|any|none|NAME as chat.completions spells it."""
    if value in ("auto", "none", "required"):
        return value
    if value == "any":
        return "required"
    return {"type": "function", "function": {"name": value}}


# ---------------------------------------------------------------- replies: chat -> Anthropic


def usage_of(raw: Any) -> dict:
    """A chat.completions `usage` object in the Messages API's terms.

    completion_tokens -> output_tokens; prompt_tokens_details.cached_tokens (DeepSeek:
    prompt_cache_hit_tokens) -> cache_read_input_tokens. OpenAI's prompt_tokens COUNT the cached
    tokens while Anthropic's input_tokens do not (the prompt is input + cache_read + cache_creation),
    so input_tokens = prompt_tokens - cached: the totals and costs toolchat adds up keep one meaning
    whichever dialect produced them.
    """
    if not isinstance(raw, dict):
        return {}
    usage: dict[str, int] = {}
    prompt, completion = _count(raw.get("prompt_tokens")), _count(raw.get("completion_tokens"))
    details = raw.get("prompt_tokens_details")
    cached = _count(details.get("cached_tokens")) if isinstance(details, dict) else None
    if cached is None:
        cached = _count(raw.get("prompt_cache_hit_tokens"))
    if prompt is not None:
        usage["input_tokens"] = prompt - cached if cached is not None and cached <= prompt else prompt
    if completion is not None:
        usage["output_tokens"] = completion
    if cached is not None:
        usage["cache_read_input_tokens"] = cached
    return usage


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


# An OpenAI-shaped error's type (or code) -> the Messages API's error type, so the retry policy and
# --json readers see one vocabulary. Unknown types pass through as they came.
ERROR_TYPES = {
    "server_error": "api_error",
    "internal_error": "api_error",
    "rate_limit_exceeded": "rate_limit_error",
    "requests": "rate_limit_error",  # OpenAI's 429s name the limit that was hit
    "tokens": "rate_limit_error",
    "invalid_api_key": "authentication_error",
    "timeout": "timeout_error",
}


def typed_error(kind: str, code: Any = None) -> str:
    """The Messages API's name for an OpenAI-shaped error's type or code (else `kind` itself)."""
    if isinstance(code, str) and code in ERROR_TYPES:
        return ERROR_TYPES[code]
    return ERROR_TYPES.get(kind, kind)


def error_of(payload: dict) -> APIError:
    """The APIError an `error` in a chunk (or a JSON body) stands for, typed like Anthropic's."""
    error = payload.get("error")
    code: Any = None
    if isinstance(error, dict):
        code = error.get("code")
        kind = error.get("type") or (code if isinstance(code, str) and code else None)
        if not kind and isinstance(code, int) and not isinstance(code, bool):
            # Gateways (OpenRouter) put an HTTP status in `error.code` of a mid-stream error; their
            # 408 is a timeout (an HTTP 408 reply is left an http_error by the transport).
            kind = "timeout_error" if code == 408 else status_type(code, "invalid_request_error")
        kind = str(kind or "api_error")
        message = str(error.get("message") or kind)
    else:
        kind, message = "api_error", str(error or payload)
    if "\n" in message or "\r" in message:
        message = " ".join(message.split())
    request_id = payload.get("request_id") or payload.get("id")
    err = APIError(
        f"{kind}: {message}",
        type=typed_error(kind, code),
        request_id=request_id if isinstance(request_id, str) else None,
    )
    if isinstance(code, str) and code:
        err.error_code = code  # insufficient_quota and the like: retry.py will not retry them
    return err


def message_from_json(data: object, bad_input: dict | None = None) -> dict:
    """A complete (non-streamed) reply as the Anthropic-shaped assistant message.

    A `chat.completion` body, what a server sends when it ignores `stream: true`; an error body;
    or, from a gateway that answers in the other dialect, an Anthropic message. The JSON mapping
    itself is openai_json.py's; added here: reasoning -> a thinking block, and usage with the
    cache counts (usage_of).
    """
    from . import anthropic

    if isinstance(data, dict) and data.get("error") and "choices" not in data and "content" not in data:
        raise error_of(data)
    message = anthropic.assemble_json(data, bad_input)
    if isinstance(data, dict) and isinstance(data.get("choices"), list):
        message["usage"] = usage_of(data.get("usage"))
        first = data["choices"][0]
        reply = first.get("message") if isinstance(first, dict) else None
        if isinstance(reply, dict):
            reasoning = _reasoning(reply)
            if reasoning:
                message["content"] = [{"type": "thinking", "thinking": reasoning}, *message["content"]]
    return message


def events_of_message(message: dict) -> list:
    """The events a complete message stands for: a JSON answer shown as if it had streamed."""
    from . import anthropic

    return list(anthropic.events_of_message(message))


def _reasoning(delta: dict) -> str:
    """reasoning_content (DeepSeek, vLLM before 0.10, llama.cpp) or reasoning (OpenRouter, Ollama,
    newer vLLM). Some servers send both with the same text: one of them is taken, never both."""
    for key in ("reasoning_content", "reasoning"):
        value = delta.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


class _ToolCall:
    __slots__ = ("wire_index", "id", "name", "parts")

    def __init__(self, wire_index: Any):
        self.wire_index = wire_index
        self.id = ""
        self.name = ""
        self.parts: list[str] = []


class OpenAIStreamDecoder(StreamDecoder):
    """One attempt's `chat.completion.chunk` stream: bytes in (`feed`), toolchat's events out, and
    the assembled Anthropic-shaped message (`message`) at the end.

    The message is laid out as the JSON mapping lays out a chat.completion: a thinking block (all
    reasoning), a text block (all content, refusal text included), then one tool_use block per tool
    call in order of first appearance. Text and reasoning are shown as they arrive; BlockDone events
    follow once the stream is complete, because a chunk's deltas may still add to any block until
    then (gateways send content after a finish_reason).

    Gateway quirks handled: data-only events, SSE comments, `[DONE]` missing (a finish_reason is
    then the end) or followed by more data (ignored), ids / names / types repeated in later
    fragments of the same call (kept once: openai-python would concatenate them), arguments in one
    fragment or as an object, fragments without `index` (an id that is new starts a call, none
    continues the last one), every call numbered index 0 but with distinct ids, a usage chunk with
    empty `choices`, usage on every chunk (cumulative: the last one wins), the legacy
    `function_call` delta. Arguments are parsed once, when the stream is complete; JSON that is not
    an object gives input {} and a note in `bad_input`, so the call is answered with an error
    instead of being run on a guess. A stream that ends with neither a finish_reason nor `[DONE]`
    is truncated; an `error` key in a chunk is an APIError.
    """

    def __init__(self) -> None:
        self.committed = False  # something was shown, or a tool call began: no silent retry now
        self.bad_input: dict[str, str] = {}
        self.done = False  # [DONE] seen
        self.finish_reason: str | None = None
        self._finished = False  # a non-empty finish_reason seen
        self._sse = SSEDecoder()
        self._meta: dict[str, str] = {}
        self._usage: dict = {}
        self._thinking: list[str] = []
        self._text: list[str] = []
        self._calls: list[_ToolCall] = []
        self._by_index: dict[Any, _ToolCall] = {}
        self._final: list[dict] | None = None  # the content, once complete
        self._failed: BaseException | None = None  # met mid-read, after events that must show first

    # ------------------------------------------------------------ the StreamDecoder interface

    def feed(self, chunk: bytes) -> list:
        if self._failed is not None:
            raise self._failed
        decoded = self._sse.feed(chunk)
        if len(decoded) == 1:  # the usual read, one chunk: what _events does for one, without its loop
            return self._on_event(decoded[0])
        return self._events(decoded)

    def close(self) -> list:
        """End of the body: handle a last event without its blank line, then require an end."""
        if self._failed is not None:
            raise self._failed
        events = self._events(self._sse.flush())
        if not (self.done or self._finished):
            raise StreamError(
                "the stream ended before a finish_reason or [DONE]: the answer is truncated", type="truncated_stream"
            )
        if self._final is None:
            events.extend(self._complete())
        return events

    def message(self) -> dict:
        """The assembled assistant message; a stream that never completed is an error."""
        if self._final is None:
            if not (self.done or self._finished):
                raise StreamError(
                    "the stream ended before a finish_reason or [DONE]: the answer is truncated",
                    type="truncated_stream",
                )
            self._complete()
        assert self._final is not None  # _complete() sets it
        return self._message(self._final)

    def snapshot(self) -> dict:
        """What has been assembled so far (for a turn that broke off: the text that was shown)."""
        if self._final is not None:
            return self._message(self._final)
        return self._message(self._content(record=False))

    # ------------------------------------------------------------ decoding

    def _events(self, decoded: list) -> list:
        events: list = []
        try:
            for sse in decoded:
                events.extend(self._on_event(sse))
        except (StreamError, APIError) as exc:
            if not events:
                raise
            # What came before the failure in the same read is shown first (it was received, and
            # it commits the attempt); the failure is raised by the next call, as anthropic.py does.
            self._failed = exc
        return events

    def _on_event(self, sse: ServerSentEvent) -> list:
        data = sse.data.strip()
        if not data or self.done:
            return []  # keep-alive, or anything after [DONE]
        if data == "[DONE]":
            self.done = True
            return self._complete() if self._final is None else []
        payload = event_json(data, sse.cut)
        if payload.get("error") or payload.get("type") == "error":
            raise error_of(payload)
        try:
            events = self._on_chunk(payload)
        except (AttributeError, TypeError, KeyError, ValueError):
            raise StreamError(
                f"malformed stream: unexpected chunk {clip(data, 120)}", type="malformed_stream"
            ) from None
        if events:
            self.committed = True
        return events

    def _on_chunk(self, chunk: dict) -> list:
        # Accumulation first (pure state), then the events the same deltas show.
        for key in ("id", "model"):
            if key not in self._meta and isinstance(chunk.get(key), str) and chunk[key]:
                self._meta[key] = chunk[key]
        if isinstance(chunk.get("usage"), dict):
            self._usage = usage_of(chunk["usage"])  # cumulative where repeated: overwrite
        choices = chunk.get("choices")
        if choices is None:
            return []
        if not isinstance(choices, list):
            raise TypeError("choices is not a list")
        events: list = []
        for choice in choices:
            if not isinstance(choice, dict):
                raise TypeError("a choice is not an object")
            if choice.get("index", 0) not in (0, None):
                continue  # n > 1 is never asked for: other choices are not this answer
            delta = choice.get("delta")
            if delta is not None:
                if not isinstance(delta, dict):
                    raise TypeError("delta is not an object")
                events.extend(self._on_delta(delta))
            finish = choice.get("finish_reason")
            if finish is not None and not isinstance(finish, str):
                raise TypeError("finish_reason is not a string")
            if finish:
                self.finish_reason = finish
                self._finished = True
        return events

    def _on_delta(self, delta: dict) -> list:
        if len(delta) == 1 and type(delta.get("content")) is str:  # most chunks: one piece of text
            text = delta["content"]
            if not text:
                return []
            self._text.append(text)
            return [TextDelta(text)]
        events: list = []
        reasoning = _reasoning(delta)
        if reasoning:
            self._thinking.append(reasoning)
            events.append(ThinkingDelta(reasoning))
        for key in ("content", "refusal"):  # a refusal's explanation is the answer's text
            text = delta.get(key)
            if text is None:
                continue
            if not isinstance(text, str):
                raise TypeError(f"{key} is not a string")
            if text:
                self._text.append(text)
                events.append(TextDelta(text))
        calls = delta.get("tool_calls")
        if calls is not None:
            if not isinstance(calls, list):
                raise TypeError("tool_calls is not a list")
            for fragment in calls:
                if not isinstance(fragment, dict):
                    raise TypeError("a tool call fragment is not an object")
                self._on_fragment(fragment.get("index"), fragment.get("id"), fragment.get("function"))
        legacy = delta.get("function_call")
        if legacy is not None:
            self._on_fragment("function_call", None, legacy)
        return events

    def _on_fragment(self, index: Any, call_id: Any, function: Any) -> None:
        if index is not None and index != "function_call" and (not isinstance(index, int) or isinstance(index, bool)):
            raise TypeError("a tool call index is not an integer")
        if call_id is not None and not isinstance(call_id, str):
            raise TypeError("a tool call id is not a string")
        function = {} if function is None else function
        if not isinstance(function, dict):
            raise TypeError("a tool call's function is not an object")
        name, arguments = function.get("name"), function.get("arguments")
        if name is not None and not isinstance(name, str):
            raise TypeError("a tool call name is not a string")
        call = self._call_for(index, call_id or "")
        if call_id and not call.id:
            call.id = call_id
        if name and not call.name:
            # A name repeated in later fragments is the same name, not more of it.
            call.name = name
        if isinstance(arguments, str):
            call.parts.append(arguments)
        elif isinstance(arguments, dict) and not call.parts:
            call.parts.append(json.dumps(arguments, ensure_ascii=False))  # the object itself
        elif arguments is not None and not isinstance(arguments, dict):
            raise TypeError("a tool call's arguments are not a string")
        if call.id or call.name or call.parts:
            self.committed = True  # a tool call began: a retry could run it twice

    def _call_for(self, index: Any, call_id: str) -> _ToolCall:
        known = next((c for c in self._calls if call_id and c.id == call_id), None)
        if index is None:
            # No index (some Gemini and Ollama versions): a new id starts a call, no id continues one.
            if known is not None:
                return known
            if call_id or not self._calls:
                return self._new_call(None)
            return self._calls[-1]
        call = self._by_index.get(index)
        if call is None:
            return self._new_call(index)
        if call_id and call.id and call_id != call.id:
            # Every call numbered 0 but each with its own id: a different id is a different call.
            if known is not None:
                return known
            return self._new_call(index)
        return call

    def _new_call(self, index: Any) -> _ToolCall:
        call = _ToolCall(index)
        self._calls.append(call)
        if index is not None:
            self._by_index[index] = call
        return call

    # ------------------------------------------------------------ assembling

    def _complete(self) -> list:
        """The stream is complete: parse every call's arguments once and close every block."""
        self._final = self._content(record=True)
        return [BlockDone(index, block) for index, block in enumerate(self._final)]

    def _content(self, record: bool) -> list[dict]:
        blocks: list[dict] = []
        if self._thinking:
            blocks.append({"type": "thinking", "thinking": "".join(self._thinking)})
        if self._text:
            text = "".join(self._text)
            if text:
                blocks.append({"type": "text", "text": text})
        for position, call in enumerate(self._calls):
            if not call.name:
                if not record:
                    continue  # still arriving
                raise StreamError(
                    f"malformed stream: tool call {position} has no function name", type="malformed_stream"
                )
            call_id = call.id or f"call_{position}"  # the id only pairs the result with the call
            blocks.append(
                {
                    "type": "tool_use",
                    "id": call_id,
                    "name": call.name,
                    "input": self._input(call_id, "".join(call.parts), record),
                }
            )
        return blocks

    def _input(self, call_id: str, raw: str, record: bool) -> dict:
        if not raw.strip():
            return {}
        value, problem = tool_input(raw)
        if problem is not None and record:
            self.bad_input[call_id] = problem
        return value

    def _message(self, content: list[dict]) -> dict:
        finish = self.finish_reason
        message = {
            "id": self._meta.get("id", ""),
            "type": "message",
            "role": "assistant",
            "content": content,
            "stop_reason": STOP_REASONS.get(finish, finish) if finish else None,
            "stop_sequence": None,
            "usage": dict(self._usage),
        }
        if "model" in self._meta:
            message["model"] = self._meta["model"]
        return message


def strict_compatible(schema: Any) -> bool:
    """Whether OpenAI's strict structured outputs take this schema: every object closed
    (additionalProperties: false) and listing every property as required."""
    if isinstance(schema, list):
        return all(strict_compatible(item) for item in schema)
    if not isinstance(schema, dict):
        return True
    if schema.get("type") == "object":
        if schema.get("additionalProperties") is not False:
            return False
        if set(schema.get("properties") or {}) - set(schema.get("required") or []):
            return False
    return all(
        strict_compatible(value) for key, value in schema.items() if key not in ("enum", "const", "default", "examples")
    )


def reasoning_effort(budget: int) -> str:
    """--thinking BUDGET as chat.completions' reasoning_effort: up to 2048 tokens low, up to 8192
    medium, more high (the budgets gateways such as LiteLLM map the three levels near)."""
    return "low" if budget <= 2048 else "medium" if budget <= 8192 else "high"


class OpenAIDialect(Dialect):
    """The chat.completions dialect behind toolchat's Dialect interface (dialects/base.py)."""

    name = "openai"
    schema_forms = {"native": "response_format json_schema", "tool": "a forced answer tool"}

    def __init__(self, base_url: str | None = None):
        self.max_tokens_field = max_tokens_field(base_url)

    def url(self, base_url: str) -> str:
        return chat_completions_url(base_url)

    def models_url(self, base_url: str) -> str:
        """GET /v1/models of an OpenAI-compatible server (toolchat models)."""
        from .models import models_url

        return models_url(self.url(base_url), "/chat/completions")

    def headers(self, settings: Any) -> dict:
        """Authorization: Bearer KEY. Without a key only for a loopback base URL (a local model
        server that needs no auth); anywhere else a missing key is a UsageError before any request."""
        key = getattr(settings, "api_key", None)
        if key:
            if getattr(settings, "auth_style", "auto") == "x-api-key":
                return {"x-api-key": key}  # asked for in so many words (some gateways take it)
            return {"authorization": f"Bearer {key}"}
        if is_loopback(getattr(settings, "base_url", "") or ""):
            return {}
        from ..profiles import missing_key

        unset = missing_key(settings)  # a profile's key_env names a variable that is not set
        if unset is not None:
            raise unset
        raise UsageError(
            "no API key: set OPENAI_API_KEY or TOOLCHAT_API_KEY (sent as Authorization: "
            "Bearer), or name the variable with key_env in a profile; a local server on "
            "a loopback --base-url needs none",
            type="missing_credentials",
        )

    def body(self, request: Request) -> dict:
        """The chat.completions body for a Request (Anthropic-shaped transcript and tool specs).

        From `request.extra`: stop sequences -> `stop`, top_p, --schema -> `response_format`
        (json_schema, strict), --thinking BUDGET -> `reasoning_effort` (see reasoning_effort); top_k
        has no chat.completions field and is not sent.
        """
        body: dict[str, Any] = {
            "model": request.model,
            "messages": chat_messages(request.messages, request.system),
            self.max_tokens_field: request.max_tokens,
        }
        if request.temperature is not None:
            body["temperature"] = request.temperature
        extra = request.extra
        if extra.get("stop_sequences"):
            body["stop"] = list(extra["stop_sequences"])
        if extra.get("top_p") is not None:
            body["top_p"] = extra["top_p"]
        if extra.get("thinking") is not None:
            body["reasoning_effort"] = reasoning_effort(extra["thinking"])
        if extra.get("output_schema") is not None:
            # strict only where OpenAI's strict mode takes the schema (every property required):
            # it refuses other schemas outright.
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": "answer",
                    "schema": extra["output_schema"],
                    "strict": strict_compatible(extra["output_schema"]),
                },
            }
        tools = chat_tools(request.tools)
        if tools:
            body["tools"] = tools
            if request.tool_choice:
                body["tool_choice"] = chat_tool_choice(request.tool_choice)
            if not request.parallel:
                # OpenAI refuses parallel_tool_calls without tools, so only beside them. Gateways
                # may drop it: the chat loop enforces --no-parallel itself too.
                body["parallel_tool_calls"] = False
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        return body

    def decoder(self) -> OpenAIStreamDecoder:
        return OpenAIStreamDecoder()

    def message_from_json(self, data: object, bad_input: dict) -> dict:
        return message_from_json(data, bad_input)

    def events_of_message(self, message: dict) -> list:
        return events_of_message(message)
