"""Shared fixtures: the mock server on loopback, toolchat as a real subprocess, a clean environment."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import zygote
from toolchat.mock.server import MockServer

# Property tests play a sixth of their examples in the default run (the README's test command, kept
# to a few minutes); .ci/run plays every example again with TOOLCHAT_THOROUGH=1 (`-m thorough`).
THOROUGH = os.environ.get("TOOLCHAT_THOROUGH") == "1"


def examples(n: int) -> int:
    """How many hypothesis examples a property test with `n` thorough examples plays in this run."""
    return n if THOROUGH else max(20, n // 6)


ROOT = Path(__file__).resolve().parent.parent
SAMPLE_TOOLS = ROOT / "sample_tools.yaml"
TEST_KEY = "sk-ant-test-MARKER-0123456789"


# No test writes to the real conversation log: toolchat run in-process (resolve(flags, os.environ))
# logs into a folder of this test process, removed at exit; a subprocess gets clean_env's.
_HOME = tempfile.mkdtemp(prefix="toolchat-test-home-")
atexit.register(shutil.rmtree, _HOME, True)
os.environ["TOOLCHAT_HOME"] = _HOME
os.environ["XDG_DATA_HOME"] = os.path.join(_HOME, "data")


def clean_env(tmp_path: Path, **extra: str) -> dict:
    """The environment toolchat runs in for a test: no real keys, no user config, the conversation
    log in tmp_path/home/logs.db (so the leak check of the `toolchat` fixture reads it too)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "TOOLCHAT_", "OPENAI_")) and k not in ("NO_COLOR", "FORCE_COLOR")
    }
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    env["TOOLCHAT_HOME"] = str(tmp_path / "home")
    env["PYTHONPATH"] = str(ROOT)
    # Open-Meteo is unreachable here; point the weather tool at a closed loopback port.
    env["TOOLCHAT_GEOCODING_URL"] = "http://127.0.0.1:9"
    env["TOOLCHAT_FORECAST_URL"] = "http://127.0.0.1:9"
    env.update(extra)
    return env


@pytest.fixture
def mock():
    """Start a mock server: `mock(script=None, api_key=None)`; all are stopped after the test."""
    servers = []

    def start(script=None, api_key=None):
        server = MockServer(script=script, api_key=api_key).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def files_state(root: Path) -> dict:
    """{path: (mtime_ns, size)} of every file under `root`, to tell later which ones a run wrote."""
    state = {}
    for path in root.rglob("*"):
        try:
            if path.is_file():
                info = path.stat()
                state[path] = (info.st_mtime_ns, info.st_size)
        except OSError:
            pass
    return state


def assert_no_secret(*texts, root: Path | None = None, before: dict | None = None, secret: str = TEST_KEY) -> None:
    """The marker key is in none of `texts` (str or bytes), nor in any file under `root` that was
    written after the `before` snapshot (files_state) was taken."""
    for text in texts:
        if text is None:
            continue
        data = text if isinstance(text, bytes) else str(text).encode("utf-8", "replace")
        assert secret.encode() not in data, f"the API key leaked into output: {data[-2000:]!r}"
    if root is None:
        return
    for path, state in files_state(root).items():
        if before is not None and before.get(path) == state:
            continue
        if state[1] > 20_000_000:
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        assert secret.encode() not in data, f"the API key leaked into {path}"


class Run:
    def __init__(self, proc: subprocess.CompletedProcess):
        self.code = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def json(self) -> dict:
        return json.loads(self.out)

    def __repr__(self) -> str:
        return f"Run(code={self.code}, out={self.out[-500:]!r}, err={self.err[-1500:]!r})"


@pytest.fixture
def toolchat(tmp_path):
    """Run toolchat as a subprocess: `toolchat(*args, server=None, stdin=None, env=None)`.

    Every run is checked for leaks: the marker key TEST_KEY must not appear on stdout or stderr,
    nor in any file the run wrote under tmp_path (a --save transcript, ...)."""

    def run(
        *args: str,
        server=None,
        stdin: str | None = None,
        env: dict | None = None,
        key: str | None = TEST_KEY,
        timeout: float = 60,
    ) -> Run:
        environment = clean_env(tmp_path)
        if server is not None:
            environment["TOOLCHAT_BASE_URL"] = server.url
        if key is not None:
            environment["TOOLCHAT_API_KEY"] = key
        environment.update(env or {})
        before = files_state(tmp_path)
        proc = run_toolchat(list(args), environment, tmp_path, stdin, timeout)
        assert_no_secret(proc.stdout, proc.stderr, root=tmp_path, before=before)
        return Run(proc)

    return run


