"""The OpenAI Chat Completions dialect, inbound only: a `chat.completion` body, which some gateways
send in answer to a streamed Messages request, mapped to the Anthropic-shaped assistant message.

The message keeps Anthropic's wire shape (text block, then tool_use blocks) so the chat loop, the
views and the next request need not know which dialect the gateway spoke.
"""

from __future__ import annotations

import json

from ..errors import StreamError
from ..text import clip

# finish_reason -> stop_reason; anything else (a future value) passes through as it came.
STOP_REASONS = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "length": "max_tokens",
    "content_filter": "refusal",
}


def message_from_chat_completion(body: dict, bad_input: dict | None = None) -> dict:
    """The assistant message a `chat.completion` body stands for (first choice only).

    Tool calls become tool_use blocks with their `function.arguments` string parsed. Arguments that
    are not a JSON object become input {} and a note in `bad_input` (call id -> problem), as in a
    stream: the call is answered with an is_error result and never run on guessed input. Without
    a `bad_input` dict to report to, they raise StreamError(type="malformed_response").
    """
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise _malformed("no choices")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        raise _malformed("choices[0].message is not an object")

    content: list[dict] = []
    text = _text(message.get("content"))
    if not text and isinstance(message.get("refusal"), str):
        text = message["refusal"]  # a refusal carries its explanation here, content is null
    if text:
        content.append({"type": "text", "text": text})
    calls = message.get("tool_calls")
    if calls is None:
        calls = []
    if not isinstance(calls, list):
        raise _malformed("choices[0].message.tool_calls is not a list")
    for position, call in enumerate(calls):
        if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
            raise _malformed(f"tool_calls[{position}] has no function")
        content.append(_tool_use(call["function"], call.get("id"), position, bad_input))
    legacy = message.get("function_call")  # the pre-tools form: one call, no id
    if isinstance(legacy, dict):
        content.append(_tool_use(legacy, None, len(calls), bad_input))

    finish = choice.get("finish_reason")
    if finish is not None and not isinstance(finish, str):
        raise _malformed("finish_reason is not a string")
    stop_reason = STOP_REASONS.get(finish, finish) if finish else None

    usage = {}
    raw_usage = body.get("usage")
    if isinstance(raw_usage, dict):
        for theirs, ours in (("prompt_tokens", "input_tokens"), ("completion_tokens", "output_tokens")):
            value = raw_usage.get(theirs)
            if isinstance(value, int) and not isinstance(value, bool):
                usage[ours] = value

    out = {
        "id": body.get("id") if isinstance(body.get("id"), str) else "",
        "type": "message",
        "role": "assistant",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage,
    }
    if isinstance(body.get("model"), str):
        out["model"] = body["model"]
    return out


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # content parts: [{"type": "text", "text": ...}, ...]
        return "".join(part["text"] for part in value if isinstance(part, dict) and isinstance(part.get("text"), str))
    raise _malformed("choices[0].message.content is neither text nor a list of parts")


def _tool_use(function: dict, call_id: object, position: int, bad_input: dict | None) -> dict:
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise _malformed(f"tool call {position} has no function name")
    if not isinstance(call_id, str) or not call_id:
        call_id = f"call_{position}"  # the id only pairs the result with the call
    arguments = function.get("arguments")
    if isinstance(arguments, dict):  # some gateways send the object itself
        tool_input = arguments
    elif arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        tool_input = {}
    elif isinstance(arguments, str):
        parsed = True
        try:
            tool_input = json.loads(arguments)
        except (ValueError, RecursionError):
            tool_input, parsed = None, False
        if not isinstance(tool_input, dict):
            if bad_input is not None:
                kind = "a JSON object" if parsed else "valid JSON"
                bad_input[call_id] = f"the tool input was not {kind}: {clip(arguments, 120)}"
                return {"type": "tool_use", "id": call_id, "name": name, "input": {}}
            raise _malformed(
                f"the arguments of tool call {name!r} ({call_id}) are not a JSON object: {clip(arguments, 120)}"
            )
    else:
        raise _malformed(f"the arguments of tool call {name!r} ({call_id}) are not a string")
    return {"type": "tool_use", "id": call_id, "name": name, "input": tool_input}


def _malformed(why: str) -> StreamError:
    return StreamError(f"malformed chat.completion response: {why}", type="malformed_response")
