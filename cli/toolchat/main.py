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
import typer.core


from . import __version__
from .errors import EXIT_INTERRUPTED, EXIT_TERMINATED, Interrupted, ToolchatError, UsageError

SUBCOMMANDS = ("tools", "mock-server", "logs")

EPILOG = (
    "Other commands: toolchat tools list | tools validate FILE... | tools run NAME --input JSON, "
    "toolchat logs [list | show ID | search TEXT | export ID | rm ID | path | off | on], "
    "toolchat mock-server.  Exit codes: 0 done, 2 usage or tools file, 3 API or transport, "
    "4 incomplete answer, 130 interrupted, 143 terminated."
)

HELP = {"help_option_names": ["-h", "--help"]}  # -h works on every command


class _Command(typer.core.TyperCommand):
    """Click's usual argument names in help (`PROMPT...`, `FILE...`, `NAME`): typer 0.29 writes
    `{files}...` in the usage line and `PROMPT <list[str]>` in the argument list. `cls=` on a
    command and click's `collect_usage_pieces` / `format_options` are the public extension points."""

    def collect_usage_pieces(self, ctx):
        pieces = [self.options_metavar] if self.options_metavar else []
        return pieces + [_metavar(p) for p in self.get_params(ctx) if p.param_type_name == "argument"]

    def format_options(self, ctx, formatter) -> None:
        params = self.get_params(ctx)
        arguments = [(_metavar(p), getattr(p, "help", None) or "") for p in params
                     if p.param_type_name == "argument" and not getattr(p, "hidden", False)]
        options = [record for p in params if p.param_type_name == "option"
                   for record in [p.get_help_record(ctx)] if record is not None]
        for title, rows in (("Arguments", arguments), ("Options", options)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


def _metavar(param) -> str:
    name = param.metavar or param.name.upper()
    return name + "..." if param.nargs == -1 else name

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None,
                  context_settings=HELP)
sub = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None,
                  no_args_is_help=True, help="toolchat subcommands.", context_settings=HELP)
tools_app = typer.Typer(no_args_is_help=True, help="Inspect, check and run tools from tools files.",
                        context_settings=HELP)
sub.add_typer(tools_app, name="tools")


def _version(value: bool) -> None:
    if value:
        print(f"toolchat {__version__}")
        raise typer.Exit()


