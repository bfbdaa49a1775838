"""JSON Schemas (draft 2020-12) of toolchat's machine-readable output.

result.schema.json: the `--json` document. event.schema.json: one `--stream-json` line; its
`result` event refers to result.schema.json by file name, so keep the files side by side.
logs.schema.json: what `toolchat logs ... --json` prints (one $defs entry per command).
"""

from __future__ import annotations

import json
from pathlib import Path

FOLDER = Path(__file__).resolve().parent
NAMES = ("result", "event", "logs")


def load(name: str) -> dict:
    """The schema `name` ("result", "event" or "logs") as a dict."""
    return json.loads((FOLDER / f"{name}.schema.json").read_text(encoding="utf-8"))


def validator(name: str):
    """A jsonschema validator for `name`, with the sibling schema registered for `$ref`."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    registry = Registry().with_resources(
        (f"{other}.schema.json", Resource.from_contents(load(other))) for other in NAMES
    )
    schema = load(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=registry)
