"""--schema: the schema's three forms, the structured-output fields on the wire (exactly), the
fallback chain on a gateway's 400 (output_config -> the beta output_format -> a forced answer
tool), the answer checked with jsonschema, and what stdout, --json and the exit code say."""

from __future__ import annotations

import json

import pytest

from conftest import SAMPLE_TOOLS, run_chat
from inprocess import cli
from toolchat.errors import UsageError
from toolchat.mock.validate import ApiError, validate_body
from toolchat.structured import parse_schema, wire_schema

PERSON = "name, age int, tags: comma-separated keywords"
PERSON_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer"},
        "tags": {"type": "string", "description": "comma-separated keywords"},
    },
    "required": ["name", "age", "tags"],
    "additionalProperties": False,
}
ADA = {"name": "Ada", "age": 36, "tags": "math, engines"}
ANSWER_TOOL = {
    "name": "structured_output",
    "description": "Give the final answer. Call this tool exactly once, with the answer as "
    "its input, when you have it.",
    "input_schema": PERSON_SCHEMA,
}


def play(server, prompt="Who?", tools_files=(), **overrides):
    """The chat loop in-process over real HTTP; (result, notes said on stderr). Prompt caching off:
    the tests compare the tools sent."""
    notes: list[str] = []
    _, result = run_chat(server, prompt, tools_files, notes=notes, **overrides)
    return result, notes


def sent(server):
    """The bodies of the /v1/messages requests the server got, and their anthropic-beta headers."""
    requests = [r for r in server.requests if r.path == "/v1/messages"]
    return [r.body for r in requests], [r.headers.get("anthropic-beta") for r in requests]


# ---------------------------------------------------------------- the schema's forms


def test_the_concise_form_is_an_object_of_required_typed_fields():
    assert parse_schema(PERSON) == PERSON_SCHEMA
    assert parse_schema("title\nscore float: 0 to 1\ndone bool")["properties"] == {
        "title": {"type": "string"},
        "score": {"type": "number", "description": "0 to 1"},
        "done": {"type": "boolean"},
    }


def test_inline_json_and_a_file_are_read_as_json_schemas(tmp_path):
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}}
    assert parse_schema(json.dumps(schema)) == schema
    path = tmp_path / "s.json"
    path.write_text(json.dumps(schema))
    assert parse_schema(str(path)) == schema


def test_schema_multi_asks_for_a_list_of_the_objects_under_items():
    assert parse_schema("name", multi=True) == {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}},
                    "required": ["name"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["items"],
        "additionalProperties": False,
    }


@pytest.mark.parametrize(
    "value, words",
    [
        ('{"type": "array"}', 'the answer must be an object ("type": "object")'),
        ('{"type": "object", "properties": 3}', "not a valid JSON Schema: 3 is not of type 'object'"),
        ('{"type": ', "not valid JSON"),
        ("name, age integerish", "'age integerish' is not 'name [str|int|float|bool][: description]'"),
    ],
)
def test_a_schema_that_cannot_be_used_is_a_usage_error(value, words):
    with pytest.raises(UsageError) as caught:
        parse_schema(value)
    assert words in caught.value.message


def test_the_wire_copy_closes_every_object_but_the_schema_as_given_is_kept():
    given = {
        "type": "object",
        "properties": {"inner": {"type": "object"}, "list": {"type": "array", "items": {"type": "object"}}},
    }
    assert wire_schema(given) == {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "inner": {"type": "object", "additionalProperties": False},
            "list": {"type": "array", "items": {"type": "object", "additionalProperties": False}},
        },
    }
    assert "additionalProperties" not in given


# ---------------------------------------------------------------- on the wire and back


def test_the_schema_goes_as_output_config_and_the_answer_is_parsed_and_checked(mock):
    server = mock(script=[{"text": json.dumps(ADA)}])
    result, notes = play(server, schema=parse_schema(PERSON))
    bodies, betas = sent(server)
    assert bodies[0]["output_config"] == {"format": {"type": "json_schema", "schema": PERSON_SCHEMA}}
    assert "output_format" not in bodies[0] and "tools" not in bodies[0] and betas == [None]
    assert result.output == ADA and result.incomplete is None and result.exit_code == 0
    document = result.to_json()
    assert document["output"] == ADA and document["output_error"] is None and notes == []


def test_a_gateway_rejecting_output_config_gets_the_beta_field_with_its_header(mock):
    server = mock(script={"reject_fields": ["output_config"], "turns": [{"text": json.dumps(ADA)}]})
    result, notes = play(server, schema=parse_schema(PERSON))
    bodies, betas = sent(server)
    assert len(bodies) == 2 and "output_config" in bodies[0]
    assert "output_config" not in bodies[1]
    assert bodies[1]["output_format"] == {"type": "json_schema", "schema": PERSON_SCHEMA}
    assert betas == [None, "structured-outputs-2025-11-13"]
    assert result.output == ADA
    assert notes == [
        "note: the endpoint rejected output_config.format (HTTP 400); "
        "trying the beta output_format (structured-outputs-2025-11-13)"
    ]