@app.command(epilog=EPILOG, cls=_Command)
def ask(
    prompt: Annotated[Optional[List[str]], typer.Argument(
        metavar="PROMPT", help="The prompt. Piped stdin is read too and added after it.", show_default=False)] = None,
    model: Annotated[Optional[str], typer.Option("-m", "--model", metavar="MODEL", help="Model name. [env TOOLCHAT_MODEL; default claude-sonnet-4-20250514]", show_default=False)] = None,
    max_tokens: Annotated[Optional[int], typer.Option("--max-tokens", metavar="N", help="Max output tokens per turn. [default 4096]", show_default=False)] = None,
    system: Annotated[Optional[str], typer.Option("-s", "--system", metavar="TEXT", help="System prompt.")] = None,
    tools: Annotated[Optional[List[str]], typer.Option("-t", "--tools", metavar="FILE", help="Tools YAML file (repeatable). [env TOOLCHAT_TOOLS]", show_default=False)] = None,
    base_url: Annotated[Optional[str], typer.Option("--base-url", metavar="URL", help="API base URL. [env TOOLCHAT_BASE_URL, ANTHROPIC_BASE_URL]", show_default=False)] = None,
    auth_style: Annotated[Optional[str], typer.Option("--auth-style", metavar="STYLE", help="How TOOLCHAT_API_KEY is sent: auto|bearer|x-api-key.", show_default=False)] = None,
    header: Annotated[Optional[List[str]], typer.Option("--header", metavar="'NAME: VALUE'", help="Extra request header 'Name: value' (repeatable).", show_default=False)] = None,
    tool_choice: Annotated[Optional[str], typer.Option("--tool-choice", metavar="CHOICE", help="auto|any|none|TOOL_NAME", show_default=False)] = None,
    no_parallel: Annotated[bool, typer.Option("--no-parallel", help="Ask for at most one tool call per turn.")] = False,
    max_turns: Annotated[Optional[int], typer.Option("--max-turns", metavar="N", help="Max model requests in this run. [default 10]", show_default=False)] = None,
    temperature: Annotated[Optional[float], typer.Option("--temperature", metavar="T", help="Sampling temperature, 0 to 1.", show_default=False)] = None,
    retries: Annotated[Optional[int], typer.Option("--retries", metavar="N", help="Retries for overloaded, rate-limited or failed requests. [default 2]", show_default=False)] = None,
    timeout: Annotated[Optional[float], typer.Option("--timeout", metavar="SECONDS", help="Connect timeout, and the longest silence allowed in a response. [default 10 / 600]", show_default=False)] = None,
    allow_tool: Annotated[Optional[List[str]], typer.Option("--allow-tool", metavar="NAME", help="Run this tool without asking, even if marked confirm: true (repeatable).", show_default=False)] = None,
    deny_tool: Annotated[Optional[List[str]], typer.Option("--deny-tool", metavar="NAME", help="Never offer or run this tool (repeatable).", show_default=False)] = None,
    tool_output_cap: Annotated[Optional[int], typer.Option("--tool-output-cap", metavar="CHARS", help="Cut each tool output to this many characters. [default 100000]", show_default=False)] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON document with the result on stdout.")] = False,
    stream_json: Annotated[bool, typer.Option("--stream-json", help="Print newline-delimited JSON events on stdout as they happen.")] = False,
    plain: Annotated[bool, typer.Option("--plain", help="Plain text, no live markdown view, even on a terminal.")] = False,
    raw: Annotated[bool, typer.Option("--raw", help="Plain output with the model's text byte-exact: escape sequences and control characters not neutralised.")] = False,
    color: Annotated[Optional[str], typer.Option("--color", metavar="WHEN", help="auto|always|never. [default auto; NO_COLOR honoured]", show_default=False)] = None,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="The answer only: nothing on stderr but errors.")] = False,
    save: Annotated[Optional[str], typer.Option("--save", metavar="FILE", help="Write the conversation to FILE after the run (also after a failure).", show_default=False)] = None,
    messages_file: Annotated[Optional[str], typer.Option("--messages", metavar="FILE", help="Start from a saved conversation, messages array or --json document ('-' = stdin).", show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the request body and send nothing.")] = False,
    yes: Annotated[bool, typer.Option("-y", "--yes", help="Run tools marked confirm: true without asking.")] = False,
    demo: Annotated[bool, typer.Option("--demo", help="Run against the built-in offline mock model with the sample tools.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show requests and full tracebacks on stderr.")] = False,
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")] = None,
) -> None:
    """Ask a model something; it may call your local Python tools until it has the answer.

    Example: toolchat -t sample_tools.yaml "What's the weather in Paris?"
    """
    output = "json" if json_output else "stream-json" if stream_json else "plain" if plain or raw else None
    flags = {
        "model": model, "max_tokens": max_tokens, "system": system, "tools": tools,
        "base_url": base_url, "auth_style": auth_style, "header": header,
        "tool_choice": tool_choice, "parallel": False if no_parallel else None,
        "max_turns": max_turns, "temperature": temperature, "retries": retries,
        "timeout": timeout, "allow_tools": allow_tool, "deny_tools": deny_tool,
        "tool_output_cap": tool_output_cap, "output": output, "color": color, "quiet": quiet,
        "save": save, "dry_run": dry_run, "yes": yes, "debug": debug, "raw": raw,
    }
    _signals()
    on_error = _json_failure(model, stream=stream_json) if json_output or stream_json else None
    if json_output and stream_json:
        raise typer.Exit(_guard(_conflict("--json", "--stream-json"), debug))
    if raw and (json_output or stream_json):  # JSON keeps the exact text already
        raise typer.Exit(_guard(_conflict("--raw", "--json" if json_output else "--stream-json"), debug))
    raise typer.Exit(_guard(lambda: _ask(prompt or [], flags, demo, messages_file), debug,
                            on_error=on_error))


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
    if sys.stdin is not None and not sys.stdin.isatty() and messages_file != "-":
        piped, replaced = decode(read_stdin())
        warn_replaced("stdin", replaced)
        text = "\n\n".join(part for part in (text, piped.strip()) if part)
    messages: list[dict] = []
    if messages_file is not None:
        from .transcript import continue_from, load_transcript

        loaded = load_transcript(messages_file)
        if flags.get("model") is None and loaded.model:
            flags = {**flags, "model": loaded.model}
        if flags.get("system") is None and loaded.system:
            flags = {**flags, "system": loaded.system}
        messages = continue_from(loaded.messages, text, messages_file)
    elif not text:
        raise UsageError("no prompt: give one as arguments or on stdin (toolchat --help)")
    else:
        messages = [{"role": "user", "content": text}]

    server = None
    env, replaced = _repair_env(dict(os.environ))
    warn_replaced("the environment (TOOLCHAT_*, ANTHROPIC_*)", replaced)
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


def _repair_env(env: dict) -> tuple[dict, int]:
    """toolchat's variables as valid text, like the options (file names stay as given)."""
    from .stdio import repair

    total = 0
    for key, value in env.items():
        if key.startswith(("TOOLCHAT_", "ANTHROPIC_")) and key not in ("TOOLCHAT_TOOLS", "TOOLCHAT_CONFIG"):
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


_PATH_FLAGS = {"tools", "save"}


def _run(settings, messages: list[dict]) -> int:
    from .chat import Chat
    from .toolbox import load_files

    toolbox = load_files(list(settings.tools))
    for flag, names in (("--allow-tool", settings.allow_tools), ("--deny-tool", settings.deny_tools)):
        for name in names:
            if name not in toolbox.tools:
                raise UsageError(f"{flag}: no tool named {name!r} (tools: {', '.join(toolbox.tools) or 'none'})")
    choice = settings.tool_choice
    if choice is not None and not toolbox.tools:
        raise UsageError("--tool-choice needs tools: pass -t FILE")
    if choice not in (None, "auto", "any", "none") and choice not in toolbox.tools:
        raise UsageError(f"--tool-choice: no tool named {choice!r} (tools: {', '.join(toolbox.tools)})")
    if choice in settings.deny_tools:
        raise UsageError(f"--tool-choice {choice} names a tool that --deny-tool removes")
    if settings.save and not settings.dry_run:
        from .transcript import check_save_target

        try:
            check_save_target(settings.save)
        except OSError as exc:
            raise UsageError(f"--save {settings.save}: cannot write it: {exc.strerror or exc}") from None
    view = _view(settings)
    chat = Chat(settings, toolbox, approve=_approver(settings, view))
    if settings.dry_run:
        body = chat.body(messages)
        from .text import dumps

        print(dumps(body, indent=2))
        return 0
    from .transport import Transport, messages_url

    headers = {**settings.credential_header(), **settings.extra_headers()}
    chat.transport = Transport(messages_url(settings.base_url), headers,
                               connect_timeout=settings.connect_timeout,
                               read_timeout=settings.read_timeout, debug=settings.debug)
    from .events import Finished

    events = chat.run(messages)
    saved = shown = False
    try:
        try:
            for event in events:
                if isinstance(event, Finished):
                    _save(settings, chat.result)  # before the result is shown, so it can tell of a failed save
                    saved = True
                view.handle(event)
            shown = True
        except KeyboardInterrupt as exc:
            events.close()  # answers tool calls cut short, so the saved conversation stays valid
            chat.result.error = _interruption(exc)
            _save(settings, chat.result)
            saved = True
            view.handle(Finished(chat.result))
            shown = True
        finally:
            chat.transport.close()
            if not saved:
                _save(settings, chat.result)  # an unexpected error: keep the conversation anyway
    except KeyboardInterrupt as exc:  # a second Ctrl-C while finishing up
        chat.result.error = _interruption(exc)
        if not shown:
            view.handle(Finished(chat.result))
    return _report(chat.result, settings)


def _save(settings, result) -> None:
    """--save: write the conversation; a failure to write becomes the run's error (exit 2)."""
    from .transcript import save_transcript

    if not settings.save:
        return
    try:
        save_transcript(settings.save, result.messages, model=settings.model, system=settings.system)
    except OSError as exc:
        if result.error is None:
            result.error = UsageError(f"--save {settings.save}: cannot write it: {exc.strerror or exc}")
        else:
            _say(f"error: --save {settings.save}: cannot write it: {exc.strerror or exc}")


def _view(settings):
    """The view for the output mode: json, stream-json, live (stdout is a terminal) or plain."""
    if settings.output == "json":
        from .views.jsonout import JsonView

        return JsonView(quiet=settings.quiet)
    if settings.output == "stream-json":
        from .views.ndjson import NdjsonView

        return NdjsonView(quiet=settings.quiet)
    from .views.plain import PlainView, is_terminal

    if settings.output == "auto" and is_terminal(sys.stdout):
        from .views.live import LiveView

        return LiveView(settings)

    # Stdout piped: the answer stays plain; a terminal on stderr still gets spinners (not with --plain).
    return PlainView(quiet=settings.quiet, spinners=settings.output == "auto", summary=True,
                     color=settings.color, raw=settings.raw)


class Terminated(KeyboardInterrupt):
    """SIGTERM: handled like Ctrl-C, but the exit code is 143."""


def _signals() -> None:
    """SIGTERM ends a run the way Ctrl-C does (flushed output, saved transcript), exit 143."""
    import signal

    def on_term(signum, frame):
        raise Terminated()

    try:
        signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not the main thread (toolchat driven in-process)
        pass


def _interruption(exc: BaseException) -> Interrupted:
    if isinstance(exc, Terminated):
        return Interrupted("terminated", exit_code=EXIT_TERMINATED)
    return Interrupted("interrupted")


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
}


