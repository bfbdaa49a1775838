"""MCP server configuration: the files users already have -> checked ServerConfig values.

Two forms: the JSON `{"mcpServers": {NAME: {...}}}` of Claude Desktop, Claude Code (`.mcp.json`) and
Cursor, read as is; and `mcp_servers:` (the same mapping) in a toolchat tools YAML beside `tools:`.
`${VAR}` and `${VAR:-default}` expand from the environment in command, args, env, cwd, url and
headers, so secrets stay out of files. Every error names the file, the server and the field.

Pure: no MCP SDK here, so reading a config costs nothing the run would not pay anyway.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ..errors import ToolsFileError

if TYPE_CHECKING:
    from .mcp import McpSource

DEFAULT_TIMEOUT = 60.0
DEFAULT_STARTUP_TIMEOUT = 30.0
TRANSPORTS = ("stdio", "http", "sse")
# Spellings of the streamable HTTP transport found in the wild (Claude Code says "http").
_TYPE_ALIASES = {
    "stdio": "stdio",
    "http": "http",
    "streamable-http": "http",
    "streamable_http": "http",
    "streamablehttp": "http",
    "sse": "sse",
}
_KEYS = {
    "type",
    "command",
    "args",
    "env",
    "cwd",
    "url",
    "headers",
    "timeout",
    "startup_timeout",
    "optional",
    "confirm",
    "allow",
    "deny",
}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_-]")
NAME_LIMIT = 64  # the Messages API's tool name limit: ^[a-zA-Z0-9_-]{1,64}$


@dataclass(frozen=True)
class ServerConfig:
    """One configured MCP server, checked and with `${VAR}` expanded."""

    name: str  # as configured (the key of the mapping)
    origin: str  # the file it came from, for messages
    transport: str  # stdio | http | sse
    command: str | None = None
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    cwd: str | None = None
    url: str | None = None
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # may hold credentials
    timeout: float = DEFAULT_TIMEOUT
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT
    optional: bool = False
    confirm: bool | frozenset[str] | None = None  # None: from the tools' annotations
    allow: frozenset[str] = frozenset()  # run without asking (as --allow-tool)
    deny: frozenset[str] = frozenset()  # never offered (as --deny-tool)

    @property
    def key(self) -> str:
        """The server's name as it appears in offered tool names (`mcp__<key>__<tool>`)."""
        return _NAME_CHARS.sub("_", self.name)

    @property
    def prefix(self) -> str:
        """`mcp__<key>`: the name that stands for every tool of this server in allow/deny lists."""
        return f"mcp__{self.key}"

    def target(self) -> str:
        """What the server is, for listings: the command line or the URL (never the headers)."""
        if self.transport == "stdio":
            return " ".join([self.command or "", *self.args])
        return self.url or ""


# ---------------------------------------------------------------------------------------------
# Names


def offered_names(pairs: list[tuple[ServerConfig, str]]) -> dict[tuple[str, str], str]:
    """(server name, MCP tool name) -> the name offered to the model, `mcp__<server>__<tool>`.

    Deterministic: characters outside [a-zA-Z0-9_-] become `_`; a name over 64 characters, or one
    that collides with another after mapping, is cut and ends in a stable hash of the original names.
    """
    base = {(server.name, tool): f"{server.prefix}__{_NAME_CHARS.sub('_', tool)}" for server, tool in pairs}
    counts: dict[str, int] = {}
    for name in base.values():
        counts[name] = counts.get(name, 0) + 1
    offered = {}
    for (server_name, tool), name in base.items():
        if len(name) > NAME_LIMIT or counts[name] > 1:
            import hashlib  # here: every run imports this module, few need a hash (~5 ms at start-up)

            digest = hashlib.sha256(f"{server_name}\0{tool}".encode()).hexdigest()[:8]
            name = f"{name[: NAME_LIMIT - 9]}_{digest}"
        offered[(server_name, tool)] = name
    return offered


def matches(names: frozenset[str] | set[str], server: ServerConfig, tool: str, offered: str) -> bool:
    """Whether a name list covers this tool: by its MCP name, its offered name or the server's prefix."""
    return bool(names) and (tool in names or offered in names or server.prefix in names)


# ---------------------------------------------------------------------------------------------
# Loading


