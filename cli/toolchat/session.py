"""A run assembled in one place: Settings -> dialect, transport, tool sources + runner, sinks, Chat.

Everything that can be refused is checked while the session is built, before anything is sent: the
tools files, tool names in --allow-tool / --deny-tool / --tool-choice, the --save target and the
credentials. Then `run` plays the chat into the sinks (the --save transcript, the conversation log
unless it is off, the view) and returns the Result; main.py turns it into a message and an exit code.
"""

from __future__ import annotations

import sys

from .errors import UsageError
from .events import Finished, Result
from .settings import Settings


def dialect_for(settings: Settings):
    """The wire dialect of the settings: --api openai is chat.completions, else the Messages API."""
    if settings.api == "openai":
        from .dialects.openai import OpenAIDialect

        return OpenAIDialect(settings.base_url)
    from .dialects.anthropic import AnthropicDialect

    return AnthropicDialect()


def tool_runner(settings: Settings, approve=None):
    """The tools of the settings' tools files and MCP servers under the settings' policy (deny,
    allow, --yes, --no-parallel, output cap); `approve(spec, call)` asks about tools marked confirm.

    MCP servers (`mcp_servers:` in a tools file, --mcp-config files) start here, concurrently;
    `mcp__<server>` in --allow-tool / --deny-tool stands for every tool of that server. The
    runner's close() ends them."""
    from .toolsources.mcpconfig import expand_names, source_for
    from .toolsources.runner import ToolRunner
    from .toolsources.yaml import YamlSource

    sources: list = [YamlSource(list(settings.tools))]
    quiet = (lambda message: None) if settings.quiet else None  # -q: nothing on stderr but errors
    mcp = source_for(settings.tools, settings.mcp_config, debug=settings.debug, warn=quiet)
    if mcp is not None:
        sources.append(mcp)
    try:
        return ToolRunner(
            sources,
            deny=expand_names(settings.deny_tools, mcp),
            allow=expand_names(settings.allow_tools, mcp),
            yes=settings.yes,
            parallel=settings.parallel,
            output_cap=settings.tool_output_cap,
            approve=approve,
        )
    except BaseException:
        if mcp is not None:
            mcp.close()
        raise


def _names_expanded(settings: Settings, runner) -> Settings:
    """The settings with `mcp__<server>` in --allow-tool / --deny-tool replaced by its tools."""
    import dataclasses

    from .toolsources.mcpconfig import expand_names

    mcp = next((s for s in runner.sources if hasattr(s, "expand")), None)
    if mcp is None:
        return settings
    return dataclasses.replace(
        settings, allow_tools=expand_names(settings.allow_tools, mcp), deny_tools=expand_names(settings.deny_tools, mcp)
    )


def view_for(settings: Settings):
    """The view for the output mode: json, stream-json, live (stdout is a terminal) or plain."""
    if settings.output == "json":
        from .views.jsonout import JsonView

        return JsonView(quiet=settings.quiet)
    if settings.output == "stream-json":
        from .views.ndjson import NdjsonView

        return NdjsonView(quiet=settings.quiet)
    if settings.schema is not None or settings.extract or settings.extract_last:
        from .views.final import FinalView

        return FinalView(settings)  # the answer printed once it is complete (JSON, code blocks)
    from .views.format import is_terminal
    from .views.plain import PlainView

    if settings.output == "auto" and is_terminal(sys.stdout):
        from .views.live import LiveView

        return LiveView(settings)

    # Stdout piped: the answer stays plain; a terminal on stderr still gets spinners (not with --plain).
    return PlainView(
        quiet=settings.quiet, spinners=settings.output == "auto", summary=True, color=settings.color, raw=settings.raw
    )


