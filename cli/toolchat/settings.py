"""Settings: one frozen dataclass. Precedence: flags > environment > config file > defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from .errors import UsageError
from .options import BY_NAME, CONFIG_KEYS, DEFAULT_BASE_URL, DEFAULT_MODEL

AUTH_STYLES = ("auto", "bearer", "x-api-key")
COLORS = ("auto", "always", "never")
OUTPUTS = ("auto", "plain", "json", "stream-json")
CACHE_TTLS = ("5m", "1h")


@dataclass(frozen=True)
class Settings:
    """The resolved options of a run. Field defaults are options.py's (a test checks they agree)."""

    api: str = "anthropic"  # the wire dialect: anthropic | openai (profiles.py)
    profile: str | None = None  # the config file's profile in use (-p)
    model: str = DEFAULT_MODEL
    max_tokens: int = 4096
    system: str | None = None
    tools: tuple[str, ...] = ()
    mcp_config: tuple[str, ...] = ()  # {"mcpServers": ...} JSON files (Claude Desktop, .mcp.json)
    base_url: str = DEFAULT_BASE_URL
    auth_style: str = "auto"
    api_key: str | None = field(default=None, repr=False)
    key_source: str | None = None  # which variable the key came from, for messages
    headers: tuple[tuple[str, str], ...] = ()
    tool_choice: str | None = None
    parallel: bool = True
    max_turns: int = 10
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: tuple[str, ...] = ()  # stop_sequences
    thinking: int | None = None  # extended thinking's budget_tokens
    schema: dict | None = None  # --schema, parsed (structured.parse_schema)
    schema_multi: bool = False  # already folded into `schema`; kept to show what was asked
    extract: bool = False  # -x: print only the fenced code blocks of the answer
    extract_last: bool = False
    notes: tuple[str, ...] = ()  # said on stderr before the run (e.g. --max-tokens raised)
    connect_timeout: float = 10.0
    read_timeout: float = 600.0  # the longest silence allowed between bytes of a response
    retries: int = 2  # extra attempts for a request that failed in a retryable way
    tool_output_cap: int = 100_000  # characters of one tool's output sent to the model
    allow_tools: tuple[str, ...] = ()  # run without asking, even when marked confirm: true
    deny_tools: tuple[str, ...] = ()  # never offered to the model, never run
    # auto: live view when stdout is a terminal, plain otherwise | plain | json | stream-json
    output: str = "auto"
    color: str = "auto"  # auto | always | never (NO_COLOR turns auto into never)
    quiet: bool = False  # the answer only; nothing on stderr but errors
    save: str | None = None  # write the conversation here after the run
    dry_run: bool = False
    yes: bool = False
    debug: bool = False
    raw: bool = False  # plain output: the model's text byte-exact, not neutralised (--raw)
    # The conversation log's file ($TOOLCHAT_HOME/logs.db, ...); None: this run is not logged
    # (--no-log, TOOLCHAT_LOG=0, config `log: false`, or Settings built without resolve()).
    log_path: str | None = None
    conversation_id: str | None = None  # the logged conversation this run continues (-c / --cid)
    cache: bool = True  # prompt-caching breakpoints (Anthropic dialect); --no-cache
    cache_ttl: str = "5m"  # 5m | 1h (1h: the tools and system prompt; messages stay 5m)
    attach: tuple[str, ...] = ()  # -a FILE|URL|-: attached to the first prompt
    attach_type: tuple[str, ...] = ()  # --attach-type: one for all attachments, or one per -a
    prices: tuple = ()  # the config file's `prices` as (model, {...}) pairs, over prices.json

    def credential_header(self) -> dict:
        """The auth header for the key, or raise a UsageError saying how to provide one."""
        from .profiles import missing_key
        from .transport import auth_headers

        unset = missing_key(self)  # a profile's key_env names a variable that is not set
        if unset is not None:
            raise unset
        if not self.api_key:
            raise UsageError(
                "no API key: set ANTHROPIC_API_KEY (sent as x-api-key), ANTHROPIC_AUTH_TOKEN "
                "(sent as Authorization: Bearer) or TOOLCHAT_API_KEY (see --auth-style), "
                "or try the offline demo with --demo",
                type="missing_credentials",
            )
        return auth_headers(self.api_key, self.resolved_auth_style())

    def resolved_auth_style(self) -> str:
        if self.auth_style != "auto":
            return self.auth_style
        if self.key_source == "ANTHROPIC_API_KEY":
            return "x-api-key"
        if self.key_source == "ANTHROPIC_AUTH_TOKEN":
            return "bearer"
        host = (urlsplit(self.base_url).hostname or "").lower()
        return "x-api-key" if host == "api.anthropic.com" else "bearer"

    def extra_headers(self) -> dict:
        return {name: value for name, value in self.headers}


