"""A local Anthropic Messages API look-alike for tests and offline demos.

Speaks `POST /v1/messages` with the real API's strictness (auth, headers, body schema, tool
pairing, thinking signatures) and answers from a script or an echo model; see model.py.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import itertools
import json
import socket
import struct
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .model import (
    Reply,
    apply_fault,
    build_reply,
    choose_turn,
    error_for,
    fault_for,
    input_tokens,
    load_script,
    stream_events,
)
from .validate import ApiError, check_auth, check_version, invalid, parse_body, validate_body
from . import weather
from .cache import DEFAULT_MIN_TOKENS, PromptCache, check_breakpoints

DEMO_SCRIPT = Path(__file__).with_name("demo.yaml")
MAX_BODY = 32 * 1024 * 1024  # the real API's request size limit
SSE_TYPE = "text/event-stream; charset=utf-8"
IDLE_TIMEOUT = 60.0  # seconds a connection may wait for its next request (or a read/write may stall)


@dataclass
class RecordedRequest:
    """One request as received: lower-cased header names, parsed JSON object body (or None)."""

    method: str
    path: str
    headers: dict
    body: Any
    raw: bytes


class _Dropped(Exception):
    """A fault ended the connection on purpose; nothing more is written."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked responses need 1.1
    server_version = "toolchat-mock"

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base class signature
        pass

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002 - base class signature
        """One line: an idle connection closed, or a malformed request refused (never a traceback)."""
        mock: MockServer = self.server.mock  # type: ignore[attr-defined]
        if args and isinstance(args[0], TimeoutError):
            mock._log(f"closed the connection from {_peer(self.client_address)}: idle for {mock.idle_timeout:g} s")
        else:
            mock._log(f"{_peer(self.client_address)}: {format % args}")

    def setup(self) -> None:
        # An idle client (or one that stops reading) cannot hold its thread for ever.
        self.timeout = self.server.mock.idle_timeout  # type: ignore[attr-defined,misc]
        super().setup()
        # Each SSE event must leave as its own segment so clients can prove incremental reads.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = lambda self: self._handle()  # noqa: E731

    # ------------------------------------------------------------ request side

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline(65537).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline(65537)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True  # the body stays unread, so the connection is unusable
            raise ApiError(413, "request_too_large", "Request exceeds the maximum allowed number of bytes.")
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        mock: MockServer = self.server.mock  # type: ignore[attr-defined]
        self._request_id = "req_mock_" + uuid.uuid4().hex[:24]
        self._sent_headers = False
        self._rate_headers: dict = {}  # the rate limit's headers for this answer (rate_limit=...)
        headers = {k.lower(): v for k, v in self.headers.items()}
        raw = b""
        try:
            try:
                raw = self._read_body()
            except ValueError:
                self.close_connection = True
                raise invalid("invalid request framing") from None
            finally:
                mock._record(self.command, self.path, headers, raw)
            path = urlsplit(self.path).path
            if path in weather.PATHS and self.command in ("GET", "HEAD"):
                status, found = weather.answer(path, parse_qs(urlsplit(self.path).query))
                self._send_json(status, found)
                return
            if path == "/v1/chat/completions":
                from . import openai

                openai.handle(self, mock, headers, raw)  # OpenAI's dialect, its own errors (openai.py)
                return
            if path == "/v1/messages/batches" or path.startswith("/v1/messages/batches/"):
                check_auth(headers, mock.api_key)
                check_version(headers)
                self._send_batches(mock, path, raw)
                return
            if path in ("/v1/models", "/v1/messages/count_tokens"):
                from .catalog import answer

                self._send_json(
                    200, answer(path, self.command, parse_qs(urlsplit(self.path).query), headers, raw, mock.api_key)
                )
                return
            if path != "/v1/messages":
                raise ApiError(404, "not_found_error", "Not Found")
            if self.command != "POST":
                raise ApiError(
                    405, "invalid_request_error", f"Method {self.command} not allowed", headers={"Allow": "POST"}
                )
            check_auth(headers, mock.api_key)
            check_version(headers)
            body = parse_body(raw)
            validate_body(body, headers, reject=(mock.script or {}).get("reject_fields") or ())
            check_breakpoints(body)
            if mock.rate_limit is not None:
                admitted, self._rate_headers = mock.rate_limit.admit(input_tokens(body))
                if not admitted:
                    raise ApiError(
                        429,
                        "rate_limit_error",
                        "mock: rate limit exceeded (requests or tokens per minute)",
                        headers=self._rate_headers,
                    )
            # A retry sends the same bytes, so it meets the turn's next fault.
            turn = choose_turn(mock.script, body)
            # Only turns with faults count attempts, so a long-running server does not grow.
            fault = fault_for(turn, mock._attempt(raw)) if turn.get("faults") else None
            if fault and "error" in fault:
                if fault.get("at", "headers") == "headers":
                    time.sleep(float(fault.get("stall") or 0))  # a slow error answer
                err = error_for(fault["error"])
                err.headers.update({str(k): str(v) for k, v in (fault.get("headers") or {}).items()})
                raise err
            reply = build_reply(mock.script, body, mock._next_number(), cache=mock.cache)
            with mock._lock:
                mock.billed.append(dict(reply.message.get("usage") or {}))
            if mock.rate_limit is not None:
                spent = (reply.message.get("usage") or {}).get("output_tokens") or 0
                self._rate_headers = mock.rate_limit.spend(int(spent))
            self._send_reply(reply, bool(body.get("stream")), fault)
        except _Dropped:
            self.close_connection = True
        except ApiError as e:
            if not self._sent_headers:
                self._send_error(e)
            else:
                self.close_connection = True
        except (ConnectionError, TimeoutError) as exc:
            self.close_connection = True  # the client went away (or stalled) mid-answer
            mock._log(f"client {_peer(self.client_address)} disconnected: {_reason(exc)}")
        except Exception as e:  # a mock bug must still answer like an API, not hang the client
            if not self._sent_headers:
                self._send_error(ApiError(500, "api_error", f"mock internal error: {type(e).__name__}: {e}"))
            self.close_connection = True

    # ------------------------------------------------------------ response side

    def _send_batches(self, mock: "MockServer", path: str, raw: bytes) -> None:
        status, answer, kind = mock.batches.handle(self.command, path, parse_qs(urlsplit(self.path).query), raw)
        if kind == "json":
            self._send_json(status, answer)
            return
        self._begin(status, "application/x-jsonl", None, {"Content-Length": str(len(answer))})
        self.wfile.write(answer)

    def _send_error(self, e: ApiError) -> None:
        body = {
            "type": "error",
            "error": {"type": e.type, "message": e.message, **e.extra},
            "request_id": self._request_id,
        }
        self._send_json(e.status, body, e.headers)

    def _send_json(self, status: int, obj: dict, headers: dict | None = None) -> None:
        data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        self._begin(status, "application/json", headers, {"Content-Length": str(len(data))})
        if self.command != "HEAD":
            self.wfile.write(data)

    def _begin(self, status: int, content_type: str, headers: dict | None, framing: dict) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("request-id", self._request_id)
        for k, v in {**self._rate_headers, **(headers or {}), **framing}.items():
            self.send_header(str(k), str(v))
        self.end_headers()
        self._sent_headers = True

    def _send_reply(self, reply: Reply, stream: bool, fault: dict | None = None) -> None:
        turn = reply.turn
        extra = {str(k): str(v) for k, v in (turn.get("headers") or {}).items()}
        delay = float(turn.get("delay") or 0)
        framing = turn.get("framing") or "chunked"
        if "raw" in turn:
            raw = turn["raw"].encode("utf-8") if isinstance(turn["raw"], str) else bytes(turn["raw"])
            self._send_body(
                int(turn.get("status") or 200),
                turn.get("content_type") or "text/event-stream",
                _split(raw, turn.get("chunks")),
                framing,
                delay,
                extra,
                abort=False,
                fault=fault,
            )
        elif stream:
            self._send_body(
                200,
                SSE_TYPE,
                stream_events(reply),
                framing,
                delay,
                {"Cache-Control": "no-cache", **extra},
                abort=turn.get("truncate") == "abort",
                fault=fault,
            )
        elif turn.get("stream_error"):
            # Without a stream there is no "after 200" moment: the failure is a plain HTTP error.
            raise error_for(turn["stream_error"])
        elif fault:
            data = json.dumps(reply.message, ensure_ascii=False).encode("utf-8")
            self._send_body(200, "application/json", [data], "length", delay, extra, abort=False, fault=fault)
        else:
            time.sleep(delay)
            data = json.dumps(reply.message, ensure_ascii=False).encode("utf-8")
            if turn.get("truncate"):
                # A JSON body cut in half: the declared length is never delivered.
                self._begin(200, "application/json", extra, {"Content-Length": str(len(data))})
                self.wfile.write(data[: len(data) // 2])
                self.close_connection = True
            else:
                self._begin(200, "application/json", extra, {"Content-Length": str(len(data))})
                self.wfile.write(data)

    def _send_body(
        self,
        status: int,
        content_type: str,
        pieces: list[bytes],
        framing: str,
        delay: float,
        headers: dict,
        abort: bool,
        fault: dict | None = None,
    ) -> None:
        """Write pieces one by one with the chosen framing, pausing `delay` between them; a fault
        may stall, cut or reset the connection at a chosen piece or byte (see model.check_fault)."""
        if fault:
            self._send_faulty(status, content_type, apply_fault(pieces, fault), framing, delay, headers, fault)
            return
        # abort: promise one byte more than is sent so the client sees a short body.
        frame = self._frame(framing, sum(map(len, pieces)) + (1 if abort else 0))
        self._begin(status, content_type, headers, frame)
        if self.command == "HEAD":
            return
        first = True
        for piece in pieces:
            if not piece:
                continue  # an empty chunk would end a chunked body early
            if not first and delay:
                time.sleep(delay)
            first = False
            self.wfile.write(b"%X\r\n%s\r\n" % (len(piece), piece) if framing == "chunked" else piece)
            self.wfile.flush()
        if abort:
            self.close_connection = True  # no terminating chunk: the stream just drops
        elif framing == "chunked":
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    def _frame(self, framing: str, length: int) -> dict:
        """The header that delimits the body: chunked, a Content-Length, or connection close."""
        if framing == "chunked":
            return {"Transfer-Encoding": "chunked"}
        if framing == "length":
            return {"Content-Length": str(length)}
        self.close_connection = True
        return {"Connection": "close"}

    def _send_faulty(
        self,
        status: int,
        content_type: str,
        pieces: list[bytes],
        framing: str,
        delay: float,
        headers: dict,
        fault: dict,
    ) -> None:
        pieces = [p for p in pieces if p]  # an empty chunk would end a chunked body early

        def offset(position: Any) -> int:
            if position == "headers":
                return -1
            if isinstance(position, dict):
                return position["bytes"]
            return sum(map(len, pieces[:position]))

        cut_kind = "reset" if "reset" in fault else "close" if "close" in fault else None
        cut = offset(fault[cut_kind]) if cut_kind else None
        stall_at = offset(fault.get("at", "headers")) if "stall" in fault else None
        stalled = False

        def reached(where: int) -> None:
            nonlocal stalled
            if stall_at == where and not stalled:
                stalled = True
                time.sleep(float(fault["stall"]))
            if cut == where:
                self._drop(cut_kind)

        reached(-1)
        self._begin(status, content_type, headers, self._frame(framing, sum(map(len, pieces))))
        if self.command == "HEAD":
            return
        pos = 0
        for number, piece in enumerate(pieces):
            if number and delay:
                time.sleep(delay)
            end, cur = pos + len(piece), pos
            while cur < end:
                reached(cur)
                stops = [o for o in (cut, stall_at) if o is not None and cur < o < end]
                nxt = min(stops, default=end)
                part = piece[cur - pos : nxt - pos]
                self.wfile.write(b"%X\r\n%s\r\n" % (len(part), part) if framing == "chunked" else part)
                self.wfile.flush()
                cur = nxt
            pos = end
        reached(pos)
        if cut is not None and cut > pos:
            self._drop(cut_kind)  # a cut past the end still drops before the body is finished
        if framing == "chunked":
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    def _drop(self, kind: str | None) -> None:
        """End the connection now: `reset` sends a TCP RST, `close` a plain FIN."""
        self.close_connection = True
        try:
            if kind == "reset":
                # Linger 0: closing discards the send buffer and answers with RST.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
            self.connection.close()
        except OSError:
            pass
        raise _Dropped()


def _split(data: bytes, chunks: Any) -> list[bytes]:
    if chunks == "bytes":
        return [data[i : i + 1] for i in range(len(data))]
    pieces, pos = [], 0
    for size in chunks or []:
        if pos >= len(data):
            break
        pieces.append(data[pos : pos + size])
        pos += size
    if pos < len(data):
        pieces.append(data[pos:])
    return pieces


def _peer(address: Any) -> str:
    try:
        host, port = address[0], address[1]
    except (TypeError, IndexError):
        return str(address)
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    reasons: dict[type[BaseException], str] = {
        BrokenPipeError: "broken pipe",
        ConnectionResetError: "connection reset",
        ConnectionAbortedError: "connection aborted",
    }
    return reasons.get(type(exc), type(exc).__name__)


def is_loopback(host: str) -> bool:
    """Whether `host` (an address or a name) only ever means this machine."""
    if host in ("", "0.0.0.0", "::"):
        return False
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple, mock: "MockServer"):
        self.mock = mock
        self.open_sockets: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(addr, _Handler)

    def process_request(self, request, client_address):
        with self._open_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._open_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address) -> None:
        """A client that disconnects is one line; anything else is a mock bug, shown in full."""
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            self.mock._log(f"client {_peer(client_address)} disconnected: {_reason(error)}")
        else:
            super().handle_error(request, client_address)


