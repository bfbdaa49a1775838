"""The mock's chat.completions face: `POST /v1/chat/completions`, as strict as OpenAI's API.

The same scripts, echo model and fault injection as `/v1/messages` (model.py): the request is
validated with OpenAI's rules (Bearer auth, known parameters only, tool messages paired with the
assistant's tool_calls both ways), viewed as a Messages request to choose and render the turn, and
the resulting message is sent back as `chat.completion.chunk` events (data-only, `[DONE]` at the
end, a usage chunk with empty `choices` when `stream_options.include_usage` asks for it) or as a
`chat.completion` body. Errors have OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.

A server with `require_auth = False` set on it accepts requests without a key, as local model
servers do; by default a Bearer token is required (and, with `api_key`, that very token).
"""

from __future__ import annotations

import hmac
import json
import re
import time
from typing import Any, Mapping

from .model import Reply, build_reply, choose_turn, error_for, fault_for, split_text
from .validate import ApiError

SSE_TYPE = "text/event-stream; charset=utf-8"

TOP_LEVEL_KEYS = frozenset(
    {
        "model",
        "messages",
        "stream",
        "stream_options",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "n",
        "stop",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "user",
        "seed",
        "response_format",
        "frequency_penalty",
        "presence_penalty",
        "logprobs",
        "top_logprobs",
        "logit_bias",
        "metadata",
        "store",
        "reasoning_effort",
        "service_tier",
        "modalities",
        "prediction",
        "audio",
        "verbosity",
        "prompt_cache_key",
        "safety_identifier",
        "web_search_options",
    }
)
ROLES = ("system", "developer", "user", "assistant", "tool")
MESSAGE_KEYS = {
    "system": {"role", "content", "name"},
    "developer": {"role", "content", "name"},
    "user": {"role", "content", "name"},
    "assistant": {"role", "content", "name", "tool_calls", "refusal", "audio", "function_call"},
    "tool": {"role", "content", "tool_call_id"},
}
TOOL_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
# stop_reason (what scripts say) -> finish_reason (what chat.completions says).
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "refusal": "content_filter",
    "model_context_window_exceeded": "length",
}


def invalid(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, "invalid_request_error", message, extra={"param": param, "code": code})


# ---------------------------------------------------------------- the route


def handle(handler: Any, mock: Any, headers: dict, raw: bytes) -> None:
    """Answer one request to /v1/chat/completions on `handler` (server.py's request handler)."""
    try:
        if handler.command != "POST":
            raise ApiError(
                405, "invalid_request_error", f"Method {handler.command} not allowed", headers={"Allow": "POST"}
            )
        check_auth(headers, mock.api_key, getattr(mock, "require_auth", True))
        body = parse_body(raw)
        validate_body(body)
        view = messages_view(body)
        turn = choose_turn(mock.script, view)
        # A retry sends the same bytes, so it meets the turn's next fault (as on /v1/messages).
        fault = fault_for(turn, mock._attempt(raw)) if turn.get("faults") else None
        if fault and "error" in fault:
            if fault.get("at", "headers") == "headers":
                time.sleep(float(fault.get("stall") or 0))
            err = error_for(fault["error"])
            err.headers.update({str(k): str(v) for k, v in (fault.get("headers") or {}).items()})
            raise err
        reply = build_reply(mock.script, view, mock._next_number())
        _send_reply(handler, reply, body, fault)
    except ApiError as e:
        if not handler._sent_headers:
            send_error(handler, e)
        else:
            handler.close_connection = True


def error_object(e: ApiError) -> dict:
    """OpenAI's error object for `e`: message, type, param and code, then anything else it carries
    (the body of an HTTP error, and the data of a mid-stream error chunk)."""
    extra = dict(e.extra)
    return {
        "message": e.message,
        "type": e.type,
        "param": extra.pop("param", None),
        "code": extra.pop("code", None),
        **extra,
    }


