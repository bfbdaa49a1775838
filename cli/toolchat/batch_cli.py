"""`toolchat batch INPUT.jsonl [-o OUT.jsonl]`: many conversations, each the full tool loop,
locally at the rate limit or through the Message Batches API; `batch status` and `batch cancel`
act on the job of an input file. The engine lives in batch/; this module only parses."""

from __future__ import annotations

import os
from typing import Annotated

import typer
import typer.core

from . import commands as _main  # the help formatting, option rows and error guard of every command
from . import options

# The one-shot options that apply to every line of a batch (the rows of options.py); --api joins
# when it exists.
SHARED = (
    "model",
    "max_tokens",
    "system",
    "system_file",
    "tools",
    "mcp_config",
    "base_url",
    "auth_style",
    "headers",
    "tool_choice",
    "parallel",
    "max_turns",
    "temperature",
    "top_p",
    "top_k",
    "stop",
    "thinking",
    "schema",
    "retries",
    "timeout",
    "allow_tools",
    "deny_tools",
    "tool_output_cap",
    "yes",
    "debug",
    "quiet",
    "color",
    "stream_json",
    "api",
)
COMMANDS = ("run", "status", "cancel")


def rows() -> list:
    shared = [o for o in options.OPTIONS if o.name in SHARED and "ask" in o.commands and o.flags]
    return shared + options.for_command("batch")


class _Group(typer.core.TyperGroup):
    """`toolchat batch FILE ...` means `toolchat batch run FILE ...` (click's public parse_args)."""

    def parse_args(self, ctx, args):
        if args and args[0] not in COMMANDS and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


batch_app = typer.Typer(
    cls=_Group,
    no_args_is_help=True,
    context_settings=_main.HELP,
    help="Many conversations from a JSONL file: toolchat batch INPUT.jsonl [-o OUT.jsonl].",
)

_INPUT = _main._keyword(
    "input",
    Annotated[
        str,
        typer.Argument(
            metavar="INPUT",
            help="JSONL: one prompt (a JSON string) or {custom_id, prompt | messages, system, "
            "model, max_tokens, temperature} per line; '-' = stdin.",
        ),
    ],
)


def _settings(values: dict):
    from .settings import resolve

    flags = {o.name: _main._given(o, values.get(o.name)) for o in rows() if o.setting}
    flags["output"] = "json"  # no view: the batch writes its own output
    return resolve(flags, os.environ)


@batch_app.command("run", cls=_main._Command)
@_main._typer_options(rows(), before=[_INPUT])
def batch_run(input: str, **values) -> None:  # noqa: A002 - the argument's name in help
    """Run every line of INPUT as a conversation with the tools; one JSON result line per input line.

    Exit 0 if every line succeeded, 4 if some answers were incomplete, 3 if some lines failed.
    Running the same command again continues where it stopped (state in the conversation log).
    """

    def action() -> int:
        from .batch.run import Plan, run

        _main._signals()
        plan = Plan(
            input=input,
            output=values["batch_output"],
            concurrency=_value("concurrency", values),
            ordered=bool(values["ordered"]),
            via=_value("via", values),
            poll_interval=float(_value("poll_interval", values)),
            stream_json=bool(values["stream_json"]),
        )
        return run(plan, _settings(values))

    raise typer.Exit(_main._guard(action, bool(values.get("debug"))))


def _value(name: str, values: dict):
    """A batch row's value: the flag, else its environment variable, else its default."""
    option = options.BY_NAME[name]
    if values.get(name) is not None:
        return values[name]
    for env in option.env:
        if os.environ.get(env):
            return option.type(os.environ[env])
    return option.default


_JSON = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@batch_app.command("status", cls=_main._Command)
def batch_status(
    input: Annotated[str, typer.Argument(metavar="INPUT", help="The input file of the job.")],
    json_output: _JSON = False,
) -> None:  # noqa: A002
    """Where the job of INPUT stands: lines done, failed, pending; its Message Batches (asked live)."""

    def action() -> int:
        from .batch.control import status

        return status(input, json_output, _settings({}))

    raise typer.Exit(_main._guard(action, False))


@batch_app.command("cancel", cls=_main._Command)
def batch_cancel(input: Annotated[str, typer.Argument(metavar="INPUT", help="The input file of the job.")]) -> None:  # noqa: A002
    """Cancel the Message Batches of the job of INPUT that are still in progress."""

    def action() -> int:
        from .batch.control import cancel

        return cancel(input, _settings({}))

    raise typer.Exit(_main._guard(action, False))