class _HTTPServer6(_HTTPServer):
    address_family = socket.AF_INET6


class MockServer:
    """Anthropic-compatible mock server running in a background thread.

    script: None (echo model), a path to a YAML script, or a script dict (see model.py).
    api_key: when set, only this x-api-key / Bearer value is accepted.
    idle_timeout: seconds before an idle connection is closed.
    log: where one-line notes go (client disconnects, idle connections, a public address);
    None writes them to stderr, False drops them.
    cache_min_tokens: the prompt cache's minimum cacheable prefix, in the mock's tokens (words);
    `.cache` is the PromptCache (its `clock` may be replaced to test lifetimes); `.billed` the
    usage it answered each Messages request with.
    It also answers GET /v1/search and /v1/forecast as Open-Meteo would (see weather.py).
    rate_limit: {"requests": N, "input_tokens": N, "output_tokens": N per minute, "burst": N}
    (any subset) enforces a limit on /v1/messages with the real headers and 429 (ratelimit.py).
    batch_delay, batch_outcomes: how the Message Batches endpoints process (batches.py).
    """

    def __init__(
        self,
        script: Any = None,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        idle_timeout: float = IDLE_TIMEOUT,
        log: Any = None,
        rate_limit: dict | None = None,
        batch_delay: float = 0.0,
        batch_outcomes: dict | None = None,
        cache_min_tokens: int = DEFAULT_MIN_TOKENS,
    ):
        from .batches import Batches
        from .ratelimit import RateLimit

        self.script = load_script(script)
        self.rate_limit = RateLimit(rate_limit) if rate_limit else None
        self.batches = Batches(self.script, delay=batch_delay, outcomes=batch_outcomes)
        self.cache = PromptCache(min_tokens=cache_min_tokens)
        self.billed: list[dict] = []  # the usage of each /v1/messages answer, in order (benchmarks)
        self.host, self.port, self.api_key = host, port, api_key
        self.idle_timeout = idle_timeout
        self._log_to = log
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._attempts: dict[str, int] = {}  # request body digest -> times seen
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> "MockServer":
        """Bind and serve in a daemon thread; returns self."""
        if self._httpd is not None:
            return self
        cls = _HTTPServer6 if ":" in self.host else _HTTPServer
        self._httpd = cls((self.host, self.port), self)
        self.port = self._httpd.server_address[1]
        if not is_loopback(self.host):
            self._log(
                f"warning: listening on {self.host or 'every address'}:{self.port}, which other "
                "machines may reach; the mock accepts "
                + ("only its --api-key" if self.api_key else "any API key")
                + " (use --host 127.0.0.1 to keep it local)"
            )
        # stop() waits up to one poll interval; a short one keeps test teardown fast.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"mock-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        """Base URL without trailing slash or /v1, e.g. http://127.0.0.1:PORT."""
        if self._httpd is None:
            raise RuntimeError("MockServer is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        """Stop serving and drop open connections (streams in progress end abruptly)."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        with httpd._open_lock:
            open_sockets = list(httpd.open_sockets)
        for sock in open_sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "MockServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _log(self, line: str) -> None:
        if self._log_to is False:
            return
        if callable(self._log_to):
            self._log_to(line)
            return
        try:
            print(f"mock server: {line}", file=sys.stderr, flush=True)
        except (OSError, ValueError):
            pass

    def _record(self, method: str, path: str, headers: dict, raw: bytes) -> None:
        try:
            body = json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, ValueError):
            body = None
        with self._lock:
            self.requests.append(RecordedRequest(method, path, headers, body if isinstance(body, dict) else None, raw))

    def _attempt(self, raw: bytes) -> int:
        """How many times this exact request body came before (0 the first time)."""
        digest = hashlib.sha256(raw).hexdigest()
        with self._lock:
            seen = self._attempts.get(digest, 0)
            self._attempts[digest] = seen + 1
            return seen

    def _next_number(self) -> int:
        with self._lock:
            return next(self._numbers)


def main(
    host: str = "127.0.0.1",
    port: int = 0,
    script: Any = None,
    api_key: str | None = None,
    rate_limit: dict | None = None,
    batch_delay: float = 0.0,
) -> int:
    """Serve until Ctrl-C, announcing the URL in one flushed stdout line; returns 0."""
    srv = MockServer(
        script=script, host=host, port=port, api_key=api_key, rate_limit=rate_limit, batch_delay=batch_delay
    ).start()
    try:  # a Ctrl-C right after the announcement still ends quietly
        print(f"mock server listening on {srv.url}", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(prog="python -m cli.mock.server", description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--script", help="YAML script path, or 'demo' for the bundled demo (default: echo model)")
    ap.add_argument("--api-key", help="accept only this key")
    a = ap.parse_args()
    sys.exit(main(a.host, a.port, DEMO_SCRIPT if a.script == "demo" else a.script, a.api_key))
