"""Tools files: every problem is found at load time and named by file, tool and field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from toolchat.errors import ToolsFileError
from toolchat.toolsources.base import Call
from toolchat.toolsources.yaml import load_files

HANDLERS = """
import time

def add(a, b):
    return a + b

def shout(text):
    return {"text": text.upper()}

def nothing():
    return None

def boom(**kwargs):
    raise ValueError("the handler broke")

def slow(seconds):
    time.sleep(seconds)
    return "late"

NOT_CALLABLE = 3
"""


def write_tools(tmp_path: Path, body: str, name: str = "tools.yaml") -> Path:
    (tmp_path / "handlers.py").write_text(HANDLERS)
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


TOOL = """
tools:
  - name: {name}
    description: Add two numbers
    input_schema:
      type: object
      properties:
        a: {{type: number}}
        b: {{type: number}}
      required: [a, b]
    handler: {handler}
"""


def load_error(tmp_path, body) -> str:
    path = write_tools(tmp_path, body)
    with pytest.raises(ToolsFileError) as info:
        load_files([path])
    assert info.value.exit_code == 2
    return info.value.message.replace(str(path), "FILE")


def test_a_good_file_loads_with_a_file_handler(tmp_path):
    box = load_files([write_tools(tmp_path, TOOL.format(name="add", handler="handlers.py:add"))])
    assert box.names() == ["add"]
    assert box.wire() == [
        {
            "name": "add",
            "description": "Add two numbers",
            "input_schema": {
                "type": "object",
                "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                "required": ["a", "b"],
            },
        }
    ]
    assert box.run_one(Call("t1", "add", {"a": 2, "b": 3})).output == "5"


def test_module_handler_resolves_beside_the_yaml(tmp_path):
    package = tmp_path / "mytools_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "ops.py").write_text("def add(a, b):\n    return a - -b\n")
    box = load_files([write_tools(tmp_path, TOOL.format(name="add", handler="mytools_pkg.ops:add"))])
    assert box.run_one(Call("t1", "add", {"a": 1, "b": 1})).output == "2"


def test_broken_yaml_names_the_line(tmp_path):
    message = load_error(tmp_path, "tools:\n  - name: x\n   bad: [\n")
    assert message.startswith("FILE: not valid YAML at line 3")


@pytest.mark.parametrize(
    "name, problem",
    [
        ("has space", "name: must match ^[a-zA-Z0-9_-]{1,64}$"),
        ("x" * 65, "name: must match"),
    ],
)
def test_bad_tool_names(tmp_path, name, problem):
    message = load_error(tmp_path, TOOL.format(name=f'"{name}"', handler="handlers.py:add"))
    assert message.startswith(f"FILE: tool {name!r}: {problem}")


def test_schema_must_be_an_object_schema(tmp_path):
    body = TOOL.format(name="add", handler="handlers.py:add").replace("type: object", "type: array")
    assert load_error(tmp_path, body) == "FILE: tool 'add': input_schema: must have \"type: object\" at the top"


def test_invalid_json_schema_is_reported_with_its_path(tmp_path):
    body = TOOL.format(name="add", handler="handlers.py:add").replace("a: {type: number}", "a: {type: 5}")
    message = load_error(tmp_path, body)
    assert message.startswith("FILE: tool 'add': input_schema.properties.a.type: not a valid JSON Schema:")


def test_missing_schema(tmp_path):
    message = load_error(tmp_path, "tools:\n  - name: t\n    handler: handlers.py:add\n")
    assert message == "FILE: tool 't': input_schema: required, a JSON Schema with type: object"


@pytest.mark.parametrize(
    "handler, problem",
    [
        ("handlers.py:missing", "handler: 'handlers.py' has no 'missing'"),
        ("handlers.py:NOT_CALLABLE", "handler: handlers.py:NOT_CALLABLE is not callable"),
        ("no_such_module_xyz:f", "handler: cannot import 'no_such_module_xyz': No module named 'no_such_module_xyz'"),
        ("nofile.py:f", "handler: file "),
        ("just_a_name", "handler: 'just_a_name' must be module:function or path/to/file.py:function"),
    ],
)
def test_handler_problems(tmp_path, handler, problem):
    message = load_error(tmp_path, TOOL.format(name="add", handler=handler))
    assert message.startswith(f"FILE: tool 'add': {problem}")


def test_handler_module_that_raises_on_import(tmp_path):
    (tmp_path / "broken.py").write_text("raise RuntimeError('import-time failure')\n")
    message = load_error(tmp_path, TOOL.format(name="add", handler="broken.py:f"))
    assert (
        message
        == "FILE: tool 'add': handler: importing 'broken.py' failed: RuntimeError: import-time failure (broken.py, line 1)"
    )


def test_unknown_field_catches_typos(tmp_path):
    body = TOOL.format(name="add", handler="handlers.py:add").replace("input_schema:", "input-schema:")
    assert load_error(tmp_path, body).startswith("FILE: tool 'add': input-schema: unknown field")


@pytest.mark.parametrize(
    "line, problem",
    [
        ("timeout: -1", "timeout: must be a number of seconds greater than 0"),
        ("timeout: soon", "timeout: must be a number of seconds greater than 0"),
        ("confirm: maybe", "confirm: must be true or false"),
    ],
)
def test_bad_timeout_and_confirm(tmp_path, line, problem):
    body = TOOL.format(name="add", handler="handlers.py:add") + f"    {line}\n"
    assert load_error(tmp_path, body) == f"FILE: tool 'add': {problem}"


def test_duplicate_names_across_files(tmp_path):
    first = write_tools(tmp_path, TOOL.format(name="add", handler="handlers.py:add"), "a.yaml")
    second = write_tools(tmp_path, TOOL.format(name="add", handler="handlers.py:add"), "b.yaml")
    with pytest.raises(ToolsFileError) as info:
        load_files([first, second])
    assert info.value.message == f"{second}: tool 'add': name: already defined in {first}"


def test_not_a_tools_mapping(tmp_path):
    assert load_error(tmp_path, "just text") == "FILE: expected a mapping with a `tools:` list"


def test_missing_file(tmp_path):
    with pytest.raises(ToolsFileError) as info:
        load_files([tmp_path / "absent.yaml"])
    assert info.value.message == f"{tmp_path / 'absent.yaml'}: tools file not found"


MANY = """
tools:
  - name: add
    input_schema: {type: object, properties: {a: {type: number}, b: {type: number}}, required: [a, b]}
    handler: handlers.py:add
  - name: shout
    input_schema: {type: object, properties: {text: {type: string}}, required: [text]}
    handler: handlers.py:shout
  - name: nothing
    input_schema: {type: object}
    handler: handlers.py:nothing
  - name: boom
    input_schema: {type: object}
    handler: handlers.py:boom
  - name: slow
    input_schema: {type: object, properties: {seconds: {type: number}}}
    handler: handlers.py:slow
    timeout: 0.3
