"""HTTP for the Messages API: one requests.Session per run, auth headers, timeouts, response
sniffing (stream or JSON, whatever was asked) and turning error responses into APIError.

Only public APIs of requests, urllib3 and http.client are used. The body is read with urllib3's
`HTTPResponse.read_chunked()` when it is chunked (one piece per HTTP chunk, as the server flushed it)
and with `HTTPResponse.read1()` otherwise (whatever one socket read brought), so tokens flow as they
arrive in both cases; requests' `iter_content(chunk_size=None)` may wait for the end of a body that
is delimited by the connection closing (PROTOCOL.md §6). Every failure of those libraries becomes a
TransportError in one place, `Transport.failure`, by the types of the exceptions in its chain.
"""

from __future__ import annotations

import http.client
import itertools
import json
import re
import ssl
import sys
from typing import Iterator
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from .errors import APIError, ToolchatError, TransportError, status_type
from .text import clip, neutralise, one_line

_READ_SIZE = 65536  # at most this much per socket read of a body that is not chunked
_ERROR_BODY_LIMIT = 200_000  # bytes of an error body or an HTML page read to describe it
_SNIFF_LIMIT = 65536  # bytes read at most to see the first line of a body of an unexpected type


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


class Reply:
    """A successful response, sniffed: `kind` is 'sse' or 'json'. Its body is read once, in order:
    `first` (the bytes the sniffing read) and then the rest, as it arrives."""

    def __init__(
        self, kind: str, response: requests.Response, first: bytes, rest: Iterator[bytes], transport: "Transport"
    ):
        self.kind = kind
        self.response = response
        self.first = first
        self._rest = rest
        self._transport = transport

    def chunks(self) -> Iterator[bytes]:
        """The body's bytes as they arrive, without waiting for more than is there."""
        first, self.first = self.first, b""
        # itertools.chain, not a generator: one layer less for each of a stream's many pieces.
        return itertools.chain((first,) if first else (), self._rest)

    def json(self) -> object:
        body = b"".join(self.chunks())
        try:
            return json.loads(body.decode("utf-8-sig"))
        except (ValueError, RecursionError):
            raise self._transport.scrubbed(
                APIError(
                    f"the server sent a malformed JSON body: {self._transport.clean(body, 200)}",
                    type="malformed_response",
                    status=self.response.status_code,
                )
            ) from None

    def close(self) -> None:
        self.response.close()


class _Session(requests.Session):
    """requests.Session that also drops toolchat's credential headers when a redirect leaves the
    origin: requests itself drops only `Authorization`, and would send `x-api-key` to any host a
    server redirects to."""

    def rebuild_auth(self, prepared_request, response):
        if self.should_strip_auth(response.request.url, prepared_request.url):
            for name in SECRET_HEADERS:
                prepared_request.headers.pop(name, None)
        super().rebuild_auth(prepared_request, response)


