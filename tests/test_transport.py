"""The transport over real loopback sockets: the fast path (socket reads per network chunk, tokens as
they arrive), every transport failure as one exact line, and what gateways send (SSE-framed error
bodies, unexpected content types, credentials echoed in headers)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import threading

import pytest

from toolchat.errors import APIError, TransportError
from toolchat.transport import Transport, messages_url

from conftest import TEST_KEY, message_events, run_chat, sse

BODY = {"model": "m", "max_tokens": 64, "stream": True, "messages": [{"role": "user", "content": "hi"}]}


class RawServer:
    """A loopback HTTP/1.1 server written on the socket, so each test decides every byte and every
    write. `handler(conn, request)` answers one request, and returns True to keep the connection
    for the next one; the server records the requests and counts the connections."""

    def __init__(self, handler):
        self.handler = handler
        self.requests: list[bytes] = []
        self.connections = 0
        self.errors: list[BaseException] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._conn: socket.socket | None = None  # the connection being served
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            self._conn = conn
            with conn:
                try:
                    while True:
                        request = _read_request(conn)
                        if not request:
                            break
                        self.requests.append(request)
                        if not self.handler(conn, request):
                            break
                except OSError:
                    pass  # the client went away
                except BaseException as exc:  # noqa: BLE001 - reported by the test
                    self.errors.append(exc)

    def close(self):
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (Linux)
        except OSError:
            pass
        self._listener.close()
        if self._conn is not None:  # a client that kept its connection open: end the wait for it
            try:
                self._conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(5)


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        more = conn.recv(65536)
        if not more:
            return data
        data += more
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0
    )
    while len(rest) < length:
        more = conn.recv(65536)
        if not more:
            break
        rest += more
    return head + b"\r\n\r\n" + rest


@pytest.fixture
def raw_server():
    servers = []

    def start(handler):
        server = RawServer(handler)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()
        assert not server.errors, server.errors


def transport_for(server, *, connect_timeout=5.0, read_timeout=10.0, key=TEST_KEY, debug=False):
    return Transport(
        messages_url(server.url),
        {"x-api-key": key, "anthropic-version": "2023-06-01"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        debug=debug,
    )


def head(status=200, ctype="text/event-stream", framing="chunked", extra=b"") -> bytes:
    frame = {"chunked": b"transfer-encoding: chunked\r\n", "close": b"connection: close\r\n"}[framing]
    return b"HTTP/1.1 %d X\r\ncontent-type: %s\r\n%s%s\r\n" % (status, ctype.encode(), frame, extra)


def chunk(data: bytes) -> bytes:
    return b"%X\r\n%s\r\n" % (len(data), data)


def story_events(deltas: int) -> list[bytes]:
    """An Anthropic stream of `deltas` text deltas of 5 characters, one SSE event per item."""
    events = message_events({"type": "text", "text": "", "pieces": ["tok%02d" % (i % 100) for i in range(deltas)]})
    return [sse(event).encode() for event in events]


# ---------------------------------------------------------------------------------------------
# The fast path


class SocketReads:
    """Counts the reads toolchat's own sockets make (those connected to `port`)."""

    def __init__(self, monkeypatch, port: int):
        self.count = 0
        for name in ("recv", "recv_into"):
            original = getattr(socket.socket, name)

            def counted(sock, *args, _original=original, **kwargs):
                try:
                    if sock.getpeername()[1] == port:
                        self.count += 1
                except OSError:
                    pass
                return _original(sock, *args, **kwargs)

            monkeypatch.setattr(socket.socket, name, counted)


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_a_20000_delta_stream_costs_about_one_socket_read_per_network_chunk(raw_server, monkeypatch, framing):
    events = story_events(20_000)
    writes = 400  # network chunks of about 6 KB, 50 events each, every event its own HTTP chunk
    per_write = -(-len(events) // writes)

    def handler(conn, request):
        conn.sendall(head(framing=framing))
        for start in range(0, len(events), per_write):
            group = events[start : start + per_write]
            conn.sendall(b"".join(map(chunk, group)) if framing == "chunked" else b"".join(group))
        if framing == "chunked":
            conn.sendall(b"0\r\n\r\n")

    server = raw_server(handler)
    transport = transport_for(server)
    reads = SocketReads(monkeypatch, server.port)
    try:
        reply = transport.send(BODY)
        pieces = list(reply.chunks())
        reply.close()
    finally:
        transport.close()
    assert b"".join(pieces) == b"".join(events)
    sent = -(-len(events) // per_write)
    # A lost fast path reads per chunk (20,000+) or per byte; coalesced network chunks only lower it.
    assert 1 <= reads.count <= 3 * sent, (reads.count, sent)
    if framing == "chunked":
        assert len(pieces) == len(events)  # one piece per HTTP chunk: never two events held back
    else:
        assert len(pieces) <= reads.count  # never more than what one socket read brought


@pytest.mark.parametrize("framing", ["chunked", "close", "length"])
def test_each_event_is_handed_over_before_the_next_is_sent(raw_server, framing):
    events = story_events(3)
    released = threading.Event()
    waited = []

    def handler(conn, request):
        body = b"".join(events)
        if framing == "length":
            conn.sendall(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: %d\r\n\r\n" % len(body)
            )
        else:
            conn.sendall(head(framing=framing))
        for index, event in enumerate(events):
            conn.sendall(chunk(event) if framing == "chunked" else event)
            # Nothing more is sent until the client has this event: a transport that waits for
            # more bytes, or for the end of the body, would wait here until the server gives up.
            waited.append(released.wait(10))
            released.clear()
        if framing == "chunked":
            conn.sendall(b"0\r\n\r\n")
        done.set()

    done = threading.Event()
    server = raw_server(handler)
    transport = transport_for(server)
    got = b""
    try:
        reply = transport.send(BODY)
        for piece in reply.chunks():
            got += piece
            if got.count(b"\n\n") > len(waited) or got == b"".join(events):
                released.set()
        reply.close()
    finally:
        transport.close()
    assert done.wait(10)
    assert got == b"".join(events)
    assert waited == [True] * len(events)


def test_a_body_read_to_its_end_gives_the_connection_back_for_the_next_request(raw_server):
    events = story_events(2)

    def handler(conn, request):
        conn.sendall(head() + b"".join(map(chunk, events)) + b"0\r\n\r\n")
        return True  # keep-alive

    server = raw_server(handler)
    transport = transport_for(server)
    try:
        for _ in range(2):
            reply = transport.send(BODY)
            assert b"".join(reply.chunks()) == b"".join(events)
            reply.close()
    finally:
        transport.close()
    assert (len(server.requests), server.connections) == (2, 1)


# ---------------------------------------------------------------------------------------------
# Failures: one exact line each, mapped by exception type


def failure_of(url, *, connect_timeout=5.0, read_timeout=10.0):
    transport = Transport(
        messages_url(url),
        {"x-api-key": TEST_KEY, "anthropic-version": "2023-06-01"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )
    try:
        with pytest.raises(TransportError) as caught:
            reply = transport.send(BODY)
            try:
                b"".join(reply.chunks())
            finally:
                reply.close()
    finally:
        transport.close()
    return caught.value


def closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        return listener.getsockname()[1]  # closed when this returns: nothing listens there


def test_a_refused_connection():
    port = closed_port()
    error = failure_of(f"http://127.0.0.1:{port}")
    assert (error.type, error.message) == (
        "connection_error",
        f"could not connect to 127.0.0.1:{port}: Connection refused",
    )


def test_a_host_name_that_does_not_resolve():
    error = failure_of("http://no-such-host.invalid")
    # The resolver's own words: "Name or service not known", or "Temporary failure in name
    # resolution" on a machine without a DNS server.
    assert error.type == "connection_error"
    assert error.message.startswith("could not connect to no-such-host.invalid: ")
    assert "name" in error.message.lower()


def test_a_connection_that_is_never_accepted_times_out_connecting():
    # A listener with a full backlog: Linux drops the SYN, so the connection never completes.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        error = failure_of(f"http://127.0.0.1:{port}", connect_timeout=0.3)
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
    assert (error.type, error.message) == (
        "timeout",
        f"timed out connecting to 127.0.0.1:{port}: no connection within 0.3 s",
    )


def test_no_response_within_the_read_timeout(raw_server):
    released = threading.Event()
    server = raw_server(lambda conn, request: released.wait(10))
    try:
        error = failure_of(server.url, read_timeout=0.3)
    finally:
        released.set()
    assert (error.type, error.message) == ("timeout", f"no response from 127.0.0.1:{server.port} within 0.3 s")


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_a_silent_stream_fails_saying_the_limit_and_the_flag(raw_server, framing):
    released = threading.Event()

    def handler(conn, request):
        event = story_events(1)[0]
        conn.sendall(head(framing=framing) + (chunk(event) if framing == "chunked" else event))
        released.wait(10)

    server = raw_server(handler)
    try:
        error = failure_of(server.url, read_timeout=0.3)
    finally:
        released.set()
    assert (error.type, error.message) == ("timeout", "no data from the server for 0.3 s (--timeout)")


def _reset(conn):
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")  # close sends RST


@pytest.mark.parametrize(
    "after, message",
    [
        (b"", "the connection to 127.0.0.1:PORT failed before a response: Connection reset by peer"),
        (head() + chunk(b"data: x\n\n"), "the connection failed mid-response: Connection reset by peer"),
    ],
    ids=["before-the-status-line", "mid-stream"],
)
def test_a_reset_connection(raw_server, after, message):
    def handler(conn, request):
        conn.sendall(after)
        _reset(conn)

    server = raw_server(handler)
    error = failure_of(server.url)
    assert (error.type, error.message) == ("connection_error", message.replace("PORT", str(server.port)))


@pytest.mark.parametrize(
    "body, message",
    [
        (chunk(b"data: x\n\n"), "the server closed it before the end of the response"),
        (chunk(b"data: x\n\n") + b"40\r\ncut", "the server closed it before the end of the response"),
        (b"zz\r\ndata\r\n", "the server sent a malformed chunked body"),
    ],
    ids=["between-chunks", "inside-a-chunk", "bad-chunk-size"],
)
def test_a_chunked_body_cut_short(raw_server, body, message):
    server = raw_server(lambda conn, request: conn.sendall(head() + body))
    error = failure_of(server.url)
    assert (error.type, error.message) == ("connection_error", "the connection failed mid-response: " + message)


def test_tls_spoken_to_a_plain_http_server():
    # The server answers the TLS ClientHello as plain HTTP does: with a 400 page.
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def answer():
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        error = failure_of(f"https://127.0.0.1:{port}")
    finally:
        thread.join(5)
        listener.close()
    assert error.type == "connection_error"
    assert error.message.startswith(f"could not connect to 127.0.0.1:{port}: TLS error: "), error.message


def test_too_many_redirects(raw_server):
    def handler(conn, request):
        conn.sendall(b"HTTP/1.1 307 Temporary Redirect\r\nlocation: /v1/messages\r\ncontent-length: 0\r\n\r\n")
        return True

    server = raw_server(handler)
    error = failure_of(server.url)
    assert (error.type, error.message) == (
        "request_error",
        f"cannot send the request to 127.0.0.1:{server.port}: more than 30 redirects",
    )


def test_a_redirect_to_another_origin_does_not_carry_the_key(raw_server):
    def answer(conn, request):
        events = story_events(1)
        conn.sendall(head() + b"".join(map(chunk, events)) + b"0\r\n\r\n")

    elsewhere = raw_server(answer)

    def redirect(conn, request):
        location = f"{elsewhere.url}/v1/messages".encode()
        conn.sendall(b"HTTP/1.1 307 Temporary Redirect\r\nlocation: %s\r\ncontent-length: 0\r\n\r\n" % location)

    server = raw_server(redirect)
    transport = transport_for(server)
    try:
        reply = transport.send(BODY)
        assert b"".join(reply.chunks()) == b"".join(story_events(1))
        reply.close()
    finally:
        transport.close()
    assert TEST_KEY.encode() in server.requests[0]
    assert TEST_KEY.encode() not in elsewhere.requests[0]
    assert b"anthropic-version: 2023-06-01" in elsewhere.requests[0]


def test_a_certificate_that_does_not_verify_is_a_tls_error_not_retried(tmp_path):
    import ssl

    from toolchat import retry

    try:
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=toolchat-test",
                "-keyout",
                str(tmp_path / "key.pem"),
                "-out",
                str(tmp_path / "cert.pem"),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"no openssl to make a self-signed certificate: {exc}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def answer():
        conn, _ = listener.accept()
        try:
            with context.wrap_socket(conn, server_side=True):
                pass
        except (ssl.SSLError, OSError):
            pass  # the client refuses the certificate

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        error = failure_of(f"https://127.0.0.1:{port}")
    finally:
        thread.join(5)
        listener.close()
    assert (error.type, error.message) == (
        "tls_error",
        f"could not connect to 127.0.0.1:{port}: TLS certificate verification failed: self-signed certificate",
    )
    assert not retry.decide(error, 1, 2).retry


# ---------------------------------------------------------------------------------------------
# What gateways send (issue 10): each against a loopback server that behaves like one


RATE_LIMITED = {
    "type": "error",
    "error": {"type": "rate_limit_error", "message": "Slow down, please"},
    "request_id": "req_gw_1",
}


@pytest.mark.parametrize("line_end", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_an_http_error_with_an_sse_framed_body_reports_the_message_inside_data(mock, line_end):
    body = line_end.join(["event: error", "data: " + json.dumps(RATE_LIMITED), "", ""])
    server = mock({"turns": [{"raw": body, "status": 429, "content_type": "text/event-stream"}]})
    _, result = run_chat(server, "hi", retries=0)
    assert isinstance(result.error, APIError)
    assert (result.error.message, result.error.type, result.error.status, result.exit_code) == (
        "HTTP 429 rate_limit_error: Slow down, please",
        "rate_limit_error",
        429,
        3,
    )


def test_an_sse_framed_error_body_whose_data_is_not_json_shows_the_data(mock):
    server = mock(
        {
            "turns": [
                {
                    "raw": "event: error\ndata: upstream overloaded\n\n",
                    "status": 503,
                    "content_type": "text/event-stream",
                }
            ]
        }
    )
    _, result = run_chat(server, "hi", retries=0)
    assert result.error.message == "HTTP 503 api_error: upstream overloaded"


def test_an_sse_framed_error_body_on_the_command_line(toolchat, mock):
    body = "event: error\ndata: " + json.dumps(RATE_LIMITED) + "\n\n"
    server = mock({"turns": [{"raw": body, "status": 429, "content_type": "text/event-stream"}]})
    run = toolchat("--retries", "0", "hi", server=server)
    assert (run.code, run.out, run.err) == (3, "", "toolchat: error: HTTP 429 rate_limit_error: Slow down, please\n")


@pytest.mark.parametrize(
    "ctype, body, named",
    [
        ("text/plain", "Service temporarily unavailable, try later", "text/plain"),
        ("text/plain; charset=utf-8", "", "text/plain"),
        ("application/octet-stream", "\x00\x01binary", "application/octet-stream"),
    ],
    ids=["text-plain", "empty-text-plain", "octet-stream"],
)
def test_a_200_reply_of_an_unexpected_content_type_is_named_as_such(mock, ctype, body, named):
    server = mock({"turns": [{"raw": body, "content_type": ctype}]})
    _, result = run_chat(server, "hi", retries=0)
    assert isinstance(result.error, APIError)
    got = f"{body}" if body else "an empty body"
    got = got.replace("\x00", "\\0").replace("\x01", "\\x01")
    assert (result.error.type, result.error.status, result.error.message) == (
        "malformed_response",
        200,
        f"HTTP 200 malformed_response: unexpected content-type {named} from the server, not a stream or a "
        f"JSON message: {got}",
    )


def test_a_200_reply_without_a_content_type_that_is_no_stream_is_named(raw_server):
    server = raw_server(
        lambda conn, request: conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello")
    )
    transport = transport_for(server)
    try:
        with pytest.raises(APIError) as caught:
            transport.send(BODY)
    finally:
        transport.close()
    assert caught.value.message == (
        "HTTP 200 malformed_response: unexpected content-type (none) from the "
        "server, not a stream or a JSON message: hello"
    )


def test_a_stream_without_a_content_type_is_still_a_stream(raw_server):
    events = [sse(event).encode() for event in message_events({"type": "text", "text": "unlabelled"})]
    server = raw_server(
        lambda conn, request: conn.sendall(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + b"".join(map(chunk, events)) + b"0\r\n\r\n"
        )
    )
    _, result = run_chat(server, "hi", retries=0)
    assert (result.error, result.text) == (None, "unlabelled")


def test_an_unexpected_content_type_on_the_command_line(toolchat, mock):
    server = mock({"turns": [{"raw": "upstream said no", "content_type": "text/plain"}]})
    run = toolchat("--json", "hi", server=server)
    assert run.code == 3
    assert run.json()["error"] == {
        "type": "malformed_response",
        "status": 200,
        "request_id": run.json()["error"]["request_id"],
        "message": "HTTP 200 malformed_response: unexpected content-type text/plain from the server, not a "
        "stream or a JSON message: upstream said no",
    }
    assert run.json()["error"]["request_id"].startswith("req_mock_")


ECHOED = {"request-id": f"req_{TEST_KEY}", "x-request-id": TEST_KEY}


@pytest.mark.parametrize(
    "flags",
    [["--json"], ["--stream-json"], ["--debug"], ["--debug", "--json"]],
    ids=["json", "stream-json", "debug", "debug-json"],
)
def test_a_key_echoed_in_the_request_id_header_of_an_error_never_shows(toolchat, mock, flags):
    error = json.dumps({"type": "error", "error": {"type": "authentication_error", "message": "bad key"}})
    server = mock({"turns": [{"raw": error, "status": 401, "content_type": "application/json", "headers": ECHOED}]})
    run = toolchat("--retries", "0", *flags, "hi", server=server)  # the fixture fails on any leak
    assert run.code == 3
    if "--json" in flags:
        assert "[redacted]" in run.json()["error"]["request_id"]
    if "--stream-json" in flags:
        result = json.loads(run.out.splitlines()[-1])
        assert result["type"] == "result" and "[redacted]" in result["error"]["request_id"]
    assert "toolchat: error: HTTP 401 authentication_error: bad key (check the API key and --auth-style)" in run.err


@pytest.mark.parametrize("flags", [["--debug"], ["--debug", "--stream-json"]], ids=["debug", "debug-stream-json"])
def test_a_key_echoed_in_the_request_id_header_of_a_stream_never_shows(toolchat, mock, flags):
    server = mock({"turns": [{"text": "fine", "headers": ECHOED}]})
    run = toolchat(*flags, "hi", server=server)  # the fixture fails on any leak
    assert run.code == 0
    debug = [line for line in run.err.splitlines() if line.startswith("debug: HTTP 200")]
    # The mock sends its own request-id too: requests joins the two values with a comma.
    assert len(debug) == 1 and re.fullmatch(
        r"debug: HTTP 200 text/event-stream; charset=utf-8 request-id=req_mock_\w+, req_\[redacted\]", debug[0]
    )


def test_a_key_echoed_in_a_plain_text_error_body_is_redacted_before_it_is_clipped(mock):
    # The key sits where the 200-character clip would cut it: no part of it may show.
    body = "x" * 185 + " " + TEST_KEY + " is not a valid key"
    server = mock({"turns": [{"raw": body, "status": 401, "content_type": "text/plain"}]})
    _, result = run_chat(server, "hi", retries=0)
    assert TEST_KEY[:8] not in result.error.message
    assert result.error.message.startswith("HTTP 401 authentication_error: " + "x" * 185 + " [redacted] is")


def test_server_headers_in_debug_lines_cannot_drive_the_terminal(toolchat, mock):
    server = mock({"turns": [{"text": "fine", "headers": {"request-id": "req\x1b]0;pwned\x07"}}]})
    run = toolchat("--debug", "hi", server=server)
    assert run.code == 0
    assert "\x1b" not in run.err and "\x07" not in run.err
    assert "request-id=req_mock_" in run.err and "req\\x1b]0;pwned\\a" in run.err


def test_a_key_echoed_as_the_request_id_of_an_error_event_never_shows(toolchat, mock):
    start, ping = message_events({"type": "text", "text": "x"})[:2]
    error = {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "no"},
        "request_id": f"req_{TEST_KEY}",
    }
    server = mock({"turns": [{"raw": sse(start, ping, error)}]})
    run = toolchat("--json", "--retries", "0", "hi", server=server)  # the fixture fails on any leak
    assert run.code == 3
    assert run.json()["error"]["request_id"] == "req_[redacted]"