def test_a_gateway_rejecting_both_fields_gets_a_forced_answer_tool(mock):
    server = mock(
        script={
            "reject_fields": ["output_config", "output_format"],
            "turns": [{"tool_calls": [{"id": "toolu_answer", "name": "structured_output", "input": ADA}]}],
        }
    )
    result, notes = play(server, schema=parse_schema(PERSON))
    bodies, betas = sent(server)
    assert len(bodies) == 3
    last = bodies[2]
    assert "output_config" not in last and "output_format" not in last and betas[2] is None
    assert last["tools"] == [ANSWER_TOOL]
    assert last["tool_choice"] == {"type": "tool", "name": "structured_output"}
    assert result.output == ADA and result.exit_code == 0 and result.turns == 1
    assert notes[1] == (
        "note: the endpoint rejected the beta output_format (structured-outputs-2025-11-13) "
        "(HTTP 400); trying a forced answer tool"
    )
    # The transcript stays valid to continue: the answer call has its tool_result.
    assert result.messages[-1] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "toolu_answer", "content": "answer received"}],
    }
    validate_body(
        {"model": "m", "max_tokens": 5, "messages": result.messages + [{"role": "assistant", "content": "ok"}]}
    )


def test_the_schema_applies_to_the_final_answer_after_tool_calls(mock):
    server = mock(
        script=[
            {"tool_calls": [{"id": "toolu_1", "name": "calculate", "input": {"expression": "6*6"}}]},
            {"text": '{"name": "Ada", "age": {result:calculate}, "tags": "math"}'},
        ]
    )
    result, _ = play(server, tools_files=[SAMPLE_TOOLS], schema=parse_schema(PERSON))
    bodies, _ = sent(server)
    assert [b["output_config"]["format"]["schema"] for b in bodies] == [PERSON_SCHEMA] * 2
    assert [c.output for c in result.tool_calls] == ["36"]
    assert result.output == {"name": "Ada", "age": 36, "tags": "math"}


def test_with_other_tools_the_answer_tool_is_offered_beside_them_and_any_tool_is_required(mock):
    server = mock(
        script={
            "reject_fields": ["output_config", "output_format"],
            "turns": [
                {"tool_calls": [{"id": "toolu_1", "name": "calculate", "input": {"expression": "6*6"}}]},
                {"tool_calls": [{"id": "toolu_2", "name": "structured_output", "input": ADA}]},
            ],
        }
    )
    result, _ = play(server, tools_files=[SAMPLE_TOOLS], schema=parse_schema(PERSON))
    bodies, _ = sent(server)
    tool_mode = bodies[2:]
    assert len(tool_mode) == 2
    for body in tool_mode:
        assert [t["name"] for t in body["tools"]] == ["get_weather", "get_time", "calculate", "structured_output"]
        assert body["tool_choice"] == {"type": "any"}
    assert [c.name for c in result.tool_calls] == ["calculate"] and result.output == ADA


def test_an_answer_that_does_not_fit_the_schema_is_incomplete_schema(mock):
    server = mock(script=[{"text": '{"name": "Ada", "age": "old", "tags": "x"}'}])
    result, _ = play(server, schema=parse_schema(PERSON))
    assert result.incomplete == "schema" and result.exit_code == 4 and result.output is None
    assert result.output_error == "age: 'old' is not of type 'integer'"


def test_a_forced_answer_whose_input_misses_a_field_is_incomplete_schema(mock):
    server = mock(
        script={
            "reject_fields": ["output_config", "output_format"],
            "turns": [{"tool_calls": [{"id": "toolu_a", "name": "structured_output", "input": {"name": "Ada"}}]}],
        }
    )
    result, _ = play(server, schema=parse_schema(PERSON))
    assert result.incomplete == "schema" and result.output_error == "'age' is a required property"


def test_an_answer_that_is_not_json_is_incomplete_schema(mock):
    server = mock(script=[{"text": "Ada, 36"}])
    result, _ = play(server, schema=parse_schema(PERSON))
    assert (result.incomplete, result.output_error) == ("schema", "the answer is not JSON")


def test_another_400_is_not_taken_for_a_rejected_field(mock):
    server = mock(script=[{"error": {"type": "invalid_request_error", "message": "messages: too long"}}])
    result, notes = play(server, schema=parse_schema(PERSON))
    assert len(sent(server)[0]) == 1 and result.error.status == 400 and notes == []


# ---------------------------------------------------------------- the mock is as strict as the API


def _body(**fields):
    return {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}], **fields}


