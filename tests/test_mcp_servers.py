"""The MCP tool source against real servers: the official time server (PyPI), the "everything"
reference server (npm, run with node; stdio, streamable HTTP and SSE) and a small server written
with the SDK's own server API (tests/mcp_test_server.py) for crashes, hangs and slow starts."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from toolchat.toolsources.mcp import McpServerError, McpSource
from toolchat.toolsources.mcpconfig import load_json_file, parse_servers

from conftest import ROOT

TEST_SERVER = str(ROOT / "tests" / "mcp_test_server.py")
TIME_SERVER = shutil.which("mcp-server-time") or str(Path(sys.executable).with_name("mcp-server-time"))


def everything_js() -> str | None:
    """The everything server's entry point: $TOOLCHAT_TEST_NODE_MODULES or .ci/node_modules."""
    base = Path(os.environ.get("TOOLCHAT_TEST_NODE_MODULES") or ROOT / ".ci" / "node_modules")
    path = base / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
    return str(path) if path.is_file() and shutil.which("node") else None


needs_everything = pytest.mark.skipif(
    everything_js() is None,
    reason="@modelcontextprotocol/server-everything is not installed: .ci/run installs it with npm "
    "into .ci/node_modules (or set TOOLCHAT_TEST_NODE_MODULES); node is needed to run it",
)
needs_time = pytest.mark.skipif(
    not Path(TIME_SERVER).exists(), reason="mcp-server-time is not installed (pip install -e '.[test]')"
)