def send_error(handler: Any, e: ApiError) -> None:
    handler._send_json(e.status, {"error": error_object(e)}, {"x-request-id": handler._request_id, **e.headers})


# ---------------------------------------------------------------- validation


def check_auth(headers: Mapping[str, str], api_key: str | None, required: bool = True) -> None:
    """OpenAI takes `Authorization: Bearer KEY` only (an x-api-key header is not a credential)."""
    auth = headers.get("authorization", "").strip()
    token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    if not token:
        if not required:
            return
        raise ApiError(
            401,
            "invalid_request_error",
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            extra={"code": None},
        )
    if api_key is not None and not hmac.compare_digest(token.encode(), api_key.encode()):
        # Never echo the offered key (OpenAI shows a masked form; the mock shows none).
        raise ApiError(401, "invalid_request_error", "Incorrect API key provided.", extra={"code": "invalid_api_key"})


def parse_body(raw: bytes) -> dict:
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise invalid(
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
            "but what was sent was not valid JSON.)"
        ) from None
    if not isinstance(body, dict):
        raise invalid("Invalid type for body: expected an object.")
    return body


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _type_name(v: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(v), "a number"
    )


def _check_response_format(form: Any) -> None:
    """response_format: text, json_object, or json_schema with a name and a schema; with strict,
    OpenAI's strict-mode rules (every object closed, every property required)."""
    if form is None:
        return
    if not isinstance(form, dict) or form.get("type") not in ("text", "json_object", "json_schema"):
        raise invalid(
            "Invalid value for 'response_format.type': expected one of 'text', 'json_object' or 'json_schema'.",
            "response_format.type",
            "invalid_value",
        )
    if form["type"] != "json_schema":
        return
    spec = form.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise invalid(
            "Missing required parameter: 'response_format.json_schema.name'.",
            "response_format.json_schema.name",
            "missing_required_parameter",
        )
    if not TOOL_NAME_RE.match(spec["name"]):
        raise invalid(
            "Invalid 'response_format.json_schema.name': string does not match pattern.",
            "response_format.json_schema.name",
            "invalid_value",
        )
    schema = spec.get("schema")
    if not isinstance(schema, dict):
        raise invalid(
            "Invalid type for 'response_format.json_schema.schema': expected an object.",
            "response_format.json_schema.schema",
            "invalid_type",
        )
    if spec.get("strict"):
        _check_strict(schema, spec["name"], "()")


def _check_strict(schema: Any, name: str, where: str) -> None:
    if isinstance(schema, list):
        for item in schema:
            _check_strict(item, name, where)
        return
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "object":
        if schema.get("additionalProperties") is not False:
            raise invalid(
                f"Invalid schema for response_format '{name}': In context={where}, "
                "'additionalProperties' is required to be supplied and to be false.",
                "response_format",
                "invalid_value",
            )
        missing = [k for k in schema.get("properties") or {} if k not in (schema.get("required") or [])]
        if missing:
            raise invalid(
                f"Invalid schema for response_format '{name}': In context={where}, 'required' is "
                "required to be supplied and to be an array including every key in properties. "
                f"Missing '{missing[0]}'.",
                "response_format",
                "invalid_value",
            )
    for key, value in schema.items():
        if key not in ("enum", "const", "default", "examples"):
            _check_strict(value, name, where)


