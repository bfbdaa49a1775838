"""MCP servers as a tool source: stdio, streamable HTTP and legacy SSE, over the official `mcp` SDK.

The SDK is asyncio-based; this source keeps it on one event-loop thread of its own and stays
synchronous to its caller: `start()` brings every server up concurrently (each bounded by its
`startup_timeout`), `call()` waits on the loop in short slices so Ctrl-C lands at once, `close()`
ends every server process (the SDK closes stdin, then terminates and kills the process group).

The SDK is imported on the loop thread, when a server is first started: importing this module does
not import it, so runs without MCP servers never pay for it.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import concurrent.futures
import logging
import math
import os
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from ..errors import UsageError
from ..text import one_line
from .base import ToolOutput, ToolSource, ToolSpec
from .mcpconfig import ServerConfig, check_unique, default_log_dir, matches, offered_names
from .mcpprocess import OWNER_VAR, StderrLog, sweep
from .mcpresult import to_blocks

_WAIT_SLICE = 0.1  # how long the caller's thread blocks at a time: Ctrl-C lands within this
_CLOSE_LIMIT = 15.0  # the SDK's own shutdown is bounded (about 7 s); this guards against a hang
_PAGE_LIMIT = 100  # tools/list pages: a paginator that never ends cannot hang the start


class McpServerError(UsageError):
    """A configured MCP server could not be started (exit 2); names the server and why."""

    type = "mcp_server_error"


def _note(text: str) -> ToolOutput:
    return ToolOutput.of_text(text, is_error=True)


def needs_confirm(server: ServerConfig, tool: str, offered: str, annotations: dict) -> bool:
    """Whether a tool asks before it runs: the entry's allow and confirm, else its annotations.

    Per the MCP spec's defaults a tool without annotations may be destructive; only a tool that
    says it is read-only (and not destructive) runs without asking. Hints from an untrusted server
    can only lower the consent asked for by saying "read-only".
    """
    if matches(server.allow, server, tool, offered):
        return False
    if isinstance(server.confirm, bool):
        return server.confirm
    if server.confirm is not None:
        return matches(server.confirm, server, tool, offered)
    return annotations.get("destructiveHint") is True or annotations.get("readOnlyHint") is not True


class _Server:
    """One configured server: its life on the loop (start, serve, stop) and its calls."""

    def __init__(
        self,
        config: ServerConfig,
        log_dir: Path | None,
        echo: Callable[[str], None] | None,
        on_lost: Callable[["_Server", str], None],
        owner: str,
    ):
        self.config = config
        self._owner = owner  # the environment mark of this run's server processes
        self._on_lost = on_lost  # told when a started server goes away on its own
        self.state = "starting"  # starting | ready | failed | stopped | closed
        self.error: str | None = None
        self.tools: list[dict] = []  # tools/list entries, wire JSON
        self.settled = threading.Event()  # ready or failed
        self.finished = threading.Event()  # the transport is shut down (the process has ended)
        self.log_path = log_dir / f"{config.key}.log" if log_dir and config.transport == "stdio" else None
        self.stderr: StderrLog | None = None
        self._echo = echo  # --debug: each stderr line of the server shown as it comes
        self._session: Any = None  # mcp.ClientSession, once started
        self._scope: Any = None  # anyio.CancelScope
        self._stop_requested = False
        self._phase = "connect"
        self.http_status: int | None = None  # the last HTTP error status the server answered with
        self.deadline: float | None = None  # of the start, once the SDK is imported and it began

    # -- on the loop thread ------------------------------------------------------------------

    def stop(self) -> None:
        self._stop_requested = True
        if self._scope is not None:
            self._scope.cancel()

    async def life(self) -> None:
        try:
            await self._life()
        finally:
            if self.stderr is not None:
                self.stderr.release_writer()
            self.finished.set()
            self.settled.set()

    async def _life(self) -> None:
        import anyio
        from contextlib import AsyncExitStack

        config = self.config
        try:
            from mcp import ClientSession
            from mcp.types import Implementation

            from .. import __version__

            scope = anyio.CancelScope(deadline=anyio.current_time() + config.startup_timeout)
            self._scope = scope
            self.deadline = time.monotonic() + config.startup_timeout
            if self._stop_requested:
                scope.cancel()
            with scope:
                async with AsyncExitStack() as stack:
                    read, write = await self._open(stack)
                    self._phase = "initialize"
                    session = await stack.enter_async_context(
                        ClientSession(read, write, client_info=Implementation(name="toolchat", version=__version__))
                    )
                    await session.initialize()
                    self._phase = "tools/list"
                    self.tools = await self._list(session)
                    self._session = session
                    scope.deadline = math.inf  # started: from now on only stop() ends it
                    self.state = "ready"
                    self.settled.set()
                    await anyio.sleep_forever()
            if self.state == "starting":
                if self._stop_requested:
                    self._fail("stopped before it had started")
                else:
                    self._fail(f"no answer to {self._phase} within {config.startup_timeout:g} s (startup_timeout)")
        except Exception as exc:  # every way a start can fail ends as one message for the user
            if self.state == "starting":
                self._fail(_describe(_root(exc), config, self._phase, self.http_status))
            elif self.state == "ready" and not self._stop_requested:
                self._on_lost(self, _describe(_root(exc), config, "serving"))
        if self.state == "ready":
            if self._stop_requested:
                self.state = "closed"
            else:
                self._on_lost(self, "the connection ended")

    def _fail(self, reason: str) -> None:
        self.state, self.error = "failed", reason

    async def _open(self, stack):
        config = self.config
        if config.transport == "stdio":
            from mcp.client.stdio import StdioServerParameters, stdio_client

            if config.cwd is not None and not os.path.isdir(config.cwd):
                raise _StartProblem(f"cwd: folder {config.cwd!r} not found")
            # The SDK passes only HOME, PATH, SHELL, TERM, USER and LOGNAME on, plus `env`: the API
            # key in toolchat's environment never reaches a server. The mark lets close() find
            # what the server left running (see mcpprocess.sweep).
            assert config.command is not None  # mcpconfig: a stdio server has a command
            params = StdioServerParameters(
                command=config.command,
                args=list(config.args),
                env={**dict(config.env), OWNER_VAR: self._owner},
                cwd=config.cwd,
            )
            self.stderr = StderrLog(config.name, self.log_path, self._echo)
            try:
                return await stack.enter_async_context(stdio_client(params, errlog=self.stderr.writer))
            finally:
                self.stderr.release_writer()  # the child has its copy (or never started)
        assert config.url is not None  # mcpconfig: an http or sse server has a url
        if config.transport == "http":
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            async def note(response) -> None:
                # The SDK turns an HTTP error into a JSON-RPC error without the status; keep it.
                if response.status_code >= 400:
                    self.http_status = response.status_code

            # The MCP transports' own defaults (30 s, 300 s between bytes of a stream); headers
            # go on the client, which streamable_http_client takes for exactly this.
            client = await stack.enter_async_context(
                httpx2.AsyncClient(
                    headers=dict(config.headers),
                    timeout=httpx2.Timeout(30.0, read=300.0),
                    event_hooks={"response": [note]},
                )
            )
            return await stack.enter_async_context(streamable_http_client(config.url, http_client=client))
        from mcp.client.sse import sse_client

        return await stack.enter_async_context(sse_client(config.url, headers=dict(config.headers) or None))

    async def _list(self, session) -> list[dict]:
        from mcp.types import PaginatedRequestParams

        tools: list[dict] = []
        cursor = None
        for _ in range(_PAGE_LIMIT):
            params = PaginatedRequestParams(cursor=cursor) if cursor else None
            result = await session.list_tools(params=params)
            tools += [t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in result.tools]
            cursor = result.next_cursor
            if not cursor:
                break
        return tools

    async def call(self, tool: str, arguments: dict, timeout: float) -> dict:
        import anyio

        with anyio.fail_after(timeout):
            result = await self._session.call_tool(tool, arguments)
        return result.model_dump(by_alias=True, exclude_none=True, mode="json")

    # -- for messages --------------------------------------------------------------------------

    def stderr_tail(self) -> str:
        """The last lines of the server's stderr, one safe line, for messages ('' if none)."""
        if self.stderr is None:
            return ""
        self.stderr.eof.wait(0.5)  # a process that just died may still be flushing
        return one_line(" | ".join(self.stderr.tail()), 300)


