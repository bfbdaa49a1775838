"""A user's handler modules load from their tools file's folder and never collide with toolchat's."""

from __future__ import annotations

import json

import pytest

TOOL = """\
tools:
  - name: {name}
    description: A tool.
    input_schema: {{type: object}}
    handler: {handler}
"""

SCRIPT = {"turns": [{"tool_calls": [{"name": "mine", "input": {}}]}, {"text": "{results}"}]}


def write(path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_a_tools_package_beside_the_yaml_is_the_users_own(toolchat, tmp_path):
    # tests run with the repository on PYTHONPATH, which has its own tools/ folder (the samples)
    write(tmp_path / "tools" / "__init__.py", "")
    write(
        tmp_path / "tools" / "mything.py",
        "from tools.helper import word\nfrom . import helper\ndef fn():\n    return word() + helper.word()\n",
    )
    write(tmp_path / "tools" / "helper.py", "def word():\n    return 'mine'\n")
    write(tmp_path / "t.yaml", TOOL.format(name="mine", handler="tools.mything:fn"))
    run = toolchat("tools", "run", "mine", "-t", "t.yaml")
    assert (run.code, run.out, run.err) == (0, "minemine\n", "")


@pytest.mark.parametrize("package", ["tools", "cli", "utils"])
def test_namespace_packages_beside_the_yaml_work_too(toolchat, tmp_path, package):
    write(tmp_path / package / "mod.py", f"def fn():\n    return '{package} ok'\n")
    write(tmp_path / "t.yaml", TOOL.format(name="mine", handler=f"{package}.mod:fn"))
    run = toolchat("tools", "run", "mine", "-t", "t.yaml")
    assert (run.code, run.out, run.err) == (0, f"{package} ok\n", "")


def test_two_tools_files_each_with_their_own_tools_package(toolchat, tmp_path):
    for side in ("a", "b"):
        write(tmp_path / side / "tools" / "__init__.py", "")
        write(tmp_path / side / "tools" / "mything.py", f"import utils\ndef fn():\n    return utils.NAME + ' {side}'\n")
        write(tmp_path / side / "utils.py", f"NAME = 'utils of {side}'\n")
        write(tmp_path / side / "t.yaml", TOOL.format(name=f"tool_{side}", handler="tools.mything:fn"))
    for side in ("a", "b"):
        run = toolchat("tools", "run", f"tool_{side}", "-t", "a/t.yaml", "-t", "b/t.yaml")
        assert (run.code, run.out) == (0, f"utils of {side} {side}\n")


def test_lazy_imports_inside_a_handler_resolve_in_its_folder_at_call_time(toolchat, tmp_path):
    write(tmp_path / "lazy.py", "def fn():\n    import later\n    return later.VALUE\n")
    write(tmp_path / "later.py", "VALUE = 'found later'\n")
    write(tmp_path / "t.yaml", TOOL.format(name="mine", handler="lazy:fn"))
    run = toolchat("tools", "run", "mine", "-t", "t.yaml")
    assert (run.code, run.out) == (0, "found later\n")


SHADOWS = {
    "requests.py": "raise RuntimeError('the user requests.py was imported by toolchat')\n",
    "yaml.py": "raise RuntimeError('the user yaml.py was imported by toolchat')\n",
    "jsonschema.py": "raise RuntimeError('the user jsonschema.py was imported by toolchat')\n",
}


def test_requests_and_yaml_beside_a_tools_file_never_replace_toolchats_own(toolchat, tmp_path, mock):
    # The handler folder has requests.py, yaml.py and jsonschema.py; toolchat imports its own
    # (requests lazily, after the handlers loaded) and the whole run works.
    for name, text in SHADOWS.items():
        write(tmp_path / "h" / name, text)
    write(tmp_path / "h" / "mine.py", "def fn():\n    return 'fine'\n")
    write(tmp_path / "h" / "t.yaml", TOOL.format(name="mine", handler="mine:fn"))
    server = mock(script=SCRIPT)
    run = toolchat("-t", "h/t.yaml", "--json", "hi", server=server)
    assert run.code == 0, run
    assert run.json()["text"] == "mine: fine"


def test_a_users_own_requests_module_is_what_their_handler_imports(toolchat, tmp_path, mock):
    write(tmp_path / "requests.py", "def get(url):\n    return 'the user fake of ' + url\n")
    write(tmp_path / "mine.py", "import requests\ndef fn():\n    return requests.get('x')\n")
    write(tmp_path / "t.yaml", TOOL.format(name="mine", handler="mine.py:fn"))
    server = mock(script=SCRIPT)
    run = toolchat("-t", "t.yaml", "--json", "hi", server=server)
    assert run.code == 0, run
    assert run.json()["text"] == "mine: the user fake of x"


def test_a_handler_from_an_installed_module_still_loads(toolchat, tmp_path):
    write(tmp_path / "t.yaml", TOOL.format(name="mine", handler="platform:python_implementation"))
    run = toolchat("tools", "run", "mine", "-t", "t.yaml")
    assert (run.code, run.out) == (0, "CPython\n")


@pytest.mark.parametrize(
    "source, cause",
    [
        ("def fn(:\n    pass\n", "importing 'bad.py' failed: SyntaxError: invalid syntax (bad.py, line 1)"),
        (
            "x = 1\nraise ValueError('boom at import')\n",
            "importing 'bad.py' failed: ValueError: boom at import (bad.py, line 2)",
        ),
        ("import sys\nsys.exit(3)\n", "importing 'bad.py' failed: SystemExit: 3 (bad.py, line 2)"),
        ("import no_such_lib_xyz\n", "cannot import 'bad.py': No module named 'no_such_lib_xyz' (bad.py, line 1)"),
        ("from . import nothing\n", "importing 'bad.py' failed: ImportError: cannot import name 'nothing' from "),
        (
            "raise ValueError('first\\nsecond')\n",
            "importing 'bad.py' failed: ValueError: first second (bad.py, line 1)",
        ),
    ],
)
def test_a_handler_module_that_fails_to_import_is_one_line_exit_2(toolchat, tmp_path, mock, source, cause):
    write(tmp_path / "bad.py", source)
    write(tmp_path / "t.yaml", TOOL.format(name="mine", handler="bad.py:fn"))
    server = mock(script=SCRIPT)
    for args in (["-t", "t.yaml", "hi"], ["tools", "validate", "t.yaml"]):
        run = toolchat(*args, server=server)
        assert (run.code, run.out) == (2, ""), run
        assert run.err.startswith(f"toolchat: error: t.yaml: tool 'mine': handler: {cause}"), run.err
        assert run.err.count("\n") == 1 and "Traceback" not in run.err


def test_a_failing_handler_import_with_json_still_prints_the_document(toolchat, tmp_path, mock):
    write(tmp_path / "bad.py", "raise SystemExit('no')\n")
    write(tmp_path / "t.yaml", TOOL.format(name="mine", handler="bad.py:fn"))
    run = toolchat("-t", "t.yaml", "--json", "hi", server=mock())
    assert run.code == 2
    assert json.loads(run.out)["error"]["message"] == (
        "t.yaml: tool 'mine': handler: importing 'bad.py' failed: SystemExit: no (bad.py, line 1)"
    )


def test_a_missing_module_of_the_users_folder_names_the_folder(toolchat, tmp_path):
    write(tmp_path / "tools" / "other.py", "")
    write(tmp_path / "t.yaml", TOOL.format(name="mine", handler="tools.missing:fn"))
    run = toolchat("tools", "validate", "t.yaml")
    assert run.code == 2
    assert run.err == (
        f"toolchat: error: t.yaml: tool 'mine': handler: cannot import 'tools.missing': "
        f"no module 'tools.missing' in {tmp_path.resolve()}\n"
    )


def test_handler_modules_do_not_appear_under_their_own_names(tmp_path):
    import sys

    from toolchat.toolsources.base import Call
    from toolchat.toolsources.yaml import load_files

    write(tmp_path / "utils" / "__init__.py", "VALUE = 7\n")
    write(tmp_path / "m.py", "import utils\ndef fn():\n    return utils.VALUE\n")
    write(tmp_path / "t.yaml", TOOL.format(name="mine", handler="m.py:fn"))
    before = set(sys.path)
    box = load_files([tmp_path / "t.yaml"])
    assert box.run_one(Call("1", "mine", {})).output == "7"  # the handler ran, through the tool source
    assert "utils" not in sys.modules and "m" not in sys.modules
    assert set(sys.path) == before
