"""The mock server closes idle connections, notes a disconnect in one line, warns on a public address."""

from __future__ import annotations

import json
import signal
import socket
import struct
import subprocess
import sys
import threading

from conftest import clean_env
from toolchat.mock.server import MockServer, is_loopback


class Lines:
    """Collects the server's one-line notes; wait_for() blocks until enough arrived."""

    def __init__(self):
        self.lines: list[str] = []
        self.changed = threading.Condition()

    def __call__(self, line: str) -> None:
        with self.changed:
            self.lines.append(line)
            self.changed.notify_all()

    def wait_for(self, count: int) -> list[str]:
        with self.changed:
            self.changed.wait_for(lambda: len(self.lines) >= count, timeout=20)
            return list(self.lines)


def reset(sock: socket.socket) -> None:
    """Close with a TCP RST, as a killed client does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_an_idle_connection_is_closed_by_the_server_with_one_line():
    lines = Lines()
    with MockServer(idle_timeout=0.2, log=lines) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
            assert sock.recv(1) == b""  # the server hung up: its thread is free again
            port = sock.getsockname()[1]
        assert lines.wait_for(1) == [f"closed the connection from 127.0.0.1:{port}: idle for 0.2 s"]


def test_a_keep_alive_connection_left_idle_after_a_request_is_closed_too():
    lines = Lines()
    with MockServer(idle_timeout=0.2, log=lines) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
            sock.sendall(b"GET /v1/search?name=Paris HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = b""
            while not reply.endswith(b"}"):
                reply += sock.recv(65536)
            assert b"HTTP/1.1 200 OK" in reply and b'"name": "Paris"' in reply
            assert sock.recv(1) == b""
        assert len(lines.wait_for(1)) == 1 and "idle for 0.2 s" in lines.lines[0]


def test_a_client_that_resets_mid_request_is_one_line_not_a_traceback(capfd):
    lines = Lines()
    with MockServer(log=lines) as server:
        ports = []
        for _ in range(3):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=20)
            sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            ports.append(sock.getsockname()[1])
            reset(sock)
        got = lines.wait_for(3)
    assert sorted(got) == sorted(f"client 127.0.0.1:{p} disconnected: connection reset" for p in ports)
    assert "Traceback" not in capfd.readouterr().err


def test_a_client_that_goes_away_during_a_stream_is_one_line():
    lines = Lines()
    script = {"turns": [{"text": "word " * 200, "delay": 0.01}]}
    with MockServer(script=script, log=lines) as server:
        body = json.dumps(
            {"model": "m", "max_tokens": 10, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
        ).encode()
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=20)
        sock.sendall(
            b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: k\r\n"
            b"anthropic-version: 2023-06-01\r\ncontent-type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        assert sock.recv(12) == b"HTTP/1.1 200"
        port = sock.getsockname()[1]
        reset(sock)
        got = lines.wait_for(1)
    assert len(got) == 1
    assert got[0].startswith(f"client 127.0.0.1:{port} disconnected: ")
    assert got[0].split(": ")[-1] in ("connection reset", "broken pipe")


def test_the_mock_server_command_prints_one_line_per_disconnect(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "toolchat", "mock-server"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(tmp_path),
    )
    try:
        url = proc.stdout.readline().split()[-1]
        port = int(url.rsplit(":", 1)[1])
        for _ in range(2):
            sock = socket.create_connection(("127.0.0.1", port), timeout=20)
            sock.sendall(b"GET /v1/mess")
            reset(sock)
        # A normal request afterwards, so both disconnects were handled before the server stops.
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            sock.sendall(b"GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            while sock.recv(65536):
                pass
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    lines = err.splitlines()
    assert len(lines) == 2, err
    assert all(
        line.startswith("mock server: client 127.0.0.1:") and line.endswith(": connection reset") for line in lines
    ), err


def test_a_public_address_gets_a_warning_and_loopback_none():
    lines = Lines()
    with MockServer(host="0.0.0.0", log=lines) as server:
        port = server.port
    assert lines.lines == [
        f"warning: listening on 0.0.0.0:{port}, which other machines may reach; "
        "the mock accepts any API key (use --host 127.0.0.1 to keep it local)"
    ]
    quiet = Lines()
    for host in ("127.0.0.1", "localhost", "::1"):
        try:
            with MockServer(host=host, log=quiet):
                pass
        except OSError:  # no IPv6 here
            continue
    assert quiet.lines == []


def test_loopback_detection():
    assert is_loopback("127.0.0.1") and is_loopback("127.5.5.5") and is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("") and not is_loopback("::")
    assert not is_loopback("192.168.1.10") and not is_loopback("10.0.0.1")


def test_the_mock_server_command_warns_on_a_public_address(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "toolchat", "mock-server", "--host", "0.0.0.0", "--api-key", "k"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(tmp_path),
    )
    try:
        assert proc.stdout.readline().startswith("mock server listening on http://0.0.0.0:")
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert err.startswith("mock server: warning: listening on 0.0.0.0:")
    assert "the mock accepts only its --api-key" in err and len(err.splitlines()) == 1
