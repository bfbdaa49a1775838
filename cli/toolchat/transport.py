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

from .errors import APIError, ToolchatError, TransportError

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
            return json.loads(body.decode("utf-8-sig"))
        except (ValueError, RecursionError):
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
        parts = urlsplit(url)
        # Shown in messages: host and port only, never credentials written into the URL.
        self._host = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
        self._shown_url = url.replace(parts.netloc, parts.netloc.rpartition("@")[2], 1)
        self._secrets = secret_values(self.session.headers)
        if parts.password:
            self._secrets = sorted({*self._secrets, parts.password}, key=len, reverse=True)

    def send(self, body: dict) -> Reply:
        """POST the body; return the sniffed reply or raise APIError / TransportError.

        Error messages never carry a credential, even when a server echoes it back."""
        try:
            return self._send(body)
        except ToolchatError as exc:
            raise scrub(exc, self._secrets)

    def scrubbed(self, error: ToolchatError) -> ToolchatError:
        """`error` without this transport's credentials in it (for errors met mid-stream)."""
        return scrub(error, self._secrets)

    def _send(self, body: dict) -> Reply:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        if self.debug:
            shown = {k: v for k, v in self.session.headers.items()}
            print(f"debug: POST {self._shown_url} headers={redact_headers(shown)} body={len(data)} bytes",
                  file=sys.stderr)
        try:
            response = self.session.post(self.url, data=data, stream=True, timeout=self.timeout)
        except requests.exceptions.ConnectTimeout as exc:
            raise TransportError(f"timed out connecting to {self._host} ({_reason(exc, self._secrets)})",
                                 type="timeout") from exc
        except requests.exceptions.Timeout as exc:  # connected, but no response in time
            raise TransportError(f"no response from {self._host} within {self.timeout[1]:g} s",
                                 type="timeout") from exc
        except requests.exceptions.ConnectionError as exc:
            if _aborted(exc):  # connected, then dropped before the status line
                raise TransportError(f"the connection to {self._host} failed before a response: "
                                     f"{_reason(exc, self._secrets)}") from exc
            raise TransportError(f"could not connect to {self._host}: {_reason(exc, self._secrets)}") from exc
        except (requests.exceptions.InvalidHeader, UnicodeEncodeError, ValueError) as exc:
            # A header value http.client refuses. Its message quotes the value, which may be the
            # key: name the problem, never the value.
            raise TransportError(f"cannot send the request to {self._host}: a header value has "
                                 "characters HTTP headers cannot carry; check the API key and "
                                 "--header values", type="request_error") from exc
        except requests.exceptions.RequestException as exc:  # a request that cannot be made
            raise TransportError(f"cannot send the request to {self._host}: "
                                 f"{_reason(exc, self._secrets)}", type="request_error") from exc
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
            if _lead(first):
                break
        lead = _lead(first)
        if lead == b"<":
            # A proxy or portal page with status 200 (login walls, challenge pages): not an answer.
            # Show its title, never the page.
            body = first
            for chunk in chunks:
                body += chunk
                if len(body) >= 200_000:
                    break
            response.close()
            _, described = _describe_error_body(body)
            raise APIError(f"HTTP {response.status_code} malformed_response: expected a stream or a "
                           f"JSON message, got {described}",
                           type="malformed_response", status=response.status_code,
                           request_id=_request_id(response))
        if "json" in ctype or lead in (b"{", b"["):
            kind = "json"
        else:
            kind = "sse"
        return Reply(kind, response, first)

    def close(self) -> None:
        self.session.close()


def _lead(data: bytes) -> bytes:
    """The first byte that is not whitespace or a UTF-8 byte order mark; b"" until one has arrived."""
    data = data.lstrip()
    if len(data) < 3 and b"\xef\xbb\xbf".startswith(data):
        return b""  # nothing yet, or part of a byte order mark
    return data.removeprefix(b"\xef\xbb\xbf").lstrip()[:1]


def _read_chunks(response: requests.Response) -> Iterator[bytes]:
    # read1 returns whatever has arrived (up to the size) instead of filling the buffer; that keeps
    # tokens flowing on bodies delimited by connection close, which iter_content would hold back.
    raw = response.raw
    try:
        body = _chunked_body(response)
        if body is not None:
            while True:
                data = body.read()
                if not data:
                    return
                yield data
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