def config_path(env: Mapping[str, str]) -> Path:
    if env.get("TOOLCHAT_CONFIG"):
        return Path(env["TOOLCHAT_CONFIG"]).expanduser()
    base = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "toolchat" / "config.yaml"


def load_config(path: Path, required: bool = False) -> dict:
    """The config file as a dict; a missing default file is simply empty."""
    if not path.exists() or (path.is_char_device() and path.resolve() == Path(os.devnull)):
        # TOOLCHAT_CONFIG=/dev/null: the usual way to say "no config file".
        if required and not path.exists():
            raise UsageError(f"{path}: config file not found (TOOLCHAT_CONFIG)")
        return {}
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"{path}: cannot read the config file: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: the config file must be a mapping of settings")
    if "api_key" in data:
        raise UsageError(f"{path}: keep API keys out of config files; use the environment")
    unknown = sorted(set(data) - CONFIG_KEYS)
    if unknown:
        raise UsageError(f"{path}: {unknown[0]}: unknown setting (known: {', '.join(sorted(CONFIG_KEYS))})")
    return data


def parse_header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    name = name.strip()
    if not sep or not name or any(c in name for c in " \t\r\n") or "\n" in value or "\r" in value:
        # Not echoed: a malformed header is often a credential pasted without its name.
        raise UsageError("--header: expected 'Name: value' (a name without spaces, a colon, then a value on one line)")
    return name, value.strip()