def load_json_file(path: str | Path, env: Mapping[str, str] | None = None) -> list[ServerConfig]:
    """Servers of a `{"mcpServers": {...}}` JSON file (Claude Desktop, Claude Code, Cursor) as is.

    Keys other clients add (`disabled`, `autoApprove`, `description`...) are ignored, except that
    `disabled: true` leaves the server out, as it does in the clients that write it.
    """
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ToolsFileError(f"{where}: MCP config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ToolsFileError(f"{where}: cannot read the MCP config file ({exc})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ToolsFileError(f"{where}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    if not isinstance(doc, dict) or "mcpServers" not in doc:
        raise ToolsFileError(f'{where}: expected a JSON object with "mcpServers"')
    return parse_servers(doc["mcpServers"], where, "mcpServers", env, strict=False)


def load_yaml_servers(path: str | Path, env: Mapping[str, str] | None = None) -> list[ServerConfig]:
    """Servers of the `mcp_servers:` mapping in a tools YAML file (none if it has no such key)."""
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ToolsFileError(f"{where}: tools file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ToolsFileError(f"{where}: cannot read the tools file ({exc})") from None
    import yaml

    try:
        doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ToolsFileError(f"{where}: not valid YAML{at}: {problem}") from None
    if not isinstance(doc, dict) or doc.get("mcp_servers") is None:
        return []
    return parse_servers(doc["mcp_servers"], where, "mcp_servers", env, strict=True)


def parse_servers(
    entries: Any, where: str, key: str, env: Mapping[str, str] | None = None, strict: bool = True
) -> list[ServerConfig]:
    """Check a mapping of server name -> entry. `strict`: unknown fields are errors (our own YAML)."""
    env = os.environ if env is None else env
    if not isinstance(entries, dict):
        raise ToolsFileError(f"{where}: {key}: expected a mapping of server names to settings")
    servers = []
    keys: dict[str, str] = {}
    for name, entry in entries.items():
        if not isinstance(name, str) or not name.strip():
            raise ToolsFileError(f"{where}: {key}: server names must be non-empty strings")
        if isinstance(entry, dict) and entry.get("disabled") is True and not strict:
            continue
        server = parse_server(name, entry, where, env, strict)
        if server.key in keys:
            raise ToolsFileError(
                f"{where}: server {name!r}: name: same tool prefix {server.prefix!r} as server {keys[server.key]!r}"
            )
        keys[server.key] = name
        servers.append(server)
    return servers


def parse_server(name: str, entry: Any, where: str, env: Mapping[str, str], strict: bool = True) -> ServerConfig:
    def fail(field_name: str, problem: str) -> ToolsFileError:
        return ToolsFileError(f"{where}: server {name!r}: {field_name}: {problem}")

    if not isinstance(entry, dict):
        raise ToolsFileError(f"{where}: server {name!r}: expected a mapping with command (stdio) or url (HTTP)")
    if strict:
        unknown = sorted(set(entry) - _KEYS)
        if unknown:
            raise fail(unknown[0], "unknown field (expected one of: " + ", ".join(sorted(_KEYS)) + ")")

    def expand(value: str, field_name: str) -> str:
        def one(match: re.Match) -> str:
            var, default = match.group(1), match.group(2)
            if default is not None:  # as in the shell: the default also stands in for ""
                return env.get(var) or default
            if var in env:
                return env[var]
            raise fail(field_name, f"${{{var}}} is not set in the environment (set it, or write ${{{var}:-default}})")

        return _VAR.sub(one, value)

    def text(field_name: str, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise fail(field_name, "must be a string")
        return expand(str(value), field_name)

    def mapping(field_name: str) -> tuple[tuple[str, str], ...]:
        value = entry.get(field_name)
        if value is None:
            return ()
        if not isinstance(value, dict):
            raise fail(field_name, "must be a mapping of names to strings")
        pairs = []
        for key_, item in value.items():
            label = f"{field_name}.{key_}"
            if not isinstance(key_, str) or not key_:
                raise fail(field_name, "names must be non-empty strings")
            pairs.append((key_, text(label, item)))
        return tuple(pairs)

    def seconds(field_name: str, default: float) -> float:
        value = entry.get(field_name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise fail(field_name, "must be a number of seconds greater than 0")
        return float(value)

    def names(field_name: str) -> frozenset[str]:
        value = entry.get(field_name)
        if value is None:
            return frozenset()
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise fail(field_name, "must be a list of tool names")
        return frozenset(value)

    kind = entry.get("type")
    if kind is not None:
        if not isinstance(kind, str) or kind.lower() not in _TYPE_ALIASES:
            raise fail("type", "must be one of stdio, http, sse")
        kind = _TYPE_ALIASES[kind.lower()]
    elif "url" in entry and "command" not in entry:
        kind = "http"  # Cursor and Claude Code: a url alone means streamable HTTP
    else:
        kind = "stdio"

    fields: dict[str, Any] = {}
    if kind == "stdio":
        if entry.get("command") is None:
            raise fail("command", "required for a stdio server (or give url for an HTTP server)")
        command = text("command", entry["command"]).strip()
        if not command:
            raise fail("command", "must not be empty")
        args = entry.get("args", [])
        if args is None:
            args = []
        if not isinstance(args, list):
            raise fail("args", "must be a list of strings")
        fields.update(
            command=command, args=tuple(text(f"args[{i}]", a) for i, a in enumerate(args)), env=mapping("env")
        )
        cwd = entry.get("cwd")
        if cwd is not None:
            cwd = Path(text("cwd", cwd)).expanduser()
            if not cwd.is_absolute():
                cwd = Path(where).resolve().parent / cwd  # beside the config file, as for handlers
            fields["cwd"] = str(cwd)
        for stray in ("url", "headers"):
            if stray in entry and strict:
                raise fail(stray, "only for http and sse servers")
    else:
        if entry.get("url") is None:
            raise fail("url", f"required for a {kind} server")
        url = text("url", entry["url"]).strip()
        if not re.match(r"^https?://[^/\s]", url):
            raise fail("url", "must be an http(s) URL")
        headers = mapping("headers")
        for key_, value in headers:
            if any(c in key_ for c in " \t\r\n:") or "\n" in value or "\r" in value:
                raise fail(f"headers.{key_}", "must be a header name and a one-line value")
        fields.update(url=url, headers=headers)
        for stray in ("command", "args", "env", "cwd"):
            if stray in entry and strict:
                raise fail(stray, "only for stdio servers")

    optional = entry.get("optional", False)
    if not isinstance(optional, bool):
        raise fail("optional", "must be true or false")
    confirm = entry.get("confirm")
    if confirm is not None and not isinstance(confirm, bool):
        confirm = names("confirm")
    return ServerConfig(
        name=name,
        origin=where,
        transport=kind,
        timeout=seconds("timeout", DEFAULT_TIMEOUT),
        startup_timeout=seconds("startup_timeout", DEFAULT_STARTUP_TIMEOUT),
        optional=optional,
        confirm=confirm,
        allow=names("allow"),
        deny=names("deny"),
        **fields,
    )


def collect(
    tools_files: list[str] | tuple[str, ...],
    config_files: list[str] | tuple[str, ...],
    env: Mapping[str, str] | None = None,
) -> list[ServerConfig]:
    """Every configured server: `mcp_servers:` of the tools files, then the JSON config files."""
    servers: list[ServerConfig] = []
    for path in tools_files:
        if mentions_servers(path):  # most tools files have none: no second YAML parse for them
            servers += load_yaml_servers(path, env)
    for path in config_files:
        servers += load_json_file(path, env)
    check_unique(servers)
    return servers


def mentions_servers(path: str | Path) -> bool:
    """Whether a tools file may hold `mcp_servers:` (a cheap look at the text, before YAML parsing)."""
    try:
        return "mcp_servers" in Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def default_log_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where server stderr goes: $XDG_STATE_HOME/toolchat/mcp (~/.local/state/toolchat/mcp)."""
    env = os.environ if env is None else env
    base = env.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "toolchat" / "mcp"


def check_unique(servers: list[ServerConfig]) -> None:
    """Server names must be unique across every file (their tools' names would collide)."""
    seen: dict[str, ServerConfig] = {}
    for server in servers:
        other = seen.get(server.key)
        if other is not None:
            raise ToolsFileError(
                f"{server.origin}: server {server.name!r}: name: already defined in "
                f"{other.origin}" + (f" as {other.name!r}" if other.name != server.name else "")
            )
        seen[server.key] = server


def source_for(
    tools_files, config_files, *, debug: bool = False, warn: Callable[[str], None] | None = None
) -> "McpSource | None":
    """The started MCP source of every server the settings configure, or None when there is none.

    Reading the configuration costs no SDK import; only a configured server starts the loop.
    """
    servers = collect(list(tools_files), list(config_files))
    if not servers:
        return None
    from .mcp import McpSource  # the source (asyncio, threads) only when a server is configured

    source = McpSource(servers, debug=debug, warn=warn)
    source.start()
    return source


def expand_names(names, source) -> tuple[str, ...]:
    """Tool names for --allow-tool / --deny-tool, `mcp__<server>` standing for all of its tools."""
    if source is None:
        return tuple(names)
    out: list[str] = []
    for name in names:
        group = source.expand(name)
        out.extend([name] if group is None else group)
    return tuple(dict.fromkeys(out))
