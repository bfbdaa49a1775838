"""Ctrl-C (SIGINT) and SIGTERM at every phase of a run, on real subprocesses.

Whatever toolchat is doing (connecting to an address that never answers, waiting on a silent server,
streaming, running a tool, sleeping before a retry), a signal ends the run promptly with exit 130
(SIGINT) or 143 (SIGTERM), what was shown stays shown, and the --save transcript is complete and
valid. The time from the signal to the exit is measured and listed at the end of the session.
"""

from __future__ import annotations

import json
import queue
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from toolchat.mock.validate import validate_body

from conftest import TEST_KEY, TIMINGS, assert_no_secret, clean_env, popen_toolchat

EXIT_BOUND = 3.0  # seconds from the signal to the exit; generous for a loaded machine
SIGNALS = [
    pytest.param(signal.SIGINT, 130, "interrupted", id="SIGINT"),
    pytest.param(signal.SIGTERM, 143, "terminated", id="SIGTERM"),
]

HANG_TOOLS = """
tools:
  - name: hang
    description: Never finishes
    input_schema: {type: object}
    handler: hang.py:hang
    timeout: 600
"""


class Running:
    """toolchat in a subprocess, its stdout and stderr read line by line as they come."""

    def __init__(self, args, env, cwd):
        self.proc = popen_toolchat(list(args), env, cwd)
        self.lines: dict[str, queue.Queue] = {"stdout": queue.Queue(), "stderr": queue.Queue()}
        self.seen = {"stdout": b"", "stderr": b""}
        self.readers = [threading.Thread(target=self._read, args=(name,), daemon=True) for name in ("stdout", "stderr")]
        for reader in self.readers:
            reader.start()

    def _read(self, name):
        stream = getattr(self.proc, name)
        for line in iter(stream.readline, b""):
            self.lines[name].put(line)
        self.lines[name].put(None)

    def wait_for(self, name, prefix: bytes, timeout=20.0) -> bytes:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines[name].get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                self.proc.kill()
                pytest.fail(f"no {prefix!r} on {name}; so far: {self.seen}")
            self.seen[name] += line
            if line.startswith(prefix):
                return line

    def signal_and_wait(self, signum) -> float:
        """Send the signal; return the seconds until the process exited."""
        sent = time.monotonic()
        self.proc.send_signal(signum)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"toolchat did not exit within 20 s of {signal.Signals(signum).name}")
        elapsed = time.monotonic() - sent
        for reader in self.readers:
            reader.join(timeout=5)
        for name in ("stdout", "stderr"):
            while True:
                line = self.lines[name].get_nowait() if not self.lines[name].empty() else None
                if line is None:
                    break
                self.seen[name] += line
        return elapsed