def validate_body(body: dict) -> None:
    """Raise ApiError(400) for the first problem in a chat.completions request body."""
    for key in body:
        if key not in TOP_LEVEL_KEYS:
            raise invalid(f"Unrecognized request argument supplied: {key}")
    for key in ("model", "messages"):
        if key not in body:
            raise invalid(f"Missing required parameter: '{key}'.", key, "missing_required_parameter")
    if not isinstance(body["model"], str) or not body["model"].strip():
        raise invalid("Invalid value for 'model': expected a non-empty string.", "model")
    for key in ("max_tokens", "max_completion_tokens", "n"):
        if key in body and body[key] is not None:
            if not _is_int(body[key]):
                raise invalid(
                    f"Invalid type for '{key}': expected an integer, but got {_type_name(body[key])} instead.",
                    key,
                    "invalid_type",
                )
            if body[key] < 1:
                raise invalid(
                    f"Invalid '{key}': integer below minimum value. Expected a value >= 1, "
                    f"but got {body[key]} instead.",
                    key,
                    "integer_below_min_value",
                )
    if body.get("max_tokens") is not None and body.get("max_completion_tokens") is not None:
        raise invalid(
            "max_tokens and max_completion_tokens cannot both be set; use max_completion_tokens.", "max_tokens"
        )
    if "temperature" in body and body["temperature"] is not None:
        t = body["temperature"]
        if not _is_num(t) or not 0 <= t <= 2:
            raise invalid("Invalid 'temperature': expected a number between 0 and 2.", "temperature")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise invalid(
            f"Invalid type for 'stream': expected a boolean, but got {_type_name(stream)} instead.",
            "stream",
            "invalid_type",
        )
    if body.get("stream_options") is not None:
        if not stream:
            raise invalid("The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options")
        options = body["stream_options"]
        if not isinstance(options, dict) or set(options) - {"include_usage", "include_obfuscation"}:
            raise invalid("Invalid 'stream_options': expected an object with 'include_usage'.", "stream_options")
        if "include_usage" in options and not isinstance(options["include_usage"], bool):
            raise invalid(
                "Invalid type for 'stream_options.include_usage': expected a boolean.",
                "stream_options.include_usage",
                "invalid_type",
            )
    names = _check_tools(body.get("tools"))
    _check_tool_choice(body, names)
    _check_response_format(body.get("response_format"))
    if body.get("reasoning_effort") is not None and body["reasoning_effort"] not in (
        "minimal",
        "low",
        "medium",
        "high",
    ):
        raise invalid(
            "Invalid value for 'reasoning_effort': expected one of 'minimal', 'low', 'medium' or 'high'.",
            "reasoning_effort",
            "invalid_value",
        )
    _check_messages(body["messages"])


def _check_tools(tools: Any) -> set[str] | None:
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise invalid(
            f"Invalid type for 'tools': expected an array, but got {_type_name(tools)} instead.",
            "tools",
            "invalid_type",
        )
    names: set[str] = set()
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise invalid(f"Invalid type for '{where}': expected an object.", where, "invalid_type")
        if tool.get("type") != "function":
            raise invalid(f"Invalid value for '{where}.type': expected 'function'.", f"{where}.type", "invalid_value")
        unknown = set(tool) - {"type", "function"}
        if unknown:
            raise invalid(f"Unrecognized request argument supplied: {where}.{sorted(unknown)[0]}")
        function = tool.get("function")
        if not isinstance(function, dict):
            raise invalid(
                f"Missing required parameter: '{where}.function'.", f"{where}.function", "missing_required_parameter"
            )
        unknown = set(function) - {"name", "description", "parameters", "strict"}
        if unknown:
            raise invalid(f"Unrecognized request argument supplied: {where}.function.{sorted(unknown)[0]}")
        name = function.get("name")
        if not isinstance(name, str) or not TOOL_NAME_RE.match(name):
            raise invalid(
                f"Invalid '{where}.function.name': string does not match pattern. Expected a "
                "string that matches the pattern '^[a-zA-Z0-9_-]{1,64}$'.",
                f"{where}.function.name",
                "invalid_value",
            )
        if name in names:
            raise invalid(f"Invalid 'tools': duplicate function name {name!r}.", "tools")
        names.add(name)
        if "description" in function and not isinstance(function["description"], str):
            raise invalid(
                f"Invalid type for '{where}.function.description': expected a string.",
                f"{where}.function.description",
                "invalid_type",
            )
        parameters = function.get("parameters")
        if parameters is not None and (not isinstance(parameters, dict) or parameters.get("type") != "object"):
            raise invalid(
                f"Invalid schema for function '{name}': schema must be a JSON Schema of 'type: \"object\"'.",
                f"{where}.function.parameters",
                "invalid_function_parameters",
            )
    return names


