"""The command line: options in, Settings built, a view picked, the loop run, errors mapped to exit codes.

Heavy modules (requests, jsonschema, the mock server) are imported only when a command needs them,
so `--help` and `--version` stay fast.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, List, Optional

import typer


from . import __version__, options
from .commands import (
    HELP,
    _Command,
    _given,
    _guard,
    _keyword,
    _say,
    _signals,  # noqa: F401  (shared by every
    _traceback,
    _typer_options,
)  # command module)
from .errors import Interrupted, ToolchatError, UsageError

SUBCOMMANDS = ("tools", "mcp", "mock-server", "logs", "batch", "models", "count-tokens")

EPILOG = (
    "Other commands: toolchat tools list | tools validate FILE... | tools run NAME --input JSON, "
    "toolchat mcp list, toolchat logs [list | show ID | search TEXT | export ID | rm ID | path | off | on], "
    "toolchat batch INPUT.jsonl [-o OUT.jsonl] | batch status INPUT | batch cancel INPUT, "
    "toolchat models, toolchat count-tokens PROMPT, "
    "toolchat mock-server.  Exit codes: 0 done, 2 usage or tools file, 3 API or transport, "
    "4 incomplete answer, 130 interrupted, 143 terminated."
)

app = typer.Typer(add_completion=True, pretty_exceptions_enable=False, rich_markup_mode=None, context_settings=HELP)
sub = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    no_args_is_help=True,
    help="toolchat subcommands.",
    context_settings=HELP,
)
tools_app = typer.Typer(
    no_args_is_help=True, help="Inspect, check and run tools from tools files.", context_settings=HELP
)
sub.add_typer(tools_app, name="tools")


def _version(value: bool) -> None:
    if value:
        print(f"toolchat {__version__}")
        raise typer.Exit()


# -t/--tools of `tools list` and `tools run`: the same row as the main command's.
_TOOLS = _typer_options([options.TOOLS])(lambda **values: None).__annotations__["tools"]
_MCP_CONFIG = _typer_options([options.MCP_CONFIG])(lambda **values: None).__annotations__["mcp_config"]

_PROMPT = _keyword(
    "prompt",
    Annotated[
        Optional[List[str]],
        typer.Argument(
            metavar="PROMPT", help="The prompt. Piped stdin is read too and added after it.", show_default=False
        ),
    ],
)
_VERSION = _keyword(
    "version",
    Annotated[
        Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ],
)


@app.command(epilog=EPILOG, cls=_Command)
@_typer_options(options.for_command("ask"), before=[_PROMPT], after=[_VERSION])
def ask(prompt: Optional[List[str]] = None, version: Optional[bool] = None, **values) -> None:
    """Ask a model something; it may call your local Python tools until it has the answer.

    Example: toolchat -t sample_tools.yaml "What's the weather in Paris?"
    """
    json_output, stream_json = values["json"], values["stream_json"]
    plain = values["plain"] or values["raw"]
    output = "json" if json_output else "stream-json" if stream_json else "plain" if plain else None
    flags = {option.name: _given(option, values[option.name]) for option in options.for_command("ask")}
    flags["output"] = output
    debug, model = values["debug"], values["model"]
    _signals()
    on_error = _json_failure(model, stream=stream_json) if json_output or stream_json else None
    if json_output and stream_json:
        raise typer.Exit(_guard(_conflict("--json", "--stream-json"), debug))
    if values["raw"] and (json_output or stream_json):  # JSON keeps the exact text already
        raise typer.Exit(_guard(_conflict("--raw", "--json" if json_output else "--stream-json"), debug))
    raise typer.Exit(
        _guard(lambda: _ask(prompt or [], flags, values["demo"], values["messages"]), debug, on_error=on_error)
    )


def _conflict(first: str, second: str):
    def fail() -> int:
        raise UsageError(f"{first} and {second} cannot be used together; pick one")

    return fail


def _ask(words: list[str], flags: dict, demo: bool, messages_file: str | None = None) -> int:
    from .settings import resolve

    from .stdio import decode, read_stdin, repair, warn_replaced

    text, replaced = repair(" ".join(words).strip())
    flags, more = _repair_flags(flags)
    warn_replaced("the command line", replaced + more)
    stdin_attached = "-" in (flags.get("attach") or [])
    if stdin_attached and messages_file == "-":
        raise UsageError("-a - and --messages - both want stdin; give one of them a file")
    if sys.stdin is not None and not sys.stdin.isatty() and messages_file != "-" and not stdin_attached:
        piped, replaced = decode(read_stdin())
        warn_replaced("stdin", replaced)
        text = "\n\n".join(part for part in (text, piped.strip()) if part)
    env, replaced = _repair_env(dict(os.environ))
    warn_replaced("the environment (TOOLCHAT_*, ANTHROPIC_*)", replaced)
    messages: list[dict] = []
    loaded, where = None, ("", "")
    if flags.get("continue_latest") or flags.get("cid") is not None:
        loaded, where = _logged(flags, env, messages_file)
        flags = {**flags, "conversation_id": loaded.conversation_id}
    elif messages_file is not None:
        from .transcript import load_transcript

        loaded, where = load_transcript(messages_file), ("--messages", messages_file)
    if loaded is not None:
        from .transcript import continue_from

        if flags.get("model") is None and loaded.model:
            flags = {**flags, "model": loaded.model}
        if flags.get("system") is None and flags.get("system_file") is None and loaded.system:
            # "@@": a saved system prompt that starts with "@" is text, not a file to read.
            saved = loaded.system
            flags = {**flags, "system": "@" + saved if isinstance(saved, str) and saved.startswith("@") else saved}
        messages = continue_from(loaded.messages, text, where[1], flag=where[0])
    elif not text and flags.get("attach"):
        messages = [{"role": "user", "content": ""}]  # the attachments alone are the prompt
    elif not text:
        raise UsageError("no prompt: give one as arguments or on stdin (toolchat --help)")
    else:
        messages = [{"role": "user", "content": text}]

    server = None
    if demo:
        from .mock.server import DEMO_SCRIPT, MockServer

        server = MockServer(script=DEMO_SCRIPT, log=False).start()
        env.update({"TOOLCHAT_BASE_URL": server.url, "TOOLCHAT_API_KEY": "demo-key"})
        _offline_weather(server.url)
        flags = {**flags, "base_url": None}
        if not flags.get("tools"):
            flags["tools"] = [str(_sample_tools())]
    try:
        settings = resolve(flags, env)
        return _run(settings, messages)
    finally:
        if server is not None:
            server.stop()


def _logged(flags: dict, env: dict, messages_file: str | None):
    """-c / --cid: the logged conversation to continue (logdb.Continued), and (flag, id) to name
    it in errors."""
    from .logdb import default_path, load_conversation

    cid = flags.get("cid")
    flag = "--cid" if cid is not None else "-c"
    if flags.get("continue_latest") and cid is not None:
        raise UsageError("-c/--continue and --cid cannot be used together; pick one")
    if messages_file is not None:
        raise UsageError(f"--messages and {flag} cannot be used together: each names the conversation to continue")
    # Read even when this run is not logged (--no-log): the continuation is then not written.
    return load_conversation(default_path(env), cid), (flag, cid or "")


def _repair_env(env: dict) -> tuple[dict, int]:
    """toolchat's variables as valid text, like the options (file names stay as given)."""
    from .stdio import repair

    total = 0
    for key, value in env.items():
        if key.startswith(("TOOLCHAT_", "ANTHROPIC_", "OPENAI_")) and key not in ("TOOLCHAT_TOOLS", "TOOLCHAT_CONFIG"):
            env[key], count = repair(value)
            total += count
    return env, total