def resolve(flags: Mapping[str, Any], env: Mapping[str, str]) -> Settings:
    """Build Settings from flags (None = not given), the environment and the config file."""
    from .profiles import DEFAULT_BASE_URLS, DEFAULT_MODELS, check_api, credentials, foreign, select_profile

    path = config_path(env)
    config = load_config(path, required=bool(env.get("TOOLCHAT_CONFIG")))
    profile_name = flags.get("profile") or env.get("TOOLCHAT_PROFILE") or None
    profile = select_profile(config, profile_name, path)
    key_env = profile.pop("key_env", None)
    config = {**config, **profile}  # a profile's keys stand in for the config file's own
    api = "anthropic"

    def pick(name: str, default: Any = None) -> Any:
        """flag > environment (the row's variables, first set wins; not another dialect's) >
        config file (or profile) > default."""
        option = BY_NAME[name]
        if flags.get(name) is not None:
            return flags[name]
        for env_name in option.env:
            if env.get(env_name) and not foreign(env_name, api):
                return env[env_name]
        if name in config:
            return config[name]
        return option.default if default is None else default

    api = check_api(pick("api"))

    def files(name: str, variable: str) -> list[str]:
        """A repeatable file option: the flags, else the variable (a path list), else the config
        file (one path or a list)."""
        given = list(flags.get(name) or [])
        if not given and env.get(variable):
            given = [p for p in env[variable].split(os.pathsep) if p]
        if not given and config.get(name):
            configured = config[name]
            given = [configured] if isinstance(configured, str) else list(configured)
        return given

    tools = files("tools", "TOOLCHAT_TOOLS")
    mcp_config = files("mcp_config", "TOOLCHAT_MCP_CONFIG")

    headers: list[tuple[str, str]] = []
    configured_headers = config.get("headers") or {}
    if isinstance(configured_headers, dict):
        headers += [(str(k), str(v)) for k, v in configured_headers.items()]
    else:
        headers += [parse_header(str(h)) for h in configured_headers]
    headers += [parse_header(h) for h in flags.get("headers") or []]

    key, source = credentials(api, env, key_env)

    auth_style = pick("auth_style")
    if auth_style not in AUTH_STYLES:
        raise UsageError(f"--auth-style: {auth_style!r} is not one of {', '.join(AUTH_STYLES)}")
    base_url = str(pick("base_url", DEFAULT_BASE_URLS[api]))
    if urlsplit(base_url).scheme not in ("http", "https") or not urlsplit(base_url).netloc:
        raise UsageError(f"--base-url: {without_userinfo(base_url)!r} is not an http(s) URL")

    timeout = pick("timeout")
    output = flags.get("output") or "auto"
    if output not in OUTPUTS:
        raise UsageError(f"output: {output!r} is not one of {', '.join(OUTPUTS)}")
    color = str(pick("color")).lower()
    if color not in COLORS:
        raise UsageError(f"--color: {color!r} is not one of {', '.join(COLORS)}")
    if color == "auto" and env.get("NO_COLOR"):
        color = "never"  # https://no-color.org: any non-empty value

    log_path = None
    if _yes_no(pick("log")):
        from .logdb import default_path

        log_path = str(default_path(env))

    max_tokens = _number("--max-tokens", pick("max_tokens"), int, minimum=1)
    thinking = pick("thinking")
    notes: list[str] = []
    if thinking is not None:
        thinking = _number("--thinking", thinking, int, minimum=1024)
        if max_tokens <= thinking:
            # The budget counts toward max_tokens: keep the answer its own --max-tokens on top.
            notes.append(
                f"note: --max-tokens raised from {max_tokens} to {thinking + max_tokens} to fit "
                f"--thinking {thinking} (the thinking budget counts toward it)"
            )
            max_tokens += thinking
    schema = None
    if flags.get("schema") is not None:
        from .structured import parse_schema

        schema = parse_schema(str(flags["schema"]), multi=bool(flags.get("schema_multi")))
    elif flags.get("schema_multi"):
        raise UsageError("--schema-multi needs --schema")

    settings = Settings(
        api=api,
        profile=profile_name,
        model=str(pick("model", DEFAULT_MODELS[api])),
        max_tokens=max_tokens,
        system=_system(pick("system"), flags.get("system_file")),
        tools=tuple(str(t) for t in tools),
        mcp_config=tuple(str(Path(p).expanduser()) for p in mcp_config),
        base_url=base_url,
        auth_style=auth_style,
        api_key=key,
        key_source=source,
        headers=tuple(headers),
        tool_choice=pick("tool_choice"),
        parallel=bool(pick("parallel")),
        max_turns=_number("--max-turns", pick("max_turns"), int, minimum=1),
        temperature=_optional_float("--temperature", pick("temperature")),
        top_p=_optional_float("--top-p", pick("top_p")),
        top_k=None if pick("top_k") is None else _number("--top-k", pick("top_k"), int, minimum=1),
        stop=_names(flags.get("stop"), config.get("stop")),
        thinking=thinking,
        schema=schema,
        schema_multi=bool(flags.get("schema_multi")),
        extract=bool(flags.get("extract")),
        extract_last=bool(flags.get("extract_last")),
        notes=tuple(notes),
        connect_timeout=_number("--timeout", timeout if timeout is not None else pick("connect_timeout"), float, 0.001),
        read_timeout=_number("--timeout", timeout if timeout is not None else pick("read_timeout"), float, 0.001),
        retries=_number("--retries", pick("retries"), int, minimum=0),
        tool_output_cap=_number("--tool-output-cap", pick("tool_output_cap"), int, minimum=100),
        allow_tools=_names(flags.get("allow_tools"), config.get("allow_tools")),
        deny_tools=_names(flags.get("deny_tools"), config.get("deny_tools")),
        output=output,
        color=color,
        quiet=bool(flags.get("quiet")),
        save=flags.get("save"),
        dry_run=bool(flags.get("dry_run")),
        yes=bool(flags.get("yes")),
        debug=bool(flags.get("debug")),
        raw=bool(flags.get("raw")),
        log_path=log_path,
        conversation_id=flags.get("conversation_id"),
        cache=bool(pick("cache")),
        cache_ttl=str(pick("cache_ttl")),
        attach=tuple(str(a) for a in flags.get("attach") or ()),
        attach_type=tuple(str(t) for t in flags.get("attach_type") or ()),
        prices=_prices(config.get("prices")),
    )
    if settings.cache_ttl not in CACHE_TTLS:
        raise UsageError(f"--cache-ttl: {settings.cache_ttl!r} is not one of {', '.join(CACHE_TTLS)}")
    if settings.temperature is not None and not 0 <= settings.temperature <= 1:
        raise UsageError("--temperature must be between 0 and 1")
    if settings.top_p is not None and not 0 <= settings.top_p <= 1:
        raise UsageError("--top-p must be between 0 and 1")
    if settings.stop and any(not seq.strip() for seq in settings.stop):
        raise UsageError("--stop: a stop sequence must contain non-whitespace text")
    _check_thinking(settings)
    if settings.extract and settings.extract_last:
        raise UsageError("-x/--extract and --extract-last cannot be used together; pick one")
    if settings.schema is not None and (settings.extract or settings.extract_last):
        raise UsageError("--schema and -x/--extract cannot be used together; pick one")
    return settings


