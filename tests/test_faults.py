"""The mock's fault injection: each failure and quirk at a chosen point, checked on the raw socket."""

from __future__ import annotations

import json
import socket
import time

import pytest
import requests

from toolchat.mock.model import ScriptError, check_fault
from toolchat.mock.server import MockServer

HEADERS = {"x-api-key": "test-key", "anthropic-version": "2023-06-01"}


def body(prompt="hello", stream=True):
    return {"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": prompt}], "stream": stream}


class Exchange:
    """One request over a fresh socket, read to the end: how it ended and what came."""

    def __init__(self, server: MockServer, payload: dict, timeout: float = 10):
        data = json.dumps(payload).encode()
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
        # The clock starts before the request goes: the server cannot begin its pauses earlier.
        started = time.monotonic()
        sock.sendall(
            b"POST /v1/messages HTTP/1.1\r\nHost: mock\r\nx-api-key: test-key\r\n"
            b"anthropic-version: 2023-06-01\r\ncontent-type: application/json\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data)
        )
        self.raw, self.ended, self.arrivals = b"", "eof", []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                self.arrivals.append((time.monotonic() - started, chunk))
                self.raw += chunk
        except ConnectionResetError:
            self.ended = "reset"
        finally:
            sock.close()
        head, _, self.body = self.raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1]) if lines[0] else None
        self.headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}

    @property
    def chunks(self) -> tuple[list[bytes], bool]:
        """The chunked body's chunks and whether the terminating chunk came."""
        out, rest = [], self.body
        while rest:
            size_line, sep, rest = rest.partition(b"\r\n")
            if not sep:
                break
            size = int(size_line, 16)
            if size == 0:
                return out, True
            out.append(rest[:size])
            rest = rest[size + 2 :]
        return out, False

    def events(self) -> list[str]:
        chunks, _ = self.chunks
        names = []
        for chunk in chunks:
            for line in chunk.decode("utf-8", "replace").split("\n"):
                if line.startswith("event: "):
                    names.append(line[7:])
        return names


FULL = [
    "message_start",
    "ping",
    "content_block_start",
    "content_block_delta",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
]


@pytest.fixture
def serve():
    servers = []

    def start(*turns):
        server = MockServer({"turns": list(turns)}).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def test_a_turn_without_faults_streams_the_whole_answer(serve):
    got = Exchange(serve({"text": "Hello there"}), body())
    assert (got.status, got.ended, got.events(), got.chunks[1]) == (200, "eof", FULL, True)


def test_http_errors_for_the_first_k_attempts_then_success(serve):
    server = serve(
        {
            "text": "Hello there",
            "faults": [
                {"error": {"status": 529}, "headers": {"retry-after-ms": "10"}},
                {
                    "error": {"status": 429, "message": "Slow down"},
                    "headers": {"retry-after": "2", "x-should-retry": "true"},
                },
            ],
        }
    )
    first, second, third = (
        requests.post(server.url + "/v1/messages", headers=HEADERS, json=body(), timeout=5) for _ in range(3)
    )
    assert (first.status_code, first.headers["retry-after-ms"]) == (529, "10")
    assert first.json()["error"] == {"type": "overloaded_error", "message": "overloaded_error"}
    assert (second.status_code, second.headers["retry-after"], second.headers["x-should-retry"]) == (429, "2", "true")
    assert second.json()["error"] == {"type": "rate_limit_error", "message": "Slow down"}
    assert third.status_code == 200 and "message_stop" in third.text


def test_attempts_are_counted_per_request_body(serve):
    server = serve({"text": "x", "faults": [{"error": {"status": 500}}]})
    post = lambda prompt: (
        requests.post(server.url + "/v1/messages", headers=HEADERS, json=body(prompt), timeout=5).status_code
    )  # noqa: E731
    assert [post("a"), post("b"), post("a"), post("b"), post("c")] == [500, 500, 200, 200, 500]


def test_a_null_fault_is_a_normal_attempt(serve):
    server = serve({"text": "x", "faults": [None, {"error": {"status": 503}}]})
    codes = [
        requests.post(server.url + "/v1/messages", headers=HEADERS, json=body(), timeout=5).status_code
        for _ in range(3)
    ]
    assert codes == [200, 503, 200]