def popen_toolchat(args: list[str], env: dict, cwd: Path | None = None, text: bool = False) -> subprocess.Popen:
    """`python -m toolchat ARGS` started fresh, stdin from /dev/null, stdout and stderr pipes (bytes,
    or text with `text=True`): for tests that watch a run while it goes (read part of it, close the
    pipe, send a signal)."""
    return subprocess.Popen(
        [sys.executable, "-m", "toolchat", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
        text=text,
    )


def run_toolchat(
    args: list[str], env: dict, cwd: Path, stdin: str | bytes | None, timeout: float, text: bool = True
) -> subprocess.CompletedProcess:
    """`python -m toolchat ARGS` as `subprocess.run(..., capture_output=True, text=True)` would run
    it, forked from this worker's warm interpreter (tests/zygote.py) unless the environment asks for
    a fresh one (a start-up variable differs, or TOOLCHAT_TEST_FRESH=1)."""
    command = [sys.executable, "-m", "toolchat", *args]
    server = _zygote()
    as_text = all(isinstance(part, str) for part in [*args, *env.values()])  # bytes: fresh (exec takes them)
    if server is None or not as_text or zygote.startup_env(env) != server.startup:
        return subprocess.run(
            command,
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            text=text,
            env=env,
            cwd=cwd,
            timeout=timeout,
        )
    return server.run(command, env, cwd, stdin, timeout, text)


class _Zygote:
    def __init__(self):
        import tempfile

        self.folder = tempfile.mkdtemp(prefix="toolchat-zygote-")
        self.path = os.path.join(self.folder, "socket")
        env = clean_env(Path(self.folder))
        self.startup = zygote.startup_env(env)
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("zygote.py")), self.path],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            env=env,
        )
        if self.proc.stdout.readline() != b"ready\n":
            raise RuntimeError("tests/zygote.py did not start")

    def run(self, command, env, cwd, stdin, timeout, text=True) -> subprocess.CompletedProcess:
        import locale
        import signal
        import socket
        import threading
        import time

        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(self.path)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        if stdin is None:
            in_r, in_w = os.open(os.devnull, os.O_RDONLY), None
        else:
            in_r, in_w = os.pipe()
        header = json.dumps({"args": command[3:], "env": env, "cwd": str(cwd)}).encode("utf-8")
        socket.send_fds(conn, [header], [in_r, out_w, err_w])
        for fd in (in_r, out_w, err_w):
            os.close(fd)
        encoding = locale.getpreferredencoding(False)
        chunks: dict[int, list[bytes]] = {out_r: [], err_r: []}

        def drain(fd):
            with open(fd, "rb", buffering=0, closefd=True) as pipe:
                while data := pipe.read(65536):
                    chunks[fd].append(data)

        def feed():
            try:
                with open(in_w, "wb", closefd=True) as pipe:
                    pipe.write(stdin.encode(encoding) if isinstance(stdin, str) else stdin)
            except BrokenPipeError:
                pass

        threads = [threading.Thread(target=drain, args=(fd,), daemon=True) for fd in (out_r, err_r)]
        if in_w is not None:
            threads.append(threading.Thread(target=feed, daemon=True))
        for thread in threads:
            thread.start()
        replies = conn.makefile("rb")
        pid = json.loads(replies.readline())["pid"]
        deadline = time.monotonic() + timeout
        conn.settimeout(timeout)
        try:
            line = replies.readline()
        except (TimeoutError, socket.timeout):
            line = b""
        if not line:  # timed out: as subprocess.run does, kill it and say so
            os.kill(pid, signal.SIGKILL)
            raise subprocess.TimeoutExpired(command, timeout)
        status = json.loads(line)["status"]
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                raise subprocess.TimeoutExpired(command, timeout)
        conn.close()

        def output(fd):
            data = b"".join(chunks[fd])
            if not text:
                return data
            return data.decode(encoding).replace("\r\n", "\n").replace("\r", "\n")

        return subprocess.CompletedProcess(command, os.waitstatus_to_exitcode(status), output(out_r), output(err_r))


_ZYGOTE: list = []


def _zygote() -> _Zygote | None:
    if os.environ.get("TOOLCHAT_TEST_FRESH") == "1" or not hasattr(os, "fork"):
        return None
    if not _ZYGOTE:
        _ZYGOTE.append(_Zygote())
    return _ZYGOTE[0]