class Transport:
    """Sends request bodies to one Messages endpoint over a reused session."""

    def __init__(
        self,
        url: str,
        headers: dict,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 600.0,
        debug: bool = False,
    ):
        self.url = url
        self.timeout = (connect_timeout, read_timeout)
        self.debug = debug
        self.session = _Session()
        self.session.headers.update(
            {
                "content-type": "application/json",
                "accept": "application/json, text/event-stream",
                "user-agent": "toolchat",
            }
        )
        self.session.headers.update(headers)  # the dialect's: auth and version (anthropic-version)
        parts = urlsplit(url)
        # Shown in messages: host and port only, never credentials written into the URL.
        self._host = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
        self._shown_url = url.replace(parts.netloc, parts.netloc.rpartition("@")[2], 1)
        self._secrets = secret_values(self.session.headers)
        if parts.password:
            self._secrets = sorted({*self._secrets, parts.password}, key=len, reverse=True)

    def send(self, body: dict, headers: dict | None = None) -> Reply:
        """POST the body (with this request's `headers` too); return the sniffed reply or raise
        APIError / TransportError. An anthropic-beta of the request joins the session's (--header).

        Error messages never carry a credential, even when a server echoes it back."""
        try:
            return self._send(body, self._request_headers(headers or {}))
        except ToolchatError as exc:
            raise self.scrubbed(exc)

    def get_json(self, url: str) -> object:
        """GET `url` (this transport's headers and timeouts) and return its JSON body; errors as
        for send()."""
        try:
            if self.debug:
                self._debug(f"GET {url}")
            try:
                response = self.session.get(url, timeout=self.timeout)
            except Exception as exc:
                error = self.failure(exc, mid_response=False)
                if error is None:
                    raise
                raise error from exc
            with response:
                if response.status_code >= 400:
                    raise error_from_response(response, self._redact(response.content[:_ERROR_BODY_LIMIT]))
                try:
                    return json.loads(response.content.decode("utf-8"))
                except (UnicodeDecodeError, ValueError):
                    raise APIError(
                        f"HTTP {response.status_code}: the answer is not JSON", type="malformed_response"
                    ) from None
        except ToolchatError as exc:
            raise self.scrubbed(exc)

    def scrubbed(self, error: ToolchatError) -> ToolchatError:
        """`error` without this transport's credentials in it (for errors met mid-stream)."""
        return scrub(error, self._secrets)

    def _request_headers(self, headers: dict) -> dict:
        merged = dict(headers)
        beta = next((v for k, v in merged.items() if k.lower() == "anthropic-beta"), None)
        mine = self.session.headers.get("anthropic-beta")
        if isinstance(mine, bytes):  # requests allows bytes header values
            mine = mine.decode("latin-1")
        if beta and mine:
            betas = [b.strip() for b in f"{mine},{beta}".split(",") if b.strip()]
            merged = {k: v for k, v in merged.items() if k.lower() != "anthropic-beta"}
            merged["anthropic-beta"] = ",".join(dict.fromkeys(betas))
        return merged

    def _send(self, body: dict, headers: dict | None = None) -> Reply:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        if self.debug:
            shown = {**self.session.headers, **(headers or {})}
            self._debug(f"POST {self._shown_url} headers={redact_headers(shown)} body={len(data)} bytes")
        try:
            response = self.session.post(
                self.url, data=data, stream=True, timeout=self.timeout, headers=headers or None
            )
        except Exception as exc:
            error = self.failure(exc, mid_response=False)
            if error is None:
                raise
            raise error from exc
        if self.debug:
            self._debug(
                f"HTTP {response.status_code} {response.headers.get('content-type', '')}"
                f" request-id={_request_id(response)}"
            )
        rest = self._body(response)
        if response.status_code >= 400:
            try:
                raise error_from_response(response, self._redact(_read_up_to(rest, _ERROR_BODY_LIMIT)))
            finally:
                response.close()
        return self._sniff(response, rest)

    def _debug(self, line: str) -> None:
        # Server-supplied values (content-type, request-id) are in it: scrubbed, and neutralised
        # for the terminal.
        print("debug: " + neutralise(_redacted(line, self._secrets)), file=sys.stderr)

    def _redact(self, body: bytes) -> bytes:
        """`body` with every credential replaced, before any of it is clipped into a message (a
        clipped credential would no longer be found)."""
        for value in self._secrets:
            body = body.replace(value.encode("utf-8", errors="replace"), b"[redacted]")
        return body

    def clean(self, text: str | bytes, limit: int) -> str:
        """Server- or socket-supplied text for a message: credentials out, one line, clipped."""
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        return one_line(_redacted(text, self._secrets), limit)

    def _body(self, response: requests.Response) -> Iterator[bytes]:
        """The body's bytes as they arrive: never more than one HTTP chunk (chunked bodies) or one
        socket read (any other) at a time, so nothing waits for bytes that have not come yet."""
        raw = response.raw
        try:
            if raw.chunked and raw.supports_chunked_reads():
                # One piece per chunk: http.client and urllib3 hand chunked bodies over no other way
                # without waiting (read1 stops at a chunk's end, read(n) waits for n bytes). The
                # socket is still read through http.client's buffer, 8 KiB or more per read.
                yield from raw.read_chunked(decode_content=True)
                return
            while True:
                piece = raw.read1(_READ_SIZE, decode_content=True)
                if not piece:
                    return
                yield piece
        except Exception as exc:
            error = self.failure(exc, mid_response=True, encoding=response.headers.get("content-encoding", ""))
            if error is None:
                raise
            error.__cause__, error.__suppress_context__ = exc, True  # as `from exc`, before scrub looks
            raise self.scrubbed(error)

    def _sniff(self, response: requests.Response, rest: Iterator[bytes]) -> Reply:
        # Decide on what came back, never on what was asked: gateways answer stream requests with
        # JSON, and some label a stream text/plain.
        ctype = response.headers.get("content-type", "")
        media = ctype.partition(";")[0].strip().lower()
        first = b""
        for piece in rest:
            first += piece
            if _lead(first):
                break
        lead = _lead(first)
        if lead == b"<":
            # A proxy or portal page with status 200 (login walls, challenge pages): not an answer.
            # Show its title, never the page.
            body = self._redact(first + _read_up_to(rest, _ERROR_BODY_LIMIT - len(first)))
            response.close()
            _, described = _describe_error_body(body)
            raise APIError(
                f"HTTP {response.status_code} malformed_response: expected a stream or a JSON message, got {described}",
                type="malformed_response",
                status=response.status_code,
                request_id=_request_id(response),
            )
        if "json" in media or lead in (b"{", b"["):
            return Reply("json", response, first, rest, self)
        if media != "text/event-stream":
            # Not labelled a stream: read it as one only if its first line is an SSE line.
            for piece in rest:
                first += piece
                if b"\n" in first.lstrip() or b"\r" in first.lstrip() or len(first) >= _SNIFF_LIMIT:
                    break
            line = _first_line(first)
            if not _SSE_LINE.match(line):
                response.close()
                shown = self.clean(media or "(none)", 80)
                got = self.clean(line, 160) if line else "an empty body"
                raise APIError(
                    f"HTTP {response.status_code} malformed_response: unexpected content-type "
                    f"{shown} from the server, not a stream or a JSON message: {got}",
                    type="malformed_response",
                    status=response.status_code,
                    request_id=_request_id(response),
                )
        return Reply("sse", response, first, rest, self)

    def failure(self, exc: BaseException, *, mid_response: bool, encoding: str = "") -> ToolchatError | None:
        """The one place a failure of requests, urllib3, http.client or the socket becomes a
        TransportError, decided by the types in its chain (requests wraps urllib3, which wraps the
        socket's error); None for an exception that is not a transport failure."""
        chain = _chain(exc)

        def find(*types):
            return next((e for e in chain if isinstance(e, types)), None)

        host, (connect_limit, read_limit) = self._host, self.timeout

        def reason() -> str:
            return _reason(chain, self.clean)

        if mid_response:
            if find(urllib3.exceptions.ReadTimeoutError, requests.exceptions.ReadTimeout, TimeoutError):
                return TransportError(f"no data from the server for {read_limit:g} s (--timeout)", type="timeout")
            if find(urllib3.exceptions.DecodeError, requests.exceptions.ContentDecodingError):
                return TransportError(
                    f"the server sent a body that cannot be decoded (content-encoding "
                    f"{self.clean(encoding or 'none', 40)})",
                    type="malformed_response",
                )
            tls = find(ssl.SSLError)
            if tls is not None:
                return TransportError(
                    f"the connection failed mid-response: TLS error: {self.clean(_tls_reason(tls), 160)}"
                )
            if find(urllib3.exceptions.InvalidChunkLength):
                return TransportError("the connection failed mid-response: the server sent a malformed chunked body")
            if find(
                urllib3.exceptions.HTTPError, requests.exceptions.RequestException, OSError, http.client.HTTPException
            ):
                return TransportError(f"the connection failed mid-response: {reason()}")
            return None
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return TransportError(
                f"timed out connecting to {host}: no connection within {connect_limit:g} s", type="timeout"
            )
        if isinstance(exc, requests.exceptions.ReadTimeout):  # connected, but no response in time
            return TransportError(f"no response from {host} within {read_limit:g} s", type="timeout")
        if isinstance(exc, requests.exceptions.SSLError):
            tls = find(ssl.SSLError)
            if isinstance(tls, ssl.SSLCertVerificationError):  # will not heal: not retried
                return TransportError(
                    f"could not connect to {host}: TLS certificate verification "
                    f"failed: {self.clean(_tls_reason(tls), 160)}",
                    type="tls_error",
                )
            return TransportError(
                f"could not connect to {host}: TLS error: {self.clean(_tls_reason(tls), 160) if tls else reason()}"
            )
        if isinstance(exc, requests.exceptions.ProxyError):
            return TransportError(f"could not connect to the proxy for {host}: {reason()}")
        if isinstance(exc, requests.exceptions.ConnectionError):
            if find(urllib3.exceptions.ProtocolError):  # connected, then dropped before the status line
                return TransportError(f"the connection to {host} failed before a response: {reason()}")
            return TransportError(f"could not connect to {host}: {reason()}")
        if isinstance(exc, requests.exceptions.TooManyRedirects):
            return TransportError(
                f"cannot send the request to {host}: more than {self.session.max_redirects} redirects",
                type="request_error",
            )
        if isinstance(
            exc,
            (
                requests.exceptions.InvalidURL,
                requests.exceptions.MissingSchema,
                requests.exceptions.InvalidSchema,
                requests.exceptions.URLRequired,
            ),
        ):
            return TransportError(
                f"cannot send the request: {self.clean(self._shown_url, 160)} is not a "
                "URL toolchat can send to (check --base-url)",
                type="request_error",
            )
        if isinstance(exc, (requests.exceptions.InvalidHeader, UnicodeEncodeError, ValueError)):
            # A header value http.client refuses. Its message quotes the value, which may be the
            # key: name the problem, never the value.
            return TransportError(
                f"cannot send the request to {host}: a header value has "
                "characters HTTP headers cannot carry; check the API key and "
                "--header values",
                type="request_error",
            )
        if isinstance(exc, requests.exceptions.RequestException):  # a request that cannot be made
            return TransportError(f"cannot send the request to {host}: {reason()}", type="request_error")
        return None

    def close(self) -> None:
        self.session.close()


