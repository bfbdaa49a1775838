"""The YAML/Python tool source: tools files -> checked ToolSpecs -> calls of local Python handlers.

Everything about a tools file is checked when it loads, before any request. Schema checks of a file
already checked (same bytes) are skipped (schemacache.py), so jsonschema is not even imported then.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import ToolsFileError
from ..handlers import load_handler as _import_handler
from ..stdio import decode, handler_code, repair, warn_replaced
from .base import DEFAULT_TIMEOUT, NAME_RE, ToolFailed, ToolOutput, ToolSource, ToolSpec

_TOOL_KEYS = {"name", "description", "input_schema", "handler", "timeout", "confirm"}


class YamlSource(ToolSource):
    """The tools of one or more tools files, run by calling their Python handlers."""

    name = "yaml"

    def __init__(self, paths: Sequence[str | Path]):
        self._specs: list[ToolSpec] = []
        self._functions: dict[str, Callable] = {}
        seen: dict[str, str] = {}
        for path in paths:
            for spec, function in load_file(path):
                if spec.name in seen:
                    raise ToolsFileError(
                        f"{spec.source}: tool {spec.name!r}: name: already defined in {seen[spec.name]}"
                    )
                seen[spec.name] = spec.source
                self._specs.append(spec)
                self._functions[spec.name] = function

    def tools(self) -> list[ToolSpec]:
        return list(self._specs)

    def call(self, name: str, input: dict, timeout: float) -> ToolOutput:
        function = self._functions[name]
        with handler_code():  # what the handler prints goes to stderr: stdout is toolchat's
            value = function(**input)  # the handler is user code: it may raise anything
        if isinstance(value, ToolOutput):
            return value
        images = _images(value)
        if images is not None:
            return images
        try:  # repair: a lone surrogate (say, a file name that is not UTF-8) cannot be sent
            return ToolOutput.of_text(repair(render_output(value))[0])
        except Exception as exc:
            raise ToolFailed(f"the tool returned a value that cannot be sent: {exc}") from None


def _images(value: Any) -> ToolOutput | None:
    """A handler's image return value (bytes of an image, {"type": "image", "path" | "data", ...},
    or a list of those and strings) as content blocks; None when it holds no image."""
    from ..attachments import tool_image

    items = value if isinstance(value, list) else [value]
    try:
        found = [tool_image(item) for item in items]
    except ValueError as exc:
        raise ToolFailed(f"the tool returned an image that cannot be sent: {exc}") from None
    if not any(found):
        return None
    blocks = []
    for item, image in zip(items, found):
        if image is not None:
            blocks.append(image)
        elif isinstance(item, str):
            if item.strip():
                blocks.append({"type": "text", "text": repair(item)[0]})
        else:
            blocks.append({"type": "text", "text": repair(render_output(item))[0]})
    return ToolOutput(blocks)


def render_output(value: Any) -> str:
    """A handler's return value as tool_result text."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list, tuple, int, float, bool)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def load_files(paths: Sequence[str | Path], **policy: Any):
    """A ToolRunner over the tools of these files (names unique across all of them)."""
    from .runner import ToolRunner

    return ToolRunner([YamlSource(paths)], **policy)


# ---------------------------------------------------------------------------------------------
# Loading


def load_file(path: str | Path) -> list[tuple[ToolSpec, Callable]]:
    path = Path(path)
    where = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ToolsFileError(f"{where}: tools file not found") from None
    except OSError as exc:
        raise ToolsFileError(f"{where}: cannot read the tools file ({exc.strerror or exc})") from None
    text, replaced = decode(data)  # bytes that are not UTF-8 become U+FFFD, with one warning
    warn_replaced(where, replaced)
    import yaml

    # libyaml's C loader when PyYAML was built with it: the same documents, several times faster.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        doc = yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ToolsFileError(f"{where}: not valid YAML{at}: {problem}") from None
    if isinstance(doc, dict) and "tools" in doc:
        entries = doc["tools"]
    elif isinstance(doc, dict) and "mcp_servers" in doc:
        entries = []  # MCP servers only: toolsources/mcpconfig.py reads them
    elif isinstance(doc, list):
        entries = doc
    else:
        raise ToolsFileError(f"{where}: expected a mapping with a `tools:` list")
    if not isinstance(entries, list):
        raise ToolsFileError(f"{where}: tools: expected a list of tools")
    from . import schemacache

    # Schemas of a file whose bytes were checked before need no second check (nor jsonschema).
    key = schemacache.key(data)
    checked = schemacache.seen(key)
    tools = []
    names: set[str] = set()
    for number, entry in enumerate(entries, 1):
        spec, function = _load_tool(entry, number, path, check_schema=not checked)
        if spec.name in names:
            raise ToolsFileError(f"{where}: tool {spec.name!r}: name: defined twice in this file")
        names.add(spec.name)
        tools.append((spec, function))
    if not checked:
        schemacache.remember(key)
    return tools


def _load_tool(entry: Any, number: int, path: Path, check_schema: bool = True) -> tuple[ToolSpec, Callable]:
    where = str(path)
    if not isinstance(entry, dict):
        raise ToolsFileError(
            f"{where}: tool #{number}: expected a mapping with name, description, input_schema and handler"
        )
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
    _check_schema(schema, fail, full=check_schema)
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
    spec = ToolSpec(
        name=name, description=description, input_schema=schema, source=where, timeout=float(timeout), confirm=confirm
    )
    return spec, function


def _check_schema(schema: Any, fail: Callable[[str, str], ToolsFileError], full: bool = True) -> None:
    if not isinstance(schema, dict):
        raise fail("input_schema", "must be a mapping (a JSON Schema object)")
    if schema.get("type") != "object":
        raise fail("input_schema", 'must have "type: object" at the top')
    if not full:
        return
    import jsonschema

    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        at = "".join(f".{p}" for p in exc.path)
        raise fail("input_schema" + at, f"not a valid JSON Schema: {exc.message}") from None
