"""HTTP for the Messages API: one requests.Session per run, auth headers, timeouts, response
sniffing (stream or JSON, whatever was asked) and turning error responses into APIError."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import urlsplit

import requests

from .errors import APIError, TransportError

ANTHROPIC_VERSION = "2023-06-01"
_READ_SIZE = 65536


def messages_url(base_url: str) -> str:
    """`{base}/v1/messages`, accepting a base that already ends in `/`, `/v1` or `/v1/messages`."""
    base = base_url.strip().rstrip("/")
    for suffix in ("/v1/messages", "/v1"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base.rstrip("/") + "/v1/messages"


def auth_headers(key: str, style: str) -> dict:
    """The credential header for `style` ('x-api-key' or 'bearer')."""
    if style == "bearer":
        return {"authorization": f"Bearer {key}"}
    return {"x-api-key": key}


@dataclass
class Reply:
    """A successful response, sniffed: `kind` is 'sse' or 'json'."""

    kind: str
    response: requests.Response
    first: bytes

    def chunks(self) -> Iterator[bytes]:
        """The body's bytes as they arrive, without waiting for more than is there."""
        if self.first:
            yield self.first
        yield from _read_chunks(self.response)

    def json(self) -> object:
        body = self.first + b"".join(_read_chunks(self.response))
        try:
            return json.loads(body.decode("utf-8"))
        except ValueError:
            raise APIError(f"the server sent a malformed JSON body: {_clip(body)}",
                           type="malformed_response", status=self.response.status_code) from None

    def close(self) -> None:
        self.response.close()


class Transport:
    """Sends request bodies to one Messages endpoint over a reused session."""

    def __init__(self, url: str, headers: dict, *, connect_timeout: float = 10.0,
                 read_timeout: float = 600.0, debug: bool = False):
        self.url = url
        self.timeout = (connect_timeout, read_timeout)
        self.debug = debug
        self.session = requests.Session()
        self.session.headers.update({
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
            "anthropic-version": ANTHROPIC_VERSION,
            "user-agent": "toolchat",
        })
        self.session.headers.update(headers)
        self._host = urlsplit(url).netloc

    def send(self, body: dict) -> Reply:
        """POST the body; return the sniffed reply or raise APIError / TransportError."""
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        if self.debug:
            shown = {k: v for k, v in self.session.headers.items()}
            print(f"debug: POST {self.url} headers={redact_headers(shown)} body={len(data)} bytes",
                  file=sys.stderr)
        try:
            response = self.session.post(self.url, data=data, stream=True, timeout=self.timeout)
        except requests.exceptions.Timeout as exc:
            raise TransportError(f"timed out connecting to {self._host} ({_reason(exc)})",
                                 type="timeout") from exc
        except requests.exceptions.RequestException as exc:
            raise TransportError(f"could not connect to {self._host}: {_reason(exc)}") from exc
        if self.debug:
            print(f"debug: HTTP {response.status_code} {response.headers.get('content-type', '')}"
                  f" request-id={_request_id(response)}", file=sys.stderr)
        if response.status_code >= 400:
            try:
                raise error_from_response(response)
            finally:
                response.close()
        return self._sniff(response)

    def _sniff(self, response: requests.Response) -> Reply:
        # Decide on what came back, never on what was asked: gateways answer stream requests with JSON.
        ctype = response.headers.get("content-type", "").lower()
        first = b""
        chunks = _read_chunks(response)
        for chunk in chunks:
            first += chunk
            if first.strip():
                break
        lead = first.lstrip()[:1]
        if "json" in ctype or lead in (b"{", b"["):
            kind = "json"
        else:
            kind = "sse"
        return Reply(kind, response, first)

    def close(self) -> None:
        self.session.close()