def _approver(settings, view=None):
    """approve(tool, call): ask on the terminal for tools marked confirm: true."""
    always: set[str] = set()

    def approve(tool, call):
        if not tool.confirm or settings.yes or tool.name in always:
            return None
        try:
            # Two handles: a text-mode "r+" handle on a terminal fails as unseekable.
            tty_in = open("/dev/tty", encoding="utf-8")
            tty_out = open("/dev/tty", "w", encoding="utf-8")
        except OSError:
            return (f"not run: tool {tool.name!r} needs the user's confirmation and there is no "
                    "terminal to ask on (the user can allow it with -y or --allow-tool)")
        from contextlib import nullcontext

        # The live display stops redrawing while the question is on screen.
        paused = getattr(view, "paused", None)
        with tty_in, tty_out, (paused() if paused else nullcontext()):
            from .text import compact_json, neutralise

            # The input exactly, on one line (JSON escapes line ends), every control shown escaped.
            tty_out.write(f"Run {neutralise(tool.name)} {neutralise(compact_json(call.input))}? "
                          "[y]es/[n]o/[a]lways: ")
            tty_out.flush()
            answer = tty_in.readline().strip().lower()
        if answer in ("a", "always"):
            always.add(tool.name)
            return None
        if answer in ("y", "yes"):
            return None
        return f"not run: the user declined to run {tool.name!r}"

    return approve


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