def _offline_weather(url: str) -> None:
    """--demo: the sample get_weather asks the mock server's Open-Meteo look-alike, not the network."""
    os.environ["TOOLCHAT_GEOCODING_URL"] = os.environ["TOOLCHAT_FORECAST_URL"] = url
    bypass = os.environ.get("no_proxy") or os.environ.get("NO_PROXY") or ""
    os.environ["no_proxy"] = ",".join(part for part in (bypass, "127.0.0.1") if part)  # no proxy hop


def _repair_flags(flags: dict) -> tuple[dict, int]:
    """Text options as valid text (bytes that are not UTF-8 become U+FFFD); file names stay as given."""
    from .stdio import repair

    total, repaired = 0, dict(flags)
    for key, value in flags.items():
        if key in _PATH_FLAGS:
            continue
        if isinstance(value, str):
            repaired[key], count = repair(value)
            total += count
        elif isinstance(value, list):
            pairs = [repair(item) if isinstance(item, str) else (item, 0) for item in value]
            repaired[key] = [item for item, _ in pairs]
            total += sum(count for _, count in pairs)
    return repaired, total


_PATH_FLAGS = {"tools", "save", "messages", "system_file", "attach"}


def _run(settings, messages: list[dict]) -> int:
    from .session import Session

    if not settings.quiet:
        for note in settings.notes:
            _say(note)
    session = Session(settings)
    if settings.dry_run:
        from .text import dumps

        print(dumps(session.request_body(messages), indent=2))
        return 0
    return _report(session.run(messages), settings)