"""


@pytest.fixture
def box(tmp_path):
    return load_files([write_tools(tmp_path, MANY)])


def test_results_str_dict_and_none(box):
    assert box.run_one(Call("1", "shout", {"text": "hé"})).output == '{"text": "HÉ"}'
    result = box.run_one(Call("2", "nothing", {}))
    assert (result.output, result.is_error) == ("", False)


def test_handler_exception_is_an_error_result(box):
    result = box.run_one(Call("1", "boom", {}))
    assert (result.output, result.is_error) == ("ValueError: the handler broke", True)


def test_handler_timeout_is_an_error_result_without_waiting_for_it(box):
    result = box.run_one(Call("1", "slow", {"seconds": 30}))
    assert (result.output, result.is_error) == ("the tool timed out after 0.3 s", True)
    assert result.duration_ms < 5000


def test_unknown_tool_is_an_error_result(box):
    result = box.run_one(Call("1", "invented", {}))
    assert result.is_error
    assert result.output == "unknown tool 'invented'; the tools available are: add, shout, nothing, boom, slow"


def test_input_failing_the_schema_is_an_error_result(box):
    result = box.run_one(Call("1", "add", {"a": "two"}))
    assert result.is_error
    assert result.output == "invalid input: 'b' is a required property (and 1 more problem)"
    nested = box.run_one(Call("2", "add", {"a": "two", "b": 1}))
    assert nested.output == "invalid input: a: 'two' is not of type 'number'"


def test_input_not_an_object(box):
    result = box.run_one(Call("1", "add", [1, 2]))
    assert (result.output, result.is_error) == ("the tool input must be a JSON object, got list", True)


def test_output_over_the_cap_is_cut_with_a_note(box):
    result = box.run_one(Call("1", "shout", {"text": "a" * 150_000}))
    assert result.output.endswith("\n[output cut: 150,012 characters, only the first 100,000 sent]")
    assert len(result.output) == 100_000 + len("\n[output cut: 150,012 characters, only the first 100,000 sent]")