@pytest.mark.parametrize(
    "fields, headers, message",
    [
        (
            {"output_format": {"type": "json_schema", "schema": PERSON_SCHEMA}},
            {},
            "output_format: Extra inputs are not permitted",
        ),
        (
            {"output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}}},
            {},
            "output_config.format.schema: For 'object' type, 'additionalProperties' must be explicitly set to false",
        ),
        (
            {"output_config": {"format": {"type": "json", "schema": PERSON_SCHEMA}}},
            {},
            "output_config.format.type: Input should be 'json_schema'",
        ),
        (
            {
                "output_config": {"format": {"type": "json_schema", "schema": PERSON_SCHEMA}},
                "output_format": {"type": "json_schema", "schema": PERSON_SCHEMA},
            },
            {"anthropic-beta": "structured-outputs-2025-11-13"},
            "output_format and output_config.format cannot both be set; use output_config.format",
        ),
    ],
)
def test_the_mock_refuses_structured_output_fields_as_the_api_does(fields, headers, message):
    with pytest.raises(ApiError) as caught:
        validate_body(_body(**fields), headers)
    assert (caught.value.status, caught.value.message) == (400, message)


def test_the_mock_takes_the_beta_field_with_its_header_and_plays_a_gateway_refusing_fields():
    beta = {"anthropic-beta": "other, structured-outputs-2025-11-13"}
    validate_body(_body(output_format={"type": "json_schema", "schema": PERSON_SCHEMA}), beta)
    validate_body(_body(output_config={"format": {"type": "json_schema", "schema": PERSON_SCHEMA}}))
    with pytest.raises(ApiError) as caught:
        validate_body(
            _body(output_config={"format": {"type": "json_schema", "schema": PERSON_SCHEMA}}), reject={"output_config"}
        )
    assert caught.value.message == "output_config: Extra inputs are not permitted"


# ---------------------------------------------------------------- the command line


def test_plain_stdout_prints_the_answer_as_json(mock, tmp_path, monkeypatch, capsys):
    server = mock(script=[{"text": json.dumps(ADA, indent=None)}])
    run = cli(monkeypatch, capsys, tmp_path, server, "--schema", PERSON, "Who?")
    assert run.code == 0 and json.loads(run.out) == ADA and run.out == json.dumps(ADA, indent=2) + "\n"


def test_json_gains_output_and_a_bad_answer_exits_4(mock, tmp_path, monkeypatch, capsys):
    from jsonschema import validate

    from toolchat.schemas import load

    server = mock(script=[{"text": '{"name": 1, "age": 2, "tags": "x"}'}])
    run = cli(monkeypatch, capsys, tmp_path, server, "--schema", PERSON, "--json", "Who?")
    document = json.loads(run.out)
    assert run.code == 4 and document["incomplete"] == "schema" and document["output"] is None
    assert document["output_error"] == "name: 1 is not of type 'string'"
    validate(document, load("result"))
    run = cli(monkeypatch, capsys, tmp_path, server, "--schema", PERSON, "-q", "Who?")
    assert run.code == 4 and run.out == ""
    assert run.err == (
        "toolchat: incomplete answer: the answer is not valid JSON of --schema (name: 1 is not of type 'string')\n"
    )


def test_schema_multi_without_schema_is_a_usage_error(tmp_path, monkeypatch, capsys):
    run = cli(monkeypatch, capsys, tmp_path, None, "--schema-multi", "Who?")
    assert run.code == 2 and run.err == "toolchat: error: --schema-multi needs --schema\n"


def test_a_tool_named_like_the_answer_tool_is_refused(tmp_path, monkeypatch, capsys):
    tools = tmp_path / "tools.yaml"
    tools.write_text(
        "tools:\n  - name: structured_output\n    description: x\n"
        "    input_schema: {type: object}\n    handler: h.py:f\n"
    )
    (tmp_path / "h.py").write_text("def f():\n    return 'x'\n")
    run = cli(monkeypatch, capsys, tmp_path, None, "--schema", "name", "-t", str(tools), "--dry-run", "Who?")
    assert run.code == 2 and "--schema: a tool named 'structured_output' is defined" in run.err


def test_stream_json_ends_with_the_output_in_its_result_line(mock, tmp_path, monkeypatch, capsys):
    from toolchat.schemas import validator

    server = mock(script=[{"text": json.dumps(ADA)}])
    run = cli(monkeypatch, capsys, tmp_path, server, "--schema", PERSON, "--stream-json", "Who?")
    lines = [json.loads(line) for line in run.out.splitlines()]
    check = validator("event")
    for line in lines:
        check.validate(line)
    assert lines[-1]["type"] == "result" and lines[-1]["output"] == ADA and run.code == 0


def test_the_fallback_is_noted_on_stderr_and_quiet_keeps_it_silent(mock, tmp_path, monkeypatch, capsys):
    server = mock(
        script={
            "reject_fields": ["output_config", "output_format"],
            "turns": [{"tool_calls": [{"id": "toolu_a", "name": "structured_output", "input": ADA}]}],
        }
    )
    run = cli(monkeypatch, capsys, tmp_path, server, "--schema", PERSON, "--plain", "Who?")
    assert run.code == 0 and json.loads(run.out) == ADA
    assert run.err.splitlines() == [
        "toolchat: note: the endpoint rejected output_config.format (HTTP 400); "
        "trying the beta output_format (structured-outputs-2025-11-13)",
        "toolchat: note: the endpoint rejected the beta output_format (structured-outputs-2025-11-13) "
        "(HTTP 400); trying a forced answer tool",
    ]
    run = cli(monkeypatch, capsys, tmp_path, server, "--schema", PERSON, "-q", "Who?")
    assert (run.code, run.err) == (0, "")