def _check_tool_choice(body: dict, names: set[str] | None) -> None:
    for key in ("tool_choice", "parallel_tool_calls"):
        if body.get(key) is not None and not names:
            raise invalid(f"Invalid value for '{key}': '{key}' is only allowed when 'tools' are specified.", key)
    if body.get("parallel_tool_calls") is not None and not isinstance(body["parallel_tool_calls"], bool):
        raise invalid(
            "Invalid type for 'parallel_tool_calls': expected a boolean.", "parallel_tool_calls", "invalid_type"
        )
    choice = body.get("tool_choice")
    if choice is None or choice in ("none", "auto", "required"):
        return
    if isinstance(choice, str):
        raise invalid(
            f"Invalid value: '{choice}'. Supported values are: 'none', 'auto', and 'required'.",
            "tool_choice",
            "invalid_value",
        )
    function = choice.get("function") if isinstance(choice, dict) else None
    if (
        not isinstance(choice, dict)
        or choice.get("type") != "function"
        or set(choice) != {"type", "function"}
        or not isinstance(function, dict)
        or set(function) != {"name"}
    ):
        raise invalid(
            "Invalid 'tool_choice': expected 'none', 'auto', 'required' or "
            '{"type": "function", "function": {"name": ...}}.',
            "tool_choice",
        )
    if function["name"] not in (names or set()):
        raise invalid(
            f"Invalid value for 'tool_choice': function {function['name']!r} is not among the tools.", "tool_choice"
        )


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list):
        raise invalid(
            f"Invalid type for 'messages': expected an array, but got {_type_name(messages)} instead.",
            "messages",
            "invalid_type",
        )
    if not messages:
        raise invalid(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            "messages",
            "empty_array",
        )
    pending: dict[str, int] = {}  # tool_call id -> the assistant message that asked for it
    asked: set[str] = set()  # ids of the last assistant message with tool_calls
    for n, message in enumerate(messages):
        where = f"messages[{n}]"
        if not isinstance(message, dict):
            raise invalid(f"Invalid type for '{where}': expected an object.", where, "invalid_type")
        role = message.get("role")
        if role not in ROLES:
            raise invalid(
                f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', "
                "'function', 'tool', and 'developer'.",
                f"{where}.role",
                "invalid_value",
            )
        unknown = set(message) - MESSAGE_KEYS[role]
        if unknown:
            raise invalid(f"Unrecognized request argument supplied: {where}.{sorted(unknown)[0]}")
        if role != "tool" and pending:
            _unanswered(pending)
        if role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise invalid(
                    f"Missing required parameter: '{where}.tool_call_id'.",
                    f"{where}.tool_call_id",
                    "missing_required_parameter",
                )
            if not asked:
                raise invalid(
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'.",
                    f"{where}.role",
                )
            if call_id not in asked:
                raise invalid(
                    f"Invalid parameter: 'tool_call_id' of '{call_id}' not found in 'tool_calls' of previous message.",
                    f"{where}.tool_call_id",
                )
            pending.pop(call_id, None)
            _check_content(message.get("content"), where, ("text",), required=True)
            continue
        asked = set()
        if role == "assistant":
            calls = message.get("tool_calls")
            if calls is not None:
                asked = _check_tool_calls(calls, where)
                pending = {call_id: n for call_id in asked}
            if message.get("content") is None and not calls and message.get("function_call") is None:
                raise invalid(f"Invalid value for '{where}.content': expected a string, got null.", f"{where}.content")
            _check_content(message.get("content"), where, ("text", "refusal"), required=False)
        else:
            kinds = ("text", "image_url", "input_audio", "file") if role == "user" else ("text",)
            _check_content(message.get("content"), where, kinds, required=True)
    if pending:
        _unanswered(pending)


