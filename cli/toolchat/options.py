"""Every option, declared once: flags, environment variables, config-file key, type, default, help.

main.py builds the Typer options of each command from these rows, settings.py takes defaults,
environment variables and the config-file keys it accepts from them, and a test checks that the
README's option table lists exactly these flags. Adding an option is adding a row (and its use).
Pure data: importing this module costs nothing (it runs on every `--help`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_MODEL = "claude-sonnet-4-20250514"
DEFAULT_BASE_URL = "https://api.anthropic.com"


@dataclass(frozen=True)
class Option:
    name: str  # the Settings field it sets (if `setting`), the key in the flags dict main.py builds
    flags: tuple[str, ...]  # on the command line; () for config-file-only settings
    type: type = str  # str, int, float, bool (a flag: present or not) or list (repeatable str)
    default: Any = None  # the Settings default (a flag not given means "not set")
    help: str = ""
    metavar: str | None = None
    env: tuple[str, ...] = ()  # environment variables, first set wins (below flags)
    config: bool = True  # may be set in the config file, under `name`
    setting: bool = True  # a field of Settings (else main.py or resolve() use it otherwise)
    commands: tuple[str, ...] = ("ask",)  # the commands that take it
    flag_value: Any = True  # what a bool flag sets when given (--no-parallel: parallel=False)


TOOLS = Option(
    "tools",
    ("-t", "--tools"),
    list,
    (),
    "Tools YAML file (repeatable). [env TOOLCHAT_TOOLS]",
    "FILE",
    env=("TOOLCHAT_TOOLS",),
    commands=("ask", "tools list", "tools run", "mcp list", "count-tokens"),
)
MCP_CONFIG = Option(
    "mcp_config",
    ("--mcp-config",),
    list,
    (),
    'MCP servers: a {"mcpServers": ...} JSON file, e.g. .mcp.json (repeatable). [env TOOLCHAT_MCP_CONFIG]',
    "FILE",
    env=("TOOLCHAT_MCP_CONFIG",),
    commands=("ask", "tools list", "tools run", "mcp list", "count-tokens"),
)

OPTIONS: tuple[Option, ...] = (
    Option(
        "api",
        ("--api",),
        str,
        "anthropic",
        "anthropic (/v1/messages) or openai (/v1/chat/completions). [env TOOLCHAT_API; default anthropic]",
        "DIALECT",
        env=("TOOLCHAT_API",),
        commands=("ask", "models", "count-tokens"),
    ),
    Option(
        "profile",
        ("-p", "--profile"),
        str,
        None,
        "Use this profile of the config file. [env TOOLCHAT_PROFILE]",
        "NAME",
        env=("TOOLCHAT_PROFILE",),
        config=False,
        commands=("ask", "models", "count-tokens"),
    ),
    # `profiles: {NAME: {api, base_url, model, key_env, ...}}` (profiles.py); -p picks one.
    Option("profiles", (), dict, None, setting=False),
    Option(
        "model",
        ("-m", "--model"),
        str,
        DEFAULT_MODEL,
        f"Model name. [env TOOLCHAT_MODEL; default {DEFAULT_MODEL}, with --api openai gpt-4o-mini]",
        "MODEL",
        env=("TOOLCHAT_MODEL",),
        commands=("ask", "count-tokens"),
    ),
    Option("max_tokens", ("--max-tokens",), int, 4096, "Max output tokens per turn. [default 4096]", "N"),
    Option(
        "system",
        ("-s", "--system"),
        str,
        None,
        "System prompt; @FILE reads it from FILE.",
        "TEXT",
        commands=("ask", "count-tokens"),
    ),
    Option(
        "system_file",
        ("--system-file",),
        str,
        None,
        "Read the system prompt from FILE.",
        "FILE",
        config=False,
        setting=False,
    ),
    TOOLS,
    MCP_CONFIG,
    Option(
        "base_url",
        ("--base-url",),
        str,
        DEFAULT_BASE_URL,
        "API base URL. [env TOOLCHAT_BASE_URL, ANTHROPIC_BASE_URL or OPENAI_BASE_URL]",
        "URL",
        env=("TOOLCHAT_BASE_URL", "ANTHROPIC_BASE_URL", "OPENAI_BASE_URL"),  # one dialect's each
        commands=("ask", "models", "count-tokens"),
    ),
    Option(
        "auth_style",
        ("--auth-style",),
        str,
        "auto",
        "How the API key is sent: auto|bearer|x-api-key.",
        "STYLE",
        env=("TOOLCHAT_AUTH_STYLE",),
        commands=("ask", "models", "count-tokens"),
    ),
    Option(
        "headers",
        ("--header",),
        list,
        (),
        "Extra request header 'Name: value' (repeatable).",
        "'NAME: VALUE'",
        commands=("ask", "models", "count-tokens"),
    ),
    Option(
        "tool_choice",
        ("--tool-choice",),
        str,
        None,
        "auto|any|none|TOOL_NAME",
        "CHOICE",
        commands=("ask", "count-tokens"),
    ),
    Option("parallel", ("--no-parallel",), bool, True, "Ask for at most one tool call per turn.", flag_value=False),
    Option("max_turns", ("--max-turns",), int, 10, "Max model requests in this run. [default 10]", "N"),
    Option("temperature", ("--temperature",), float, None, "Sampling temperature, 0 to 1.", "T"),
    Option("top_p", ("--top-p",), float, None, "Nucleus sampling: only tokens in the top P of probability.", "P"),
    Option("top_k", ("--top-k",), int, None, "Sample only from the K likeliest tokens.", "K"),
    Option("stop", ("--stop",), list, (), "Stop generating at this text (repeatable).", "SEQ"),
    Option(
        "thinking",
        ("--thinking",),
        int,
        None,
        "Extended thinking with this token budget (at least 1024; --max-tokens is raised to fit).",
        "BUDGET",
    ),
    Option(
        "schema",
        ("--schema",),
        str,
        None,
        "The answer as JSON of this schema: a file, inline JSON, or 'name, age int, tags: what'.",
        "SCHEMA",
        config=False,
    ),
    Option(
        "schema_multi",
        ("--schema-multi",),
        bool,
        False,
        'With --schema: a list of such objects, as {"items": [...]}.',
        config=False,
    ),
    Option(
        "extract", ("-x", "--extract"), bool, False, "Print only the fenced code blocks of the answer.", config=False
    ),
    Option(
        "extract_last",
        ("--extract-last",),
        bool,
        False,
        "Print only the last fenced code block of the answer.",
        config=False,
    ),
    Option(
        "retries",
        ("--retries",),
        int,
        2,
        "Retries for overloaded, rate-limited or failed requests. [default 2]",
        "N",
        env=("TOOLCHAT_RETRIES",),
    ),
    Option(
        "timeout",
        ("--timeout",),
        float,
        None,
        "Connect timeout, and the longest silence allowed in a response. [default 10 / 600]",
        "SECONDS",
        env=("TOOLCHAT_TIMEOUT",),
        setting=False,
        commands=("ask", "models", "count-tokens"),
    ),
    Option("connect_timeout", (), float, 10.0),
    Option("read_timeout", (), float, 600.0),  # the longest silence allowed between bytes of a response
    Option(
        "allow_tools",
        ("--allow-tool",),
        list,
        (),
        "Run this tool without asking, even if marked confirm: true (repeatable).",
        "NAME",
    ),
    Option("deny_tools", ("--deny-tool",), list, (), "Never offer or run this tool (repeatable).", "NAME"),
    Option(
        "tool_output_cap",
        ("--tool-output-cap",),
        int,
        100_000,
        "Cut each tool output to this many characters. [default 100000]",
        "CHARS",
    ),
    Option(
        "cache",
        ("--no-cache",),
        bool,
        True,
        "No prompt-caching breakpoints (Anthropic): every turn pays full input price.",
        flag_value=False,
    ),
    Option(
        "cache_ttl",
        ("--cache-ttl",),
        str,
        "5m",
        "Prompt-cache lifetime: 5m, or 1h for the tools and system prompt (written at 2x). [default 5m]",
        "5m|1h",
    ),
    Option(
        "attach",
        ("-a", "--attach"),
        list,
        (),
        "Attach an image, PDF or text file, a URL, or '-' (stdin, binary) to the prompt (repeatable).",
        "FILE|URL|-",
        config=False,
        commands=("ask", "count-tokens"),
    ),
    Option(
        "attach_type",
        ("--attach-type",),
        list,
        (),
        "Media type of the attachments (image/png, application/pdf, text/plain...): one for all, "
        "or one per -a in order.",
        "TYPE",
        config=False,
        commands=("ask", "count-tokens"),
    ),
    Option(
        "json",
        ("--json",),
        bool,
        False,
        "Print one JSON document with the result on stdout.",
        config=False,
        setting=False,
        commands=("ask", "models", "count-tokens"),
    ),
    Option(
        "stream_json",
        ("--stream-json",),
        bool,
        False,
        "Print newline-delimited JSON events on stdout as they happen.",
        config=False,
        setting=False,
    ),
    Option(
        "plain",
        ("--plain",),
        bool,
        False,
        "Plain text, no live markdown view, even on a terminal.",
        config=False,
        setting=False,
    ),
    Option(
        "raw",
        ("--raw",),
        bool,
        False,
        "Plain output with the model's text byte-exact: escape sequences and control characters not neutralised.",
        config=False,
    ),
    Option("color", ("--color",), str, "auto", "auto|always|never. [default auto; NO_COLOR honoured]", "WHEN"),
    Option("quiet", ("-q", "--quiet"), bool, False, "The answer only: nothing on stderr but errors.", config=False),
    Option(
        "save",
        ("--save",),
        str,
        None,
        "Write the conversation to FILE after the run (also after a failure).",
        "FILE",
        config=False,
    ),
    Option(
        "messages",
        ("--messages",),
        str,
        None,
        "Start from a saved conversation, messages array or --json document ('-' = stdin).",
        "FILE",
        config=False,
        setting=False,
    ),
    Option(
        "continue_latest",
        ("-c", "--continue"),
        bool,
        False,
        "Continue the most recent logged conversation (its model and system prompt unless -m/-s).",
        config=False,
        setting=False,
    ),
    Option(
        "cid",
        ("--cid",),
        str,
        None,
        "Continue this logged conversation (a unique start of its id).",
        "ID",
        config=False,
        setting=False,
    ),
    Option("dry_run", ("--dry-run",), bool, False, "Print the request body and send nothing.", config=False),
    Option("yes", ("-y", "--yes"), bool, False, "Run tools marked confirm: true without asking.", config=False),
    Option(
        "demo",
        ("--demo",),
        bool,
        False,
        "Run against the built-in offline mock model with the sample tools.",
        config=False,
        setting=False,
    ),
    Option(
        "debug",
        ("--debug",),
        bool,
        False,
        "Show requests and full tracebacks on stderr.",
        config=False,
        commands=("ask", "models", "count-tokens"),
    ),
    # Prices in USD per million tokens, by model: {MODEL: {input, output, cache_write, cache_write_1h,
    # cache_read}}; merged over the shipped table (prices.json).
    Option("prices", (), dict, None, setting=False),
    # True: the run is written to the conversation log; `toolchat logs off|on` sets it in the config
    # file. Settings holds the log's file instead (log_path, None when off).
    Option(
        "log",
        ("--no-log",),
        bool,
        True,
        "Do not write this run to the conversation log. [env TOOLCHAT_LOG=0; config log: false]",
        env=("TOOLCHAT_LOG",),
        setting=False,
        flag_value=False,
    ),
)

# `toolchat batch` (batch_cli.py): its own rows; it also takes the one-shot rows it names in
# batch_cli.SHARED. Not Settings fields: the batch engine reads them from the flags.
OPTIONS += (
    Option(
        "batch_output",
        ("-o", "--output"),
        str,
        None,
        "Write the result lines to FILE ('-' = stdout). [default stdout]",
        "FILE",
        config=False,
        setting=False,
        commands=("batch",),
    ),
    Option(
        "concurrency",
        ("--concurrency",),
        int,
        4,
        "Conversations at once (local engine). [default 4]",
        "N",
        config=False,
        setting=False,
        commands=("batch",),
    ),
    Option(
        "ordered",
        ("--ordered",),
        bool,
        False,
        "Write the result lines in input order.",
        config=False,
        setting=False,
        commands=("batch",),
    ),
    Option(
        "via",
        ("--via",),
        str,
        "local",
        "local (requests at the rate limit) | batches (the Message Batches API). [default local]",
        "ENGINE",
        config=False,
        setting=False,
        commands=("batch",),
    ),
    Option(
        "poll_interval",
        ("--poll-interval",),
        float,
        5.0,
        "--via batches: first wait between status checks, doubling up to 60 s. [default 5]",
        "SECONDS",
        env=("TOOLCHAT_BATCH_POLL",),
        config=False,
        setting=False,
        commands=("batch",),
    ),
)

BY_NAME = {option.name: option for option in OPTIONS}

# Keys a config file may set.
CONFIG_KEYS = frozenset(option.name for option in OPTIONS if option.config)


def for_command(command: str) -> list[Option]:
    """The rows a command takes, in help order."""
    return [option for option in OPTIONS if command in option.commands and option.flags]


def default(name: str) -> Any:
    return BY_NAME[name].default
