"""Tools: YAML files -> checked Tool specs -> validated calls of local Python handlers.

Everything about a tools file is checked when it loads, before any request. Calls never raise: an
unknown tool, bad input, a handler exception or a timeout each become an error result the model sees.
"""

from __future__ import annotations

import json
import queue
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import ToolsFileError
from .events import ToolResult
from .handlers import load_handler as _import_handler
from .stdio import handler_code, read_text, repair

NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
DEFAULT_TIMEOUT = 60.0
OUTPUT_CAP = 100_000  # characters of tool output sent back to the model
_TOOL_KEYS = {"name", "description", "input_schema", "handler", "timeout", "confirm"}


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    input_schema: dict
    handler: str
    source: str
    function: Callable = field(compare=False, repr=False)
    timeout: float = DEFAULT_TIMEOUT
    confirm: bool = False

    def wire(self) -> dict:
        """The tool as the Messages API takes it."""
        spec = {"name": self.name, "input_schema": self.input_schema}
        if self.description:
            spec["description"] = self.description
        return spec


@dataclass(frozen=True)
class Call:
    id: str
    name: str
    input: Any
    problem: str | None = None  # set when the input could not even be parsed


class Toolbox:
    def __init__(self, tools: list[Tool] | None = None, output_cap: int = OUTPUT_CAP):
        self.tools: dict[str, Tool] = {t.name: t for t in tools or []}
        self.output_cap = output_cap

    def configured(self, deny=(), output_cap: int = OUTPUT_CAP) -> "Toolbox":
        """A copy without the denied tools, with this output cap."""
        return Toolbox([t for t in self.tools.values() if t.name not in set(deny)], output_cap)

    def wire(self) -> list[dict]:
        return [tool.wire() for tool in self.tools.values()]

    def names(self) -> list[str]:
        return list(self.tools)

    def check(self, call: Call) -> str | None:
        """Why this call cannot run (unknown tool, unparsable or invalid input), or None."""
        tool = self.tools.get(call.name)
        if tool is None:
            known = ", ".join(self.tools) or "none"
            return f"unknown tool {call.name!r}; the tools available are: {known}"
        if call.problem:
            return call.problem
        return validate_input(tool.input_schema, call.input)

    def run_all(self, calls: list[Call], refused: dict[str, str] | None = None) -> Iterator[ToolResult]:
        """Run the calls concurrently; yield a result for every call as it completes.

        `refused` maps call ids to a reason they must not run (denied, unconfirmed): those get an
        error result without running. A handler that overruns its timeout is abandoned on its
        daemon thread and reported as timed out.
        """
        refused = refused or {}
        done: queue.Queue = queue.Queue()
        deadlines: dict[int, float] = {}
        started: dict[int, float] = {}
        for position, call in enumerate(calls):
            reason = refused.get(call.id) or self.check(call)
            if reason:
                yield ToolResult(call.id, call.name, call.input, reason, True, 0)
                continue
            tool = self.tools[call.name]
            started[position] = time.monotonic()
            deadlines[position] = started[position] + tool.timeout
            thread = threading.Thread(target=_invoke, args=(tool, call, position, done, self.output_cap),
                                      name=f"tool-{call.name}", daemon=True)
            thread.start()
        pending = set(deadlines)
        while pending:
            wait = max(0.0, min(deadlines[p] for p in pending) - time.monotonic())
            try:
                position, output, is_error = done.get(timeout=max(0.001, min(wait, 0.25)))
            except queue.Empty:
                now = time.monotonic()
                for p in [p for p in pending if deadlines[p] <= now]:
                    pending.discard(p)
                    call = calls[p]
                    limit = self.tools[call.name].timeout
                    yield ToolResult(call.id, call.name, call.input,
                                     f"the tool timed out after {limit:g} s", True,
                                     int((now - started[p]) * 1000))
                continue
            if position not in pending:
                continue  # finished after it was already reported as timed out
            pending.discard(position)
            call = calls[position]
            elapsed = int((time.monotonic() - started[position]) * 1000)
            yield ToolResult(call.id, call.name, call.input, output, is_error, elapsed)

    def run_one(self, call: Call) -> ToolResult:
        return next(self.run_all([call]))


def _invoke(tool: Tool, call: Call, position: int, done: queue.Queue, cap: int = OUTPUT_CAP) -> None:
    try:
        with handler_code():  # what the handler prints goes to stderr: stdout is toolchat's
            value = tool.function(**call.input)
    except BaseException as exc:  # the handler is user code: anything it raises is a tool error
        message = str(exc).strip() or "(no message)"
        done.put((position, cap_output(repair(f"{type(exc).__name__}: {message}")[0], cap), True))
        return
    try:  # repair: a lone surrogate (say, a file name that is not UTF-8) cannot be sent
        done.put((position, cap_output(repair(render_output(value))[0], cap), False))
    except Exception as exc:
        done.put((position, f"the tool returned a value that cannot be sent: {exc}", True))


