"""Scripting: every README "Scripting" (and "The conversation log") example runs as written, and stdout stays pure in every mode.

README examples are marked for this file: an HTML comment `<!-- example NAME ... -->` whose body is
YAML (`mock`: the mock server's script, echo model if absent; `files`: files to create first;
`exit`: the expected exit code, default 0; `requests`: how many requests the mock must receive),
then a ```sh block (the example, run by `bash -euo pipefail` with `toolchat` and real `jq` on
PATH, TOOLCHAT_BASE_URL and TOOLCHAT_API_KEY pointing at the mock), then an ```output block: what
the terminal shows, stdout and stderr together, compared exactly.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

import zygote
from conftest import ROOT, SAMPLE_TOOLS, TEST_KEY, clean_env, message_events, popen_toolchat, sse, zygote_path

needs_jq = pytest.mark.skipif(
    shutil.which("jq") is None and not os.environ.get("CI"),
    reason="jq is not installed here (.ci/run installs it; in CI these must run)",
)

SECTION = "## Scripting"
SECTIONS = (SECTION, "## The conversation log")
EXAMPLE = re.compile(
    r"<!-- example (?P<name>[\w-]+)\n(?P<spec>.*?)-->\s*\n"
    r"```sh\n(?P<script>.*?)```\s*\n"
    r"```output\n(?P<output>.*?)```",
    re.S,
)
FENCE = re.compile(r"^```(\w*)", re.M)
SPEC_KEYS = {"mock", "files", "exit", "requests"}


@dataclass
class Example:
    name: str
    script: str
    output: str
    mock: dict | None = None
    files: dict = field(default_factory=dict)
    exit: int = 0
    requests: int | None = None


def scripting_section(readme: str) -> str:
    """The sections whose ```sh blocks are tested examples, one after the other (the Scripting
    section must be there; the others when they are)."""
    parts = []
    for title in SECTIONS:
        if f"\n{title}\n" not in readme and title != SECTION:
            continue
        start = readme.index(f"\n{title}\n")
        end = readme.find("\n## ", start + len(title) + 2)
        parts.append(readme[start : end if end != -1 else len(readme)])
    return "\n".join(parts)


def parse_examples(readme: str) -> list[Example]:
    """The examples of the Scripting and conversation-log sections; every ```sh block there must be one."""
    section = scripting_section(readme)
    examples = []
    for match in EXAMPLE.finditer(section):
        spec = yaml.safe_load(match["spec"]) or {}
        assert set(spec) <= SPEC_KEYS, f"example {match['name']}: unknown keys {set(spec) - SPEC_KEYS}"
        examples.append(Example(match["name"], match["script"], match["output"], **spec))
    sh_blocks = [m for m in FENCE.finditer(section) if m[1] == "sh"]
    assert len(sh_blocks) == len(examples), "a ```sh block in the Scripting section is not a tested example"
    names = [e.name for e in examples]
    assert len(set(names)) == len(names), f"duplicate example names: {names}"
    return examples


README_EXAMPLES = parse_examples((ROOT / "README.md").read_text(encoding="utf-8"))


def test_the_scripting_section_has_the_promised_examples():
    scripts = {e.name: e.script for e in README_EXAMPLES}
    assert len(scripts) >= 6
    together = "\n".join(scripts.values())
    for needle in (
        "| jq -r .text",
        ".tool_calls[]",
        "--stream-json",
        "< ",
        "--save",
        "--messages",
        "xargs -0",
        "-P 4",
        "status=$?",
        " -c ",
        "--cid",
        "logs search",
    ):
        assert needle in together, needle


def test_the_parser_rejects_an_untested_shell_block():
    readme = "# t\n\n## Scripting\n\n```sh\ntoolchat hi\n```\n\n## Next\n"
    with pytest.raises(AssertionError, match="not a tested example"):
        parse_examples(readme)


def make_shell(tmp_path, mock, **extra_env):
    """Run a README example as a user would: bash, toolchat and jq on PATH, in a scratch folder
    (extra_env: more variables, e.g. TOOLCHAT_API=openai)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "toolchat"
    warm = zygote_path()  # a run forked from the warm interpreter (tests/zygote.py), or a fresh one
    if warm is None:
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m toolchat "$@"\n')
    else:
        wrapper.write_text(
            f'#!/bin/sh\nexec "{sys.executable}" -S -E "{Path(zygote.__file__)}" --client "{warm}" "$@"\n'
        )
    wrapper.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(SAMPLE_TOOLS, work / "sample_tools.yaml")
    shutil.copytree(SAMPLE_TOOLS.parent / "tools", work / "tools")  # its handlers, loaded by path

    def run(example: Example):
        server = mock(example.mock)
        for name, content in example.files.items():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            (work / name).write_text(content)
        env = clean_env(tmp_path, TOOLCHAT_BASE_URL=server.url, TOOLCHAT_API_KEY=TEST_KEY, **extra_env)
        env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
        proc = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", example.script],
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
        )
        return proc, server

    return run


