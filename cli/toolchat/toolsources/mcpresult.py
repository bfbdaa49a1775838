"""MCP tool results -> Anthropic tool_result content blocks. Pure: wire dicts in, blocks out.

MCP `content` items (text, image, audio, embedded resource, resource_link) and `structuredContent`
become the text and image blocks a tool_result can carry; what the Messages API cannot take (audio,
binary resources, image types it does not read) becomes a short note, so the model knows it was there.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

# The image types the Messages API reads in an image block.
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")


def to_blocks(result: dict) -> tuple[list[dict], bool]:
    """A `tools/call` result (wire JSON) as tool_result content blocks and its is_error flag."""
    blocks: list[dict] = []
    items = result.get("content")
    for item in items if isinstance(items, list) else []:
        blocks.extend(_item(item) if isinstance(item, dict) else [_text(f"[content item {item!r}]")])
    structured = result.get("structuredContent")
    if structured is not None and not _already_there(structured, blocks):
        # The spec asks servers to repeat structured content as JSON text; many do not.
        blocks.append(_text(json.dumps(structured, ensure_ascii=False)))
    return blocks, result.get("isError") is True


def _text(text: str) -> dict:
    return {"type": "text", "text": text}


def _size(data: Any) -> str:
    """The decoded size of base64 data, for notes ("12.3 kB")."""
    try:
        count = len(base64.b64decode(data, validate=False)) if isinstance(data, str) else 0
    except (binascii.Error, ValueError):
        count = len(data) * 3 // 4 if isinstance(data, str) else 0
    if count < 1000:
        return f"{count} bytes"
    return f"{count / 1000:.1f} kB" if count < 1_000_000 else f"{count / 1_000_000:.1f} MB"


def _image(data: Any, mime: Any, what: str) -> dict:
    if isinstance(data, str) and mime in IMAGE_TYPES:
        return {"type": "image", "source": {"type": "base64", "media_type": mime, "data": data}}
    return _text(f"[{what} of type {mime or 'unknown'}, {_size(data)}: not an image type the model can read]")


def _item(item: dict) -> list[dict]:
    kind = item.get("type")
    if kind == "text":
        return [_text(str(item.get("text", "")))]
    if kind == "image":
        return [_image(item.get("data"), item.get("mimeType"), "image")]
    if kind == "audio":
        return [
            _text(
                f"[audio of type {item.get('mimeType') or 'unknown'}, {_size(item.get('data'))}: "
                "audio cannot be passed to the model]"
            )
        ]
    if kind == "resource":
        resource = item.get("resource")
        resource = resource if isinstance(resource, dict) else {}
        uri, mime = resource.get("uri", ""), resource.get("mimeType")
        label = f"[resource {uri}" + (f" ({mime})" if mime else "") + "]"
        if "text" in resource:
            return [_text(f"{label}\n{resource['text']}")]
        blob = resource.get("blob")
        if isinstance(mime, str) and mime.startswith("image/"):
            return [_text(label), _image(blob, mime, "image resource")]
        return [_text(f"{label[:-1]}: binary, {_size(blob)}, not shown]")]
    if kind == "resource_link":
        parts = [f"[resource link: {item.get('name') or item.get('uri', '')} <{item.get('uri', '')}>"]
        if item.get("mimeType"):
            parts.append(f" ({item['mimeType']})")
        if item.get("description"):
            parts.append(f": {item['description']}")
        return [_text("".join(parts) + "]")]
    return [_text(f"[content of type {kind!r} that toolchat does not pass on]")]


def _already_there(structured: Any, blocks: list[dict]) -> bool:
    """Whether a text block already says what the structured content says.

    Servers built with the SDK's MCPServer wrap a plain return value as {"result": value}
    and send the value as text too: that counts as said.
    """
    wrapped = structured.get("result") if isinstance(structured, dict) and set(structured) == {"result"} else _MISSING
    for block in blocks:
        if block.get("type") != "text":
            continue
        text = block.get("text", "")
        if wrapped is not _MISSING and text == wrapped:
            return True
        try:
            value = json.loads(text)
        except (ValueError, TypeError):
            continue
        if value == structured or (wrapped is not _MISSING and value == wrapped):
            return True
    return False


_MISSING = object()