def _report(result, settings) -> int:
    """One line on stderr for a failed or incomplete run; the exit code."""
    if result.error is not None:
        if isinstance(result.error, Interrupted):
            _say(result.error.message)
        else:
            _say(f"error: {result.error.message}")
        if settings.debug and result.error.__traceback__ is not None:
            _traceback(result.error)
    elif result.incomplete:
        line = "incomplete answer: " + _INCOMPLETE.get(result.incomplete, result.incomplete)
        if result.incomplete == "schema" and result.output_error:
            from .text import one_line

            line += f" ({one_line(result.output_error, 300)})"
        if result.stop_details:
            from .text import compact_json, one_line

            line += f" (details: {one_line(compact_json(result.stop_details))})"
        _say(line)
    elif result.stop_reason not in _KNOWN_STOPS and not settings.quiet:
        _say(f"note: the model stopped with stop_reason {result.stop_reason!r}")
    return result.exit_code


_KNOWN_STOPS = {"end_turn", "stop_sequence", "tool_use", "pause_turn"}


_INCOMPLETE = {
    "max_turns": "reached --max-turns before the model finished (raise --max-turns)",
    "max_tokens": "the model hit --max-tokens; the answer is cut off (raise --max-tokens)",
    "model_context_window_exceeded": "the conversation no longer fits the model's context window",
    "refusal": "the model refused to answer",
    "schema": "the answer is not valid JSON of --schema",
}


