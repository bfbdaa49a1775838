"""A tool source lists tool specs and calls one; the runner (runner.py) does everything else.

Specs and outputs are Anthropic-shaped: a spec's wire form is the Messages API's tool, an output's
content is a list of tool_result content blocks (text, image, ...).
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
DEFAULT_TIMEOUT = 60.0


@dataclass(frozen=True)
class ToolSpec:
    name: str  # the name offered to the model (NAME_RE)
    description: str
    input_schema: dict
    source: str  # where it comes from, for messages: "sample_tools.yaml", "mcp:time"
    timeout: float = DEFAULT_TIMEOUT
    confirm: bool = False  # ask the user before running it
    annotations: dict = field(default_factory=dict, compare=False)

    def wire(self) -> dict:
        """The tool as the Messages API takes it."""
        spec = {"name": self.name, "input_schema": self.input_schema}
        if self.description:
            spec["description"] = self.description
        return spec


@dataclass
class ToolOutput:
    """What a tool returned: tool_result content blocks ({"type": "text", "text"}, {"type":
    "image", "source": {...}}, ...), and whether it is an error."""

    content: list[dict]
    is_error: bool = False

    @classmethod
    def of_text(cls, text: str, is_error: bool = False) -> "ToolOutput":
        return cls([{"type": "text", "text": text}], is_error)

    @classmethod
    def of_json(cls, value: Any) -> "ToolOutput":
        """A JSON value as one text block (the Messages API has no JSON block in tool results)."""
        return cls.of_text(json.dumps(value, ensure_ascii=False, default=str))

    @classmethod
    def of_image(cls, data: str, media_type: str) -> "ToolOutput":
        """A base64-encoded image."""
        return cls([{"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}])

    def text_only(self) -> bool:
        return all(block.get("type") == "text" for block in self.content)

    def text(self) -> str:
        """The text of the blocks, for people and --json "output": other blocks as [image/png]."""
        parts = []
        for block in self.content:
            if block.get("type") == "text":
                parts.append(str(block.get("text", "")))
            else:
                source = block.get("source")
                source = source if isinstance(source, dict) else {}
                parts.append(f"[{source.get('media_type') or block.get('type')}]")
        return "\n".join(parts)


class ToolFailed(Exception):
    """Raised by a source: the call failed and str(exc) is exactly what the model is told."""


@dataclass(frozen=True)
class Call:
    """One tool_use the model sent."""

    id: str
    name: str
    input: Any
    problem: str | None = None  # set when the input could not even be parsed


class ToolSource(ABC):
    name: str

    @abstractmethod
    def tools(self) -> list[ToolSpec]:
        """The tools this source offers."""

    @abstractmethod
    def call(self, name: str, input: dict, timeout: float) -> ToolOutput:
        """Run one tool; may raise (the runner turns any exception into an error result). Runs on
        a worker thread; one that overruns `timeout` is abandoned."""

    def close(self) -> None:
        """Release what the source holds (processes, connections)."""
