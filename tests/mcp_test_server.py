"""A small MCP server written with the SDK's own server API (MCPServer, formerly FastMCP).

For what the reference servers do not do on request: crash, hang, start slowly, fail to start,
mark tools destructive, return images, audio and isError. Run as
`python tests/mcp_test_server.py [--slow-start S] [--fail-start] [--stubborn]`.
"""

from __future__ import annotations

import argparse
import base64
import os
import signal
import subprocess
import sys
import time

from mcp.server.mcpserver import Audio, Image, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ToolAnnotations

# A 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
READ_ONLY = ToolAnnotations(readOnlyHint=True, destructiveHint=False)

server = MCPServer("toolchat-test-server")


@server.tool(description="Add two integers", annotations=READ_ONLY)
def add(a: int, b: int) -> str:
    return str(a + b)


@server.tool(description="Delete a file (pretend)", annotations=ToolAnnotations(destructiveHint=True))
def delete_file(path: str) -> str:
    return f"deleted {path}"


@server.tool(
    description="Append a note: writes, but destroys nothing",
    annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False),
)
def write_note(text: str) -> str:
    return f"noted {text}"


@server.tool(description="No annotations at all")
def plain(text: str) -> str:
    return text.upper()


@server.tool(description="A 1x1 PNG image", annotations=READ_ONLY)
def image() -> Image:
    return Image(data=PNG, format="png")


@server.tool(description="A short audio clip", annotations=READ_ONLY)
def audio() -> Audio:
    return Audio(data=b"RIFF\x00\x00\x00\x00WAVE", format="wav")


@server.tool(description="Always fails", annotations=READ_ONLY)
def fail(reason: str = "it went wrong") -> str:
    raise ToolError(reason)  # the SDK's way to say isError, without a logged traceback


@server.tool(description="Sleep for a while", annotations=READ_ONLY)
def hang(seconds: float = 3600) -> str:
    sys.stderr.write("hang: sleeping\n")
    sys.stderr.flush()
    time.sleep(seconds)
    return "woke up"


@server.tool(description="Exit the server process at once", annotations=READ_ONLY)
def crash() -> str:
    sys.stderr.write("crash: exiting on request\n")
    sys.stderr.flush()
    os._exit(3)


@server.tool(description="The server's process id", annotations=READ_ONLY)
def pid() -> str:
    return str(os.getpid())


@server.tool(description="Start a grandchild process that sleeps; returns its pid", annotations=READ_ONLY)
def spawn_child() -> str:
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(3600)"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return str(child.pid)


@server.tool(name="odd.name", description="A tool whose name needs mapping", annotations=READ_ONLY)
def odd() -> str:
    return "odd"


@server.tool(description="Structured content only, no text block", annotations=READ_ONLY)
def weather(city: str) -> CallToolResult:
    return CallToolResult(content=[], structured_content={"city": city, "celsius": 21})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slow-start", type=float, default=0)
    parser.add_argument("--fail-start", action="store_true")
    parser.add_argument("--stubborn", action="store_true", help="ignore SIGTERM")
    parser.add_argument("--banner", default="", help="more text for the first stderr line")
    options = parser.parse_args()
    sys.stderr.write(f"test server starting, pid {os.getpid()}{options.banner}\n")
    sys.stderr.flush()
    if options.stubborn:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if options.fail_start:
        sys.stderr.write("fatal: the test server was told not to start\n")
        sys.exit(1)
    if options.slow_start:
        time.sleep(options.slow_start)
    server.run()


if __name__ == "__main__":
    main()
