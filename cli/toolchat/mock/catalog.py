"""The mock's `GET /v1/models` (Anthropic's shape, paginated; OpenAI's list without
anthropic-version) and `POST /v1/messages/count_tokens`, as strict as the real endpoints."""

from __future__ import annotations

from typing import Any

from .validate import (
    ApiError,
    _check_messages,
    _check_system,
    _check_thinking,
    _check_tool_choice,
    _check_tools,
    invalid,
)

MODELS = (  # newest first, as the API lists them
    ("claude-opus-4-5-20251101", "Claude Opus 4.5", "2025-11-24T00:00:00Z"),
    ("claude-haiku-4-5-20251001", "Claude Haiku 4.5", "2025-10-15T00:00:00Z"),
    ("claude-sonnet-4-5-20250929", "Claude Sonnet 4.5", "2025-09-29T00:00:00Z"),
    ("claude-opus-4-1-20250805", "Claude Opus 4.1", "2025-08-05T00:00:00Z"),
    ("claude-opus-4-20250514", "Claude Opus 4", "2025-05-22T00:00:00Z"),
    ("claude-sonnet-4-20250514", "Claude Sonnet 4", "2025-05-22T00:00:00Z"),
    ("claude-3-5-haiku-20241022", "Claude Haiku 3.5", "2024-10-22T00:00:00Z"),
)
COUNT_KEYS = frozenset({"model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers"})


def models_page(query: dict[str, list[str]]) -> dict:
    """One page of the model list: `limit` (1-1000, default 20), `after_id` / `before_id`."""
    for key in query:
        if key not in ("limit", "after_id", "before_id"):
            raise invalid(f"{key}: Extra inputs are not permitted")
    try:
        limit = int((query.get("limit") or ["20"])[0])
    except ValueError:
        raise invalid("limit: Input should be a valid integer") from None
    if not 1 <= limit <= 1000:
        raise invalid("limit: Input should be greater than or equal to 1 and less than or equal to 1000")
    ids = [m[0] for m in MODELS]
    start, end = 0, len(ids)
    if query.get("after_id"):
        start = _position(ids, query["after_id"][0]) + 1
    if query.get("before_id"):
        end = _position(ids, query["before_id"][0])
        start = max(start, end - limit) if not query.get("after_id") else start
    chosen = MODELS[start : min(end, start + limit)]
    data = [{"type": "model", "id": i, "display_name": name, "created_at": created} for i, name, created in chosen]
    return {
        "data": data,
        "has_more": start + len(chosen) < end,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


def openai_models() -> dict:
    """The model list as OpenAI's GET /v1/models answers."""
    return {
        "object": "list",
        "data": [
            {"id": i, "object": "model", "created": 1700000000 + n, "owned_by": "anthropic"}
            for n, (i, _, _) in enumerate(MODELS)
        ],
    }


def _position(ids: list[str], model: str) -> int:
    if model not in ids:
        raise ApiError(404, "not_found_error", f"model: {model}")
    return ids.index(model)


def count_tokens(body: dict) -> dict:
    """{"input_tokens": N}: what the request's tools, system and messages come to (the mock's
    tokens, as its Messages usage counts them)."""
    from .cache import check_breakpoints
    from .model import count_words

    for key in body:
        if key not in COUNT_KEYS:
            raise invalid(f"{key}: Extra inputs are not permitted")
    for key in ("model", "messages"):
        if key not in body:
            raise invalid(f"{key}: Field required")
    if not isinstance(body["model"], str) or not body["model"].strip():
        raise invalid("model: Input should be a valid string")
    _check_system(body.get("system"))
    _check_tool_choice(body.get("tool_choice"), _check_tools(body.get("tools")))
    _check_thinking(body.get("thinking"), 1 << 30)
    _check_messages(body["messages"])
    check_breakpoints(body)
    total = sum(count_words(body.get(k)) for k in ("tools", "system", "messages"))
    return {"input_tokens": max(1, total)}


def answer(path: str, method: str, query: dict, headers: dict, raw: bytes, api_key: Any) -> dict:
    """The JSON answer for /v1/models or /v1/messages/count_tokens (ApiError otherwise)."""
    from .validate import check_auth, check_version, parse_body

    if path == "/v1/models":
        if method != "GET":
            raise ApiError(405, "invalid_request_error", f"Method {method} not allowed", headers={"Allow": "GET"})
        check_auth(headers, api_key)
        if not headers.get("anthropic-version", "").strip():
            return openai_models()  # an OpenAI client: its own shape
        return models_page(query)
    if method != "POST":
        raise ApiError(405, "invalid_request_error", f"Method {method} not allowed", headers={"Allow": "POST"})
    check_auth(headers, api_key)
    check_version(headers)
    return count_tokens(parse_body(raw))
