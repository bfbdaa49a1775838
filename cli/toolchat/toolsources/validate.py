"""Tool input against the tool's JSON Schema, with jsonschema (imported only when it must be).

Most tool schemas are a flat object of typed properties. For those, an input that plainly fits is
accepted here without importing jsonschema (a large import for a short run); anything else, and
every input that does not plainly fit, goes to jsonschema, which gives the verdict and the message.
So this fast path only ever says "valid" where jsonschema would, and never explains a failure.
"""

from __future__ import annotations

import json
from typing import Any

_validators: dict[str, Any] = {}

# Keywords that only annotate: they never make an input invalid.
_ANNOTATIONS = frozenset(
    {"description", "title", "default", "examples", "$comment", "deprecated", "readOnly", "writeOnly"}
)
_OBJECT_KEYS = _ANNOTATIONS | {"type", "properties", "required", "additionalProperties", "$schema"}
_PROPERTY_KEYS = _ANNOTATIONS | {"type", "enum"}
_TYPES = {
    "string": lambda v: isinstance(v, str),
    # Only a Python int (not bool) is plainly an integer in every draft; 1.0 goes to jsonschema.
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def plainly_valid(schema: dict, value: dict) -> bool:
    """True only when `value` fits a flat object schema without any doubt."""
    if not schema.keys() <= _OBJECT_KEYS or schema.get("type") != "object":
        return False
    if "draft-03" in str(schema.get("$schema", "")):
        return False  # draft 3 spells `required` differently
    properties = schema.get("properties", {})
    required = schema.get("required", [])
    extra = schema.get("additionalProperties", True)
    if not isinstance(properties, dict) or not isinstance(required, list) or not isinstance(extra, bool):
        return False
    if any(name not in value for name in required):
        return False
    for name, item in value.items():
        rule = properties.get(name)
        if rule is None:
            if not extra:
                return False
            continue
        if not isinstance(rule, dict) or not rule.keys() <= _PROPERTY_KEYS:
            return False
        kind = rule.get("type")
        if kind is not None:
            test = _TYPES.get(kind) if isinstance(kind, str) else None
            if test is None or not test(item):
                return False
        if "enum" in rule:
            # Strings only: JSON equality differs from Python's for numbers and booleans.
            enum = rule["enum"]
            if (
                not isinstance(item, str)
                or not isinstance(enum, list)
                or item not in [e for e in enum if isinstance(e, str)]
            ):
                return False
    return True


def validate_input(schema: dict, value: Any) -> str | None:
    """Why `value` does not match `schema`, in one line, or None."""
    if not isinstance(value, dict):
        return f"the tool input must be a JSON object, got {type(value).__name__}"
    if plainly_valid(schema, value):
        return None
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