def _chain(exc: BaseException | None) -> list[BaseException]:
    """`exc` and the exceptions it was raised from or while handling, outermost first."""
    chain: list[BaseException] = []
    while exc is not None and all(exc is not seen for seen in chain):
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    return chain


def _reason(chain: list[BaseException], clean) -> str:
    """A few words for a transport failure: the socket's own words where the chain has them,
    through `clean` (credentials out, one line, clipped)."""
    for error in chain:
        if isinstance(error, requests.exceptions.RequestException):
            continue  # requests' exceptions are OSErrors too, but only wrap the one that counts
        if isinstance(error, http.client.IncompleteRead):
            return "the server closed it before the end of the response"
        if isinstance(error, OSError) and error.strerror:
            return clean(error.strerror, 160)
        if isinstance(error, (OSError, http.client.HTTPException)) and str(error):
            return clean(str(error), 160)  # http.client's RemoteDisconnected and the like
    inner = chain[-1]
    if isinstance(inner, urllib3.exceptions.ProtocolError) or (
        isinstance(inner, ValueError) and any(isinstance(e, urllib3.exceptions.ProtocolError) for e in chain)
    ):
        # urllib3's "Response ended prematurely": the connection closed where a chunk should start.
        return "the server closed it before the end of the response"
    # urllib3 prefixes its messages with the pool or connection, which names the host again.
    text = re.sub(r"^\w*(?:ConnectionPool|Connection)\([^)]*\): ", "", str(inner))
    return clean(text or type(inner).__name__, 160)