def _unanswered(pending: dict[str, int]) -> None:
    n = min(pending.values())
    raise invalid(
        "An assistant message with 'tool_calls' must be followed by tool messages responding "
        "to each 'tool_call_id'. The following tool_call_ids did not have response messages: " + ", ".join(pending),
        f"messages.[{n}].role",
    )


def _check_tool_calls(calls: Any, where: str) -> set[str]:
    if not isinstance(calls, list):
        raise invalid(
            f"Invalid type for '{where}.tool_calls': expected an array.", f"{where}.tool_calls", "invalid_type"
        )
    ids: set[str] = set()
    for k, call in enumerate(calls):
        cw = f"{where}.tool_calls[{k}]"
        if not isinstance(call, dict) or set(call) - {"id", "type", "function"}:
            raise invalid(f"Invalid '{cw}': expected an object with 'id', 'type' and 'function'.", cw)
        if not isinstance(call.get("id"), str) or not call["id"]:
            raise invalid(f"Missing required parameter: '{cw}.id'.", f"{cw}.id", "missing_required_parameter")
        if call.get("type") != "function":
            raise invalid(f"Missing required parameter: '{cw}.type'.", f"{cw}.type", "missing_required_parameter")
        function = call.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            raise invalid(
                f"Missing required parameter: '{cw}.function.name'.",
                f"{cw}.function.name",
                "missing_required_parameter",
            )
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            raise invalid(
                f"Invalid type for '{cw}.function.arguments': expected a string, but got "
                f"{_type_name(arguments)} instead.",
                f"{cw}.function.arguments",
                "invalid_type",
            )
        if call["id"] in ids:
            raise invalid(f"Invalid '{where}.tool_calls': duplicate id {call['id']!r}.", f"{where}.tool_calls")
        ids.add(call["id"])
    return ids


def _check_content(content: Any, where: str, kinds: tuple[str, ...], required: bool) -> None:
    if content is None:
        if required:
            raise invalid(f"Invalid value for '{where}.content': expected a string, got null.", f"{where}.content")
        return
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise invalid(
            f"Invalid type for '{where}.content': expected one of a string or array of objects, "
            f"but got {_type_name(content)} instead.",
            f"{where}.content",
            "invalid_type",
        )
    for k, part in enumerate(content):
        pw = f"{where}.content[{k}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in kinds:
            raise invalid(
                f"Invalid value: '{kind}'. Supported values are: " + ", ".join(f"'{x}'" for x in kinds) + ".",
                f"{pw}.type",
                "invalid_value",
            )
        if kind == "text" and not isinstance(part.get("text"), str):
            raise invalid(f"Missing required parameter: '{pw}.text'.", f"{pw}.text", "missing_required_parameter")
        if kind == "image_url":
            image = part.get("image_url")
            if not isinstance(image, dict) or not isinstance(image.get("url"), str) or not image["url"]:
                raise invalid(
                    f"Missing required parameter: '{pw}.image_url.url'.",
                    f"{pw}.image_url.url",
                    "missing_required_parameter",
                )


# ---------------------------------------------------------------- the request as the model sees it