def test_error_with_details_goes_into_the_error_body(serve):
    server = serve(
        {
            "text": "x",
            "faults": [
                {
                    "error": {
                        "status": 429,
                        "type": "rate_limit_error",
                        "message": "limit",
                        "details": {"error_code": "enforced_spend_limit_reached"},
                    }
                }
            ],
        }
    )
    reply = requests.post(server.url + "/v1/messages", headers=HEADERS, json=body(), timeout=5)
    assert reply.json()["error"]["details"] == {"error_code": "enforced_spend_limit_reached"}


def test_reset_before_the_status_line(serve):
    got = Exchange(serve({"text": "Hello there", "faults": [{"reset": "headers"}]}), body())
    assert (got.raw, got.ended) == (b"", "reset")


def test_close_before_the_status_line(serve):
    got = Exchange(serve({"text": "Hello there", "faults": [{"close": "headers"}]}), body())
    assert (got.raw, got.ended) == (b"", "eof")


@pytest.mark.parametrize("after", [0, 1, 3, 7])
def test_reset_after_n_events(serve, after):
    got = Exchange(serve({"text": "Hello there", "faults": [{"reset": after}]}), body())
    assert (got.status, got.ended, got.events(), got.chunks[1]) == (200, "reset", FULL[:after], False)


def test_close_after_n_events_leaves_a_chunked_body_without_its_end(serve):
    got = Exchange(serve({"text": "Hello there", "faults": [{"close": 4}]}), body())
    assert (got.ended, got.events(), got.chunks[1]) == ("eof", FULL[:4], False)


@pytest.mark.parametrize("cut", [1, 30, 200])
def test_close_after_n_bytes(serve, cut):
    normal = Exchange(serve({"text": "Hello there", "framing": "close"}), body())
    got = Exchange(serve({"text": "Hello there", "framing": "close", "faults": [{"close": {"bytes": cut}}]}), body())
    assert got.ended == "eof" and len(got.body) == cut
    assert got.body[:20] == normal.body[: min(cut, 20)]


def test_reset_after_n_bytes_splits_an_event(serve):
    got = Exchange(serve({"text": "Hello there", "faults": [{"reset": {"bytes": 10}}]}), body())
    chunks, complete = got.chunks
    assert (got.ended, chunks, complete) == ("reset", [b"event: mes"], False)


def test_truncate_ends_the_body_properly_after_n_events(serve):
    got = Exchange(serve({"text": "Hello there", "faults": [{"truncate": 5}]}), body())
    assert (got.ended, got.events(), got.chunks[1]) == ("eof", FULL[:5], True)


def test_error_event_after_n_events_ends_the_stream(serve):
    got = Exchange(
        serve(
            {
                "text": "Hello there",
                "faults": [{"error_event": {"type": "overloaded_error", "message": "Overloaded"}, "at": 3}],
            }
        ),
        body(),
    )
    assert got.events() == FULL[:3] + ["error"]
    assert got.chunks[1] is True
    assert json.loads(got.chunks[0][-1].split(b"data: ")[1]) == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }


def test_garbage_after_n_events(serve):
    got = Exchange(serve({"text": "Hello there", "faults": [{"garbage": "\x00\xff junk\n\n", "at": 2}]}), body())
    chunks, complete = got.chunks
    assert chunks[2] == "\x00\xff junk\n\n".encode() and complete
    assert got.events() == FULL


def test_stall_before_the_status_line(serve):
    got = Exchange(serve({"text": "Hello there", "faults": [{"stall": 0.6}]}), body())
    assert got.arrivals[0][0] >= 0.55 and got.events() == FULL


def test_stall_after_n_events_then_the_rest(serve):
    got = Exchange(serve({"text": "Hello there", "faults": [{"stall": 0.6, "at": 4}]}), body())
    assert got.events() == FULL and got.chunks[1]
    # Everything up to the 4th event comes at once, the rest after the stall.
    gap = max(b[0] - a[0] for a, b in zip(got.arrivals, got.arrivals[1:]))
    assert gap >= 0.55
    before = b"".join(chunk for at, chunk in got.arrivals if at < 0.5)
    assert before.count(b"event: ") == 4


def test_stall_then_reset_in_one_fault(serve):
    started = time.monotonic()
    got = Exchange(serve({"text": "Hello there", "faults": [{"stall": 0.4, "at": 2, "reset": 3}]}), body())
    assert (got.ended, got.events()) == ("reset", FULL[:3])
    assert time.monotonic() - started >= 0.4


