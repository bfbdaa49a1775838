"""The conversation loop: request -> stream -> tools -> tool_result -> repeat, as a generator of events.

It knows nothing of terminals, HTTP or a concrete dialect: a Dialect turns the Anthropic-shaped
transcript into a body and reply bytes into events and the assistant message, a transport sends
bodies, a ToolRunner runs tools (with every tool policy: approval, deny, timeouts...).
"""

from __future__ import annotations

import time
from typing import Iterator

from . import retry, structured
from .errors import ToolchatError, interruption
from .events import READ_DONE, Finished, Result, Retry, Start, ToolCall, ToolResult, TurnEnd, TurnStart
from .dialects.base import Dialect, Request
from .settings import Settings
from .toolsources.base import Call
from .toolsources.runner import ToolRunner


# Stop reasons that end a run with an incomplete answer (exit 4).
INCOMPLETE_STOPS = {"max_tokens", "model_context_window_exceeded", "refusal"}


class Chat:
    """`transport` is anything with send(body) -> reply (kind "sse" | "json", chunks(), json(),
    close()), scrubbed(error) -> error and close(): transport.Transport, or a fake in tests."""

    def __init__(self, settings: Settings, dialect: Dialect, transport, tools: ToolRunner):
        self.settings = settings
        self.dialect = dialect
        self.transport = transport
        self.tools = tools
        self.result = Result(model=settings.model, structured=settings.schema is not None)
        self._turn_calls = 0  # where this turn's calls begin in result.tool_calls
        self.sleep = time.sleep  # the wait before a retry; tests may replace it
        # --schema: how the schema travels (structured.MODES); moves on when an endpoint rejects it.
        self.schema_mode = structured.MODES[0] if settings.schema is not None else None
        self.warn = lambda line: None  # says the structured-output fallback (Session: on stderr)

    def request(self, messages: list[dict]) -> Request:
        """What the next turn of `messages` asks the model for (the dialect makes the body)."""
        s = self.settings
        tools, choice = self.tools.wire(), s.tool_choice
        extra: dict = {}
        if s.stop:
            extra["stop_sequences"] = list(s.stop)
        if s.top_p is not None:
            extra["top_p"] = s.top_p
        if s.top_k is not None:
            extra["top_k"] = s.top_k
        if s.thinking is not None:
            extra["thinking"] = s.thinking
        if self.schema_mode in ("native", "beta"):
            extra["output_schema"] = structured.wire_schema(s.schema)
            extra["schema_mode"] = self.schema_mode
        elif self.schema_mode == "tool":
            # The answer is a call of one more tool: forced when it is the only one, else any tool
            # (the others may be called first). Thinking allows no forced choice: auto then.
            tools = [*tools, structured.answer_tool(structured.wire_schema(s.schema))]
            if s.thinking is None and choice in (None, "auto", "any"):
                choice = structured.ANSWER_TOOL if len(tools) == 1 else "any"
        return Request(
            model=s.model,
            max_tokens=s.max_tokens,
            messages=messages,
            system=s.system,
            temperature=s.temperature,
            tools=tools,
            tool_choice=choice,
            parallel=s.parallel,
            extra=extra,
            cache=s.cache_ttl if s.cache else None,
        )

    def run(self, messages: list[dict]) -> Iterator:
        """Play the conversation to its end; the last event is always Finished.

        Ctrl-C or SIGTERM, met here or thrown in by the consumer (generator.throw), ends the run
        like any failure: the transcript is settled, and Finished carries an Interrupted error.
        """
        result = self.result
        result.messages = messages
        try:
            yield Start(self.settings.model, self.tools.names(), result.conversation_id)
            yield from self._loop(messages, result)
        except ToolchatError as exc:
            result.error = exc
        except KeyboardInterrupt as exc:
            result.error = interruption(exc)
        finally:
            # Also when interrupted. Only this turn's calls can answer its tool_use blocks: gateways
            # that number calls per turn (call_0, call_1...) reuse ids across turns.
            _settle(messages, result.tool_calls[self._turn_calls :])
        _add_cost(result, self.settings)
        try:
            yield Finished(result)
        except KeyboardInterrupt as exc:  # while the result was being shown or saved
            yield self.interrupted(exc)

    def interrupted(self, exc: BaseException) -> Finished:
        """The run stopped by Ctrl-C / SIGTERM after (or while) its events were consumed."""
        self.result.error = interruption(exc)
        return Finished(self.result)

    def _loop(self, messages: list[dict], result: Result) -> Iterator:
        while True:
            if result.turns >= self.settings.max_turns:
                result.incomplete = "max_turns"
                return
            result.turns += 1
            yield TurnStart(result.turns)
            message, bad_input = yield from self._turn(messages, result)
            content = message.get("content") or []
            # The assistant message goes back exactly as received: every block, untouched.
            messages.append({"role": "assistant", "content": content})
            usage = message.get("usage") or {}
            _add_usage(result.usage, usage)
            stop = message.get("stop_reason")
            tool_uses = [b for b in content if b.get("type") == "tool_use"]
            if tool_uses and stop in _TOOLS_REQUESTED_ANYWAY:
                # Complete tool_use blocks ask for tools whatever the stop_reason says: gateways send
                # null, "" or (LiteLLM, mapping an upstream "stop" that carried calls) end_turn.
                stop = "tool_use"
            result.stop_reason = stop
            result.stop_details = message.get("stop_details")
            result.text = _text_of(content)
            yield TurnEnd(result.turns, stop, usage)
            answer = [b for b in tool_uses if b.get("name") == structured.ANSWER_TOOL]
            if self.schema_mode == "tool" and answer and stop in ("tool_use", "end_turn"):
                # The answer tool called: that is the answer. Every call of the turn gets a result so
                # the transcript stays valid to continue.
                messages.append(
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "tool_result",
                                "tool_use_id": b.get("id", ""),
                                "content": "answer received" if b is answer[0] else "not run: the answer was given",
                                **({} if b is answer[0] else {"is_error": True}),
                            }
                            for b in tool_uses
                        ],
                    }
                )
                self._answer(answer[0].get("input"), result)
                return
            if stop == "tool_use" and tool_uses:
                results = yield from self._run_tools(tool_uses, bad_input)
                messages.append({"role": "user", "content": results})
                continue
            if stop == "pause_turn":
                continue  # the server-tool loop paused: send it back as it is
            if stop in INCOMPLETE_STOPS:
                result.incomplete = stop
            elif self.schema_mode is not None:
                value, why = structured.parse_answer(result.text)
                if why is not None:
                    result.incomplete, result.output_error = "schema", why
                else:
                    self._answer(value, result)
            return

    def _answer(self, value, result: Result) -> None:
        """The structured answer, checked against --schema (exit 4, incomplete "schema", if it fails)."""
        assert self.settings.schema is not None  # only a run with --schema has a structured answer
        why = structured.problem(value, self.settings.schema)
        if why is None:
            result.output = value
        else:
            result.incomplete, result.output_error = "schema", why

    def _turn(self, messages: list[dict], result: Result):
        """One model request, retried while it fails in a retryable way before anything of it
        was shown or run (retry.py says which failures and how long to wait)."""
        # Built once: every attempt sends exactly the same request.
        request = self.request(messages)
        body, headers = self.dialect.body(request), self.dialect.request_headers(request)
        attempts = 1 + self.settings.retries
        attempt = 1
        while True:
            progress = _Attempt()
            try:
                return (yield from self._attempt(body, result, progress, headers))
            except (KeyboardInterrupt, GeneratorExit):
                # Keep the answer that was on screen in the transcript: its text blocks only (a cut
                # tool_use or an unsigned thinking block could not be sent back), so it stays valid.
                shown = [
                    {"type": "text", "text": b["text"]}
                    for b in progress.partial
                    if b.get("type") == "text" and b.get("text")
                ]
                if shown:
                    messages.append({"role": "assistant", "content": shown})
                raise
            except ToolchatError as exc:
                self.transport.scrubbed(exc)  # a server may echo the key in an error event
                if progress.committed:
                    raise  # text was shown or a tool call began: a retry would repeat it
                if self.schema_mode is not None and structured.rejects_field(exc):
                    fallback = structured.next_mode(self.schema_mode, self.dialect.schema_modes)
                    if fallback is not None:
                        # The endpoint refuses this form of structured output: the next form, sent at
                        # once (a changed request, not a retry of the same one).
                        forms = self.dialect.schema_forms
                        self.warn(
                            f"note: the endpoint rejected {forms[self.schema_mode]} "
                            f"(HTTP {exc.status}); trying {forms[fallback]}"
                        )
                        self.schema_mode = fallback
                        request = self.request(messages)
                        body, headers = self.dialect.body(request), self.dialect.request_headers(request)
                        continue
                decision = retry.decide(exc, attempt, self.settings.retries)
                if not decision.retry:
                    if decision.note:
                        exc.message = f"{exc.message} ({decision.note})"
                        exc.args = (exc.message,)
                    raise
                attempt += 1
                yield Retry(attempt, round(decision.delay, 3), decision.reason, attempts)
                self.sleep(decision.delay)  # a signal (Ctrl-C, SIGTERM) ends it at once

    def _attempt(self, body: dict, result: Result, progress: "_Attempt", headers: dict | None = None):
        # Per-request headers (anthropic-beta) only when there are some: a transport may take just the body.
        reply = self.transport.send(body, headers) if headers else self.transport.send(body)
        try:
            if reply.kind == "json":
                bad_input: dict[str, str] = {}
                message = self.dialect.message_from_json(reply.json(), bad_input)
                progress.committed = True
                yield from self.dialect.events_of_message(message)
                return message, bad_input
            decoder = self.dialect.decoder()
            try:
                for chunk in reply.chunks():
                    events = decoder.feed(chunk)
                    progress.committed = decoder.committed
                    if events:
                        yield from events
                        yield READ_DONE  # the next chunk may be a while: what was shown goes out now
                events = decoder.close()
                progress.committed = decoder.committed
                yield from events
                return decoder.message(), decoder.bad_input
            except (ToolchatError, GeneratorExit, KeyboardInterrupt):
                progress.committed = decoder.committed
                # Keep what was shown: the partial text is the run's text.
                progress.partial = decoder.snapshot().get("content") or []
                result.text = _text_of(progress.partial)
                raise
        finally:
            reply.close()

    def _run_tools(self, tool_uses: list[dict], bad_input: dict[str, str]):
        calls = [
            Call(b.get("id", ""), b.get("name", ""), b.get("input", {}), bad_input.get(b.get("id", "")))
            for b in tool_uses
        ]
        self._turn_calls = len(self.result.tool_calls)
        for call in calls:
            yield ToolCall(call.id, call.name, call.input)
        by_id: dict[str, ToolResult] = {}
        first = self._turn_calls
        for outcome in self.tools.run(calls):
            by_id[outcome.id] = outcome
            self.result.tool_calls.append(outcome)  # at once, so an interrupted run keeps it
            yield outcome
        self.result.tool_calls[first:] = [by_id[call.id] for call in calls]
        # One tool_result per tool_use, in tool_use order, whatever order they finished in.
        blocks = []
        for call in calls:
            outcome = by_id[call.id]
            block = {"type": "tool_result", "tool_use_id": call.id, "content": outcome.result_content()}
            if outcome.is_error:
                block["is_error"] = True
            blocks.append(block)
        return blocks