def messages_view(body: dict) -> dict:
    """The request as a Messages body, so model.py chooses and renders the turn unchanged: system
    messages -> `system`, tool_calls -> tool_use blocks, each run of tool messages (and a user
    message right after them) -> one user message of tool_result blocks, then text (an error is
    whatever the client wrote in the result's text)."""
    system = [_text(m.get("content")) for m in body["messages"] if m["role"] in ("system", "developer")]
    messages: list[dict] = []
    for message in body["messages"]:
        role = message["role"]
        if role == "user":
            text = _text(message.get("content"))
            last = messages[-1] if messages else None
            if last and last["role"] == "user" and isinstance(last["content"], list):
                # Text after tool results: Anthropic's shape has it in the results' own message.
                if text:
                    last["content"].append({"type": "text", "text": text})
            else:
                messages.append({"role": "user", "content": text})
        elif role == "assistant":
            blocks: list[dict] = []
            text = _text(message.get("content"))
            if text:
                blocks.append({"type": "text", "text": text})
            for call in message.get("tool_calls") or []:
                try:
                    arguments = json.loads(call["function"]["arguments"] or "{}")
                except ValueError:
                    arguments = {}
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call["id"],
                        "name": call["function"]["name"],
                        "input": arguments if isinstance(arguments, dict) else {},
                    }
                )
            messages.append({"role": "assistant", "content": blocks})
        elif role == "tool":
            result = {
                "type": "tool_result",
                "tool_use_id": message["tool_call_id"],
                "content": _text(message.get("content")),
            }
            last = messages[-1] if messages else None
            if last and last["role"] == "user" and isinstance(last["content"], list):
                last["content"].append(result)
            else:
                messages.append({"role": "user", "content": [result]})
    view = {
        "model": body["model"],
        "messages": messages,
        "max_tokens": body.get("max_completion_tokens") or body.get("max_tokens") or 4096,
        "stream": bool(body.get("stream")),
    }
    if any(system):
        view["system"] = "\n".join(s for s in system if s)
    return view


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p["text"] for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


# ---------------------------------------------------------------- the answer


def _finish_reason(stop_reason: Any) -> Any:
    return FINISH_REASONS.get(stop_reason, stop_reason) if stop_reason else None


def _calls_of(message: dict) -> list[dict]:
    calls = []
    for block in message["content"]:
        if block["type"] == "tool_use":
            call_id = block["id"]
            if call_id.startswith("toolu_mock_"):
                call_id = "call_mock_" + call_id[len("toolu_mock_") :]  # ids as OpenAI spells them
            calls.append(
                {"id": call_id, "name": block["name"], "arguments": json.dumps(block["input"], ensure_ascii=False)}
            )
    return calls


def _parts(message: dict) -> tuple[str, str]:
    text = "".join(b["text"] for b in message["content"] if b["type"] == "text")
    thinking = "".join(b["thinking"] for b in message["content"] if b["type"] == "thinking")
    return text, thinking


def chat_usage(usage: dict) -> dict:
    cached = int(usage.get("cache_read_input_tokens") or 0)
    prompt = int(usage.get("input_tokens") or 0) + cached + int(usage.get("cache_creation_input_tokens") or 0)
    completion = int(usage.get("output_tokens") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def completion_body(message: dict) -> dict:
    """The `chat.completion` body for a message built by model.build_reply."""
    text, thinking = _parts(message)
    reply: dict[str, Any] = {"role": "assistant", "content": text or None, "refusal": None}
    if thinking:
        reply["reasoning_content"] = thinking  # DeepSeek's and vLLM's field
    calls = _calls_of(message)
    if calls:
        reply["tool_calls"] = [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in calls
        ]
    return {
        "id": _completion_id(message),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": message["model"],
        "choices": [
            {"index": 0, "message": reply, "logprobs": None, "finish_reason": _finish_reason(message["stop_reason"])}
        ],
        "usage": chat_usage(message["usage"]),
        "system_fingerprint": None,
    }


def _completion_id(message: dict) -> str:
    return "chatcmpl-" + message["id"].replace("msg_", "", 1).replace("_", "-")


def data(payload: dict) -> bytes:
    """One data-only SSE event, as OpenAI sends them."""
    return b"data: " + json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n\n"


DONE = b"data: [DONE]\n\n"


def stream_pieces(reply: Reply, include_usage: bool) -> list[bytes]:
    """The chunk events for a reply, honouring the turn's delta sizes, stream_error and truncate."""
    message, turn = reply.message, reply.turn
    base = {
        "id": _completion_id(message),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": message["model"],
        "system_fingerprint": None,
    }

    def chunk(delta: dict, finish: Any = None) -> bytes:
        return data({**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]})

    pieces = [chunk({"role": "assistant", "content": "", "refusal": None})]
    size = reply.stream_options.get("delta_size")
    text, thinking = _parts(message)
    for piece in split_text(thinking, size):
        pieces.append(chunk({"reasoning_content": piece}))
    for piece in split_text(text, size):
        pieces.append(chunk({"content": piece}))
    if turn.get("stream_error"):
        # As on /v1/messages: once the text has streamed, before any tool call.
        pieces.append(data({"error": error_object(error_for(turn["stream_error"]))}))
        return pieces
    json_size = reply.stream_options.get("json_delta_size")
    json_size = 8 if json_size is None else json_size
    for k, call in enumerate(_calls_of(message)):
        first = {
            "index": k,
            "id": call["id"],
            "type": "function",
            "function": {"name": call["name"], "arguments": call["arguments"] if json_size == 0 else ""},
        }
        pieces.append(chunk({"tool_calls": [first]}))
        if json_size != 0:
            arguments = call["arguments"]
            step = len(arguments) or 1 if json_size == -1 else json_size
            for i in range(0, len(arguments), step):
                pieces.append(chunk({"tool_calls": [{"index": k, "function": {"arguments": arguments[i : i + step]}}]}))
    if turn.get("truncate"):
        return pieces
    pieces.append(chunk({}, _finish_reason(message["stop_reason"])))
    if include_usage:
        pieces.append(data({**base, "choices": [], "usage": chat_usage(message["usage"])}))
    pieces.append(DONE)
    return pieces