def test_faults_combine_with_the_turn_delay_and_framing(serve):
    got = Exchange(
        serve({"text": "Hello there", "delay": 0.05, "framing": "length", "faults": [{"truncate": 4}]}), body()
    )
    assert got.headers["content-length"] == str(len(got.body))
    assert got.body.count(b"event: ") == 4
    assert got.arrivals[-1][0] >= 0.15  # three pauses between four pieces


def test_faults_on_a_raw_turn_count_its_chunks(serve):
    raw = 'event: ping\ndata: {"type": "ping"}\n\n' * 3
    got = Exchange(serve({"raw": raw, "chunks": [10, 10], "faults": [{"reset": 2}]}), body())
    assert (got.ended, got.chunks[0]) == ("reset", [raw[:10].encode(), raw[10:20].encode()])


@pytest.mark.parametrize(
    "fault, ended, length",
    [
        ({"reset": "headers"}, "reset", None),
        ({"close": {"bytes": 10}}, "eof", 10),
        ({"stall": 0.2}, "eof", "full"),
    ],
)
def test_faults_on_a_json_answer(serve, fault, ended, length):
    got = Exchange(serve({"text": "Hello there", "faults": [fault]}), body(stream=False))
    assert got.ended == ended
    if length == "full":
        assert json.loads(got.body)["content"] == [{"type": "text", "text": "Hello there"}]
    elif length is not None:
        assert len(got.body) == length and int(got.headers["content-length"]) > length


def test_a_json_prompt_turn_carries_faults_for_the_echo_model():
    with MockServer() as server:
        prompt = json.dumps({"text": "from the prompt", "faults": [{"error": {"status": 529}}]})
        codes = [
            requests.post(server.url + "/v1/messages", headers=HEADERS, json=body(prompt), timeout=5) for _ in range(2)
        ]
    assert [c.status_code for c in codes] == [529, 200]
    assert '"text":"prompt"' in codes[1].text  # the last of its word-sized deltas


@pytest.mark.parametrize(
    "fault, problem",
    [
        ("reset", "a fault must be a mapping or null"),
        ({"explode": 1}, "unknown keys ['explode']"),
        ({"reset": -1}, "'reset' must be \"headers\", a number of pieces >= 0 or {bytes: N}"),
        ({"close": "later"}, "'close' must be \"headers\", a number of pieces >= 0 or {bytes: N}"),
        ({"reset": {"bytes": -2}}, "'reset' must be \"headers\", a number of pieces >= 0 or {bytes: N}"),
        ({"reset": 1, "close": 2}, "'reset' and 'close' cannot both end one attempt"),
        ({"headers": {"a": "b"}}, "'headers' goes with 'error'"),
        ({"error": "boom"}, "'error' must be a mapping"),
        ({"stall": -1}, "'stall' must be a number of seconds >= 0"),
        ({"truncate": True}, "'truncate' must be a number of pieces >= 0"),
        ({"garbage": 5, "at": 1}, "'garbage' must be a string or bytes"),
        ({"garbage": "x", "error_event": {}}, "one fault takes 'error_event' or 'garbage', not both"),
        ({"error_event": {}, "at": "headers"}, "'at' for 'error_event' / 'garbage' must be a number of pieces"),
        ({"at": 3}, "'at' goes with 'stall', 'error_event' or 'garbage'"),
    ],
)
def test_bad_faults_are_rejected_with_a_reason(fault, problem):
    with pytest.raises(ScriptError) as caught:
        check_fault(fault, "f")
    assert str(caught.value) == f"f: {problem}"


def test_a_script_with_a_bad_fault_is_rejected_at_construction():
    with pytest.raises(ScriptError, match=r"turns\[0\]: faults\[1\]: unknown keys \['oops'\]"):
        MockServer({"turns": [{"text": "x", "faults": [None, {"oops": 1}]}]})
    with pytest.raises(ScriptError, match="'faults' must be a list"):
        MockServer({"turns": [{"text": "x", "faults": {"reset": 1}}]})


def test_a_slow_http_error(serve):
    started = time.monotonic()
    got = Exchange(serve({"text": "x", "faults": [{"error": {"status": 503}, "stall": 0.4}]}), body())
    assert got.status == 503 and time.monotonic() - started >= 0.4