def zygote_path() -> str | None:
    """The warm interpreter's socket, for a shell's `toolchat` (zygote.py --client); None: run fresh."""
    server = _zygote()
    return None if server is None else server.path


def pytest_sessionfinish(session, exitstatus):
    for server in _ZYGOTE:
        server.proc.kill()
        server.proc.wait()
        import shutil

        shutil.rmtree(server.folder, ignore_errors=True)


def run_chat(server, prompt, tools_files=(), approve=None, notes: list | None = None, **overrides):
    """Run the chat loop in-process against `server` over real HTTP; return (events, result).
    `notes`, if given, collects what the chat says on stderr (its warn lines).

    Prompt caching is off unless `cache=True` is passed: these tests look at the transcript as
    sent, and test_caching.py looks at the breakpoints."""
    from toolchat.chat import Chat
    from toolchat.session import dialect_for, tool_runner
    from toolchat.settings import Settings
    from toolchat.transport import Transport

    overrides.setdefault("cache", False)
    settings = Settings(
        base_url=server.url,
        api_key=TEST_KEY,
        key_source="TOOLCHAT_API_KEY",
        tools=tuple(str(f) for f in tools_files),
        **overrides,
    )
    dialect = dialect_for(settings)  # api="openai" among the overrides: chat.completions
    transport = Transport(
        dialect.url(server.url),
        {**dialect.headers(settings), **settings.extra_headers()},  # as Session._connect sends them
        connect_timeout=overrides.get("connect_timeout", 5),
        read_timeout=overrides.get("read_timeout", 20),
    )
    chat = Chat(settings, dialect, transport, tool_runner(settings, approve))
    # Retries happen for real, but their waits are skipped: the Retry events carry the delays.
    chat.sleep = lambda seconds: None
    if notes is not None:
        chat.warn = notes.append
    messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
    try:
        events = list(chat.run(messages))
    finally:
        transport.close()
    return events, chat.result


def tokens(usage: dict) -> dict:
    """A run's usage without its cost_usd (runs with the default model are priced)."""
    return {k: v for k, v in usage.items() if k != "cost_usd"}


def sse(*events: dict, line_end: str = "\n", with_names: bool = True) -> str:
    """An SSE body from event payloads, each `event: TYPE` + `data: JSON` + blank line."""
    out = []
    for payload in events:
        lines = []
        if with_names:
            lines.append(f"event: {payload['type']}")
        lines.append("data: " + json.dumps(payload, ensure_ascii=False))
        out.append(line_end.join(lines) + line_end + line_end)
    return "".join(out)


def message_events(*blocks: dict, stop_reason: str = "end_turn", usage_out: int = 5) -> list[dict]:
    """The full Anthropic event sequence for a message made of `blocks`.

    A block is {"type": "text", "text": ...} | {"type": "tool_use", "id", "name", "json": [pieces]}
    | {"type": "thinking", "thinking", "signature"} | any other block, sent whole in its start event.
    """
    events = [
        {
            "type": "message_start",
            "message": {
                "id": "msg_t",
                "type": "message",
                "role": "assistant",
                "model": "m",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 10, "output_tokens": 1},
            },
        },
        {"type": "ping"},
    ]
    for index, block in enumerate(blocks):
        kind = block["type"]
        if kind == "text":
            events.append(
                {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}
            )
            for piece in block.get("pieces", [block["text"]]):
                events.append(
                    {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}}
                )
        elif kind == "tool_use":
            events.append(
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {
                        "type": "tool_use",
                        "id": block["id"],
                        "name": block["name"],
                        "input": block.get("start_input", {}),
                    },
                }
            )
            for piece in block.get("json", []):
                events.append(
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": piece},
                    }
                )
        elif kind == "thinking":
            events.append(
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "thinking", "thinking": "", "signature": ""},
                }
            )
            events.append(
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "thinking_delta", "thinking": block["thinking"]},
                }
            )
            events.append(
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "signature_delta", "signature": block["signature"]},
                }
            )
        else:
            events.append({"type": "content_block_start", "index": index, "content_block": block})
        events.append({"type": "content_block_stop", "index": index})
    events.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": usage_out},
        }
    )
    events.append({"type": "message_stop"})
    return events


# Wall-clock measurements that tests want shown in the session summary (e.g. interrupt latencies).
TIMINGS: list[str] = []


def pytest_terminal_summary(terminalreporter):
    if TIMINGS:
        terminalreporter.section("timings measured by the tests")
        for line in TIMINGS:
            terminalreporter.write_line(line)