def _say(line: str) -> None:
    """One line for a person on stderr; server messages, headers and file names come in here, so
    it is neutralised (and folded to one line)."""
    from .text import one_line

    print(f"toolchat: {one_line(line, None)}", file=sys.stderr, flush=True)


def _traceback(exc: BaseException) -> None:
    """--debug: the traceback on stderr, neutralised (the message in it may come from a server)."""
    import traceback

    from .text import neutralise

    sys.stderr.write(neutralise("".join(traceback.format_exception(exc))))
    sys.stderr.flush()


def _guard(action, debug: bool, on_error=None) -> int:
    """Run an action; map toolchat's errors to one line on stderr and an exit code."""
    try:
        return action()
    except ToolchatError as exc:
        if on_error is not None:
            on_error(exc)
        _say(f"error: {exc.message}")
        if debug:
            _traceback(exc)
        return exc.exit_code
    except KeyboardInterrupt as exc:  # before the run started (during it, _run reports it)
        if on_error is not None:
            on_error(_interruption(exc))
        _say("terminated" if isinstance(exc, Terminated) else "interrupted")
        return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED


# ---------------------------------------------------------------------------------------------
# Subcommands


@tools_app.command("list", cls=_Command)
def tools_list(
    tools: Annotated[Optional[List[str]], typer.Option("-t", "--tools", metavar="FILE", help="Tools YAML file (repeatable). [env TOOLCHAT_TOOLS]", show_default=False)] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the tools as the API receives them.")] = False,
) -> None:
    """List the tools the files define."""

    def action() -> int:
        box = _load_toolbox(tools)
        if json_output:
            from .text import dumps

            print(dumps(box.wire(), indent=2))
            return 0
        from .text import one_line

        for tool in box.tools.values():
            flags = " (confirm)" if tool.confirm else ""
            print(f"{one_line(tool.name)}{flags}\t{one_line(tool.description, 100)}")
        return 0

    raise typer.Exit(_guard(action, False))