def _read_chunks(response: requests.Response) -> Iterator[bytes]:
    # read1 returns whatever has arrived (up to the size) instead of filling the buffer; that keeps
    # tokens flowing on bodies delimited by connection close, which iter_content would hold back.
    raw = response.raw
    try:
        while True:
            chunk = raw.read1(_READ_SIZE, decode_content=True)
            if not chunk:
                return
            yield chunk
    except requests.exceptions.RequestException as exc:
        raise TransportError(f"the connection failed mid-response: {_reason(exc)}") from exc
    except Exception as exc:  # urllib3 / socket errors surface raw from the stream
        if isinstance(exc, (TimeoutError,)) or "timed out" in str(exc).lower():
            raise TransportError(f"no data from the server for too long ({_reason(exc)})",
                                 type="timeout") from exc
        import urllib3.exceptions

        if isinstance(exc, (urllib3.exceptions.HTTPError, OSError)):
            raise TransportError(f"the connection failed mid-response: {_reason(exc)}") from exc
        raise


def error_from_response(response: requests.Response) -> APIError:
    """An APIError from an HTTP error response: Anthropic, OpenAI-shaped, plain text or HTML."""
    status = response.status_code
    try:
        body = response.content[:200_000]
    except Exception:  # the error body itself may fail to arrive
        body = b""
    request_id = _request_id(response)
    kind, message = _describe_error_body(body)
    if request_id is None:
        try:
            request_id = json.loads(body).get("request_id")
        except Exception:
            request_id = None
    kind = kind or _status_type(status)
    hint = ""
    if status in (401, 403):
        hint = " (check the API key and --auth-style)"
    elif status == 404:
        hint = " (check --base-url and the model name)"
    text = f"HTTP {status} {kind}: {message}{hint}"
    return APIError(text, type=kind, status=status, request_id=request_id)


def _describe_error_body(body: bytes) -> tuple[str | None, str]:
    text = body.decode("utf-8", errors="replace").strip()
    try:
        payload = json.loads(text)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict):  # Anthropic and OpenAI shapes alike
            kind = error.get("type") or error.get("code")
            return (str(kind) if kind else None), str(error.get("message") or kind or "no message")
        if isinstance(error, str):
            return None, error
        if "message" in payload:
            return None, str(payload["message"])
    title = re.search(r"<title[^>]*>(.*?)</title>", text, re.I | re.S)
    if title:
        return None, "HTML page: " + " ".join(title.group(1).split())
    if text.lstrip().startswith("<"):
        return None, "an HTML page"
    first_line = text.splitlines()[0] if text else "empty body"
    return None, _clip(first_line.encode())


_STATUS_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
                 403: "permission_error", 404: "not_found_error", 413: "request_too_large",
                 429: "rate_limit_error", 500: "api_error", 504: "timeout_error",
                 529: "overloaded_error"}


def _status_type(status: int) -> str:
    return _STATUS_TYPES.get(status, "api_error" if status >= 500 else "http_error")


def _request_id(response: requests.Response) -> str | None:
    return response.headers.get("request-id") or response.headers.get("x-request-id")


def redact_headers(headers: dict) -> dict:
    """Headers with credential values replaced, for anything shown to a person."""
    secret = {"x-api-key", "authorization", "proxy-authorization", "api-key", "cookie"}
    return {k: ("[redacted]" if k.lower() in secret else v) for k, v in headers.items()}


def _reason(exc: BaseException) -> str:
    # requests wraps urllib3 wraps socket errors; the innermost message is the useful one.
    inner = exc
    while True:
        nxt = getattr(inner, "reason", None) or (inner.args[0] if inner.args else None)
        if isinstance(nxt, BaseException) and nxt is not inner:
            inner = nxt
            continue
        break
    text = str(inner)
    match = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if match:
        return match.group(1).strip()
    text = re.sub(r"<[^>]+>: ", "", text)
    return _clip(text.encode(), 160)


def _clip(data: bytes, limit: int = 200) -> str:
    text = data.decode("utf-8", errors="replace").strip()
    return text if len(text) <= limit else text[:limit] + "…"