class Session:
    """One run. `view`, `approve`, `dialect` and `transport` default to what the settings say."""

    def __init__(self, settings: Settings, *, view=None, approve=None, dialect=None, transport=None):
        self.settings = settings
        self.dialect = dialect or dialect_for(settings)
        self.attachments = _attachments(settings)  # read and checked before any server starts
        self.tools = tool_runner(settings)
        try:
            self.settings = settings = _names_expanded(settings, self.tools)
            _check_tool_names(settings, self.tools.all)
            if settings.save and not settings.dry_run:
                from .sinks.transcript import check_target

                check_target(settings.save)
            self.view = view if view is not None else view_for(settings)
        except BaseException:
            self.tools.close()  # MCP servers started for a run that will not happen
            raise
        self.tools.approve = approve or _approver(self.view)
        show = _shower(self.view)
        self.warn = _warner(settings, show)
        for source in self.tools.sources:
            if hasattr(source, "warn"):  # the MCP source: its lines come from other threads
                source.warn, source.show = self.warn, show
        self._transport = transport

    def request_body(self, messages: list[dict]) -> dict:
        """The wire body of the first request (--dry-run)."""
        from .chat import Chat

        messages = self.with_attachments(messages)
        try:
            return self.dialect.body(Chat(self.settings, self.dialect, None, self.tools).request(messages))
        finally:
            self.tools.close()  # a dry run is not run: its MCP servers end here

    def run(self, messages: list[dict]) -> Result:
        """Play the conversation into the sinks; the Result says how it ended."""
        from .chat import Chat

        messages = self.with_attachments(messages)
        try:
            transport = self._transport or self._connect()
        except BaseException:
            self.tools.close()
            raise
        chat = Chat(self.settings, self.dialect, transport, self.tools)
        chat.warn = self.warn
        sinks = []
        try:
            if self.settings.save:
                from .sinks.transcript import SaveSink

                # First: a failed save becomes the run's error before the views show the result.
                sinks.append(
                    SaveSink(self.settings.save, chat.result, model=self.settings.model, system=self.settings.system)
                )
            # Before the view: every event is logged even when showing one is cut short (Ctrl-C).
            log = self._log_sink(chat, messages)
            if log is not None:
                sinks.append(log)
            sinks.append(self.view)
            _play(chat, messages, sinks)
        finally:
            transport.close()
            self.tools.close()
        return chat.result

    def _log_sink(self, chat, messages: list[dict]):
        """The conversation log's sink for this run (logdb.py, sinks/log.py), or None: not logged.
        A log that cannot be opened (a newer schema, a damaged file) is told on stderr and the run
        goes on unlogged."""
        s = self.settings
        if not s.log_path:
            return None
        from .logdb import LogDB, LogError, new_id
        from .sinks.log import LogSink

        warn = self.warn
        try:
            db = LogDB(s.log_path, secrets=_secrets(s))
        except LogError as exc:
            warn(f"warning: not logged: {exc.message}")
            return None
        conversation_id = s.conversation_id or new_id()
        chat.result.conversation_id = conversation_id  # in the start event and the --json document
        return LogSink(
            db,
            messages,
            model=s.model,
            system=s.system,
            dialect=self.dialect.name,
            base_url=s.base_url,
            conversation_id=conversation_id,
            sources={name: spec.source for name, spec in self.tools.all.items()},
            warn=warn,
        )

    def with_attachments(self, messages: list[dict]) -> list[dict]:
        """The transcript with the -a attachments in its last user message (the prompt)."""
        if not self.attachments:
            return messages
        from .attachments import attach

        return attach(messages, self.attachments)

    def _connect(self):
        from .transport import Transport

        s = self.settings
        headers = {**self.dialect.headers(s), **s.extra_headers()}
        return Transport(
            self.dialect.url(s.base_url),
            headers,
            connect_timeout=s.connect_timeout,
            read_timeout=s.read_timeout,
            debug=s.debug,
        )


def _play(chat, messages: list[dict], sinks: list) -> None:
    """Every event of the chat into every sink. Ctrl-C / SIGTERM met in a sink is thrown into the
    chat, which settles the transcript and answers with Finished (Chat makes every event)."""
    events = chat.run(messages)
    shown = False  # a Finished went through every sink
    try:
        event = next(events)
        while True:
            try:
                for sink in sinks:
                    sink.handle(event)
                shown = isinstance(event, Finished)
                event = next(events)
            except StopIteration:
                return
            except KeyboardInterrupt as exc:
                event = events.throw(exc)
    except StopIteration:
        return
    except KeyboardInterrupt as exc:  # a second Ctrl-C while finishing up
        finished = chat.interrupted(exc)
        if not shown:
            for sink in sinks:
                sink.handle(finished)
    finally:
        events.close()
        for sink in sinks:
            sink.close()


def _attachments(settings: Settings) -> list[dict]:
    if not settings.attach and not settings.attach_type:
        return []
    from .attachments import load

    return load(settings.attach, settings.attach_type)


def _check_tool_names(settings: Settings, known: dict) -> None:
    if settings.schema is not None:
        from .structured import ANSWER_TOOL

        if ANSWER_TOOL in known:
            raise UsageError(
                f"--schema: a tool named {ANSWER_TOOL!r} is defined; --schema needs the "
                "name for its answer tool (rename the tool)"
            )
    for flag, names in (("--allow-tool", settings.allow_tools), ("--deny-tool", settings.deny_tools)):
        for name in names:
            if name not in known:
                raise UsageError(f"{flag}: no tool named {name!r} (tools: {', '.join(known) or 'none'})")
    choice = settings.tool_choice
    if choice is not None and not known:
        raise UsageError("--tool-choice needs tools: pass -t FILE")
    if choice not in (None, "auto", "any", "none") and choice not in known:
        raise UsageError(f"--tool-choice: no tool named {choice!r} (tools: {', '.join(known)})")
    if choice in settings.deny_tools:
        raise UsageError(f"--tool-choice {choice} names a tool that --deny-tool removes")


# Header names that say their value is a credential (X-Gateway-Token, X-Portkey-Api-Key, ...), besides
# the ones the transport knows (transport.SECRET_HEADERS).
_CREDENTIAL_WORDS = ("key", "token", "auth", "secret", "password", "cookie", "session")


def _secrets(settings: Settings) -> tuple[str, ...]:
    """What the conversation log must never hold: the key, and the values of credential headers
    (--header, config headers), wherever a server or a tool echoes them."""
    from .transport import secret_values

    headers = settings.extra_headers()
    named = [value for name, value in headers.items() if any(word in name.lower() for word in _CREDENTIAL_WORDS)]
    return (settings.api_key or "", *secret_values(headers), *named)


def _warner(settings: Settings, show):
    """A warning line, neutralised, through `show` (_shower: on stderr with the view's display
    paused around it, so a warning from any thread, an MCP server that stopped told from the
    event-loop thread, is one whole line that nothing overwrites); none with -q (nothing on stderr
    but errors)."""
    if settings.quiet:
        return lambda line: None

    def warn(line: str) -> None:
        from .text import one_line

        show(f"toolchat: {one_line(line, None)}")

    return warn


def _shower(view):
    """A line on stderr as given (already safe), with the view's display paused around it."""
    paused = getattr(view, "paused", None)

    def show(line: str) -> None:
        from contextlib import nullcontext

        with paused() if paused is not None else nullcontext():
            print(line, file=sys.stderr, flush=True)

    return show


def _approver(view):
    from .approval import terminal_approver

    return terminal_approver(view)
