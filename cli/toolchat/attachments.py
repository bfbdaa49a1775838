"""Attachments (-a FILE|URL|-): images, PDFs and text files as content blocks of the prompt, with
the Messages API's limits checked before anything is sent; and images returned by tool handlers.

The type is told from the content (magic bytes), not the name: a `.png` that holds a JPEG is sent as
image/jpeg, which is what the API checks. `--attach-type` overrides it. A URL is passed on as a URL
source (the API fetches it), so its type comes from its extension or --attach-type.
"""

from __future__ import annotations

import base64
import re
import struct
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from .errors import UsageError

IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
PDF = "application/pdf"
# The API's limits (docs: vision, PDF support, request size).
MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_IMAGES = 100
MAX_SIDE = 8000  # pixels, per side
MANY_IMAGES, MAX_SIDE_MANY = 20, 2000  # more than 20 images in a request: at most 2000 px a side
MAX_PDF_PAGES = 100
MAX_REQUEST_BYTES = 32 * 1024 * 1024
_EXTENSIONS = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".pdf": PDF,
}


def sniff(data: bytes) -> str | None:
    """The media type the bytes are (png, jpeg, gif, webp, pdf), else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:1024].lstrip().startswith(b"%PDF-"):
        return PDF
    return None


def image_size(data: bytes, media_type: str) -> tuple[int, int] | None:
    """(width, height) from the image's header, or None when it cannot be read."""
    try:
        if media_type == "image/png" and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if media_type == "image/gif":
            return struct.unpack("<HH", data[6:10])
        if media_type == "image/webp":
            chunk = data[12:16]
            if chunk == b"VP8X":
                return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
            if chunk == b"VP8L":
                bits = int.from_bytes(data[21:25], "little")
                return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
            if chunk == b"VP8 ":
                w, h = struct.unpack("<HH", data[26:30])
                return w & 0x3FFF, h & 0x3FFF
        if media_type == "image/jpeg":
            i = 2
            while i + 9 < len(data):
                if data[i] != 0xFF:
                    return None
                marker = data[i + 1]
                length = struct.unpack(">H", data[i + 2 : i + 4])[0]
                if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
                    h, w = struct.unpack(">HH", data[i + 5 : i + 9])
                    return w, h
                i += 2 + length
    except struct.error:
        return None
    return None


def pdf_pages(data: bytes) -> int:
    """Page objects seen in a PDF (0 when they sit in compressed object streams): a lower bound."""
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", data))


def load(
    specs: tuple[str, ...] | list[str], types: tuple[str, ...] | list[str] = (), stdin: BinaryIO | None = None
) -> list[dict]:
    """The content blocks for `-a` specs (files, URLs, '-'), in order; UsageError naming the
    attachment that is missing, of an unknown type or over a limit of the API."""
    specs, types = list(specs), list(types)
    if types and len(types) not in (1, len(specs)):
        raise UsageError(
            f"--attach-type: give one type for all attachments or one per -a "
            f"({len(specs)} attachments, {len(types)} types)"
        )
    if types and not specs:
        raise UsageError("--attach-type needs -a FILE")
    if specs.count("-") > 1:
        raise UsageError("-a -: stdin can be attached only once")
    blocks: list[dict] = []
    images: list[tuple[str, tuple[int, int] | None]] = []
    total = 0
    for number, spec in enumerate(specs):
        forced = (types[0] if len(types) == 1 else types[number]) if types else None
        forced = forced.strip().lower() if forced else None
        if forced == "image/jpg":
            forced = "image/jpeg"
        if _is_url(spec):
            blocks.append(_url_block(spec, forced))
            if blocks[-1]["type"] == "image":
                images.append((spec, None))
            continue
        name = "stdin" if spec == "-" else spec
        data = _read(spec, stdin)
        block, media_type = _file_block(name, data, forced)
        if media_type in IMAGE_TYPES:
            images.append((name, image_size(data, media_type)))
        total += len(block["source"]["data"]) if "source" in block else len(data)
        blocks.append(block)
    if len(images) > MAX_IMAGES:
        raise UsageError(f"-a: {len(images)} images; the API takes at most {MAX_IMAGES} in a request")
    side = MAX_SIDE_MANY if len(images) > MANY_IMAGES else MAX_SIDE
    for name, size in images:
        if size and max(size) > side:
            many = f" when a request has more than {MANY_IMAGES} images" if side == MAX_SIDE_MANY else ""
            raise UsageError(f"-a {name}: {size[0]}x{size[1]} pixels; the API takes images up to {side}x{side}{many}")
    if total > MAX_REQUEST_BYTES:
        raise UsageError(
            f"-a: the attachments come to {total / 1e6:.1f} MB encoded, over the API's "
            f"{MAX_REQUEST_BYTES // (1024 * 1024)} MB request limit"
        )
    return blocks


