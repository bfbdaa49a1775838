"""MCP servers through the whole CLI: the mock model calls their tools by their offered names."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, TEST_KEY, clean_env, popen_toolchat
from test_mcp_servers import TEST_SERVER, TIME_SERVER, needs_time, survivors


def mcp_json(path: Path, servers: dict) -> str:
    path.write_text(json.dumps({"mcpServers": servers}))
    return str(path)


def fake(*args, **fields) -> dict:
    return {"command": sys.executable, "args": [TEST_SERVER, *args], **fields}


def calls(*pairs, then="{results}") -> dict:
    """A mock script: one turn calling these (name, input) tools, then a turn answering `then`."""
    return {"turns": [{"tool_calls": [{"name": n, "input": i} for n, i in pairs]}, {"text": then}]}


@pytest.fixture
def state(tmp_path):
    """XDG_STATE_HOME of the runs, where server logs go: {"XDG_STATE_HOME": ...}."""
    return {"XDG_STATE_HOME": str(tmp_path / "state")}


@needs_time
@pytest.mark.slow  # over 2.5 s: the slow set, which .ci/run plays after the default run
def test_a_dot_mcp_json_as_is_with_json_output(toolchat, mock, tmp_path, state):
    config = mcp_json(
        tmp_path / ".mcp.json",
        {"time": {"type": "stdio", "command": TIME_SERVER, "args": ["--local-timezone", "UTC"], "env": {}}},
    )
    server = mock(calls(("mcp__time__get_current_time", {"timezone": "Europe/Paris"}), then="It is {results}"))
    run = toolchat("--json", "--mcp-config", config, "What time is it in Paris?", server=server, env=state)
    assert run.code == 0, run
    doc = run.json()  # stdout is exactly one JSON document: server chatter went elsewhere
    [call] = doc["tool_calls"]
    assert (call["name"], call["source"], call["is_error"]) == ("mcp__time__get_current_time", "mcp:time", False)
    assert json.loads(call["output"])["timezone"] == "Europe/Paris"
    offered = [t["name"] for t in server.requests[0].body["tools"]]
    assert offered == ["mcp__time__get_current_time", "mcp__time__convert_time"]
    assert server.requests[0].body["tools"][0]["input_schema"]["required"] == ["timezone"]
    assert doc["messages"][2]["content"][0]["content"] == call["output"]
    assert doc["text"].startswith("It is mcp__time__get_current_time: {")


# Slow (several MCP server starts, ~5-30 s): in .ci/run's slow set, not the default run.
@pytest.mark.slow
def test_destructive_tools_fail_closed_without_a_terminal(toolchat, mock, tmp_path, state):
    config = mcp_json(tmp_path / "m.json", {"t": fake()})
    script = calls(("mcp__t__delete_file", {"path": "/x"}), ("mcp__t__add", {"a": 1, "b": 2}))
    refused = toolchat("--json", "--mcp-config", config, "go", server=mock(script), env=state).json()
    assert [(c["name"], c["is_error"]) for c in refused["tool_calls"]] == [
        ("mcp__t__delete_file", True),
        ("mcp__t__add", False),
    ]
    assert "no terminal" in refused["tool_calls"][0]["output"]
    for allow in (["--allow-tool", "mcp__t__delete_file"], ["--allow-tool", "mcp__t"], ["-y"]):
        allowed = toolchat("--json", "--mcp-config", config, *allow, "go", server=mock(script), env=state).json()
        assert [(c["output"], c["is_error"]) for c in allowed["tool_calls"]] == [("deleted /x", False), ("3", False)], (
            allow
        )


# Slow (several MCP server starts, ~5-30 s): in .ci/run's slow set, not the default run.
@pytest.mark.slow
def test_deny_by_server_and_by_tool(toolchat, mock, tmp_path, state):
    config = mcp_json(tmp_path / "m.json", {"a": fake(), "b": fake()})
    server = mock(calls(("mcp__b__add", {"a": 1, "b": 1})))
    run = toolchat(
        "--json",
        "--mcp-config",
        config,
        "--deny-tool",
        "mcp__a",
        "--deny-tool",
        "mcp__b__image",
        "go",
        server=server,
        env=state,
    )
    offered = [t["name"] for t in server.requests[0].body["tools"]]
    assert not [n for n in offered if n.startswith("mcp__a__")]
    assert "mcp__b__add" in offered and "mcp__b__image" not in offered
    assert run.json()["tool_calls"][0]["output"] == "2"
    unknown = toolchat("--mcp-config", config, "--deny-tool", "mcp__c", "go", server=mock(), env=state)
    assert unknown.code == 2 and unknown.err.startswith("toolchat: error: --deny-tool: no tool named 'mcp__c' ")


@pytest.mark.slow  # over 2.5 s: the slow set, which .ci/run plays after the default run
def test_mcp_servers_beside_tools_in_a_tools_yaml_and_the_env_variable(toolchat, mock, tmp_path, state):
    calc = tmp_path / "calc.py"
    calc.write_text("def add(a, b):\n    return a + b\n")
    tools = tmp_path / "tools.yaml"
    tools.write_text(
        "tools:\n  - name: calc\n    description: Add\n    input_schema: {type: object, properties: "
        "{a: {type: integer}, b: {type: integer}}}\n    handler: calc.py:add\n"
        f"mcp_servers:\n  t:\n    command: {sys.executable}\n    args: [{TEST_SERVER}]\n"
        "    deny: [crash, hang]\n"
    )
    other = mcp_json(tmp_path / "other.json", {"u": fake(deny=["crash"])})
    server = mock(
        calls(("calc", {"a": 2, "b": 3}), ("mcp__t__add", {"a": 4, "b": 5}), ("mcp__u__add", {"a": 1, "b": 0}))
    )
    run = toolchat("--json", "-t", str(tools), "go", server=server, env={**state, "TOOLCHAT_MCP_CONFIG": other})
    assert [c["output"] for c in run.json()["tool_calls"]] == ["5", "9", "1"], run
    assert [c["source"] for c in run.json()["tool_calls"]] == [str(tools), "mcp:t", "mcp:u"]
    offered = {t["name"] for t in server.requests[0].body["tools"]}
    assert {"calc", "mcp__t__add", "mcp__u__hang"} <= offered and not {"mcp__t__crash", "mcp__u__crash"} & offered


# Slow (several MCP server starts, ~5-30 s): in .ci/run's slow set, not the default run.
@pytest.mark.slow
def test_a_server_that_fails_to_start_is_exit_2_naming_it(toolchat, mock, tmp_path, state):
    config = mcp_json(tmp_path / "m.json", {"broken": fake("--fail-start")})
    server = mock()
    run = toolchat("--mcp-config", config, "hi", server=server, env=state)
    assert run.code == 2 and run.out == "" and server.requests == []
    assert run.err.startswith(
        f"toolchat: error: {config}: MCP server 'broken' failed to start: the server exited "
        "during initialize; its stderr ends: test server starting, pid "
    )
    assert run.err.endswith(" | fatal: the test server was told not to start\n") and run.err.count("\n") == 1
    optional = mcp_json(tmp_path / "o.json", {"broken": fake("--fail-start", optional=True)})
    went_on = toolchat("--mcp-config", optional, "hi", server=mock(), env=state)
    assert went_on.code == 0 and "(optional: going on without it)" in went_on.err


@pytest.mark.slow  # over 2.5 s: the slow set, which .ci/run plays after the default run
def test_a_server_that_crashes_mid_run(toolchat, mock, tmp_path, state):
    config = mcp_json(tmp_path / "m.json", {"t": fake()})
    script = {
        "turns": [
            {"tool_calls": [{"name": "mcp__t__crash", "input": {}}]},
            {"tool_calls": [{"name": "mcp__t__add", "input": {"a": 1, "b": 1}}]},
            {"text": "done"},
        ]
    }
    run = toolchat("--json", "--mcp-config", config, "go", server=mock(script), env=state)
    doc = run.json()
    assert run.code == 0 and doc["text"] == "done"
    assert [c["is_error"] for c in doc["tool_calls"]] == [True, True]
    assert doc["tool_calls"][1]["output"] == (
        "the MCP server 't' is not running (stopped: the server exited during a call)"
    )
    lines = [line for line in run.err.splitlines() if "MCP server 't' stopped" in line]
    assert len(lines) == 1 and "crash: exiting on request" in lines[0]


@needs_time
# Slow (several MCP server starts, ~5-30 s): in .ci/run's slow set, not the default run.
@pytest.mark.slow
def test_tools_list_run_and_mcp_list(toolchat, tmp_path, state):
    config = mcp_json(tmp_path / "m.json", {"time": {"command": TIME_SERVER}, "t": fake()})
    listed = toolchat("tools", "list", "--mcp-config", config, env=state)
    assert listed.code == 0
    assert listed.out.splitlines()[:3] == [
        "mcp__time__get_current_time\tGet current time in a specific timezone\tmcp:time",
        "mcp__time__convert_time\tConvert time between timezones\tmcp:time",
        "mcp__t__add\tAdd two integers\tmcp:t",
    ]
    assert "mcp__t__delete_file (confirm)\tDelete a file (pretend)\tmcp:t" in listed.out.splitlines()
    as_json = json.loads(toolchat("tools", "list", "--json", "--mcp-config", config, env=state).out)
    assert as_json[0]["name"] == "mcp__time__get_current_time" and as_json[0]["source"] == "mcp:time"
    ran = toolchat(
        "tools",
        "run",
        "mcp__time__get_current_time",
        "--input",
        '{"timezone": "Asia/Tokyo"}',
        "--mcp-config",
        config,
        env=state,
    )
    assert ran.code == 0 and json.loads(ran.out)["timezone"] == "Asia/Tokyo"
    failed = toolchat("tools", "run", "mcp__t__fail", "--input", "{}", "--mcp-config", config, env=state)
    assert (failed.code, failed.err) == (1, "toolchat: tool error: Error executing tool fail: it went wrong\n")
    config2 = mcp_json(
        tmp_path / "m2.json", {"time": {"command": TIME_SERVER}, "gone": {"command": "no-such-command-for-toolchat"}}
    )
    servers = toolchat("mcp", "list", "--mcp-config", config2, env=state)
    assert servers.code == 1
    assert servers.out.splitlines() == [
        f"time\tstdio\tready\t2 tools\t{TIME_SERVER}",
        "gone\tstdio\tfailed\t0 tools\tno-such-command-for-toolchat\tcommand: 'no-such-command-for-toolchat' not found",
    ]
    rows = json.loads(toolchat("mcp", "list", "--json", "--mcp-config", config2, env=state).out)
    assert [(r["name"], r["state"], r["tools"]) for r in rows] == [("time", "ready", 2), ("gone", "failed", 0)]


def marked(toolchat_pid: int) -> list[int]:
    """Processes carrying the environment mark of the MCP servers a toolchat process started."""
    mark = f"TOOLCHAT_MCP_OWNER={toolchat_pid}-".encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/environ", "rb") as file:
                    if any(item.startswith(mark) for item in file.read().split(b"\0")):
                        found.append(int(entry))
            except OSError:
                pass
    return found


@pytest.mark.parametrize("signal_number, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
# Slow (several MCP server starts, ~5-30 s): in .ci/run's slow set, not the default run.
@pytest.mark.slow
def test_no_orphans_after_ctrl_c_or_sigterm_of_a_real_run(mock, tmp_path, signal_number, code):
    config = mcp_json(tmp_path / "m.json", {"t": fake(), "u": fake()})
    server = mock(calls(("mcp__t__spawn_child", {}), ("mcp__t__hang", {"seconds": 600})))
    env = clean_env(
        tmp_path, TOOLCHAT_BASE_URL=server.url, TOOLCHAT_API_KEY=TEST_KEY, XDG_STATE_HOME=str(tmp_path / "state")
    )
    proc = popen_toolchat(["--json", "--mcp-config", config, "go"], env, tmp_path, text=True)
    log = tmp_path / "state" / "toolchat" / "mcp" / "t.log"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and "hang: sleeping" not in (log.read_text() if log.exists() else ""):
        time.sleep(0.05)
    children = marked(proc.pid)
    assert len(children) >= 3  # two servers and the grandchild one of them started
    proc.send_signal(signal_number)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    doc = json.loads(out)
    assert doc["error"]["type"] == ("interrupted" if code == 130 else "terminated")
    assert survivors(children) == [] and marked(proc.pid) == []


def test_runs_without_mcp_servers_do_not_import_the_sdk(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "toolchat",
            "--dry-run",
            "-t",
            str(ROOT / "sample_tools.yaml"),
            "hi",
        ],
        capture_output=True,
        text=True,
        env=clean_env(tmp_path, TOOLCHAT_API_KEY=TEST_KEY),
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "toolchat.toolsources.yaml" in imported
    assert not {"mcp", "mcp_types", "anyio", "httpx2", "toolchat.toolsources.mcp"} & imported