def alive(pid: int) -> bool:
    """Whether the process table holds a live (not zombie) process with this pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def survivors(pids: list[int], within: float = 10.0) -> list[int]:
    """The pids still alive after waiting up to `within` seconds for them to go (an exit takes a moment)."""
    deadline = time.monotonic() + within
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [pid for pid in pids if alive(pid)]


@pytest.fixture
def open_source(tmp_path):
    """`open_source(servers_mapping, env=None)` -> (started McpSource, warnings list); closed after."""
    sources = []

    def start(servers: dict, env: dict | None = None, start: bool = True):
        configs = parse_servers(
            servers, str(tmp_path / "mcp.json"), "mcpServers", env=os.environ if env is None else env, strict=False
        )
        warnings: list[str] = []
        source = McpSource(configs, log_dir=tmp_path / "logs", warn=warnings.append)
        sources.append(source)
        if start:
            source.start()
        return source, warnings

    yield start
    for source in sources:
        source.close()


def fake_server(*args: str, **fields) -> dict:
    return {"command": sys.executable, "args": [TEST_SERVER, *args], **fields}


def text_of(output) -> str:
    return output.text()


@needs_time
def test_the_official_time_server_offers_and_runs_its_tools(open_source):
    source, warnings = open_source({"time": {"command": TIME_SERVER, "args": ["--local-timezone", "UTC"]}})
    specs = {spec.name: spec for spec in source.tools()}
    assert sorted(specs) == ["mcp__time__convert_time", "mcp__time__get_current_time"]
    spec = specs["mcp__time__get_current_time"]
    assert (spec.source, spec.confirm, spec.timeout) == ("mcp:time", False, 60.0)  # read-only
    assert spec.description == "Get current time in a specific timezone"
    assert spec.input_schema["required"] == ["timezone"]
    assert spec.wire()["name"] == "mcp__time__get_current_time"
    output = source.call("mcp__time__get_current_time", {"timezone": "Asia/Tokyo"}, 30)
    answer = json.loads(text_of(output))
    assert (output.is_error, answer["timezone"], answer["datetime"][-6:]) == (False, "Asia/Tokyo", "+09:00")
    bad = source.call("mcp__time__get_current_time", {"timezone": "Mars/Olympus"}, 30)
    assert bad.is_error and "Mars/Olympus" in text_of(bad)
    assert source.servers()[0] | {"log": None, "origin": None} == {
        "name": "time",
        "transport": "stdio",
        "state": "ready",
        "tools": 2,
        "target": f"{TIME_SERVER} --local-timezone UTC",
        "error": None,
        "log": None,
        "origin": None,
    }
    assert warnings == []


@needs_everything
def test_a_dot_mcp_json_file_used_as_is_with_variables(open_source, tmp_path, monkeypatch):
    path = tmp_path / ".mcp.json"
    path.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "everything": {
                        "type": "stdio",
                        "command": "node",
                        "args": [everything_js(), "stdio"],
                        "env": {"TC_GREETING": "${TC_TEST_GREETING}", "TC_OTHER": "${TC_TEST_UNSET:-fallback}"},
                    }
                }
            }
        )
    )
    monkeypatch.setenv("TC_TEST_GREETING", "hello from the environment")
    monkeypatch.setenv("TC_TEST_SECRET", "must-not-reach-the-server")
    configs = load_json_file(path)
    source = McpSource(configs, log_dir=tmp_path / "logs")
    try:
        source.start()
        names = {spec.name for spec in source.tools()}
        assert {"mcp__everything__echo", "mcp__everything__get-env", "mcp__everything__get-tiny-image"} <= names
        echo = source.call("mcp__everything__echo", {"message": "hi"}, 30)
        assert (echo.content, echo.is_error) == ([{"type": "text", "text": "Echo: hi"}], False)
        env = json.loads(text_of(source.call("mcp__everything__get-env", {}, 30)))
        assert (env["TC_GREETING"], env["TC_OTHER"]) == ("hello from the environment", "fallback")
        assert "TC_TEST_SECRET" not in env  # only the entry's env and the SDK's safe few pass
        image = source.call("mcp__everything__get-tiny-image", {}, 30)
        kinds = [(b["type"], b.get("source", {}).get("media_type")) for b in image.content]
        assert ("image", "image/png") in kinds
        links = source.call("mcp__everything__get-resource-links", {"count": 2}, 30)
        assert sum(b["text"].startswith("[resource link: ") for b in links.content) == 2
        structured = source.call("mcp__everything__get-structured-content", {"location": "Chicago"}, 30)
        assert set(json.loads(structured.content[-1]["text"])) == {"temperature", "conditions", "humidity"}
    finally:
        source.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def everything_http(tmp_path):
    """The everything server in its HTTP modes: `start("streamableHttp" | "sse")` -> (port, process)."""
    processes = []

    def start(mode: str):
        port = free_port()
        log = open(tmp_path / f"everything-{mode}.log", "w")
        process = subprocess.Popen(
            ["node", everything_js(), mode],
            env={**os.environ, "PORT": str(port)},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        processes.append(process)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    return port, process
            if process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(
            f"the everything server did not listen: {(tmp_path / f'everything-{mode}.log').read_text()}"
        )

    yield start
    for process in processes:
        process.kill()
        process.wait()


@needs_everything
def test_streamable_http_server_and_its_death_mid_run(open_source, everything_http):
    port, process = everything_http("streamableHttp")
    source, warnings = open_source(
        {"web": {"type": "http", "url": f"http://127.0.0.1:{port}/mcp", "headers": {"X-Toolchat-Test": "1"}}}
    )
    echo = source.call("mcp__web__echo", {"message": "over http"}, 30)
    assert (echo.content, echo.is_error) == ([{"type": "text", "text": "Echo: over http"}], False)
    assert source.servers()[0]["transport"] == "http" and source.servers()[0]["tools"] >= 10
    process.kill()
    process.wait()
    first = source.call("mcp__web__echo", {"message": "anyone?"}, 30)
    later = source.call("mcp__web__get-sum", {"a": 1, "b": 2}, 30)
    assert first.is_error and later.is_error
    assert text_of(later).startswith("the MCP server 'web' is not running (stopped: ")
    assert len(warnings) == 1 and warnings[0].startswith("MCP server 'web' stopped: ")
    assert source.servers()[0]["state"] == "stopped"


@needs_everything
def test_legacy_sse_server(open_source, everything_http):
    port, _ = everything_http("sse")
    source, _ = open_source({"old": {"type": "sse", "url": f"http://127.0.0.1:{port}/sse"}})
    total = source.call("mcp__old__get-sum", {"a": 2, "b": 40}, 30)
    assert (total.is_error, "42" in text_of(total)) == (False, True)


@pytest.fixture
def refusing_http():
    """A plain HTTP server that answers 401 to everything and records the request headers."""
    import http.server
    import threading

    seen: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            seen.append(dict(self.headers))
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("kind, phase", [("http", "initialize"), ("sse", "connect")])
def test_http_headers_with_variables_are_sent_and_an_http_error_is_named(
    open_source, refusing_http, tmp_path, kind, phase
):
    base, seen = refusing_http
    source, _ = open_source(
        {"auth": {"type": kind, "url": f"{base}/mcp", "headers": {"Authorization": "Bearer ${TC_TOKEN}"}}},
        env={"TC_TOKEN": "t-123"},
        start=False,
    )
    with pytest.raises(McpServerError) as caught:
        source.start()
    assert caught.value.message == (
        f"{tmp_path / 'mcp.json'}: MCP server 'auth' failed to start: {base}/mcp: "
        f"HTTP 401 during {phase} (check the entry's headers)"
    )
    assert seen[0]["Authorization"] == "Bearer t-123"
    assert "t-123" not in caught.value.message


def test_an_http_server_that_is_not_there(open_source, tmp_path):
    source, _ = open_source({"down": {"url": "http://127.0.0.1:9/mcp"}}, start=False)
    with pytest.raises(McpServerError) as caught:
        source.start()
    assert caught.value.message == (
        f"{tmp_path / 'mcp.json'}: MCP server 'down' failed to start: "
        "http://127.0.0.1:9/mcp: cannot connect (All connection attempts failed)"
    )


def test_annotations_decide_approval_and_content_maps_to_blocks(open_source):
    source, _ = open_source({"t": fake_server()})
    specs = {spec.name: spec for spec in source.tools()}
    confirm = {name: spec.confirm for name, spec in specs.items()}
    assert (
        confirm["mcp__t__add"],
        confirm["mcp__t__delete_file"],
        confirm["mcp__t__write_note"],
        confirm["mcp__t__plain"],
    ) == (False, True, True, True)
    assert specs["mcp__t__delete_file"].annotations == {"destructiveHint": True}
    assert "mcp__t__odd_name" in specs  # "odd.name", mapped
    assert text_of(source.call("mcp__t__odd_name", {}, 30)) == "odd"
    assert source.call("mcp__t__add", {"a": 2, "b": 3}, 30).content == [{"type": "text", "text": "5"}]
    image = source.call("mcp__t__image", {}, 30)
    assert [b["type"] for b in image.content] == ["image"]
    assert image.content[0]["source"]["media_type"] == "image/png"
    audio = source.call("mcp__t__audio", {}, 30)
    assert audio.content == [
        {"type": "text", "text": "[audio of type audio/wav, 12 bytes: audio cannot be passed to the model]"}
    ]
    failed = source.call("mcp__t__fail", {"reason": "no such file"}, 30)
    assert (failed.is_error, text_of(failed)) == (True, "Error executing tool fail: no such file")
    weather = source.call("mcp__t__weather", {"city": "Oslo"}, 30)
    assert weather.content == [{"type": "text", "text": '{"city": "Oslo", "celsius": 21}'}]
    unknown = source.call("mcp__t__nope", {}, 30)
    assert (unknown.is_error, text_of(unknown)) == (True, "unknown MCP tool 'mcp__t__nope'")


@pytest.mark.slow  # over 2.5 s: the slow set, which .ci/run plays after the default run
def test_allow_deny_and_confirm_per_server(open_source):
    source, _ = open_source(
        {
            "a": fake_server(deny=["add", "mcp__a__image"], allow=["delete_file"]),
            "b": fake_server(deny=["mcp__b"]),
            "c": fake_server(confirm=["add"]),
            "d": fake_server(confirm=False),
        }
    )
    specs = {spec.name: spec for spec in source.tools()}
    assert "mcp__a__add" not in specs and "mcp__a__image" not in specs and "mcp__a__pid" in specs
    assert not [name for name in specs if name.startswith("mcp__b__")]
    assert specs["mcp__a__delete_file"].confirm is False and specs["mcp__a__plain"].confirm is True
    assert [n for n in specs if n.startswith("mcp__c__") and specs[n].confirm] == ["mcp__c__add"]
    assert not [n for n in specs if n.startswith("mcp__d__") and specs[n].confirm]
    assert [(s["name"], s["tools"]) for s in source.servers()] == [("a", 11), ("b", 0), ("c", 13), ("d", 13)]
    denied = source.call("mcp__a__add", {"a": 1, "b": 1}, 30)
    assert (denied.is_error, text_of(denied)) == (True, "unknown MCP tool 'mcp__a__add'")


def test_a_server_that_fails_to_start_names_itself_and_its_stderr(open_source, tmp_path):
    source, _ = open_source({"broken": fake_server("--fail-start")}, start=False)
    with pytest.raises(McpServerError) as caught:
        source.start()
    assert caught.value.exit_code == 2
    prefix = (
        f"{tmp_path / 'mcp.json'}: MCP server 'broken' failed to start: the server exited during "
        "initialize; its stderr ends: test server starting, pid "
    )
    assert caught.value.message.startswith(prefix)
    assert caught.value.message.endswith(" | fatal: the test server was told not to start")
    missing, _ = open_source({"gone": {"command": "no-such-command-for-toolchat"}}, start=False)
    with pytest.raises(McpServerError) as caught:
        missing.start()
    assert caught.value.message == (
        f"{tmp_path / 'mcp.json'}: MCP server 'gone' failed to start: command: 'no-such-command-for-toolchat' not found"
    )


# Slow (several MCP server starts, ~5-30 s): in .ci/run's slow set, not the default run.
@pytest.mark.slow
def test_startup_timeout_and_optional_servers(open_source, tmp_path):
    slow, _ = open_source({"slow": fake_server("--slow-start", "600", startup_timeout=1)}, start=False)
    with pytest.raises(McpServerError) as caught:
        slow.start()
    # (Whether its stderr had a line yet depends on how fast the machine is: not asserted.)
    assert caught.value.message.startswith(
        f"{tmp_path / 'mcp.json'}: MCP server 'slow' failed to start: no answer to initialize within 1 s "
        "(startup_timeout)"
    )
    source, warnings = open_source(
        {"slow": fake_server("--slow-start", "600", startup_timeout=1, optional=True), "ok": fake_server()}
    )
    assert [s.name for s in source.tools() if s.name.endswith("__add")] == ["mcp__ok__add"]
    assert len(warnings) == 1 and warnings[0].endswith("(optional: going on without it)")
    assert [(s["name"], s["state"]) for s in source.servers()] == [("slow", "failed"), ("ok", "ready")]
    assert text_of(source.call("mcp__ok__add", {"a": 1, "b": 1}, 30)) == "2"


def test_a_server_that_crashes_mid_call(open_source):
    source, warnings = open_source({"crashy": fake_server(), "steady": fake_server()})
    pid = int(text_of(source.call("mcp__crashy__pid", {}, 30)))
    crashed = source.call("mcp__crashy__crash", {}, 30)
    later = source.call("mcp__crashy__add", {"a": 1, "b": 1}, 30)
    assert crashed.is_error and later.is_error
    assert text_of(later) == ("the MCP server 'crashy' is not running (stopped: the server exited during a call)")
    assert len(warnings) == 1
    assert (
        warnings[0].startswith("MCP server 'crashy' stopped: the server exited during a call; its stderr ends: ")
        and "crash: exiting on request" in warnings[0]
    )
    assert warnings[0].endswith(f"; its tools now answer with errors (log: {source.servers()[0]['log']})")
    assert "crash: exiting on request" in Path(source.servers()[0]["log"]).read_text()
    assert survivors([pid]) == []
    assert text_of(source.call("mcp__steady__add", {"a": 2, "b": 2}, 30)) == "4"  # the run goes on


def test_a_hanging_call_times_out_and_the_server_still_answers(open_source):
    source, warnings = open_source({"t": fake_server(timeout=1)})
    assert source.tools()[0].timeout == 1.0
    hung = source.call("mcp__t__hang", {"seconds": 600}, 1)
    assert (hung.is_error, text_of(hung)) == (True, "the tool timed out after 1 s")
    assert text_of(source.call("mcp__t__add", {"a": 1, "b": 2}, 30)) == "3"
    assert warnings == []


@pytest.mark.slow  # over 2.5 s: the slow set, which .ci/run plays after the default run
def test_close_leaves_no_process_behind(open_source):
    source, _ = open_source({"t": fake_server(), "u": fake_server()})
    pids = [int(text_of(source.call(f"mcp__{s}__pid", {}, 30))) for s in ("t", "u")]
    grandchild = int(text_of(source.call("mcp__t__spawn_child", {}, 30)))
    assert all(alive(pid) for pid in [*pids, grandchild])
    source.close()
    assert survivors([*pids, grandchild]) == []
    assert [s["state"] for s in source.servers()] == ["closed", "closed"]
    after = source.call("mcp__t__add", {"a": 1, "b": 1}, 30)
    assert (after.is_error, text_of(after)) == (True, "the MCP server 't' is not running (closed)")


@pytest.mark.slow
def test_a_server_that_ignores_sigterm_and_hangs_is_killed(open_source):
    source, _ = open_source({"stubborn": fake_server("--stubborn")})
    pid = int(text_of(source.call("mcp__stubborn__pid", {}, 30)))
    source.call("mcp__stubborn__hang", {"seconds": 600}, 1)  # a worker thread stays busy
    source.close()
    assert survivors([pid]) == []


@pytest.mark.slow  # over 2.5 s: the slow set, which .ci/run plays after the default run
def test_server_stderr_goes_to_its_log_and_with_debug_to_stderr_neutralised(tmp_path, capfd):
    configs = parse_servers({"t": fake_server("--banner", " \x1b]0;title\x07\x1b[2J")}, "m.json", "mcpServers")
    source = McpSource(configs, log_dir=tmp_path / "logs", debug=True)
    try:
        source.start()
        pid = text_of(source.call("mcp__t__pid", {}, 30))
    finally:
        source.close()
    err = capfd.readouterr().err
    assert f"[mcp t] test server starting, pid {pid} \\x1b]0;title\\a\\x1b[2J\n" in err
    assert "\x1b" not in err
    assert (
        (tmp_path / "logs" / "t.log")
        .read_text()
        .startswith(f"test server starting, pid {pid} \x1b]0;title\x07\x1b[2J\n")
    )
    quiet = McpSource(configs, log_dir=tmp_path / "quiet")
    try:
        quiet.start()
    finally:
        quiet.close()
    # Only this source's lines count: a mock server left by another test in the same worker
    # may log a client's disconnect to the same fd 2 at any moment.
    quiet_err = [line for line in capfd.readouterr().err.splitlines() if not line.startswith("mock server:")]
    assert quiet_err == []


START_SCRIPT = """
import sys
from pathlib import Path
from toolchat.toolsources.mcpconfig import parse_servers
from toolchat.toolsources.mcp import McpSource
server = {"command": sys.executable, "args": [sys.argv[1], "--slow-start", "600"], "startup_timeout": 600}
source = McpSource(parse_servers({"slow": server}, "m.json", "mcpServers"), log_dir=Path(sys.argv[2]))
try:
    source.start()