def attach(messages: list[dict], blocks: list[dict]) -> list[dict]:
    """The transcript with the blocks put before the text of its last user message."""
    if not blocks:
        return messages
    if not messages or messages[-1].get("role") != "user":
        messages.append({"role": "user", "content": []})
    last = messages[-1]
    content = last.get("content")
    if isinstance(content, str):
        content = [{"type": "text", "text": content}] if content.strip() else []
    # Attachments first, then the prompt: what the API's documentation recommends for images.
    messages[-1] = {**last, "content": [*blocks, *(content or [])]}
    return messages


def image_block(data: bytes, media_type: str | None = None, name: str = "the image") -> dict:
    """A base64 image block for image bytes (type from the content unless given), limits checked;
    ValueError says what is wrong."""
    media_type = media_type or sniff(data)
    if media_type not in IMAGE_TYPES:
        raise ValueError(f"{name} is not a png, jpeg, gif or webp image")
    if len(data) > MAX_IMAGE_BYTES:
        raise ValueError(f"{name} is {len(data) / 1e6:.1f} MB; the API takes images up to 5 MB")
    return {
        "type": "image",
        "source": {"type": "base64", "media_type": media_type, "data": base64.b64encode(data).decode("ascii")},
    }


def tool_image(value: Any) -> dict | None:
    """A tool handler's image return value as an image block: bytes of an image, or a dict
    {"type": "image", "path": FILE} / {"type": "image", "data": BYTES or BASE64, "media_type": T};
    None when the value is not an image. ValueError when it is one that cannot be sent."""
    if isinstance(value, (bytes, bytearray)):
        return image_block(bytes(value), None, "the returned bytes")
    if not (isinstance(value, dict) and value.get("type") == "image" and ("path" in value or "data" in value)):
        return None
    media_type = value.get("media_type")
    if "path" in value:
        path = Path(str(value["path"])).expanduser()
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot read the image {path}: {exc.strerror or exc}") from None
        return image_block(data, media_type, str(path))
    data = value["data"]
    if isinstance(data, str):
        try:
            data = base64.b64decode(data, validate=True)
        except ValueError:
            raise ValueError("the image's data is neither bytes nor base64") from None
    if not isinstance(data, (bytes, bytearray)):
        raise ValueError("the image's data is neither bytes nor base64")
    return image_block(bytes(data), media_type)


def _is_url(spec: str) -> bool:
    return urlsplit(spec).scheme in ("http", "https") and bool(urlsplit(spec).netloc)


def _url_block(url: str, forced: str | None) -> dict:
    media_type = forced or _EXTENSIONS.get(Path(urlsplit(url).path).suffix.lower())
    if media_type in IMAGE_TYPES:
        return {"type": "image", "source": {"type": "url", "url": url}}
    if media_type == PDF:
        return {"type": "document", "source": {"type": "url", "url": url}}
    if media_type is None:
        raise UsageError(
            f"-a {url}: cannot tell an image from a PDF by this URL; pass --attach-type "
            "image/png, image/jpeg, image/gif, image/webp or application/pdf"
        )
    raise UsageError(
        f"-a {url}: the API takes URLs of images and PDFs only, not {media_type} (download it and attach the file)"
    )


def _read(spec: str, stdin: BinaryIO | None) -> bytes:
    if spec == "-":
        if stdin is None:
            import sys

            stdin = sys.stdin.buffer if sys.stdin is not None else None
        if stdin is None:
            raise UsageError("-a -: there is no stdin to read")
        return stdin.read()
    path = Path(spec).expanduser()
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"-a {spec}: file not found") from None
    except IsADirectoryError:
        raise UsageError(f"-a {spec}: is a folder, not a file") from None
    except OSError as exc:
        raise UsageError(f"-a {spec}: cannot read it: {exc.strerror or exc}") from None


def _file_block(name: str, data: bytes, forced: str | None) -> tuple[dict, str]:
    media_type = forced or sniff(data)
    if media_type is None:
        media_type = "text/plain" if _is_text(data) else None
    if media_type is None:
        raise UsageError(
            f"-a {name}: not an image (png, jpeg, gif, webp), a PDF or a text file; --attach-type says what it is"
        )
    if not data:
        raise UsageError(f"-a {name}: the file is empty")
    if media_type in IMAGE_TYPES:
        try:
            return image_block(data, media_type, name), media_type
        except ValueError as exc:
            raise UsageError(f"-a {exc}") from None
    if media_type == PDF:
        pages = pdf_pages(data)
        if pages > MAX_PDF_PAGES:
            raise UsageError(f"-a {name}: {pages} pages; the API takes PDFs of up to {MAX_PDF_PAGES} pages")
        return {
            "type": "document",
            "source": {"type": "base64", "media_type": PDF, "data": base64.b64encode(data).decode("ascii")},
        }, PDF
    if media_type.startswith("text/") or media_type in ("application/json", "application/x-yaml"):
        from .stdio import decode

        text, _ = decode(data)
        return {"type": "text", "text": f"{name}:\n\n{text}"}, media_type
    raise UsageError(f"-a {name}: {media_type} cannot be attached (images: {', '.join(IMAGE_TYPES)}; {PDF}; text/*)")


_CONTROLS = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")  # not \t \n \v \f \r or ESC


def _is_text(data: bytes) -> bool:
    if _CONTROLS.search(data[:8192]):
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
