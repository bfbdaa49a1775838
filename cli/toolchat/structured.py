"""Structured answers (--schema) and code extraction (-x): the schema read from its three forms,
the copy sent on the wire, the answer found in the reply and checked with jsonschema.

The schema travels in one of three modes, tried in this order while an endpoint rejects the field
with a 400 (PROTOCOL.md §10): "native" (`output_config.format`, or `response_format` in the OpenAI
dialect), "beta" (`output_format` + `anthropic-beta: structured-outputs-2025-11-13`) and "tool" (a
forced tool whose input is the answer: works on every endpoint that has tools).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .errors import UsageError

ANSWER_TOOL = "structured_output"  # the tool of the "tool" mode
MODES = ("native", "beta", "tool")
BETA = "structured-outputs-2025-11-13"
# Words of a 400 that rejects the structured-output field itself (not the request at large):
# "output_config: Extra inputs are not permitted", "Unrecognized request argument supplied:
# response_format", "unknown field `output_format`", "... does not support structured outputs".
_REJECTION = re.compile(
    r"output_config|output_format|response_format|structured[-_ ]outputs?|"
    r"json_schema",
    re.IGNORECASE,
)
_TYPES = {
    "str": "string",
    "string": "string",
    "int": "integer",
    "integer": "integer",
    "float": "number",
    "number": "number",
    "bool": "boolean",
    "boolean": "boolean",
}
_FIELD = re.compile(r"^([A-Za-z_][\w-]*)(?:\s+([A-Za-z]+))?\s*(?::\s*(.*))?$", re.DOTALL)


def parse_schema(text: str, multi: bool = False) -> dict:
    """A --schema value (a file, inline JSON or the concise form) as a checked JSON Schema."""
    text = text.strip()
    if not text:
        raise UsageError("--schema: empty schema")
    source = "--schema"
    if not text.startswith("{") and _is_file(text):
        path = Path(text)
        try:
            text = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--schema {path}: cannot read it: {getattr(exc, 'strerror', None) or exc}") from None
        source = f"--schema {path}"
    if text.startswith("{"):
        try:
            schema = json.loads(text)
        except ValueError as exc:
            raise UsageError(f"{source}: not valid JSON: {exc}") from None
    else:
        schema = concise(text, source)
    if not isinstance(schema, dict):
        raise UsageError(f"{source}: a JSON Schema is an object")
    _check(schema, source)
    if schema.get("type") != "object":
        raise UsageError(
            f'{source}: the answer must be an object ("type": "object"); --schema-multi asks for a list of them'
        )
    if multi:
        schema = {
            "type": "object",
            "properties": {"items": {"type": "array", "items": schema}},
            "required": ["items"],
            "additionalProperties": False,
        }
    return schema


def _is_file(text: str) -> bool:
    try:
        return "\n" not in text and Path(text).is_file()
    except (OSError, ValueError):
        return False


def concise(text: str, source: str = "--schema") -> dict:
    """llm's concise form: fields split by newlines (if any) or commas, each `name [type][: description]`,
    type one of str (the default), int, float, bool; every field required."""
    parts = [p.strip() for p in (text.splitlines() if "\n" in text else text.split(","))]
    properties: dict[str, dict] = {}
    for part in filter(None, parts):
        match = _FIELD.match(part)
        kind = (match.group(2) or "str").lower() if match else None
        if match is None or kind not in _TYPES:
            raise UsageError(f"{source}: {part!r} is not 'name [str|int|float|bool][: description]'")
        field: dict[str, Any] = {"type": _TYPES[kind]}
        if match.group(3):
            field["description"] = match.group(3).strip()
        properties[match.group(1)] = field
    if not properties:
        raise UsageError(f"{source}: no fields")
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def _check(schema: dict, source: str) -> None:
    import jsonschema

    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise UsageError(f"{source}: not a valid JSON Schema: {exc.message}") from None


def wire_schema(schema: Any) -> Any:
    """The copy sent to the API: `additionalProperties: false` on every object schema that does
    not say otherwise (structured outputs require it; anthropic-sdk-python's transform_schema adds
    it the same way). The answer is still checked against the schema as given."""
    if isinstance(schema, list):
        return [wire_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {
        key: wire_schema(value) if key not in ("enum", "const", "default", "examples") else value
        for key, value in schema.items()
    }
    if out.get("type") == "object" and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def answer_tool(schema: dict) -> dict:
    """The tool of the "tool" mode: calling it is giving the answer."""
    return {
        "name": ANSWER_TOOL,
        "description": "Give the final answer. Call this tool exactly once, "
        "with the answer as its input, when you have it.",
        "input_schema": schema,
    }


def rejects_field(error: Any) -> bool:
    """Whether an API error is a 400 refusing the structured-output field (time for the next mode)."""
    return getattr(error, "status", None) in (400, 422) and bool(_REJECTION.search(str(getattr(error, "message", ""))))


def next_mode(mode: str, modes: tuple[str, ...]) -> str | None:
    later = modes[modes.index(mode) + 1 :] if mode in modes else ()
    return later[0] if later else None


def parse_answer(text: str) -> tuple[Any, str | None]:
    """The answer text as JSON: (value, None) or (None, why not). A reply wrapped in one ```json
    fence (a model answering without constrained decoding) is read inside the fence."""
    stripped = text.strip()
    if not stripped:
        return None, "the answer is empty"
    blocks = code_blocks(stripped)
    candidates = [stripped] + ([blocks[0]] if len(blocks) == 1 else [])
    for candidate in candidates:
        try:
            return json.loads(candidate), None
        except (ValueError, RecursionError):
            continue
    return None, "the answer is not JSON"


def problem(value: Any, schema: dict) -> str | None:
    """Why `value` does not fit `schema` (jsonschema's best match), or None."""
    import jsonschema

    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{where}: {error.message}" if where else error.message


_FENCE = re.compile(
    r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})[^\n]*\n(?P<body>.*?)^(?P=indent)?(?P=fence)[`~]*[ \t]*$",
    re.MULTILINE | re.DOTALL,
)


def code_blocks(text: str) -> list[str]:
    """The contents of the fenced code blocks of a markdown text, in order (llm's -x)."""
    return [match.group("body") for match in _FENCE.finditer(text)]


def extracted(text: str, last: bool = False) -> str | None:
    """-x: the code blocks, a blank line between two; --extract-last: the last one. None if there is none."""
    blocks = code_blocks(text)
    if not blocks:
        return None
    chosen = blocks[-1:] if last else blocks
    return "\n".join(block if block.endswith("\n") else block + "\n" for block in chosen)