class _StartProblem(Exception):
    """A start failure already worded for the user."""


def _root(exc: BaseException) -> BaseException:
    """The first real exception inside (nested) exception groups of anyio task groups."""
    while True:
        inner = getattr(exc, "exceptions", None)
        if not inner:
            return exc
        real = [e for e in inner if not isinstance(e, (asyncio.CancelledError, GeneratorExit))]
        exc = (real or list(inner))[0]


def _describe(exc: BaseException, config: ServerConfig, phase: str, status: int | None = None) -> str:
    """Why a server failed, in words: the command, the connection, or what the protocol said."""
    module = type(exc).__module__ or ""
    if status is None and module.startswith("httpx"):
        status = getattr(getattr(exc, "response", None), "status_code", None)
    if status is not None and config.transport != "stdio":
        hint = " (check the entry's headers)" if status in (401, 403) else ""
        return f"{config.url}: HTTP {status} during {phase}{hint}"
    if isinstance(exc, _StartProblem):
        return str(exc)
    if isinstance(exc, FileNotFoundError) and config.transport == "stdio":
        return f"command: {config.command!r} not found"
    if isinstance(exc, PermissionError) and config.transport == "stdio":
        return f"command: {config.command!r} cannot be run (permission denied)"
    name = type(exc).__name__
    code = getattr(exc, "code", None)
    message = one_line(str(getattr(exc, "message", None) or exc) or name, 200)
    if module.startswith("mcp") and code == -32000:  # CONNECTION_CLOSED
        return (
            f"the server closed the connection during {phase}"
            if config.transport != "stdio"
            else f"the server exited during {phase}"
        )
    if module.startswith("httpx"):
        return f"{config.url}: cannot connect ({message})"
    if module.startswith("mcp") and isinstance(code, int):
        return f"MCP error {code} during {phase}: {message}"
    return f"{name} during {phase}: {message}"