def _check_thinking(settings: Settings) -> None:
    """What the API refuses while thinking is on (PROTOCOL.md §10), refused before sending."""
    if settings.thinking is None:
        return
    if settings.temperature is not None and settings.temperature != 1:
        raise UsageError("--thinking cannot be used with --temperature (the API allows only 1)")
    if settings.top_k is not None:
        raise UsageError("--thinking cannot be used with --top-k")
    if settings.top_p is not None and settings.top_p < 0.95:
        raise UsageError("--thinking allows --top-p only between 0.95 and 1")
    if settings.tool_choice not in (None, "auto", "none"):
        raise UsageError(
            f"--thinking cannot be used with --tool-choice {settings.tool_choice} "
            "(the API allows only auto or none while thinking)"
        )


def _system(value: Any, path: str | None) -> str | None:
    """-s TEXT, -s @FILE (`@@` for a text that starts with @) or --system-file FILE."""
    if path is not None:
        if value is not None:
            raise UsageError("-s/--system and --system-file cannot be used together; pick one")
        return _read_system(path, "--system-file")
    if isinstance(value, str) and value.startswith("@@"):
        return value[1:]
    if isinstance(value, str) and value.startswith("@") and len(value) > 1:
        return _read_system(value[1:], "-s @FILE")
    return value


def _read_system(path: str, label: str) -> str:
    try:
        if path == "-":
            raise UsageError(f"{label}: the system prompt cannot come from stdin (it carries the prompt)")
        data = Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise UsageError(f"{label} {path}: cannot read it: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{label} {path}: not UTF-8 text") from None


def _number(label: str, value: Any, kind: type, minimum: float) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise UsageError(f"{label}: {value!r} is not a number") from None
    if number < minimum:
        raise UsageError(f"{label}: must be at least {minimum:g}")
    return number


def _names(flagged: Any, configured: Any) -> tuple[str, ...]:
    """Tool names from repeated flags, else from the config file (a name or a list)."""
    names = flagged or configured or ()
    if isinstance(names, str):
        names = [names]
    return tuple(str(name) for name in names)


def _optional_float(label: str, value: Any) -> float | None:
    return None if value is None else _number(label, value, float, float("-inf"))


def _yes_no(value: Any) -> bool:
    """`log`: a bool (flag, config file) or TOOLCHAT_LOG's text: 0/1, false/true, no/yes, off/on."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise UsageError(f"TOOLCHAT_LOG / log: {value!r} is not one of 0, 1, false, true, no, yes, off, on")


def _prices(configured: Any) -> tuple:
    """The config file's `prices:` mapping as sorted (model, prices) pairs (Settings is frozen)."""
    if configured is None:
        return ()
    from .pricing import check_prices

    return tuple(sorted(check_prices(configured, "config file: prices").items()))


def without_userinfo(url: str) -> str:
    """`url` for a message: a `user:password@` in it (a credential) shown as `***@`. The part before
    the host is found by hand, since the URLs this is for are the ones urlsplit does not accept as
    http(s) (`ftp://u:p@h`, `u:p@h` without a scheme)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    end = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    authority = rest[:end]
    if "@" not in authority:
        return url
    return scheme + sep + "***@" + authority.rpartition("@")[2] + rest[end:]