except KeyboardInterrupt:
    print("interrupted", flush=True)
    raise SystemExit(130)
"""


# Slow (several MCP server starts, ~5-30 s): in .ci/run's slow set, not the default run.
@pytest.mark.slow
def test_ctrl_c_while_servers_start_ends_them(tmp_path):
    script = tmp_path / "start.py"
    script.write_text(START_SCRIPT)
    log = tmp_path / "logs" / "slow.log"
    proc = subprocess.Popen(
        [sys.executable, str(script), TEST_SERVER, str(tmp_path / "logs")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and "pid" not in (log.read_text() if log.exists() else ""):
        time.sleep(0.05)
    pid = int(log.read_text().split("pid ")[1].split()[0])
    assert alive(pid)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, out, err) == (130, "interrupted\n", "")
    assert survivors([pid]) == []


CTRL_C_SCRIPT = """
import sys
from pathlib import Path
from toolchat.toolsources.mcpconfig import parse_servers
from toolchat.toolsources.mcp import McpSource
server = {"command": sys.executable, "args": [sys.argv[1]]}
source = McpSource(parse_servers({"a": server}, "m.json", "mcpServers"), log_dir=Path(sys.argv[2]))
source.start()
pids = [source.call(name, {}, 30).text() for name in ("mcp__a__pid", "mcp__a__spawn_child")]
try:
    print(" ".join(pids), flush=True)
    source.call("mcp__a__hang", {"seconds": 600}, 600)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    source.close()
    raise SystemExit(130)
