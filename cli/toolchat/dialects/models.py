"""`toolchat models` and `toolchat count-tokens` at the wire level: endpoints, and model lists in
either API's shape (a gateway may answer an Anthropic client with OpenAI's list, and back)."""

from __future__ import annotations

from typing import Any

from ..errors import APIError
from .base import endpoint

# What POST /v1/messages/count_tokens takes of a Messages body.
COUNT_KEYS = ("model", "messages", "system", "tools", "tool_choice", "thinking")


def models_url(messages_url: str, suffix: str) -> str:
    """GET /v1/models beside a dialect's endpoint (`suffix`: its path after /v1)."""
    base = messages_url[: -len(suffix)] if messages_url.endswith(suffix) else messages_url
    return endpoint(base, "/v1/models")


def count_tokens_body(body: dict) -> dict:
    """The count_tokens request for a Messages body: the same model, tools, system and messages."""
    return {key: body[key] for key in COUNT_KEYS if key in body}


def models_from_json(data: Any) -> tuple[list[dict], str | None]:
    """(models, the id to ask for the next page after or None) from an Anthropic page
    (`data`, `has_more`, `last_id`) or an OpenAI list (`object: list`, `data`). Each model:
    {"id", "display_name", "created_at"} (Anthropic) or {"id", "created", "owned_by"} (OpenAI)."""
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise APIError("the model list is not a JSON object with a `data` list", type="malformed_response")
    models = []
    for item in data["data"]:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise APIError("the model list has an entry without an `id`", type="malformed_response")
        keys = ("id", "display_name", "created_at", "created", "owned_by")
        models.append({k: item[k] for k in keys if k in item})
    more = data.get("last_id") if data.get("has_more") is True and isinstance(data.get("last_id"), str) else None
    return models, more
