"""`toolchat models` (GET /v1/models) and `toolchat count-tokens PROMPT` (POST
/v1/messages/count_tokens with the tools, system prompt and attachments a run would send)."""

from __future__ import annotations

import os
import sys
from typing import Annotated, List, Optional

import typer

from . import commands, options
from .errors import UsageError

MAX_PAGES = 50  # a server that says has_more for ever does not keep `models` going


def register(main) -> None:
    """Add the commands to main.py's `sub` app, with its help formatting, its parameters built from
    options.py rows and its error guard (commands.py; main is passed in, as importing it here would be a circle)."""
    main.sub.command("models", cls=commands._Command)(commands._typer_options(options.for_command("models"))(models))
    prompt = commands._keyword(
        "prompt",
        Annotated[
            Optional[List[str]],
            typer.Argument(
                metavar="PROMPT", help="The prompt (piped stdin is read too, as for a run).", show_default=False
            ),
        ],
    )
    main.sub.command("count-tokens", cls=commands._Command)(
        commands._typer_options(options.for_command("count-tokens"), before=[prompt])(count_tokens)
    )


def _flags(command: str, values: dict) -> dict:
    return {o.name: commands._given(o, values[o.name]) for o in options.for_command(command)}


def models(**values) -> None:
    """List the models the API offers (GET /v1/models): one id per line with its name; --json: the list."""
    from .settings import resolve

    def action() -> int:
        settings = resolve(_flags("models", values), dict(os.environ))
        from .session import dialect_for
        from .transport import Transport
        from .dialects.models import models_from_json

        dialect = dialect_for(settings)
        headers = {**dialect.headers(settings), **settings.extra_headers()}
        url = dialect.models_url(settings.base_url)
        transport = Transport(
            url,
            headers,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            debug=settings.debug,
        )
        found: list[dict] = []
        try:
            after = None
            for _ in range(MAX_PAGES):
                page = url + (
                    "?limit=1000" + (f"&after_id={after}" if after else "") if dialect.name == "anthropic" else ""
                )
                batch, after = models_from_json(transport.get_json(page))
                found += batch
                if after is None:
                    break
        finally:
            transport.close()
        if values["json"]:
            from .text import dumps

            print(dumps(found, indent=2))
        else:
            from .text import one_line

            for model in found:
                name = model.get("display_name") or model.get("owned_by") or ""
                print(one_line(model["id"], 200) + (f"\t{one_line(str(name), 200)}" if name else ""))
        return 0

    raise typer.Exit(commands._guard(action, values["debug"]))


def count_tokens(prompt: Optional[List[str]] = None, **values) -> None:
    """Count the input tokens of a prompt with the tools, system prompt and attachments a run with
    the same options would send (POST /v1/messages/count_tokens); prints the number (--json: an object)."""

    def action() -> int:
        from .settings import resolve
        from .stdio import decode, read_stdin

        flags = _flags("count-tokens", values)
        text = " ".join(prompt or []).strip()
        attached = "-" in (flags.get("attach") or [])
        if sys.stdin is not None and not sys.stdin.isatty() and not attached:
            piped, _ = decode(read_stdin())
            text = "\n\n".join(part for part in (text, piped.strip()) if part)
        if not text and not flags.get("attach"):
            raise UsageError("no prompt: give one as arguments or on stdin")
        settings = resolve({**flags, "output": "json"}, dict(os.environ))
        from .dialects.models import count_tokens_body
        from .session import Session
        from .transport import Transport

        session = Session(settings, view=_Quiet())
        if not hasattr(session.dialect, "count_tokens_url"):
            raise UsageError(f"count-tokens: the {session.dialect.name} API has no token counting endpoint")
        body = count_tokens_body(session.request_body([{"role": "user", "content": text}]))
        headers = {**session.dialect.headers(settings), **settings.extra_headers()}
        transport = Transport(
            session.dialect.count_tokens_url(settings.base_url),
            headers,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            debug=settings.debug,
        )
        try:
            reply = transport.send(body)
            data = reply.json()
            reply.close()
        finally:
            transport.close()
        count = data.get("input_tokens") if isinstance(data, dict) else None
        if not isinstance(count, int) or isinstance(count, bool):
            from .errors import APIError

            raise APIError("count_tokens answered without input_tokens", type="malformed_response")
        if values["json"]:
            from .text import dumps

            print(dumps({"model": settings.model, "input_tokens": count}))
        else:
            print(count)
        return 0

    raise typer.Exit(commands._guard(action, values["debug"]))


class _Quiet:
    """count-tokens runs nothing: no view shows anything."""

    def handle(self, event) -> None:
        pass

    def close(self) -> None:
        pass