@tools_app.command("validate", cls=_Command)
def tools_validate(files: Annotated[List[str], typer.Argument(metavar="FILE", help="Tools YAML files.")]) -> None:
    """Check tools files: names, schemas, handlers. Exit 2 on the first problem."""

    def action() -> int:
        from .toolbox import load_files

        box = load_files(files)
        print(f"ok: {len(box.tools)} tool{'s' * (len(box.tools) != 1)} in {len(files)} "
              f"file{'s' * (len(files) != 1)}")
        return 0

    raise typer.Exit(_guard(action, False))


@tools_app.command("run", cls=_Command)
def tools_run(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The tool to run.")],
    input_json: Annotated[str, typer.Option("--input", metavar="JSON", help="The tool input as a JSON object.")] = "{}",
    tools: Annotated[Optional[List[str]], typer.Option("-t", "--tools", metavar="FILE", help="Tools YAML file (repeatable). [env TOOLCHAT_TOOLS]", show_default=False)] = None,
) -> None:
    """Run one tool's handler directly, as the model would; prints its output.

    Exit 1 if the tool failed; 2 for an unknown tool or input that does not fit its schema.
    """

    def action() -> int:
        from .toolbox import Call

        box = _load_toolbox(tools)
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

    raise typer.Exit(_guard(action, False))


def _load_toolbox(files: list[str] | None):
    from .settings import resolve
    from .toolbox import load_files

    settings = resolve({"tools": files}, os.environ)
    if not settings.tools:
        raise UsageError("no tools files: pass -t FILE or set TOOLCHAT_TOOLS")
    return load_files(list(settings.tools))


@sub.command("mock-server", cls=_Command)
def mock_server(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one.")] = 0,
    script: Annotated[Optional[Path], typer.Option(help="YAML script of the model's turns; without it the model echoes.")] = None,
    api_key: Annotated[Optional[str], typer.Option("--api-key", metavar="KEY", help="Accept only this key (any non-empty key otherwise).")] = None,
) -> None:
    """Serve a local Anthropic-compatible /v1/messages with a scripted model (for demos and tests)."""

    def action() -> int:
        from .mock.server import main as serve

        if script is not None and not script.is_file():
            raise UsageError(f"--script {script}: file not found")
        try:
            return serve(host=host, port=port, script=str(script) if script else None,
                         api_key=api_key) or 0
        except ValueError as exc:  # a script that does not parse or check out
            raise UsageError(f"--script {script}: {exc}") from None
        except OSError as exc:
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None

    raise typer.Exit(_guard(action, False))


from .logs_cli import logs_app  # noqa: E402  (it uses _Command and _guard from above)

sub.add_typer(logs_app, name="logs")


def run(argv: list[str] | None = None) -> None:
    """Console entry point: subcommands by name, anything else is a prompt."""
    from .stdio import guarded_stdout, safe_streams

    args = sys.argv[1:] if argv is None else argv
    safe_streams()
    try:
        with guarded_stdout():  # a handler's print() or subprocess writes to stderr, not stdout
            if args and args[0] in SUBCOMMANDS:
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