"""


@pytest.mark.slow  # over 2.5 s: the slow set, which .ci/run plays after the default run
def test_ctrl_c_during_a_call_ends_every_server(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(CTRL_C_SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), TEST_SERVER, str(tmp_path / "logs")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    pids = [int(p) for p in proc.stdout.readline().split()]
    assert len(pids) == 2 and all(alive(pid) for pid in pids)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, out, err) == (130, "interrupted\n", "")
    assert survivors(pids) == []


@pytest.mark.slow
def test_processes_are_ended_at_exit_even_without_close(tmp_path):
    script = tmp_path / "run.py"
    # Starts, prints the pids and exits without close(): the atexit hook ends the servers.
    script.write_text(CTRL_C_SCRIPT.split("try:")[0] + 'print(" ".join(pids))\n')
    proc = subprocess.run(
        [sys.executable, str(script), TEST_SERVER, str(tmp_path / "logs")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    pids = [int(p) for p in proc.stdout.split()]
    assert (proc.returncode, len(pids), proc.stderr) == (0, 2, "")
    assert survivors(pids) == []


def test_the_runner_applies_its_policy_to_mcp_tools(open_source):
    from toolchat.toolsources.base import Call
    from toolchat.toolsources.runner import ToolRunner

    source, _ = open_source({"t": fake_server()})
    asked = []

    def refuse(spec, call):  # as without a terminal: fail closed
        asked.append(spec.name)
        return "not run: it needs confirmation and there is no terminal to ask"

    runner = ToolRunner([source], approve=refuse, deny=["mcp__t__plain"], output_cap=100)
    calls = [
        Call("1", "mcp__t__delete_file", {"path": "/x"}),
        Call("2", "mcp__t__add", {"a": 1, "b": 2}),
        Call("3", "mcp__t__image", {}),
        Call("4", "mcp__t__add", {"a": "one"}),
        Call("5", "mcp__t__plain", {"text": "x"}),
    ]
    results = {r.id: r for r in runner.run(calls)}
    assert asked == ["mcp__t__delete_file"]
    assert (results["1"].is_error, results["1"].output) == (
        True,
        "not run: it needs confirmation and there is no terminal to ask",
    )
    assert (results["2"].is_error, results["2"].result_content(), results["2"].source) == (False, "3", "mcp:t")
    assert results["3"].result_content()[0]["type"] == "image" and results["3"].output == "[image/png]"
    assert (results["4"].is_error, results["4"].output) == (
        True,
        "invalid input: 'b' is a required property (and 1 more problem)",
    )  # the inputSchema, checked here
    assert results["5"].is_error and "denied" in results["5"].output
    assert runner.run_one(Call("6", "mcp__t__delete_file", {"path": "/y"})).output == "deleted /y"
    assert sorted(source.expand("mcp__t")) == sorted(runner.all) and source.expand("mcp__nope") is None
