"""Request validation for the mock Messages API.

The checks and their wording follow the real API's 400/401 answers, so a client that passes
against the mock is unlikely to be rejected by the real service for the same reasons.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from typing import Any, Mapping

ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

TOP_LEVEL_KEYS = frozenset(
    {
        "model",
        "max_tokens",
        "messages",
        "stream",
        "system",
        "temperature",
        "top_p",
        "top_k",
        "stop_sequences",
        "tools",
        "tool_choice",
        "thinking",
        "metadata",
        "service_tier",
        "output_config",
    }
)
# Fields the real API takes only with their anthropic-beta header.
BETA_KEYS = {"output_format": "structured-outputs-2025-11-13"}
# Keys the real API accepts on a custom tool definition; anything else (an OpenAI-style
# "parameters", a typo) is rejected there, so it is rejected here too.
CUSTOM_TOOL_KEYS = frozenset(
    {
        "type",
        "name",
        "description",
        "input_schema",
        "cache_control",
        "strict",
        "eager_input_streaming",
        "input_examples",
        "defer_loading",
        "allowed_callers",
    }
)
TOOL_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
THINKING_PREFIX = b"mock-thinking:"
REDACTED_PREFIX = b"mock-redacted:"


class ApiError(Exception):
    """An HTTP error answer: status, Anthropic error type, message and extra headers."""

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


def invalid(message: str) -> ApiError:
    """Shorthand for a 400 invalid_request_error."""
    return ApiError(400, "invalid_request_error", message)


def thinking_signature(thinking: str) -> str:
    """The signature the mock attaches to (and later demands for) a thinking block."""
    return base64.b64encode(hashlib.sha256(THINKING_PREFIX + thinking.encode("utf-8")).digest()).decode()


def redacted_data(text: str) -> str:
    """Opaque `data` for a redacted_thinking block the mock emits."""
    return base64.b64encode(REDACTED_PREFIX + text.encode("utf-8")).decode()


def _redacted_ok(data: Any) -> bool:
    if not isinstance(data, str):
        return False
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return False
    return raw.startswith(REDACTED_PREFIX)


def check_auth(headers: Mapping[str, str], api_key: str | None) -> None:
    """Require x-api-key or a Bearer token; when api_key is set, require that value."""
    key = headers.get("x-api-key", "").strip()
    auth = headers.get("authorization", "").strip()
    bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    offered = [v for v in (key, bearer) if v]
    if not offered:
        raise ApiError(401, "authentication_error", "x-api-key header is required")
    if api_key is not None:
        # compare_digest: no timing hints, and the offered value never reaches a message.
        if not any(hmac.compare_digest(v.encode(), api_key.encode()) for v in offered):
            raise ApiError(401, "authentication_error", "invalid x-api-key")


def check_version(headers: Mapping[str, str]) -> None:
    """The real API refuses requests without anthropic-version."""
    if not headers.get("anthropic-version", "").strip():
        raise invalid("anthropic-version: header is required")


def parse_body(raw: bytes) -> dict:
    """Decode the request body; it must be a JSON object."""
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise invalid("There was an error parsing the body of your request: the body is not valid JSON")
    if not isinstance(body, dict):
        raise invalid("Input should be a valid dictionary")
    return body


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def validate_body(body: dict, headers: Mapping[str, str] | None = None, reject: frozenset | set | tuple = ()) -> None:
    """Raise ApiError(400) for the first problem found in a Messages request body.

    `headers` (lower-cased names) says which betas are on; `reject` lists fields refused as a
    strict gateway refuses fields it does not know (the mock playing such a gateway)."""
    betas = {b.strip() for b in (headers or {}).get("anthropic-beta", "").split(",") if b.strip()}
    for key in body:
        if key in reject or (key not in TOP_LEVEL_KEYS and BETA_KEYS.get(key) not in betas):
            raise invalid(f"{key}: Extra inputs are not permitted")
    for key in ("model", "max_tokens", "messages"):
        if key not in body:
            raise invalid(f"{key}: Field required")
    if not isinstance(body["model"], str):
        raise invalid("model: Input should be a valid string")
    if not body["model"].strip():
        raise invalid("model: String should have at least 1 character")
    if not _is_int(body["max_tokens"]):
        raise invalid("max_tokens: Input should be a valid integer")
    if body["max_tokens"] < 1:
        raise invalid("max_tokens: Input should be greater than or equal to 1")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise invalid("stream: Input should be a valid boolean")
    _check_sampling(body)
    _check_system(body.get("system"))
    tool_names = _check_tools(body.get("tools"))
    _check_tool_choice(body.get("tool_choice"), tool_names)
    _check_thinking(body.get("thinking"), body["max_tokens"])
    _check_thinking_fits(body)
    _check_output_format(body)
    _check_messages(body["messages"])


def _check_thinking_fits(body: dict) -> None:
    """What the API refuses beside extended thinking."""
    thinking = body.get("thinking")
    if not isinstance(thinking, dict) or thinking.get("type") != "enabled":
        return
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
        raise invalid("Thinking may not be enabled when tool_choice forces tool use.")
    if "temperature" in body and body["temperature"] != 1:
        raise invalid(
            "`temperature` may only be set to 1 when thinking is enabled. Please consult our "
            "documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
        )
    if "top_k" in body:
        raise invalid("`top_k` is not supported when thinking is enabled.")
    if "top_p" in body and body["top_p"] < 0.95:
        raise invalid("`top_p` must be greater than or equal to 0.95 or unset when thinking is enabled.")


def _check_output_format(body: dict) -> None:
    """output_config.format (GA) or output_format (beta): a json_schema format, whose object
    schemas all say additionalProperties: false."""
    config = body.get("output_config")
    if config is not None:
        if not isinstance(config, dict):
            raise invalid("output_config: Input should be a valid dictionary")
        for k in config:
            if k not in ("format", "effort"):
                raise invalid(f"output_config.{k}: Extra inputs are not permitted")
        if "format" in config and config["format"] is not None:
            _check_format(config["format"], "output_config.format")
    if "output_format" in body:
        if isinstance(config, dict) and config.get("format") is not None:
            raise invalid("output_format and output_config.format cannot both be set; use output_config.format")
        if body["output_format"] is not None:
            _check_format(body["output_format"], "output_format")


def _check_format(form: Any, where: str) -> None:
    if not isinstance(form, dict):
        raise invalid(f"{where}: Input should be a valid dictionary")
    if form.get("type") != "json_schema":
        raise invalid(f"{where}.type: Input should be 'json_schema'")
    for k in form:
        if k not in ("type", "schema"):
            raise invalid(f"{where}.json_schema.{k}: Extra inputs are not permitted")
    schema = form.get("schema")
    if schema is None:
        raise invalid(f"{where}.json_schema.schema: Field required")
    if not isinstance(schema, dict):
        raise invalid(f"{where}.json_schema.schema: Input should be a valid dictionary")
    _check_strict_objects(schema, f"{where}.schema")


def _check_strict_objects(schema: Any, where: str) -> None:
    if isinstance(schema, list):
        for item in schema:
            _check_strict_objects(item, where)
        return
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "object" and schema.get("additionalProperties") is not False:
        raise invalid(f"{where}: For 'object' type, 'additionalProperties' must be explicitly set to false")
    for key, value in schema.items():
        if key not in ("enum", "const", "default", "examples"):
            _check_strict_objects(value, where)


def _check_sampling(body: dict) -> None:
    for key in ("temperature", "top_p"):
        if key in body:
            v = body[key]
            if not _is_num(v):
                raise invalid(f"{key}: Input should be a valid number")
            if v < 0:
                raise invalid(f"{key}: Input should be greater than or equal to 0")
            if v > 1:
                raise invalid(f"{key}: Input should be less than or equal to 1")
    if "top_k" in body:
        if not _is_int(body["top_k"]):
            raise invalid("top_k: Input should be a valid integer")
        if body["top_k"] < 0:
            raise invalid("top_k: Input should be greater than or equal to 0")
    if "stop_sequences" in body:
        seqs = body["stop_sequences"]
        if not isinstance(seqs, list):
            raise invalid("stop_sequences: Input should be a valid list")
        for i, s in enumerate(seqs):
            if not isinstance(s, str):
                raise invalid(f"stop_sequences.{i}: Input should be a valid string")
            if not s.strip():
                raise invalid("stop_sequences: each stop sequence must contain non-whitespace")
    if "metadata" in body:
        md = body["metadata"]
        if not isinstance(md, dict):
            raise invalid("metadata: Input should be a valid dictionary")
        for k in md:
            if k != "user_id":
                raise invalid(f"metadata.{k}: Extra inputs are not permitted")
    if "service_tier" in body and body["service_tier"] not in ("auto", "standard_only"):
        raise invalid("service_tier: Input should be 'auto' or 'standard_only'")


def _check_system(system: Any) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        raise invalid("system: Input should be a valid list")
    for i, block in enumerate(system):
        if not isinstance(block, dict):
            raise invalid(f"system.{i}: Input should be a valid dictionary")
        if block.get("type") != "text":
            raise invalid(f"system.{i}.type: Input should be 'text'")
        if not isinstance(block.get("text"), str):
            raise invalid(f"system.{i}.text: Input should be a valid string")


def _check_tools(tools: Any) -> set[str]:
    names: set[str] = set()
    if tools is None:
        return names
    if not isinstance(tools, list):
        raise invalid("tools: Input should be a valid list")
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise invalid(f"tools.{i}: Input should be a valid dictionary")
        ttype = tool.get("type")
        if ttype not in (None, "custom"):
            # Server tools (web_search_20250305, bash_..., ...) have their own schemas.
            if isinstance(tool.get("name"), str):
                names.add(tool["name"])
            continue
        where = f"tools.{i}.custom"
        for k in tool:
            if k not in CUSTOM_TOOL_KEYS:
                raise invalid(f"{where}.{k}: Extra inputs are not permitted")
        name = tool.get("name")
        if name is None:
            raise invalid(f"{where}.name: Field required")
        if not isinstance(name, str) or not TOOL_NAME_RE.match(name):
            raise invalid(f"{where}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'")
        if name in names:
            raise invalid("tools: Tool names must be unique.")
        names.add(name)
        if "description" in tool and not isinstance(tool["description"], str):
            raise invalid(f"{where}.description: Input should be a valid string")
        schema = tool.get("input_schema")
        if schema is None:
            raise invalid(f"{where}.input_schema: Field required")
        if not isinstance(schema, dict):
            raise invalid(f"{where}.input_schema: Input should be a valid dictionary")
        if schema.get("type") != "object":
            raise invalid(f"{where}.input_schema.type: Input should be 'object'")
    return names


def _check_tool_choice(choice: Any, tool_names: set[str]) -> None:
    if choice is None:
        return
    if not isinstance(choice, dict):
        raise invalid("tool_choice: Input should be a valid dictionary")
    ctype = choice.get("type")
    if ctype not in ("auto", "any", "tool", "none"):
        raise invalid("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
    allowed = {"type"} | ({"disable_parallel_tool_use"} if ctype != "none" else set())
    allowed |= {"name"} if ctype == "tool" else set()
    for k in choice:
        if k not in allowed:
            raise invalid(f"tool_choice.{ctype}.{k}: Extra inputs are not permitted")
    if "disable_parallel_tool_use" in choice and not isinstance(choice["disable_parallel_tool_use"], bool):
        raise invalid(f"tool_choice.{ctype}.disable_parallel_tool_use: Input should be a valid boolean")
    if ctype == "tool":
        name = choice.get("name")
        if not isinstance(name, str):
            raise invalid("tool_choice.tool.name: Field required")
        if name not in tool_names:
            raise invalid(f"tool_choice.tool.name: Tool '{name}' not found in tools")


def _check_thinking(thinking: Any, max_tokens: int) -> None:
    if thinking is None:
        return
    if not isinstance(thinking, dict):
        raise invalid("thinking: Input should be a valid dictionary")
    ttype = thinking.get("type")
    if ttype not in ("enabled", "disabled", "adaptive"):
        raise invalid("thinking.type: Input should be 'enabled', 'disabled' or 'adaptive'")
    if ttype == "enabled":
        budget = thinking.get("budget_tokens")
        if budget is None:
            raise invalid("thinking.enabled.budget_tokens: Field required")
        if not _is_int(budget):
            raise invalid("thinking.enabled.budget_tokens: Input should be a valid integer")
        if budget < 1024:
            raise invalid("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
        if max_tokens <= budget:
            raise invalid("`max_tokens` must be greater than `thinking.budget_tokens`")


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list):
        raise invalid("messages: Input should be a valid list")
    if not messages:
        raise invalid("messages: at least one message is required")
    last = len(messages) - 1
    for n, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise invalid(f"messages.{n}: Input should be a valid dictionary")
        for k in msg:
            if k not in ("role", "content"):
                raise invalid(f"messages.{n}.{k}: Extra inputs are not permitted")
        role = msg.get("role")
        if role is None:
            raise invalid(f"messages.{n}.role: Field required")
        if role not in ("user", "assistant"):
            raise invalid(f"messages.{n}.role: Input should be 'user' or 'assistant'")
        if n == 0 and role != "user":
            raise invalid('messages.0.role: first message must use the "user" role')
        if "content" not in msg:
            raise invalid(f"messages.{n}.content: Field required")
        content = msg["content"]
        if isinstance(content, str):
            empty = content == ""
        elif isinstance(content, list):
            empty = not content
            for m, block in enumerate(content):
                _check_block(messages, n, m, role, block)
        else:
            raise invalid(f"messages.{n}.content: Input should be a valid list")
        if empty and not (n == last and role == "assistant"):
            raise invalid(
                f"messages.{n}: all messages must have non-empty content "
                "except for the optional final assistant message"
            )
        if role == "assistant":
            _check_results_follow(messages, n)


def _check_block(messages: list, n: int, m: int, role: str, block: Any) -> None:
    where = f"messages.{n}.content.{m}"
    if not isinstance(block, dict):
        raise invalid(f"{where}: Input should be a valid dictionary")
    btype = block.get("type")
    if btype is None:
        raise invalid(f"{where}.type: Field required")
    if not isinstance(btype, str):
        raise invalid(f"{where}.type: Input should be a valid string")
    if btype == "text":
        _check_text(block, where)
    elif btype == "tool_use":
        if role != "assistant":
            raise invalid(f"{where}: `tool_use` blocks can only be in `assistant` messages")
        for k in ("id", "name"):
            if not isinstance(block.get(k), str) or not block[k]:
                raise invalid(f"{where}.tool_use.{k}: Field required")
        if not isinstance(block.get("input"), dict):
            raise invalid(f"{where}.tool_use.input: Input should be a valid dictionary")
    elif btype == "tool_result":
        if role != "user":
            raise invalid(f"{where}: `tool_result` blocks can only be in `user` messages")
        _check_tool_result(messages, n, m, block, where)
    elif btype in ("thinking", "redacted_thinking"):
        if role != "assistant":
            raise invalid(f"{where}: `{btype}` blocks can only be in `assistant` messages")
        if btype == "thinking":
            text = block.get("thinking")
            if not isinstance(text, str):
                raise invalid(f"{where}.thinking.thinking: Field required")
            sig = block.get("signature")
            if not isinstance(sig, str) or not hmac.compare_digest(sig, thinking_signature(text)):
                raise invalid(f"{where}: Invalid `signature` in `thinking` block")
        elif not _redacted_ok(block.get("data")):
            raise invalid(f"{where}: Invalid `data` in `redacted_thinking` block")
    elif btype == "image":
        if role != "user":
            raise invalid(f"{where}: `image` blocks can only be in `user` messages")
        _check_image(block, where)
    elif btype == "document":
        if role != "user":
            raise invalid(f"{where}: `document` blocks can only be in `user` messages")
        _check_document(block, where)
    # Other block types (server tool blocks, ...) pass unchecked.


IMAGE_MAGIC = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}
MAX_IMAGE_BYTES = 5 * 1024 * 1024


def _base64(source: dict, where: str) -> bytes:
    data = source.get("data")
    if not isinstance(data, str):
        raise invalid(f"{where}.source.base64.data: Field required")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise invalid(f"{where}.source.base64.data: invalid base64 data") from None


def _check_image(block: dict, where: str) -> None:
    source = block.get("source")
    if not isinstance(source, dict):
        raise invalid(f"{where}.image.source: Field required")
    stype = source.get("type")
    if stype == "url":
        if not isinstance(source.get("url"), str) or not source["url"].startswith(("http://", "https://")):
            raise invalid(f"{where}.image.source.url.url: Input should be a valid URL")
        return
    if stype != "base64":
        raise invalid(
            f"{where}.image.source: Input tag '{stype}' found using 'type' does not match any "
            "of the expected tags: 'base64', 'url'"
        )
    media_type = source.get("media_type")
    if media_type not in IMAGE_MAGIC:
        raise invalid(
            f"{where}.image.source.base64.media_type: Input should be 'image/jpeg', "
            "'image/png', 'image/gif' or 'image/webp'"
        )
    data = _base64(source, where)
    if len(data) > MAX_IMAGE_BYTES:
        raise invalid(
            f"{where}.image.source.base64: image exceeds 5 MB maximum: {len(data)} bytes > {MAX_IMAGE_BYTES} bytes"
        )
    if not data.startswith(IMAGE_MAGIC[media_type]):
        raise invalid(f"{where}.image.source.base64.data: Image does not match the provided media type {media_type}")


def _check_document(block: dict, where: str) -> None:
    source = block.get("source")
    if not isinstance(source, dict):
        raise invalid(f"{where}.document.source: Field required")
    stype = source.get("type")
    if stype == "url":
        if not isinstance(source.get("url"), str) or not source["url"].startswith(("http://", "https://")):
            raise invalid(f"{where}.document.source.url.url: Input should be a valid URL")
        return
    if stype == "text":
        if source.get("media_type") != "text/plain" or not isinstance(source.get("data"), str):
            raise invalid(f"{where}.document.source.text: media_type 'text/plain' and data required")
        return
    if stype != "base64":
        raise invalid(
            f"{where}.document.source: Input tag '{stype}' found using 'type' does not match "
            "any of the expected tags: 'base64', 'content', 'text', 'url'"
        )
    if source.get("media_type") != "application/pdf":
        raise invalid(f"{where}.document.source.base64.media_type: Input should be 'application/pdf'")
    if not _base64(source, where).lstrip().startswith(b"%PDF-"):
        raise invalid(f"{where}.document.source.base64.data: The PDF specified was not valid.")


def _check_text(block: dict, where: str) -> None:
    text = block.get("text")
    if not isinstance(text, str):
        raise invalid(f"{where}.text.text: Field required")
    if text == "":
        raise invalid(f"{where}.text: text content blocks must be non-empty")
    if not text.strip():
        raise invalid(f"{where}.text: text content blocks must contain non-whitespace text")


def _check_tool_result(messages: list, n: int, m: int, block: dict, where: str) -> None:
    tid = block.get("tool_use_id")
    if not isinstance(tid, str) or not tid:
        raise invalid(f"{where}.tool_result.tool_use_id: Field required")
    if tid not in _tool_use_ids(messages[n - 1] if n > 0 else None):
        raise invalid(
            f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: {tid}. "
            "Each `tool_result` block must have a corresponding `tool_use` block in the "
            "previous message."
        )
    if "is_error" in block and not isinstance(block["is_error"], bool):
        raise invalid(f"{where}.tool_result.is_error: Input should be a valid boolean")
    content = block.get("content", "")
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise invalid(f"{where}.tool_result.content: Input should be a valid list")
    for k, inner in enumerate(content):
        iw = f"{where}.tool_result.content.{k}"
        if not isinstance(inner, dict) or inner.get("type") not in ("text", "image"):
            raise invalid(
                f"{iw}: Input tag '{inner.get('type') if isinstance(inner, dict) else inner}'"
                " found using 'type' does not match any of the expected tags: 'text', 'image'"
            )
        if inner["type"] == "text":
            _check_text(inner, iw)
        else:
            _check_image(inner, iw)


def _tool_use_ids(msg: Any) -> list[Any]:
    if not isinstance(msg, dict) or msg.get("role") != "assistant" or not isinstance(msg.get("content"), list):
        return []
    return [b.get("id") for b in msg["content"] if isinstance(b, dict) and b.get("type") == "tool_use"]


def _check_results_follow(messages: list, n: int) -> None:
    ids = _tool_use_ids(messages[n])
    if not ids:
        return
    nxt = messages[n + 1] if n + 1 < len(messages) else None
    answered: set[Any] = set()
    if isinstance(nxt, dict) and nxt.get("role") == "user" and isinstance(nxt.get("content"), list):
        # Only the leading run counts: results after a text block are not "immediately after".
        for b in nxt["content"]:
            if not (isinstance(b, dict) and b.get("type") == "tool_result"):
                break
            answered.add(b.get("tool_use_id"))
    missing = [i for i in ids if i not in answered]
    if missing:
        raise invalid(
            f"messages.{n + 1}: `tool_use` ids were found without `tool_result` blocks "
            f"immediately after: {', '.join(missing)}. Each `tool_use` block must have a "
            "corresponding `tool_result` block in the next message."
        )