def _print_line(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _print_warning(message: str) -> None:
    sys.stderr.write(f"toolchat: {message}\n")
    sys.stderr.flush()


class McpSource(ToolSource):
    """Every configured MCP server, as one tool source whose tools are named `mcp__<server>__<tool>`."""

    name = "mcp"

    def __init__(
        self,
        servers: list[ServerConfig],
        *,
        log_dir: Path | None = None,
        debug: bool = False,
        warn: Callable[[str], None] | None = None,
    ):
        check_unique(servers)
        log_dir = default_log_dir() if log_dir is None else log_dir
        self._owner = f"{os.getpid()}-{uuid.uuid4().hex}"
        echo = (lambda line: self.show(line)) if debug else None
        self._servers = [_Server(s, log_dir, echo, self._mark_stopped, self._owner) for s in servers]
        # Where its warnings go (a server stopped, an optional one that failed): the Session points
        # it at the view once there is one, so a line from the event-loop thread never cuts through
        # the live display.
        self.warn: Callable[[str], None] = warn or _print_warning
        self.show: Callable[[str], None] = _print_line  # --debug: the servers' stderr lines, likewise
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._futures: list[concurrent.futures.Future] = []
        self._specs: list[ToolSpec] = []
        self._routes: dict[str, tuple[_Server, str]] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._started = False

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> list[str]:
        """Start every server concurrently; return the warnings for optional servers that failed.

        Raises McpServerError (exit 2) naming the first required server that failed, with the tail
        of its stderr, after every server has been stopped again.
        """
        if self._started:
            return []
        self._started = True
        self._quiet_sdk_logging()
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="mcp-loop", daemon=True)
        self._thread.start()
        atexit.register(self.close)  # a run that ends without close() still ends its servers
        try:
            for server in self._servers:
                self._futures.append(asyncio.run_coroutine_threadsafe(server.life(), loop))
            self._await_settled()
        except BaseException:
            self.close()
            raise
        warnings = []
        for server in self._servers:
            if server.state == "failed":
                message = self._failure(server)
                if not server.config.optional:
                    self.close()
                    raise McpServerError(message)
                warnings.append(f"{message} (optional: going on without it)")
        for warning in warnings:
            self.warn(warning)
        self._build_specs()
        return warnings

    def _await_settled(self) -> None:
        for server in self._servers:
            while not server.settled.wait(_WAIT_SLICE):
                # The start is bounded on the loop by a cancel scope; this guards against an SDK
                # that does not honour it. (The clock starts once the SDK is imported.)
                if server.deadline is not None and time.monotonic() > server.deadline + 10:
                    server._fail(f"no answer within {server.config.startup_timeout:g} s (startup_timeout)")
                    break
            if server.state == "failed" and not server.config.optional:
                return  # no need to wait for the others: they are stopped on the way out

    def _failure(self, server: _Server) -> str:
        config = server.config
        message = f"{config.origin}: MCP server {config.name!r} failed to start: {server.error}"
        tail = server.stderr_tail()
        if tail:
            message += f"; its stderr ends: {tail}"
        return message

    def close(self) -> None:
        """End every server (terminate, then kill after a grace period) and the loop thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        loop = self._loop
        if loop is None:
            return
        for server in self._servers:
            loop.call_soon_threadsafe(server.stop)
        limit = time.monotonic() + _CLOSE_LIMIT
        interrupted: BaseException | None = None
        for server in self._servers:
            while not server.finished.is_set() and time.monotonic() < limit:
                try:
                    server.finished.wait(_WAIT_SLICE)
                except KeyboardInterrupt as exc:  # a second Ctrl-C must not leave orphans behind
                    interrupted = exc
        try:
            asyncio.run_coroutine_threadsafe(_cancel_rest(), loop).result(2)
        except Exception:
            pass
        loop.call_soon_threadsafe(loop.stop)
        if any(s.config.transport == "stdio" for s in self._servers):
            sweep(self._owner)
        if self._thread is not None:
            self._thread.join(2)
        if not loop.is_running():
            loop.close()
        try:
            atexit.unregister(self.close)
        except Exception:
            pass
        if interrupted is not None:
            raise interrupted

    def __enter__(self) -> "McpSource":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the ToolSource interface ------------------------------------------------------------------

    def tools(self) -> list[ToolSpec]:
        if not self._started:
            self.start()
        return list(self._specs)

    def _build_specs(self) -> None:
        pairs = [(s, t["name"]) for s in self._servers if s.state == "ready" for t in s.tools]
        names = offered_names([(s.config, tool) for s, tool in pairs])
        for server, tool in pairs:
            entry = next(t for t in server.tools if t["name"] == tool)
            config = server.config
            offered = names[(config.name, tool)]
            if matches(config.deny, config, tool, offered):
                continue
            annotations = entry.get("annotations") or {}
            schema = entry.get("inputSchema")
            schema = schema if isinstance(schema, dict) else {}
            schema = schema if schema.get("type") == "object" else {"type": "object", **schema}
            self._routes[offered] = (server, tool)
            self._specs.append(
                ToolSpec(
                    name=offered,
                    description=entry.get("description") or "",
                    input_schema=schema,
                    source=f"mcp:{config.name}",
                    timeout=config.timeout,
                    confirm=needs_confirm(config, tool, offered, annotations),
                    annotations=dict(annotations),
                )
            )

    def call(self, name: str, input: dict, timeout: float) -> ToolOutput:
        """Call one tool; every failure is an error output the model sees (never raises but Ctrl-C)."""
        route = self._routes.get(name)
        if route is None:
            return _note(f"unknown MCP tool {name!r}")
        server, tool = route
        if server.state != "ready" or self._loop is None:
            return _note(self._stopped_note(server))
        future = asyncio.run_coroutine_threadsafe(server.call(tool, input, timeout), self._loop)
        deadline = time.monotonic() + timeout + 5  # the coroutine times itself out; this is a guard
        try:
            while not future.done():
                concurrent.futures.wait([future], timeout=_WAIT_SLICE)
                if time.monotonic() > deadline:
                    future.cancel()
                    return _note(f"the tool timed out after {timeout:g} s")
        except BaseException:
            future.cancel()  # Ctrl-C: stop waiting now; close() ends the server
            raise
        try:
            raw = future.result()
        except concurrent.futures.CancelledError:
            return _note("the call was cancelled")
        except TimeoutError:
            return _note(f"the tool timed out after {timeout:g} s")
        except Exception as exc:
            return self._call_failed(server, _root(exc))
        blocks, is_error = to_blocks(raw)
        return ToolOutput(blocks, is_error)

    def _call_failed(self, server: _Server, exc: BaseException) -> ToolOutput:
        import anyio

        code = getattr(exc, "code", None)
        module = type(exc).__module__ or ""
        lost = (
            isinstance(exc, (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream, ConnectionError))
            or (module.startswith("mcp") and code == -32000)
            or module.startswith("httpx")
        )
        if lost:
            self._mark_stopped(server, _describe(exc, server.config, "a call"))
            return _note(self._stopped_note(server))
        if module.startswith("mcp") and isinstance(code, int):
            return _note(f"MCP error {code}: {getattr(exc, 'message', None) or exc}")
        return _note(f"{type(exc).__name__}: {str(exc).strip() or '(no message)'}")

    def _mark_stopped(self, server: _Server, reason: str) -> None:
        with self._lock:
            if server.state != "ready":
                return
            server.state, server.error = "stopped", reason
        tail = server.stderr_tail()
        log = f" (log: {server.log_path})" if server.log_path else ""
        self.warn(
            f"MCP server {server.config.name!r} stopped: {reason}"
            + (f"; its stderr ends: {tail}" if tail else "")
            + f"; its tools now answer with errors{log}"
        )

    def _stopped_note(self, server: _Server) -> str:
        why = f": {server.error}" if server.error else ""
        return f"the MCP server {server.config.name!r} is not running ({server.state}{why})"

    def expand(self, name: str) -> list[str] | None:
        """The offered names of every tool of the server whose prefix is `name` (`mcp__<server>`),
        or None when `name` is no server's prefix: --allow-tool / --deny-tool take either."""
        for server in self._servers:
            if server.config.prefix == name:
                return [spec.name for spec in self._specs if spec.source == f"mcp:{server.config.name}"]
        return None

    # -- for listings ------------------------------------------------------------------------------

    def servers(self) -> list[dict]:
        """Each server: name, transport, state, tool count, target, error, log file, origin."""
        counts = collections.Counter(spec.source for spec in self._specs)
        return [
            {
                "name": s.config.name,
                "transport": s.config.transport,
                "state": s.state,
                "tools": counts.get(f"mcp:{s.config.name}", 0),
                "target": s.config.target(),
                "error": s.error,
                "log": str(s.log_path) if s.log_path else None,
                "origin": s.config.origin,
            }
            for s in self._servers
        ]

    @staticmethod
    def _quiet_sdk_logging() -> None:
        # The SDK logs through `logging`; with no handler Python's last resort would print its
        # warnings over the live view. Keep them off the terminal (--debug shows server stderr).
        for name in ("mcp", "httpx2"):
            logger = logging.getLogger(name)
            if not logger.handlers:
                logger.addHandler(logging.NullHandler())
                logger.propagate = False


async def _cancel_rest() -> None:
    """Cancel what is left on the loop (abandoned calls) so it stops cleanly."""
    current = asyncio.current_task()
    rest = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    for task in rest:
        task.cancel()
    if rest:
        await asyncio.wait(rest, timeout=1)
