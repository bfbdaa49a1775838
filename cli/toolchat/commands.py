"""What every command module shares: -h, click's argument names in help, and the error guard that
turns toolchat's errors into one line on stderr and an exit code. main.py and the subcommand modules
(logs_cli.py, ...) import it; it imports none of them, so there is no import circle."""

from __future__ import annotations

import sys
from typing import Annotated, Any, List, Optional

import typer
import typer.core

from .errors import EXIT_INTERRUPTED, EXIT_TERMINATED, Terminated, ToolchatError, interruption

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
        arguments = [
            (_metavar(p), getattr(p, "help", None) or "")
            for p in params
            if p.param_type_name == "argument" and not getattr(p, "hidden", False)
        ]
        options = [
            record
            for p in params
            if p.param_type_name == "option"
            for record in [p.get_help_record(ctx)]
            if record is not None
        ]
        for title, rows in (("Arguments", arguments), ("Options", options)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


def _metavar(param) -> str:
    name = param.metavar or param.name.upper()
    return name + "..." if param.nargs == -1 else name


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
            on_error(interruption(exc))
        _say("terminated" if isinstance(exc, Terminated) else "interrupted")
        return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED


# Options rows as Typer parameters, and SIGTERM as Ctrl-C: for main.py and batch_cli.py.


def _typer_options(rows, before=(), after=()):
    """A decorator giving `function(**values)` one Typer parameter per options.py row (between
    `before` and `after`, inspect.Parameters of its own); Typer reads the signature."""
    import inspect

    kinds = {str: Optional[str], int: Optional[int], float: Optional[float], list: Optional[List[str]]}

    def parameter(option) -> inspect.Parameter:
        extra = {"metavar": option.metavar} if option.metavar else {}
        if option.type is bool:
            annotation: Any = Annotated[bool, typer.Option(*option.flags, help=option.help)]
            default = False
        else:
            annotation = Annotated[
                kinds[option.type], typer.Option(*option.flags, help=option.help, show_default=False, **extra)
            ]
            default = None
        return inspect.Parameter(option.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)

    def decorate(function):
        params = [*before, *(parameter(option) for option in rows), *after]
        function.__signature__ = inspect.Signature(params)
        function.__annotations__ = {p.name: p.annotation for p in params}
        return function

    return decorate


def _given(option, value):
    """A flag's value for settings.resolve: None when not given."""
    if option.type is bool:
        return option.flag_value if value else None
    return value


def _keyword(name, annotation, default=None):
    import inspect

    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def _signals() -> None:
    """SIGTERM ends a run the way Ctrl-C does (flushed output, saved transcript), exit 143."""
    import signal

    def on_term(signum, frame):
        raise Terminated()

    try:
        signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not the main thread (toolchat driven in-process)
        pass