def render_output(value: Any) -> str:
    """A handler's return value as tool_result text."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list, tuple, int, float, bool)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def cap_output(text: str, cap: int = OUTPUT_CAP) -> str:
    if len(text) <= cap:
        return text
    return text[:cap] + f"\n[output cut: {len(text):,} characters, only the first {cap:,} sent]"


_validators: dict[str, Any] = {}


def validate_input(schema: dict, value: Any) -> str | None:
    """Why `value` does not match `schema`, in one line, or None."""
    if not isinstance(value, dict):
        return f"the tool input must be a JSON object, got {type(value).__name__}"
    key = json.dumps(schema, sort_keys=True, default=str)
    validator = _validators.get(key)
    if validator is None:
        import jsonschema

        validator = jsonschema.validators.validator_for(schema)(schema)
        _validators[key] = validator
    errors = list(validator.iter_errors(value))
    if not errors:
        return None
    from jsonschema.exceptions import best_match

    first = best_match(errors)
    where = "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in first.path)
    more = f" (and {len(errors) - 1} more problem{'s' * (len(errors) > 2)})" if len(errors) > 1 else ""
    return f"invalid input: {where.lstrip('.') + ': ' if where else ''}{first.message}{more}"


# ---------------------------------------------------------------------------------------------
# Loading


def load_files(paths: list[str | Path]) -> Toolbox:
    """Load and check every tools file; names must be unique across all of them."""
    tools: list[Tool] = []
    seen: dict[str, str] = {}
    for path in paths:
        for tool in load_file(path):
            if tool.name in seen:
                raise ToolsFileError(f"{tool.source}: tool {tool.name!r}: name: already defined"
                                     f" in {seen[tool.name]}")
            seen[tool.name] = tool.source
            tools.append(tool)
    return Toolbox(tools)


def load_file(path: str | Path) -> list[Tool]:
    path = Path(path)
    where = str(path)
    try:
        text = read_text(path, where)
    except FileNotFoundError:
        raise ToolsFileError(f"{where}: tools file not found") from None
    except OSError as exc:
        raise ToolsFileError(f"{where}: cannot read the tools file ({exc.strerror or exc})") from None
    import yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ToolsFileError(f"{where}: not valid YAML{at}: {problem}") from None
    if isinstance(doc, dict) and "tools" in doc:
        entries = doc["tools"]
    elif isinstance(doc, list):
        entries = doc
    else:
        raise ToolsFileError(f"{where}: expected a mapping with a `tools:` list")
    if not isinstance(entries, list):
        raise ToolsFileError(f"{where}: tools: expected a list of tools")
    tools = []
    names: set[str] = set()
    for number, entry in enumerate(entries, 1):
        tool = _load_tool(entry, number, path)
        if tool.name in names:
            raise ToolsFileError(f"{where}: tool {tool.name!r}: name: defined twice in this file")
        names.add(tool.name)
        tools.append(tool)
    return tools


def _load_tool(entry: Any, number: int, path: Path) -> Tool:
    where = str(path)
    if not isinstance(entry, dict):
        raise ToolsFileError(f"{where}: tool #{number}: expected a mapping with name, "
                             "description, input_schema and handler")
    name = entry.get("name")
    label = f"tool {name!r}" if isinstance(name, str) and name else f"tool #{number}"

    def fail(field_name: str, problem: str) -> ToolsFileError:
        return ToolsFileError(f"{where}: {label}: {field_name}: {problem}")

    unknown = sorted(set(entry) - _TOOL_KEYS)
    if unknown:
        raise fail(unknown[0], "unknown field (expected one of: " + ", ".join(sorted(_TOOL_KEYS)) + ")")
    if not isinstance(name, str) or not name:
        raise fail("name", "required, a string")
    if not NAME_RE.match(name):
        raise fail("name", "must match ^[a-zA-Z0-9_-]{1,64}$ (letters, digits, _ and -)")
    description = entry.get("description", "")
    if description is None:
        description = ""
    if not isinstance(description, str):
        raise fail("description", "must be a string")
    schema = entry.get("input_schema")
    if schema is None:
        raise fail("input_schema", "required, a JSON Schema with type: object")
    _check_schema(schema, fail)
    timeout = entry.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise fail("timeout", "must be a number of seconds greater than 0")
    confirm = entry.get("confirm", False)
    if not isinstance(confirm, bool):
        raise fail("confirm", "must be true or false")
    handler = entry.get("handler")
    if not isinstance(handler, str) or not handler.strip():
        raise fail("handler", "required, as module:function or path/to/file.py:function")
    function = _import_handler(handler.strip(), path, fail)
    return Tool(name=name, description=description, input_schema=schema, handler=handler.strip(),
                source=where, function=function, timeout=float(timeout), confirm=confirm)


def _check_schema(schema: Any, fail: Callable[[str, str], ToolsFileError]) -> None:
    if not isinstance(schema, dict):
        raise fail("input_schema", "must be a mapping (a JSON Schema object)")
    if schema.get("type") != "object":
        raise fail("input_schema", 'must have "type: object" at the top')
    import jsonschema

    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        at = "".join(f".{p}" for p in exc.path)
        raise fail("input_schema" + at, f"not a valid JSON Schema: {exc.message}") from None