def apply_fault(pieces: list[bytes], fault: dict | None) -> tuple[list[bytes], dict | None]:
    """The pieces a fault leaves (truncated, an error chunk or garbage put in), and the rest of the
    fault (stalls, resets, closes) for server.py to carry out as it does for /v1/messages."""
    if not fault:
        return pieces, fault
    if "truncate" in fault:
        pieces = pieces[: fault["truncate"]]
    at = fault.get("at", 0)
    if "error_event" in fault:
        pieces = pieces[:at] + [data({"error": error_object(error_for(fault["error_event"]))})]
    if "garbage" in fault:
        junk = fault["garbage"]
        pieces = pieces[:at] + [junk.encode("utf-8") if isinstance(junk, str) else bytes(junk)] + pieces[at:]
    rest = {k: v for k, v in fault.items() if k in ("reset", "close", "stall")}
    if "stall" in rest and "at" in fault:
        rest["at"] = fault["at"]
    return pieces, rest or None


def _send_reply(handler: Any, reply: Reply, body: dict, fault: dict | None) -> None:
    turn = reply.turn
    extra = {"x-request-id": handler._request_id, **{str(k): str(v) for k, v in (turn.get("headers") or {}).items()}}
    delay = float(turn.get("delay") or 0)
    framing = turn.get("framing") or "chunked"
    if "raw" in turn:
        from .server import _split

        raw = turn["raw"].encode("utf-8") if isinstance(turn["raw"], str) else bytes(turn["raw"])
        pieces, rest = apply_fault(_split(raw, turn.get("chunks")), fault)
        handler._send_body(
            int(turn.get("status") or 200),
            turn.get("content_type") or "text/event-stream",
            pieces,
            framing,
            delay,
            extra,
            abort=False,
            fault=rest,
        )
    elif body.get("stream"):
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        pieces, rest = apply_fault(stream_pieces(reply, include_usage), fault)
        handler._send_body(
            200,
            SSE_TYPE,
            pieces,
            framing,
            delay,
            {"Cache-Control": "no-cache", **extra},
            abort=turn.get("truncate") == "abort",
            fault=rest,
        )
    elif turn.get("stream_error"):
        raise error_for(turn["stream_error"])
    else:
        payload = json.dumps(completion_body(reply.message), ensure_ascii=False).encode("utf-8")
        if turn.get("truncate"):
            time.sleep(delay)
            handler._begin(200, "application/json", extra, {"Content-Length": str(len(payload))})
            handler.wfile.write(payload[: len(payload) // 2])
            handler.close_connection = True
            return
        pieces, rest = apply_fault([payload], fault)
        handler._send_body(200, "application/json", pieces, "length", delay, extra, abort=False, fault=rest)
