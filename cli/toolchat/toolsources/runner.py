"""The ToolRunner: every policy for every tool source, in one place.

Which tools are offered (--deny-tool removes them), which calls may run (a known tool, parsable input
that fits its schema, one call per turn with --no-parallel, the user's confirmation for tools marked
confirm), and how they run (concurrently on worker threads, each within its timeout, output cut to
the cap). Calls never raise: every call gets a result, an error result when it could not run.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, Callable, Iterable, Iterator

from ..errors import ToolsFileError
from ..events import ToolResult
from ..stdio import repair
from .base import Call, ToolFailed, ToolOutput, ToolSource, ToolSpec

OUTPUT_CAP = 100_000  # characters of tool output sent back to the model

# approve(spec, call) -> None to run it, or the reason it must not run. Asked only for tools marked
# confirm, unless --yes or --allow-tool says otherwise.
Approver = Callable[[ToolSpec, Call], "str | None"]


class ToolRunner:
    def __init__(
        self,
        sources: Iterable[ToolSource] = (),
        *,
        deny: Iterable[str] = (),
        allow: Iterable[str] = (),
        yes: bool = False,
        parallel: bool = True,
        output_cap: int = OUTPUT_CAP,
        approve: Approver | None = None,
    ):
        self.sources = list(sources)
        self.deny = frozenset(deny)
        self.allow = frozenset(allow)
        self.yes = yes
        self.parallel = parallel
        self.output_cap = output_cap
        self.approve = approve
        self.all: dict[str, ToolSpec] = {}  # every tool of every source, denied ones too
        self._source: dict[str, ToolSource] = {}
        for source in self.sources:
            for spec in source.tools():
                if spec.name in self.all:
                    raise ToolsFileError(
                        f"{spec.source}: tool {spec.name!r}: name: already defined in {self.all[spec.name].source}"
                    )
                self.all[spec.name] = spec
                self._source[spec.name] = source
        # Denied tools are not offered at all; a call to one anyway is refused by name.
        self.tools: dict[str, ToolSpec] = {n: s for n, s in self.all.items() if n not in self.deny}

    def wire(self) -> list[dict]:
        return [spec.wire() for spec in self.tools.values()]

    def names(self) -> list[str]:
        return list(self.tools)

    def check(self, call: Call) -> str | None:
        """Why this call cannot run (unknown tool, unparsable or invalid input), or None."""
        spec = self.tools.get(call.name)
        if spec is None:
            known = ", ".join(self.tools) or "none"
            return f"unknown tool {call.name!r}; the tools available are: {known}"
        if call.problem:
            return call.problem
        from .validate import validate_input

        return validate_input(spec.input_schema, call.input)

    def refusal(self, call: Call, position: int) -> str | None:
        """Why the user's policy keeps this call from running (asking them if need be), or None."""
        if position and not self.parallel:
            # Enforced here too: gateways (LiteLLM among them) drop disable_parallel_tool_use.
            return "not run: at most one tool call per turn (--no-parallel); call the tools one at a time"
        if call.name in self.deny:
            return f"not run: tool {call.name!r} is denied by the user (--deny-tool)"
        spec = self.tools.get(call.name)
        if (
            spec is not None
            and spec.confirm
            and not self.yes
            and call.name not in self.allow
            and self.approve is not None
            and self.check(call) is None
        ):
            return self.approve(spec, call)
        return None

    def run(self, calls: list[Call]) -> Iterator[ToolResult]:
        """Run the calls (concurrently); yield a result for every call as it completes."""
        refused = {}
        for position, call in enumerate(calls):
            reason = self.refusal(call, position)
            if reason:
                refused[call.id] = reason
        return self.run_all(calls, refused)

    def run_all(self, calls: list[Call], refused: dict[str, str] | None = None) -> Iterator[ToolResult]:
        """Run the calls concurrently; yield a result for every call as it completes.

        `refused` maps call ids to a reason they must not run: those get an error result without
        running. A call that overruns its timeout is abandoned on its daemon thread and reported
        as timed out.
        """
        refused = refused or {}
        done: queue.Queue = queue.Queue()
        deadlines: dict[int, float] = {}
        started: dict[int, float] = {}
        for position, call in enumerate(calls):
            reason = refused.get(call.id) or self.check(call)
            if reason:
                yield _result(call, ToolOutput.of_text(reason, is_error=True), 0, self.tools.get(call.name))
                continue
            spec = self.tools[call.name]
            started[position] = time.monotonic()
            deadlines[position] = started[position] + spec.timeout
            thread = threading.Thread(
                target=self._invoke, args=(spec, call, position, done), name=f"tool-{call.name}", daemon=True
            )
            thread.start()
        pending = set(deadlines)
        while pending:
            wait = max(0.0, min(deadlines[p] for p in pending) - time.monotonic())
            try:
                position, output = done.get(timeout=max(0.001, min(wait, 0.25)))
            except queue.Empty:
                now = time.monotonic()
                for p in [p for p in pending if deadlines[p] <= now]:
                    pending.discard(p)
                    call = calls[p]
                    spec = self.tools[call.name]
                    yield _result(
                        call,
                        ToolOutput.of_text(f"the tool timed out after {spec.timeout:g} s", is_error=True),
                        int((now - started[p]) * 1000),
                        spec,
                    )
                continue
            if position not in pending:
                continue  # finished after it was already reported as timed out
            pending.discard(position)
            call = calls[position]
            elapsed = int((time.monotonic() - started[position]) * 1000)
            yield _result(call, output, elapsed, self.tools[call.name])

    def run_one(self, call: Call) -> ToolResult:
        """One call, checked but not subject to approval (tools run, the CLI)."""
        return next(self.run_all([call]))

    def close(self) -> None:
        for source in self.sources:
            source.close()

    def _invoke(self, spec: ToolSpec, call: Call, position: int, done: queue.Queue) -> None:
        cap = self.output_cap
        try:
            output = self._source[spec.name].call(spec.name, call.input, spec.timeout)
            if not isinstance(output, ToolOutput):
                raise ToolFailed(f"the tool source returned {type(output).__name__}, not a ToolOutput")
        except ToolFailed as exc:
            output = ToolOutput.of_text(str(exc), is_error=True)
        except BaseException as exc:  # the handler is user code: anything it raises is a tool error
            message = str(exc).strip() or "(no message)"
            output = ToolOutput.of_text(repair(f"{type(exc).__name__}: {message}")[0], is_error=True)
        done.put((position, capped(output, cap)))


def capped(output: ToolOutput, cap: int = OUTPUT_CAP) -> ToolOutput:
    """The output with its text cut to `cap` characters in all (other blocks kept)."""
    left = cap
    blocks = []
    for block in output.content:
        if block.get("type") == "text":
            text = str(block.get("text", ""))
            if len(text) > left:
                block = {**block, "text": cap_output(text, left)}
            left = max(0, left - len(text))
        blocks.append(block)
    return ToolOutput(blocks, output.is_error)


def cap_output(text: str, cap: int = OUTPUT_CAP) -> str:
    if len(text) <= cap:
        return text
    return text[:cap] + f"\n[output cut: {len(text):,} characters, only the first {cap:,} sent]"


def _result(call: Call, output: ToolOutput, elapsed_ms: int, spec: ToolSpec | None) -> ToolResult:
    text = output.text()
    # A tool_result's content is a plain string when the output is text only, else its blocks.
    content: Any = text if output.text_only() else output.content
    return ToolResult(
        call.id,
        call.name,
        call.input,
        text,
        output.is_error,
        elapsed_ms,
        content=content,
        source=spec.source if spec is not None else None,
    )