def _chunked_body(response: requests.Response) -> "_ChunkedBody | None":
    """The fast reader of a chunked, unencoded body (kept on the response), or None for any other.

    urllib3's read1 hands over one HTTP chunk per call through several layers; a stream sends one
    chunk per SSE event, so that was most of the client's time per token (see benchmarks/).
    """
    body = response.__dict__.get("_toolchat_chunked")
    if body is not None:
        return body  # it holds bytes read past http.client's state: every later read goes through it
    import http.client

    raw = response.raw
    inner = getattr(raw, "_fp", None)
    catcher = getattr(raw, "_error_catcher", None)
    if (catcher is None or type(inner) is not http.client.HTTPResponse or not inner.chunked
            or inner.fp is None or len(getattr(raw, "_decoded_buffer", b"")) > 0
            or raw.headers.get("content-encoding", "").strip().lower() not in ("", "identity")):
        return None
    body = response.__dict__["_toolchat_chunked"] = _ChunkedBody(inner, catcher)
    return body


class _ChunkedBody:
    """Reads whatever the socket has and takes every whole chunk in it at once.

    It parses exactly as http.client does and raises what http.client raises, inside urllib3's own
    error mapping, so errors read the same as on urllib3's path. At the end it closes http.client's
    response as http.client would, which puts the connection back in the session's pool.
    """

    _LIMIT = 65536  # http.client's _MAXLINE

    def __init__(self, inner, catcher):
        self._inner = inner
        self._catcher = catcher
        self._read1 = inner.fp.read1
        # http.client's state: chunk_left None = a size line is next; 0 = a chunk's CRLF, then a
        # size line; n = n more bytes of chunk data, then its CRLF.
        self._left = inner.chunk_left or 0
        self._crlf = inner.chunk_left is not None
        self._buffer = b""
        self._done = False
        self._failed = False

    def read(self) -> bytes:
        """The data of the chunks that have arrived (waiting for one read at most); b"" at the end."""
        import http.client

        while not self._done:
            with self._catcher():
                if self._failed:
                    raise http.client.IncompleteRead(b"")
                self._failed = True  # until this read ends well
                data = self._step()
                self._failed = False
            if data:
                return data
        return b""

    def _step(self) -> bytes:
        import http.client

        data = self._read1(_READ_SIZE)
        buffer = self._buffer + data if self._buffer else data
        left, crlf, limit = self._left, self._crlf, self._LIMIT
        pos, end = 0, len(buffer)
        pieces = []
        while True:
            if left:
                take = min(left, end - pos)
                if not take:
                    break
                pieces.append(buffer[pos:pos + take])
                pos += take
                left -= take
                if left:
                    break
            if crlf:
                if end - pos < 2:
                    break
                pos += 2  # http.client skips these two bytes unread
                crlf = False
            newline = buffer.find(b"\n", pos)
            if newline < 0 and data:
                if end - pos > limit:
                    raise http.client.LineTooLong("chunk size")
                break
            line = buffer[pos:newline + 1] if newline >= 0 else buffer[pos:]
            if len(line) > limit:
                raise http.client.LineTooLong("chunk size")
            pos = end if newline < 0 else newline + 1
            semicolon = line.find(b";")
            if semicolon >= 0:
                line = line[:semicolon]  # chunk extensions
            try:
                size = int(line, 16)
            except ValueError:
                raise http.client.IncompleteRead(b"") from None
            if size < 0:
                raise http.client.IncompleteRead(b"")
            if size == 0:
                self._discard_trailer(buffer, pos)
                self._done = True
                break
            left, crlf = size, True
        self._buffer, self._left, self._crlf = buffer[pos:], left, crlf
        if not data and not self._done:  # the connection closed before the last chunk
            if crlf and not left:
                raise http.client.IncompleteRead(self._buffer, 2 - len(self._buffer))
            raise http.client.IncompleteRead(b"")
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def _discard_trailer(self, buffer: bytes, pos: int) -> None:
        """Skip the trailer section after the last chunk, then close as http.client does."""
        import http.client

        while True:
            newline = buffer.find(b"\n", pos)
            if newline < 0:
                if len(buffer) - pos > self._LIMIT:
                    raise http.client.LineTooLong("trailer line")
                more = self._read1(_READ_SIZE)
                if not more:
                    break  # some servers end without the final CRLF
                buffer, pos = buffer[pos:] + more, 0
                continue
            line = buffer[pos:newline + 1]
            pos = newline + 1
            if len(line) > self._LIMIT:
                raise http.client.LineTooLong("trailer line")
            if line in (b"\r\n", b"\n"):
                break
        self._inner.chunk_left = None
        self._inner._close_conn()  # urllib3 then returns the connection to the pool


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
    if "\n" in message or "\r" in message:
        message = " ".join(message.split())
    text = f"HTTP {status} {kind}: {message}{hint}"
    error = APIError(text, type=kind, status=status, request_id=request_id)
    from . import retry

    error.retry_after = retry.server_delay(response.headers)
    error.should_retry = retry.should_retry_header(response.headers)
    error.error_code = _error_code(body)
    return error