def _tls_reason(error: ssl.SSLError) -> str:
    detail = getattr(error, "verify_message", None) or getattr(error, "reason", None) or error.strerror
    return str(detail or error)


def _read_up_to(pieces: Iterator[bytes], limit: int) -> bytes:
    """At most about `limit` bytes of the rest of a body (a failing read ends it quietly: it is
    only wanted to describe an error)."""
    body = b""
    try:
        for piece in pieces:
            body += piece
            if len(body) >= limit:
                break
    except ToolchatError:
        pass
    return body


def _lead(data: bytes) -> bytes:
    """The first byte that is not whitespace or a UTF-8 byte order mark; b"" until one has arrived."""
    data = data.lstrip()
    if len(data) < 3 and b"\xef\xbb\xbf".startswith(data):
        return b""  # nothing yet, or part of a byte order mark
    return data.removeprefix(b"\xef\xbb\xbf").lstrip()[:1]


# The first line of an SSE stream: a comment, or one of the four fields (a field name alone, with no
# colon, is a field too).
_SSE_LINE = re.compile(rb"(?::|(?:event|data|id|retry)(?::|$))")


def _first_line(data: bytes) -> bytes:
    text = data.lstrip().removeprefix(b"\xef\xbb\xbf").lstrip(b"\r\n")
    return re.split(rb"\r\n|\r|\n", text, maxsplit=1)[0]