@pytest.fixture
def blackhole():
    """A loopback address whose connects hang: a listener with a full backlog that never accepts."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(2):  # fill the accept queue; later SYNs are dropped, so connect() waits
        filler = socket.socket()
        filler.setblocking(False)
        try:
            filler.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(filler)
    probe = socket.socket()
    probe.settimeout(0.5)
    try:
        probe.connect(("127.0.0.1", port))
        pytest.skip("this kernel accepts connections past the backlog; no blackhole to test with")
    except (TimeoutError, socket.timeout):
        pass
    finally:
        probe.close()
    yield f"http://127.0.0.1:{port}"
    for sock in fillers + [listener]:
        sock.close()


def start(tmp_path, args, base_url):
    env = clean_env(tmp_path, TOOLCHAT_BASE_URL=base_url, TOOLCHAT_API_KEY=TEST_KEY)
    return Running(["--save", "saved.json", *args], env, tmp_path)


def finish(run: Running, tmp_path: Path, signum, code, word, phase):
    elapsed = run.signal_and_wait(signum)
    name = signal.Signals(signum).name
    TIMINGS.append(f"interrupt {phase:<22} {name:<8} exit {run.proc.returncode} after {elapsed:.3f} s")
    assert run.proc.returncode == code, run.seen
    assert elapsed < EXIT_BOUND, f"{phase}: took {elapsed:.2f} s to exit after {name}"
    assert run.seen["stderr"].decode().splitlines()[-1] == f"toolchat: {word}"
    assert_no_secret(run.seen["stdout"], run.seen["stderr"], root=tmp_path)
    saved = json.loads((tmp_path / "saved.json").read_text())
    assert (saved["format"], saved["version"]) == ("toolchat-transcript", 1)
    # Complete and valid: the strict mock would accept it as the messages of a request.
    validate_body({"model": saved["model"], "max_tokens": 10, "messages": saved["messages"]})
    assert not list(tmp_path.glob(".saved.json.*"))  # no temporary file left behind
    return saved


@pytest.mark.parametrize("signum, code, word", SIGNALS)
def test_signal_while_connecting_to_an_address_that_never_answers(tmp_path, blackhole, signum, code, word):
    run = start(tmp_path, ["--debug", "--timeout", "60", "hi"], blackhole)
    run.wait_for("stderr", b"debug: POST ")
    time.sleep(0.3)  # inside connect() by now
    saved = finish(run, tmp_path, signum, code, word, "connecting")
    assert saved["messages"] == [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("signum, code, word", SIGNALS)
def test_signal_while_waiting_for_a_silent_server(tmp_path, mock, signum, code, word):
    server = mock({"turns": [{"text": "never", "faults": [{"stall": 60}]}]})
    run = start(tmp_path, ["--debug", "hi"], server.url)
    run.wait_for("stderr", b"debug: POST ")
    time.sleep(0.3)
    saved = finish(run, tmp_path, signum, code, word, "waiting for a response")
    assert saved["messages"] == [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("signum, code, word", SIGNALS)
def test_signal_while_streaming_keeps_what_was_shown(tmp_path, mock, signum, code, word):
    # Pieces: message_start, ping, content_block_start, "Line ", "one.\n", then silence.
    server = mock({"turns": [{"text": "Line one.\nLine two.", "faults": [{"stall": 60, "at": 5}]}]})
    run = start(tmp_path, ["hi"], server.url)
    assert run.wait_for("stdout", b"Line") == b"Line one.\n"
    time.sleep(0.2)  # past the view's bookkeeping for that line, into the silence
    saved = finish(run, tmp_path, signum, code, word, "streaming")
    assert run.seen["stdout"] == b"Line one.\n"
    # What was shown is kept as the assistant's text, so the conversation can go on from it.
    assert saved["messages"] == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "text", "text": "Line one.\n"}]},
    ]


@pytest.mark.parametrize("signum, code, word", SIGNALS)
def test_signal_while_a_tool_runs(tmp_path, mock, signum, code, word):
    (tmp_path / "hang.py").write_text("import time\n\ndef hang():\n    time.sleep(1000)\n")
    (tmp_path / "tools.yaml").write_text(HANG_TOOLS)
    server = mock({"turns": [{"text": "Calling.", "tool_calls": [{"name": "hang", "input": {}}]}, {"text": "never"}]})
    run = start(tmp_path, ["--json", "-t", "tools.yaml", "hi"], server.url)
    run.wait_for("stderr", b"\xe2\x86\x92 hang {}")
    saved = finish(run, tmp_path, signum, code, word, "running a tool")
    doc = json.loads(run.seen["stdout"])
    assert (doc["error"]["type"], doc["turns"]) == (word, 1)
    [user, assistant, results] = saved["messages"]
    [use] = [b for b in assistant["content"] if b["type"] == "tool_use"]
    assert results == {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": use["id"],
                "is_error": True,
                "content": "not run: the run was stopped before this tool finished",
            }
        ],
    }
    assert doc["messages"] == saved["messages"]


@pytest.mark.parametrize("signum, code, word", SIGNALS)
def test_signal_during_the_wait_before_a_retry(tmp_path, mock, signum, code, word):
    server = mock(
        {"turns": [{"text": "never", "faults": [{"error": {"status": 529}, "headers": {"retry-after": "30"}}]}]}
    )
    run = start(tmp_path, ["hi"], server.url)
    line = run.wait_for("stderr", b"toolchat: overloaded")
    assert line == b"toolchat: overloaded (529), retrying in 30.0 s (attempt 2 of 3)\n"
    time.sleep(0.2)
    saved = finish(run, tmp_path, signum, code, word, "waiting to retry")
    assert saved["messages"] == [{"role": "user", "content": "hi"}]
    assert len(server.requests) == 1


@pytest.mark.parametrize("signum, code, word", SIGNALS)
def test_signal_after_a_tool_turn_keeps_the_finished_results(tmp_path, mock, signum, code, word):
    (tmp_path / "hang.py").write_text("def quick():\n    return 'done'\n")
    (tmp_path / "tools.yaml").write_text(
        "tools:\n  - name: quick\n    input_schema: {type: object}\n    handler: hang.py:quick\n"
    )
    server = mock(
        {
            "turns": [
                {"tool_calls": [{"name": "quick", "input": {}}]},
                {"text": "Second turn.\nMore.", "faults": [{"stall": 60, "at": 5}]},
            ]
        }
    )
    run = start(tmp_path, ["-t", "tools.yaml", "hi"], server.url)
    run.wait_for("stdout", b"Second")
    time.sleep(0.2)
    saved = finish(run, tmp_path, signum, code, word, "streaming turn 2")
    roles = [m["role"] for m in saved["messages"]]
    assert roles == ["user", "assistant", "user", "assistant"]
    assert saved["messages"][2]["content"][0]["content"] == "done"
    assert saved["messages"][3] == {"role": "assistant", "content": [{"type": "text", "text": "Second turn.\n"}]}