@pytest.fixture
def shell(tmp_path, mock):
    return make_shell(tmp_path, mock)


@needs_jq
@pytest.mark.parametrize("example", README_EXAMPLES, ids=[e.name for e in README_EXAMPLES])
def test_readme_example(shell, example):
    proc, server = shell(example)
    assert (proc.returncode, proc.stdout) == (example.exit, example.output)
    if example.requests is not None:
        assert len(server.requests) == example.requests


# ---------------------------------------------------------------- stdout discipline

CALC = json.dumps(
    {
        "text": "Let me work it out.",
        "tool_calls": [
            {"name": "calculate", "input": {"expression": "6*7"}},
            {"name": "get_weather", "input": {"location": "Paris"}},
        ],
    }
)

# name -> (prompt, extra args, mock options, expected exit code)
CASES = {
    "text": ("hello there", (), {}, 0),
    "parallel tools and a tool error": (CALC, ("-t", str(SAMPLE_TOOLS)), {}, 0),
    "thinking": (json.dumps({"thinking": "Let me think.", "text": "Done."}), (), {}, 0),
    "http error": ("hi", (), {"api_key": "another-key"}, 3),
    "error event mid-stream": (
        json.dumps({"text": "so far", "stream_error": {"type": "overloaded_error", "message": "Overloaded"}}),
        (),
        {},
        3,
    ),
    "truncated stream": (json.dumps({"text": "half", "truncate": True}), (), {}, 3),
    "connection refused": ("hi", ("--base-url", "http://127.0.0.1:9"), {}, 3),
    "tools file missing": ("hi", ("-t", "missing.yaml"), {}, 2),
    "max turns": (CALC, ("-t", str(SAMPLE_TOOLS), "--max-turns", "1"), {}, 4),
    "refusal": (json.dumps({"text": "No.", "stop_reason": "refusal"}), (), {}, 4),
    "unknown stop reason": (json.dumps({"text": "hm", "stop_reason": "brand_new"}), (), {}, 0),
    "retried, then failed": (
        "hi",
        ("--retries", "1"),
        {
            "script": {
                "turns": [
                    {
                        "error": {"status": 529, "type": "overloaded_error", "message": "Overloaded"},
                        "headers": {"retry-after": "0"},
                    }
                ]
            }
        },
        3,
    ),
    "debug": ("hi", ("--debug",), {}, 0),
    "save to a missing folder": ("hi", ("--save", "no/such/dir/chat.json"), {}, 2),
}
ESCAPE = "\x1b"


def run_case(toolchat, mock, name, mode):
    prompt, args, options, code = CASES[name]
    server = mock(**options)
    # A terminal-loving environment: colour must still never reach a pipe.
    env = {"FORCE_COLOR": "1", "TERM": "xterm-256color", "CLICOLOR_FORCE": "1"}
    run = toolchat(*mode, *args, prompt, server=server, env=env)
    assert run.code == code, run
    assert ESCAPE not in run.out, run
    return run