def error_from_response(response: requests.Response, body: bytes) -> APIError:
    """An APIError from an HTTP error response: Anthropic, OpenAI-shaped, SSE-framed, plain text or
    HTML."""
    status = response.status_code
    payload = _error_payload(body)
    kind, message = _describe_error_body(body, payload)
    request_id = _request_id(response)
    if request_id is None and isinstance(payload, dict) and isinstance(payload.get("request_id"), str):
        request_id = payload["request_id"]
    kind = kind or status_type(status, "http_error")
    hint = ""
    if status in (401, 403):
        hint = " (check the API key and --auth-style)"
    elif status == 404:
        hint = " (check --base-url and the model name)"
    if "\n" in message or "\r" in message:
        message = " ".join(message.split())
    text = f"HTTP {status} {kind}: {message}{hint}"
    from .dialects.openai import typed_error

    # The message keeps the server's words; the type is the Messages API's name for the same error
    # (OpenAI's server_error, invalid_api_key, rate_limit_exceeded...), for retries and --json.
    error = APIError(text, type=typed_error(kind, _error_code(payload)), status=status, request_id=request_id)
    from . import retry

    error.retry_after = retry.server_delay(response.headers)
    if error.retry_after is None and status == 429:
        error.retry_after = retry.ratelimit_delay(response.headers)
    error.should_retry = retry.should_retry_header(response.headers)
    error.error_code = _error_code(payload)
    return error


def _error_payload(body: bytes) -> object:
    """The JSON of an error body: the body itself, or the data of its first SSE event that has data
    (gateways relay an upstream's `event: error` / `data: {...}` as the body of an HTTP error)."""
    text = body.decode("utf-8", errors="replace").strip().removeprefix("\ufeff")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        pass
    if not _SSE_LINE.match(_first_line(body)):
        return None
    from .sse import SSEDecoder

    decoder = SSEDecoder()
    for event in [*decoder.feed(body), *decoder.flush()]:
        if event.data:
            try:
                return json.loads(event.data)
            except (ValueError, RecursionError):
                return {"error": event.data}  # the data is the message
    return None


def _error_code(payload: object) -> str | None:
    """`error.details.error_code` (Anthropic) or `error.code` (OpenAI-shaped gateways)."""
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        return None
    details = error.get("details")
    code = details.get("error_code") if isinstance(details, dict) else None
    code = code or error.get("code")
    return str(code) if isinstance(code, (str, int)) and code != "" else None


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


def _redacted(text: str, secrets: list[str]) -> str:
    for value in secrets:
        text = text.replace(value, "[redacted]")
    return text


def scrub(error: ToolchatError, secrets: list[str]) -> ToolchatError:
    """`error` with every secret replaced in what it carries from the server (its message, type,
    request id and error code); a cause that shows one is dropped."""
    if not secrets:
        return error
    message = _redacted(error.message, secrets)
    if message != error.message:
        error.message = message
        error.args = (message,)
    for name in ("type", "request_id", "error_code"):
        value = getattr(error, name, None)
        if isinstance(value, str) and any(secret in value for secret in secrets):
            setattr(error, name, _redacted(value, secrets))
    cause, leaks = error.__cause__ or error.__context__, False
    while cause is not None and not leaks:
        leaks = any(value in str(cause) or value in repr(cause.args) for value in secrets)
        cause = cause.__cause__ or cause.__context__
    if leaks:  # --debug prints the chain: keep the credential out of the traceback too
        error.__cause__ = None
        error.__suppress_context__ = True
    return error


def _describe_error_body(body: bytes, payload: object = None) -> tuple[str | None, str]:
    if payload is None:
        payload = _error_payload(body)
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict):  # Anthropic and OpenAI shapes alike
            kind = error.get("type") or error.get("code")
            return (str(kind) if kind else None), str(error.get("message") or kind or "no message")
        if isinstance(error, str):
            return None, error
        if "message" in payload:
            return None, str(payload["message"])
    text = body.decode("utf-8", errors="replace").strip()
    title = re.search(r"<title[^>]*>(.*?)</title>", text, re.I | re.S)
    if title:
        return None, "HTML page: " + " ".join(title.group(1).split())
    if text.lstrip().startswith("<"):
        return None, "an HTML page"
    first_line = text.splitlines()[0] if text else "empty body"
    return None, _clip_bytes(first_line.encode())


def _request_id(response: requests.Response) -> str | None:
    return response.headers.get("request-id") or response.headers.get("x-request-id")


def redact_headers(headers: dict) -> dict:
    """Headers with credential values replaced, for anything shown to a person."""
    return {k: ("[redacted]" if k.lower() in SECRET_HEADERS else v) for k, v in headers.items()}


def _clip_bytes(data: bytes, limit: int = 200) -> str:
    return clip(data.decode("utf-8", errors="replace").strip(), limit)
