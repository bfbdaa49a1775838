"""MCP configuration, tool names, approval and result mapping: the pure parts, no server started."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from toolchat.errors import ToolsFileError
from toolchat.toolsources.mcp import needs_confirm
from toolchat.toolsources.mcpconfig import (
    ServerConfig,
    check_unique,
    load_json_file,
    load_yaml_servers,
    offered_names,
    parse_servers,
)
from toolchat.toolsources.mcpresult import to_blocks

from conftest import ROOT

CLAUDE_CODE_MCP_JSON = {
    "mcpServers": {
        "time": {"type": "stdio", "command": "uvx", "args": ["mcp-server-time", "--local-timezone=UTC"], "env": {}},
        "api": {
            "type": "http",
            "url": "${API_BASE_URL:-https://api.example.com}/mcp",
            "headers": {"Authorization": "Bearer ${API_KEY}"},
        },
        "legacy": {"type": "sse", "url": "http://127.0.0.1:9/sse"},
    }
}


def write(path, data):
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def test_claude_code_mcp_json_is_read_as_is(tmp_path):
    path = write(tmp_path / ".mcp.json", CLAUDE_CODE_MCP_JSON)
    servers = load_json_file(path, env={"API_KEY": "k-123"})
    assert [(s.name, s.transport) for s in servers] == [("time", "stdio"), ("api", "http"), ("legacy", "sse")]
    time, api, legacy = servers
    assert (time.command, time.args, time.env) == ("uvx", ("mcp-server-time", "--local-timezone=UTC"), ())
    assert api.url == "https://api.example.com/mcp"
    assert api.headers == (("Authorization", "Bearer k-123"),)
    assert (time.timeout, time.startup_timeout, time.optional, time.confirm) == (60.0, 30.0, False, None)
    assert legacy.url == "http://127.0.0.1:9/sse" and time.origin == str(path)


def test_claude_desktop_and_cursor_files_with_other_clients_keys(tmp_path):
    # Claude Desktop: no type; Cursor: a url alone is streamable HTTP; Cline/Roo add their own keys.
    path = write(
        tmp_path / "claude_desktop_config.json",
        {
            "globalShortcut": "Ctrl+Space",
            "mcpServers": {
                "fs": {
                    "command": "npx",
                    "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"],
                    "autoApprove": ["read_file"],
                    "alwaysAllow": [],
                    "description": "files",
                },
                "remote": {"url": "https://mcp.example.com/mcp"},
                "off": {"command": "nothing-to-run", "disabled": True},
            },
        },
    )
    servers = load_json_file(path, env={})
    assert [(s.name, s.transport, s.target()) for s in servers] == [
        ("fs", "stdio", "npx -y @modelcontextprotocol/server-filesystem /tmp"),
        ("remote", "http", "https://mcp.example.com/mcp"),
    ]


def test_variables_expand_in_command_args_env_cwd_url_and_headers(tmp_path):
    env = {"BIN": "/opt/bin", "TOKEN": "t0k", "EMPTY": "", "HOST": "h.example"}
    servers = parse_servers(
        {
            "a": {
                "command": "${BIN}/server",
                "args": ["--token=${TOKEN}", "${MISSING:-fallback}", "${EMPTY:-d}"],
                "env": {"KEY": "${TOKEN}", "BLANK": "${EMPTY}"},
                "cwd": "${BIN}",
            },
            "b": {"url": "https://${HOST}:${PORT:-8443}/mcp", "headers": {"X-Key": "${TOKEN}"}},
        },
        str(tmp_path / "m.json"),
        "mcpServers",
        env=env,
        strict=False,
    )
    a, b = servers
    assert (a.command, a.args) == ("/opt/bin/server", ("--token=t0k", "fallback", "d"))
    assert a.env == (("KEY", "t0k"), ("BLANK", "")) and a.cwd == "/opt/bin"
    assert (b.url, b.headers) == ("https://h.example:8443/mcp", (("X-Key", "t0k"),))


@pytest.mark.parametrize(
    "entry, message",
    [
        (
            {"command": "x", "env": {"K": "${NOPE}"}},
            "server 's': env.K: ${NOPE} is not set in the environment (set it, or write ${NOPE:-default})",
        ),
        ({"url": "https://${NOPE}/mcp"}, "server 's': url: ${NOPE} is not set in the environment"),
        ({"args": ["x"]}, "server 's': command: required for a stdio server (or give url for an HTTP server)"),
        ({"command": "x", "args": "--flag"}, "server 's': args: must be a list of strings"),
        ({"command": "x", "args": [["nested"]]}, "server 's': args[0]: must be a string"),
        ({"command": "x", "env": ["K=V"]}, "server 's': env: must be a mapping of names to strings"),
        ({"type": "websocket", "url": "ws://x"}, "server 's': type: must be one of stdio, http, sse"),
        ({"type": "http", "command": "x"}, "server 's': url: required for a http server"),
        ({"url": "ftp://example.com"}, "server 's': url: must be an http(s) URL"),
        (
            {"url": "https://e.com", "headers": {"Bad Name": "v"}},
            "server 's': headers.Bad Name: must be a header name and a one-line value",
        ),
        ({"command": "x", "timeout": 0}, "server 's': timeout: must be a number of seconds greater than 0"),
        (
            {"command": "x", "startup_timeout": "30"},
            "server 's': startup_timeout: must be a number of seconds greater than 0",
        ),
        ({"command": "x", "optional": "yes"}, "server 's': optional: must be true or false"),
        ({"command": "x", "confirm": "add"}, "server 's': confirm: must be a list of tool names"),
        ({"command": "x", "deny": "add"}, "server 's': deny: must be a list of tool names"),
        ({"command": "x", "allow": [1]}, "server 's': allow: must be a list of tool names"),
        ("npx server", "server 's': expected a mapping with command (stdio) or url (HTTP)"),
    ],
)
def test_every_error_names_the_file_the_server_and_the_field(tmp_path, entry, message):
    path = write(tmp_path / "mcp.json", {"mcpServers": {"s": entry}})
    with pytest.raises(ToolsFileError) as caught:
        load_json_file(path, env={})
    assert caught.value.message.startswith(f"{path}: {message}")
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    "text, message",
    [
        ("{", "not valid JSON at line 1, column 2: Expecting property name enclosed in double quotes"),
        ('{"servers": {}}', 'expected a JSON object with "mcpServers"'),
        ('{"mcpServers": []}', "mcpServers: expected a mapping of server names to settings"),
    ],
)
def test_a_file_that_is_not_an_mcp_config_says_so(tmp_path, text, message):
    path = write(tmp_path / "mcp.json", text)
    with pytest.raises(ToolsFileError) as caught:
        load_json_file(path)
    assert caught.value.message == f"{path}: {message}"


def test_missing_file(tmp_path):
    with pytest.raises(ToolsFileError) as caught:
        load_json_file(tmp_path / "none.json")
    assert caught.value.message == f"{tmp_path / 'none.json'}: MCP config file not found"


def test_mcp_servers_beside_tools_in_a_tools_yaml(tmp_path):
    path = tmp_path / "tools.yaml"
    path.write_text(
        "tools: []\nmcp_servers:\n  time:\n    command: mcp-server-time\n    timeout: 5\n"
        "    startup_timeout: 10\n    optional: true\n    confirm: [convert_time]\n"
        "    allow: [get_current_time]\n    deny: [other]\n    cwd: sub\n"
    )
    (server,) = load_yaml_servers(path, env={})
    assert (server.name, server.command, server.timeout, server.startup_timeout, server.optional) == (
        "time",
        "mcp-server-time",
        5.0,
        10.0,
        True,
    )
    assert (server.confirm, server.allow, server.deny) == (
        frozenset({"convert_time"}),
        frozenset({"get_current_time"}),
        frozenset({"other"}),
    )
    assert server.cwd == str(tmp_path / "sub")  # relative to the file, as handler paths are
    plain = tmp_path / "plain.yaml"
    plain.write_text("tools: []\n")
    assert load_yaml_servers(plain) == []


def test_our_own_yaml_is_strict_about_unknown_fields(tmp_path):
    path = tmp_path / "tools.yaml"
    path.write_text("mcp_servers:\n  time:\n    command: mcp-server-time\n    startup_timout: 10\n")
    with pytest.raises(ToolsFileError) as caught:
        load_yaml_servers(path)
    assert caught.value.message.startswith(f"{path}: server 'time': startup_timout: unknown field (expected one of: ")
    path.write_text("mcp_servers:\n  time:\n    command: x\n    url: http://e.com\n")
    with pytest.raises(ToolsFileError) as caught:
        load_yaml_servers(path)
    assert caught.value.message == f"{path}: server 'time': url: only for http and sse servers"


def test_server_names_are_unique_across_files(tmp_path):
    one = parse_servers({"time": {"command": "a"}}, "one.json", "mcpServers")
    two = parse_servers({"time": {"command": "b"}}, "two.json", "mcpServers")
    with pytest.raises(ToolsFileError) as caught:
        check_unique(one + two)
    assert caught.value.message == "two.json: server 'time': name: already defined in one.json"
    with pytest.raises(ToolsFileError) as caught:
        parse_servers({"my.server": {"command": "a"}, "my_server": {"command": "b"}}, "m.json", "mcpServers")
    assert caught.value.message == (
        "m.json: server 'my_server': name: same tool prefix 'mcp__my_server' as server 'my.server'"
    )


def server(name="srv", **fields) -> ServerConfig:
    return ServerConfig(name=name, origin="m.json", transport="stdio", command="x", **fields)


def test_offered_names_follow_claude_codes_convention_within_the_api_limit():
    a, b = server("time"), server("my server.v2")
    long_tool = "t" * 80
    names = offered_names(
        [(a, "get_current_time"), (b, "read.file"), (b, "read_file"), (a, long_tool), (a, "ok-name_1")]
    )
    assert names[("time", "get_current_time")] == "mcp__time__get_current_time"
    assert names[("time", "ok-name_1")] == "mcp__time__ok-name_1"
    # read.file and read_file both map to mcp__my_server_v2__read_file: both get a hash, stably.
    assert names[("my server.v2", "read.file")] != names[("my server.v2", "read_file")]
    for name in names.values():
        assert len(name) <= 64 and all(c.isalnum() or c in "_-" for c in name)
    assert names[("time", long_tool)].startswith("mcp__time__ttt") and len(names[("time", long_tool)]) == 64
    again = offered_names([(a, long_tool), (b, "read_file"), (b, "read.file")])
    assert again[("time", long_tool)] == names[("time", long_tool)]
    assert again[("my server.v2", "read.file")] == names[("my server.v2", "read.file")]


@pytest.mark.parametrize(
    "annotations, fields, expected",
    [
        ({}, {}, True),  # the spec's defaults: may destroy
        ({"readOnlyHint": True}, {}, False),
        ({"readOnlyHint": True, "destructiveHint": True}, {}, True),  # contradictory: ask
        ({"readOnlyHint": False, "destructiveHint": False}, {}, True),  # writes: ask
        ({"destructiveHint": True}, {}, True),
        ({"destructiveHint": True}, {"confirm": False}, False),  # the entry overrides
        ({"readOnlyHint": True}, {"confirm": True}, True),
        ({"readOnlyHint": True}, {"confirm": frozenset({"tool"})}, True),
        ({}, {"confirm": frozenset({"other"})}, False),
        ({}, {"confirm": True, "allow": frozenset({"tool"})}, False),  # allowed: never asks
        ({}, {"allow": frozenset({"mcp__srv__tool"})}, False),
        ({}, {"allow": frozenset({"mcp__srv"})}, False),
        ({}, {"allow": frozenset({"mcp__other"})}, True),
    ],
)
def test_approval_from_annotations_and_the_entry(annotations, fields, expected):
    assert needs_confirm(server(**fields), "tool", "mcp__srv__tool", annotations) is expected


PNG = "iVBORw0KGgo="


@pytest.mark.parametrize(
    "result, blocks, is_error",
    [
        ({"content": [{"type": "text", "text": "hi"}]}, [{"type": "text", "text": "hi"}], False),
        ({"content": [{"type": "text", "text": "bad"}], "isError": True}, [{"type": "text", "text": "bad"}], True),
        (
            {"content": [{"type": "image", "data": PNG, "mimeType": "image/png"}]},
            [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}],
            False,
        ),
        (
            {"content": [{"type": "image", "data": PNG, "mimeType": "image/svg+xml"}]},
            [{"type": "text", "text": "[image of type image/svg+xml, 8 bytes: not an image type the model can read]"}],
            False,
        ),
        (
            {"content": [{"type": "audio", "data": "AAAA", "mimeType": "audio/wav"}]},
            [{"type": "text", "text": "[audio of type audio/wav, 3 bytes: audio cannot be passed to the model]"}],
            False,
        ),
        (
            {
                "content": [
                    {"type": "resource", "resource": {"uri": "file:///a.txt", "mimeType": "text/plain", "text": "body"}}
                ]
            },
            [{"type": "text", "text": "[resource file:///a.txt (text/plain)]\nbody"}],
            False,
        ),
        (
            {"content": [{"type": "resource", "resource": {"uri": "file:///a.bin", "blob": "AAAA"}}]},
            [{"type": "text", "text": "[resource file:///a.bin: binary, 3 bytes, not shown]"}],
            False,
        ),
        (
            {
                "content": [
                    {"type": "resource", "resource": {"uri": "file:///a.png", "mimeType": "image/png", "blob": PNG}}
                ]
            },
            [
                {"type": "text", "text": "[resource file:///a.png (image/png)]"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            ],
            False,
        ),
        (
            {
                "content": [
                    {
                        "type": "resource_link",
                        "uri": "file:///r",
                        "name": "r",
                        "mimeType": "text/plain",
                        "description": "a file",
                    }
                ]
            },
            [{"type": "text", "text": "[resource link: r <file:///r> (text/plain): a file]"}],
            False,
        ),
        ({"content": [], "structuredContent": {"t": 21}}, [{"type": "text", "text": '{"t": 21}'}], False),
        (
            {"content": [{"type": "text", "text": '{"t": 21}'}], "structuredContent": {"t": 21}},
            [{"type": "text", "text": '{"t": 21}'}],
            False,
        ),  # already said as text
        (
            {"content": [{"type": "text", "text": "3"}], "structuredContent": {"result": "3"}},
            [{"type": "text", "text": "3"}],
            False,
        ),  # MCPServer's wrapping
        (
            {"content": [{"type": "text", "text": "Sunny"}], "structuredContent": {"t": 21}},
            [{"type": "text", "text": "Sunny"}, {"type": "text", "text": '{"t": 21}'}],
            False,
        ),
        (
            {"content": [{"type": "video"}]},
            [{"type": "text", "text": "[content of type 'video' that toolchat does not pass on]"}],
            False,
        ),
        ({}, [], False),
    ],
)
def test_results_map_to_tool_result_blocks(result, blocks, is_error):
    assert to_blocks(result) == (blocks, is_error)


def test_reading_config_and_importing_the_source_do_not_import_the_sdk():
    code = (
        "import sys; import toolchat.toolsources.mcp, toolchat.toolsources.mcpconfig as c; "
        "c.parse_servers({'t': {'command': 'x'}}, 'f', 'mcpServers'); "
        "print(sorted(m for m in sys.modules if m == 'mcp' or m.startswith(('mcp.', 'mcp_types', 'anyio', 'httpx2'))))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "[]\n", "")