def _error_code(body: bytes) -> str | None:
    """`error.details.error_code` (Anthropic) or `error.code` (OpenAI-shaped gateways)."""
    try:
        error = json.loads(body.decode("utf-8", errors="replace")).get("error")
    except Exception:
        return None
    if not isinstance(error, dict):
        return None
    details = error.get("details")
    code = details.get("error_code") if isinstance(details, dict) else None
    code = code or error.get("code")
    return str(code) if isinstance(code, (str, int)) and code != "" else None


def _aborted(exc: BaseException) -> bool:
    """A ConnectionError raised after the connection was made (reset or closed before a response)."""
    import urllib3.exceptions

    inner = exc.args[0] if exc.args else None
    return isinstance(inner, urllib3.exceptions.ProtocolError)


# Headers whose values are credentials: never shown, and scrubbed from every message.
SECRET_HEADERS = frozenset({"x-api-key", "authorization", "proxy-authorization", "api-key", "cookie"})


def secret_values(headers) -> list[str]:
    """The credential values in `headers` (and the token of a `Bearer` one), longest first."""
    found: set[str] = set()
    for name, value in headers.items():
        if str(name).lower() not in SECRET_HEADERS or not isinstance(value, str):
            continue
        scheme, _, token = value.strip().partition(" ")
        for secret_value in (value.strip(), token.strip() if scheme.lower() in ("bearer", "basic", "token") else ""):
            # Also as Python shows it (a key with a stray newline appears escaped in messages),
            # and line by line.
            found.update((secret_value, repr(secret_value)[1:-1], *secret_value.splitlines()))
    # Very short values would blank out ordinary words; real credentials are long.
    return sorted((v for v in found if len(v) >= 8), key=len, reverse=True)


def scrub(error: ToolchatError, secrets: list[str]) -> ToolchatError:
    """`error` with every secret replaced in its message; a cause that shows one is dropped."""
    if not secrets:
        return error
    message = error.message
    for value in secrets:
        message = message.replace(value, "[redacted]")
    if message != error.message:
        error.message = message
        error.args = (message,)
    cause, leaks = error.__cause__ or error.__context__, False
    while cause is not None and not leaks:
        leaks = any(value in str(cause) or value in repr(cause.args) for value in secrets)
        cause = cause.__cause__ or cause.__context__
    if leaks:  # --debug prints the chain: keep the credential out of the traceback too
        error.__cause__ = None
        error.__suppress_context__ = True
    return error


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
    return {k: ("[redacted]" if k.lower() in SECRET_HEADERS else v) for k, v in headers.items()}


def _reason(exc: BaseException, secrets: list[str] = ()) -> str:
    # requests wraps urllib3 wraps socket errors; the innermost message is the useful one.
    inner = exc
    while True:
        nxt = getattr(inner, "reason", None) or next(
            (arg for arg in inner.args if isinstance(arg, BaseException)), None)
        if isinstance(nxt, BaseException) and nxt is not inner:
            inner = nxt
            continue
        break
    if type(inner).__name__ == "IncompleteRead":  # http.client's, for a body cut short
        return "the server closed it before the end of the response"
    text = str(inner)
    match = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if match:
        return match.group(1).strip()
    text = re.sub(r"<[^>]+>: ", "", text)
    text = re.sub(r"^\w*ConnectionPool\([^)]*\): ", "", text)  # urllib3's prefix names the host again
    for value in secrets:  # before clipping: a clipped secret would no longer be found
        text = text.replace(value, "[redacted]")
    return _clip(text.encode(), 160)


def _clip(data: bytes, limit: int = 200) -> str:
    text = data.decode("utf-8", errors="replace").strip()
    return text if len(text) <= limit else text[:limit] + "…"
