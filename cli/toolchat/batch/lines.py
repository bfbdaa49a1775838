"""One input line as a conversation: its settings, its Chat (continued from its checkpoint), and
the output document it ends with. Both engines play lines through here."""

from __future__ import annotations

import copy
import dataclasses

from ..events import ToolResult, TurnStart
from .state import Row


def line_settings(settings, request: dict):
    """The batch's settings with the line's own model, system, max_tokens and temperature."""
    changes = {k: request[k] for k in ("model", "system", "max_tokens", "temperature") if k in request}
    return dataclasses.replace(settings, **changes) if changes else settings


def start(settings, dialect, transport, tools, row: Row):
    """(chat, messages): a Chat for the row, its result carrying what earlier runs of the line
    did (tool calls, usage, turns), and the conversation to continue."""
    from ..chat import Chat

    request = row.request
    assert request is not None  # only a line whose request was read is started
    chat = Chat(line_settings(settings, request), dialect, transport, tools)
    state = row.state
    if state:
        messages = state["messages"]
        chat.result.tool_calls = [ToolResult(**call) for call in state["tool_calls"]]
        chat.result.usage = dict(state["usage"])
        chat.result.turns = int(state["turns"])
    else:
        messages = copy.deepcopy(request["messages"])
    return chat, messages


def snapshot(chat, messages: list[dict], turns: int) -> dict:
    """The line's checkpoint: the conversation and what it cost so far."""
    return {
        "messages": messages,
        "tool_calls": [call.to_json() for call in chat.result.tool_calls],
        "usage": dict(chat.result.usage),
        "turns": turns,
    }


class Checkpoints:
    """A sink: when a turn starts after a tool turn, that tool turn is over; store it."""

    def __init__(self, save, chat, messages: list[dict]):
        self.save, self.chat, self.messages = save, chat, messages
        self.stored = len(messages)

    def handle(self, event) -> None:
        if isinstance(event, TurnStart) and len(self.messages) > self.stored:
            self.stored = len(self.messages)
            self.save(snapshot(self.chat, self.messages, event.turn - 1))

    def close(self) -> None:
        pass


def document(row: Row, result) -> tuple[dict, str]:
    """(the output line, its outcome: ok | incomplete | failed)."""
    doc = {"custom_id": row.custom_id, "line": row.line, **result.to_json()}
    outcome = "failed" if result.error is not None else "incomplete" if result.incomplete else "ok"
    return doc, outcome


def refuse_confirm(spec, call):
    """Nobody can be asked in a batch: tools marked confirm run only with -y or --allow-tool."""
    return (
        f"not run: tool {spec.name!r} needs the user's confirmation, which a batch cannot ask "
        "for (allow it with -y or --allow-tool)"
    )