@pytest.mark.parametrize("name", CASES)
def test_json_stdout_is_exactly_one_document(toolchat, mock, name):
    run = run_case(toolchat, mock, name, ("--json",))
    assert run.out.endswith("}\n") and run.out.count("\n") == 1, run
    document = json.loads(run.out)
    from toolchat.schemas import validator

    validator("result").validate(document)
    assert (document["error"] is None) == (CASES[name][3] in (0, 4))


@pytest.mark.parametrize("name", CASES)
def test_stream_json_stdout_is_only_json_lines(toolchat, mock, name):
    run = run_case(toolchat, mock, name, ("--stream-json",))
    from toolchat.schemas import validator

    events = [json.loads(line) for line in run.out.splitlines()]
    check = validator("event")
    for event in events:
        check.validate(event)
    assert events[0]["type"] == "start" and events[-1]["type"] == "result"
    assert [e["type"] for e in events].count("result") == 1


@pytest.mark.parametrize("name", CASES)
def test_piped_plain_stdout_is_only_the_answer(toolchat, mock, name):
    run = run_case(toolchat, mock, name, ())
    assert "toolchat:" not in run.out and "→" not in run.out and "←" not in run.out, run
    assert "Traceback" not in run.out and "debug:" not in run.out, run


def test_piped_plain_stdout_is_exactly_the_answer_text(toolchat, mock):
    run = run_case(toolchat, mock, "parallel tools and a tool error", ())
    assert run.out == (
        "Let me work it out.\n\ncalculate: 42\nget_weather: error: WeatherError: "
        "could not reach Open-Meteo (connection refused)\n"
    )


@pytest.mark.parametrize("mode", [(), ("--json",), ("--stream-json",)], ids=["plain", "json", "stream-json"])
def test_quiet_leaves_stderr_empty_on_success(toolchat, mock, mode):
    run = toolchat("-q", *mode, "-t", str(SAMPLE_TOOLS), CALC, server=mock())
    assert (run.code, run.err) == (0, ""), run
    assert run.out


@pytest.mark.parametrize("mode", [(), ("--json",), ("--stream-json",)], ids=["plain", "json", "stream-json"])
def test_quiet_still_reports_errors_on_stderr(toolchat, mock, mode):
    run = toolchat("-q", *mode, "hi", server=mock(api_key="another-key"))
    assert run.code == 3
    assert run.err == (
        "toolchat: error: HTTP 401 authentication_error: invalid x-api-key (check the API key and --auth-style)\n"
    )


def test_without_quiet_tool_traces_go_to_stderr_in_json_modes(toolchat, mock):
    for mode in ("--json", "--stream-json"):
        run = toolchat(mode, "-t", str(SAMPLE_TOOLS), CALC, server=mock())
        lines = run.err.splitlines()
        assert lines[:2] == ['→ calculate {"expression": "6*7"}', '→ get_weather {"location": "Paris"}'], run


def test_json_and_stream_json_together_is_a_usage_error_with_nothing_on_stdout(toolchat):
    run = toolchat("--json", "--stream-json", "hi")
    assert (run.code, run.out) == (2, "")
    assert run.err == "toolchat: error: --json and --stream-json cannot be used together; pick one\n"


def test_sigint_with_json_modes_leaves_pure_stdout(tmp_path, mock):
    body = sse(*message_events({"type": "text", "text": "shown\n"}))
    shown_end = body.index("\n\n", body.index('"text_delta"')) + 2
    server = mock({"turns": [{"raw": body, "chunks": [shown_end], "delay": 20, "framing": "close"}]})
    env = clean_env(tmp_path, TOOLCHAT_BASE_URL=server.url, TOOLCHAT_API_KEY=TEST_KEY)
    proc = popen_toolchat(["--stream-json", "hi"], env)
    try:
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        assert json.loads(lines[1]) == {"type": "text", "text": "shown\n"}
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert (proc.returncode, err) == (130, b"toolchat: interrupted\n")
    assert ESCAPE.encode() not in out
    [last] = [json.loads(line) for line in out.splitlines()]
    assert (last["type"], last["error"]["type"], last["text"]) == ("result", "interrupted", "shown\n")