def _sample_tools() -> Path:
    """sample_tools.yaml: in toolchat/samples/ in a wheel, at the repository top in a clone."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "samples" / "sample_tools.yaml", package.parents[1] / "sample_tools.yaml"):
        if candidate.is_file():
            return candidate
    raise UsageError("sample_tools.yaml was not found in the toolchat package; pass -t FILE")


def _json_failure(model: str | None, stream: bool = False):
    """With --json or --stream-json, a failure before the run starts still prints the result."""

    def emit(exc: ToolchatError) -> None:
        from .events import Result
        from .settings import DEFAULT_MODEL

        result = Result(model=model or DEFAULT_MODEL, error=exc)
        if stream:
            from .views.ndjson import result_line, start_line

            # Every stream starts with the versioned `start` line, even one that fails at once.
            print(start_line(result.model), flush=True)
            print(result_line(result), flush=True)
        else:
            from .text import dumps

            print(dumps(result.to_json()))

    return emit


# ---------------------------------------------------------------------------------------------
# Subcommands


@tools_app.command("list", cls=_Command)
def tools_list(
    tools: _TOOLS = None,  # type: ignore[valid-type]  # built from options.py at import
    mcp_config: _MCP_CONFIG = None,  # type: ignore[valid-type]
    json_output: Annotated[
        bool, typer.Option("--json", help='Print the tools as the API receives them (MCP tools with their "source").')
    ] = False,
) -> None:
    """List the tools the files and MCP servers define."""

    def action() -> int:
        box = _load_toolbox(tools, mcp_config)
        try:
            if json_output:
                from .text import dumps

                wire = [
                    dict(spec.wire(), **({"source": spec.source} if spec.source.startswith("mcp:") else {}))
                    for spec in box.tools.values()
                ]
                print(dumps(wire, indent=2))
                return 0
            from .text import one_line

            for tool in box.all.values():
                flags = " (confirm)" if tool.confirm else ""
                server = f"\t{one_line(tool.source)}" if tool.source.startswith("mcp:") else ""
                print(f"{one_line(tool.name)}{flags}\t{one_line(tool.description, 100)}{server}")
            return 0
        finally:
            box.close()

    raise typer.Exit(_guard(action, False))


@tools_app.command("validate", cls=_Command)
def tools_validate(files: Annotated[List[str], typer.Argument(metavar="FILE", help="Tools YAML files.")]) -> None:
    """Check tools files: names, schemas, handlers. Exit 2 on the first problem."""

    def action() -> int:
        from .toolsources.yaml import load_files

        box = load_files(files)
        print(f"ok: {len(box.all)} tool{'s' * (len(box.all) != 1)} in {len(files)} file{'s' * (len(files) != 1)}")
        return 0

    raise typer.Exit(_guard(action, False))


@tools_app.command("run", cls=_Command)
def tools_run(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The tool to run.")],
    input_json: Annotated[str, typer.Option("--input", metavar="JSON", help="The tool input as a JSON object.")] = "{}",
    tools: _TOOLS = None,  # type: ignore[valid-type]  # built from options.py at import
    mcp_config: _MCP_CONFIG = None,  # type: ignore[valid-type]
) -> None:
    """Run one tool directly (a handler or an MCP server's tool), as the model would; prints its output.

    Exit 1 if the tool failed; 2 for an unknown tool or input that does not fit its schema.
    """

    def action() -> int:
        box = _load_toolbox(tools, mcp_config)
        try:
            return _run_tool(box, name, input_json)
        finally:
            box.close()

    raise typer.Exit(_guard(action, False))


def _run_tool(box, name: str, input_json: str) -> int:
    from .toolsources.base import Call

    if name not in box.tools:
        raise UsageError(f"no tool named {name!r} (tools: {', '.join(box.tools) or 'none'})")
    try:
        value = json.loads(input_json)
    except ValueError as exc:
        raise UsageError(f"--input is not valid JSON: {exc}") from None
    call = Call("toolu_cli", name, value)
    problem = box.check(call)  # what the model would be told; here it is the caller's mistake
    if problem:
        raise UsageError(f"--input: {problem}")
    result = box.run_one(call)
    if result.is_error:
        _say(f"tool error: {result.output}")
        return 1
    from .text import neutralise

    print(neutralise(result.output))
    return 0


def _load_toolbox(files: list[str] | None, mcp_config: list[str] | None = None):
    from .session import tool_runner
    from .settings import resolve

    settings = resolve({"tools": files, "mcp_config": mcp_config}, os.environ)
    if not settings.tools and not settings.mcp_config:
        raise UsageError("no tools files: pass -t FILE (or --mcp-config FILE), or set TOOLCHAT_TOOLS")
    return tool_runner(settings)


mcp_app = typer.Typer(
    no_args_is_help=True, help="Inspect the MCP servers of tools files and MCP config files.", context_settings=HELP
)
sub.add_typer(mcp_app, name="mcp")


@mcp_app.command("list", cls=_Command)
def mcp_list(
    tools: _TOOLS = None,  # type: ignore[valid-type]  # built from options.py at import
    mcp_config: _MCP_CONFIG = None,  # type: ignore[valid-type]
    json_output: Annotated[bool, typer.Option("--json", help="Print the servers as JSON.")] = False,
) -> None:
    """Start each configured MCP server and show its transport, state and tool count.

    Exit 1 if a server did not start.
    """

    def action() -> int:
        import dataclasses

        from .settings import resolve
        from .toolsources.mcpconfig import collect

        settings = resolve({"tools": tools, "mcp_config": mcp_config}, os.environ)
        servers = collect(list(settings.tools), list(settings.mcp_config))
        if not servers:
            raise UsageError("no MCP servers: pass --mcp-config FILE or -t FILE with mcp_servers:")
        from .toolsources.mcp import McpSource

        # Every server listed, failed ones too: a listing is where a broken server is looked at.
        source = McpSource(
            [dataclasses.replace(s, optional=True) for s in servers], debug=settings.debug, warn=lambda message: None
        )
        try:
            source.start()
            rows = source.servers()
        finally:
            source.close()
        if json_output:
            from .text import dumps

            keys = ("name", "transport", "state", "tools", "target", "error", "origin", "log")
            print(dumps([{k: r[k] for k in keys} for r in rows], indent=2))
        else:
            from .text import one_line

            for r in rows:
                error = f"\t{one_line(r['error'], 200)}" if r["error"] else ""
                print(
                    f"{one_line(r['name'], 60)}\t{r['transport']}\t{r['state']}\t{r['tools']} "
                    f"tool{'s' * (r['tools'] != 1)}\t{one_line(r['target'], 100)}{error}"
                )
        return 0 if all(r["state"] == "ready" for r in rows) else 1

    raise typer.Exit(_guard(action, False))


@sub.command("mock-server", cls=_Command)
def mock_server(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one.")] = 0,
    script: Annotated[
        Optional[Path], typer.Option(help="YAML script of the model's turns; without it the model echoes.")
    ] = None,
    api_key: Annotated[
        Optional[str],
        typer.Option("--api-key", metavar="KEY", help="Accept only this key (any non-empty key otherwise)."),
    ] = None,
    rate_limit: Annotated[
        Optional[int],
        typer.Option(
            "--rate-limit",
            metavar="RPM",
            help="Allow RPM requests per minute on /v1/messages (429 above it, with the real headers).",
        ),
    ] = None,
    batch_delay: Annotated[
        float,
        typer.Option("--batch-delay", metavar="SECONDS", help="Message Batches: how long a batch stays in progress."),
    ] = 0.0,
) -> None:
    """Serve a local Anthropic-compatible /v1/messages (and Message Batches) with a scripted model."""

    def action() -> int:
        from .mock.server import main as serve

        if script is not None and not script.is_file():
            raise UsageError(f"--script {script}: file not found")
        try:
            return (
                serve(
                    host=host,
                    port=port,
                    script=str(script) if script else None,
                    api_key=api_key,
                    rate_limit={"requests": rate_limit} if rate_limit else None,
                    batch_delay=batch_delay,
                )
                or 0
            )
        except ValueError as exc:  # a script that does not parse or check out
            raise UsageError(f"--script {script}: {exc}") from None
        except OSError as exc:
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None

    raise typer.Exit(_guard(action, False))


from .logs_cli import logs_app  # noqa: E402

sub.add_typer(logs_app, name="logs")

from .batch_cli import batch_app  # noqa: E402

sub.add_typer(batch_app, name="batch")
from .catalog_cli import register as _register_catalog  # noqa: E402

_register_catalog(sys.modules[__name__])  # `models` and `count-tokens`


def _completing_subcommand() -> bool:
    """Shell completion (Typer's scripts set _TOOLCHAT_COMPLETE) of a line whose first word is a
    subcommand: `sub` answers it, as it would run it. bash passes the line in COMP_WORDS, zsh and
    fish in _TYPER_COMPLETE_ARGS."""
    if not os.environ.get("_TOOLCHAT_COMPLETE"):
        return False
    words = (os.environ.get("_TYPER_COMPLETE_ARGS") or os.environ.get("COMP_WORDS") or "").split()
    return len(words) >= 2 and words[1] in SUBCOMMANDS


def run(argv: list[str] | None = None) -> None:
    """Console entry point: subcommands by name, anything else is a prompt."""
    from .stdio import guarded_stdout, safe_streams

    args = sys.argv[1:] if argv is None else argv
    safe_streams()
    if os.environ.get("_TOOLCHAT_COMPLETE"):
        # Typer renders each option's help for zsh and fish through rich, wrapped at the console
        # width (80 when piped): a wrapped line would reach fish as a candidate of its own.
        # TERMINAL_WIDTH is typer.rich_utils' public setting, read when it is imported.
        os.environ.setdefault("TERMINAL_WIDTH", "100000")
    try:
        with guarded_stdout():  # a handler's print() or subprocess writes to stderr, not stdout
            if _completing_subcommand():
                import typer.completion

                typer.completion.completion_init()  # Typer's bash/zsh/fish answers, as `app` sets up
                sub(args=[], prog_name="toolchat")
            elif args and args[0] in SUBCOMMANDS:
                sub(args=args, prog_name="toolchat")
            else:
                app(args=args, prog_name="toolchat")
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not an error worth a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)


if __name__ == "__main__":
    run()