class _Attempt:
    """What one attempt of a turn left behind: whether it went past the point where it can be
    retried (the dialect's decoder says), and the content blocks received before it broke off."""

    def __init__(self) -> None:
        self.committed = False
        self.partial: list[dict] = []


# Stop reasons under which complete tool_use blocks still mean "run these tools". Not max_tokens or a
# full context window (the last call's JSON may be cut), refusal, or pause_turn (server tools).
_TOOLS_REQUESTED_ANYWAY = {None, "", "end_turn", "stop_sequence"}


def _settle(messages: list[dict], finished) -> None:
    """Answer tool_use blocks left without results (a run stopped mid-tools), so the transcript
    stays valid to send again: each gets its result if it finished, else an is_error one."""
    if not messages or messages[-1].get("role") != "assistant":
        return
    uses = [b for b in messages[-1].get("content") or [] if b.get("type") == "tool_use"]
    if not uses:
        return
    done = {call.id: call for call in finished}
    blocks = []
    for use in uses:
        call = done.get(use.get("id"))
        block = {
            "type": "tool_result",
            "tool_use_id": use.get("id", ""),
            "content": call.result_content() if call else "not run: the run was stopped before this tool finished",
        }
        if call is None or call.is_error:
            block["is_error"] = True
        blocks.append(block)
    messages.append({"role": "user", "content": blocks})


def _text_of(content: list[dict]) -> str:
    return "".join(b.get("text", "") for b in content if b.get("type") == "text")


def _add_cost(result: Result, settings: Settings) -> None:
    """usage["cost_usd"] when the model's price is known (pricing.py); never a guess."""
    from .pricing import cost_usd

    cost = cost_usd(result.model, result.usage, dict(settings.prices))
    if cost is not None and (result.turns or result.usage.get("input_tokens")):
        result.usage["cost_usd"] = cost


def _add_usage(total: dict, usage: dict) -> None:
    """Sum the numeric counters, and those one level down (`cache_creation`'s by lifetime)."""
    for key, value in usage.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            total[key] = total.get(key, 0) + value
        elif isinstance(value, dict) and isinstance(total.get(key, {}), dict):
            inner = total.setdefault(key, {})
            for name, number in value.items():
                if isinstance(number, (int, float)) and not isinstance(number, bool):
                    inner[name] = inner.get(name, 0) + number
