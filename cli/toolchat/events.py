"""The events the chat loop yields and every view renders. Views see nothing else of a run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Start:
    model: str
    tools: list[str]
    conversation_id: str | None = None  # where the conversation log keeps this run; None: not logged


@dataclass(frozen=True)
class TurnStart:
    turn: int


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ThinkingDelta:
    text: str


@dataclass(frozen=True)
class ReadDone:
    """The events of one network read have all been given; the next event waits for more bytes.
    Views that hold their output back (the plain view) flush it here: once per read, not per delta.
    Every other sink may ignore it. One instance, READ_DONE."""


READ_DONE = ReadDone()


@dataclass(frozen=True)
class BlockDone:
    """A content block is complete (any type); `block` is its final wire form."""

    index: int
    block: dict


@dataclass(frozen=True)
class ToolCall:
    """The model asked for a tool and its input is complete; it is about to run (or be refused)."""

    id: str
    name: str
    input: Any


@dataclass
class ToolResult:
    id: str
    name: str
    input: Any
    output: str  # the text of the output, for people and --json
    is_error: bool
    duration_ms: int
    # The tool_result content sent back: the text itself when the output is text only, else its
    # content blocks (text, image, ...). None: the text.
    content: Any = None
    source: str | None = None  # the tool source the tool came from (a tools file, an MCP server)

    def result_content(self) -> Any:
        """The `content` of the tool_result block that answers this call."""
        return self.output if self.content is None else self.content

    def to_json(self) -> dict:
        data = {
            "id": self.id,
            "name": self.name,
            "input": self.input,
            "output": self.output,
            "is_error": self.is_error,
            "duration_ms": self.duration_ms,
        }
        if self.source is not None:
            data["source"] = self.source  # "mcp:<server>" or the tools file
        return data


@dataclass(frozen=True)
class Retry:
    """A request failed in a retryable way; attempt `attempt` follows after `delay` seconds."""

    attempt: int  # the attempt about to be made: 2 for the first retry
    delay: float
    reason: str
    attempts: int = 0  # attempts in all (1 + --retries); 0 when unknown


@dataclass(frozen=True)
class TurnEnd:
    turn: int
    stop_reason: str | None
    usage: dict


@dataclass
class Result:
    """What a run produced; the `--json` document is `to_json()`."""

    model: str
    text: str = ""
    stop_reason: str | None = None
    stop_details: Any = None
    turns: int = 0
    tool_calls: list[ToolResult] = field(default_factory=list)
    usage: dict = field(default_factory=lambda: {"input_tokens": 0, "output_tokens": 0})
    messages: list[dict] = field(default_factory=list)
    error: Any = None  # a ToolchatError, or None
    incomplete: str | None = None  # why the answer is not complete, when it is not
    conversation_id: str | None = None  # the conversation log's id of it (-c / --cid); None: not logged
    structured: bool = False  # --schema was given: the document carries "output"
    output: Any = None  # the structured answer (parsed and valid), with --schema
    output_error: str | None = None  # why the answer is not valid JSON of the schema

    @property
    def exit_code(self) -> int:
        from .errors import EXIT_INCOMPLETE, EXIT_OK

        if self.error is not None:
            return self.error.exit_code
        return EXIT_INCOMPLETE if self.incomplete else EXIT_OK

    def to_json(self) -> dict:
        document = self._document()
        if self.structured:
            document["output"] = self.output
            document["output_error"] = self.output_error
        return document

    def _document(self) -> dict:
        return {
            "text": self.text,
            "stop_reason": self.stop_reason,
            "stop_details": self.stop_details,
            "incomplete": self.incomplete,
            "model": self.model,
            "turns": self.turns,
            "tool_calls": [call.to_json() for call in self.tool_calls],
            "usage": self.usage,
            "messages": self.messages,
            "error": self.error.to_json() if self.error is not None else None,
            "conversation_id": self.conversation_id,
        }


@dataclass(frozen=True)
class Finished:
    result: Result
