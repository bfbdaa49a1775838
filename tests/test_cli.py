"""toolchat as a user runs it: a real subprocess against the mock server; exit codes, stdout/stderr."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import SAMPLE_TOOLS, TEST_KEY, clean_env, message_events, popen_toolchat, sse

CALC_TOOLS = """
tools:
  - name: calc
    description: Add
    input_schema: {type: object, properties: {a: {type: number}, b: {type: number}}, required: [a, b]}
    handler: h.py:add
  - name: guarded
    input_schema: {type: object}
    handler: h.py:guarded
    confirm: true
"""


@pytest.fixture
def calc(tmp_path):
    (tmp_path / "h.py").write_text("def add(a, b):\n    return a + b\n\ndef guarded():\n    return 'ran'\n")
    (tmp_path / "calc.yaml").write_text(CALC_TOOLS)
    return str(tmp_path / "calc.yaml")


def tool_prompt(*calls, text=""):
    return json.dumps({"text": text, "tool_calls": [{"name": n, "input": i} for n, i in calls]})


def test_echo_answer_on_stdout_exit_0(toolchat, mock):
    run = toolchat("hello", "world", server=mock())
    assert (run.code, run.out, run.err) == (0, "hello world\n", "")


def test_stdin_is_combined_with_the_prompt(toolchat, mock):
    run = toolchat("Summarise:", server=mock(), stdin="line one\nline two\n")
    assert run.out == "Summarise:\n\nline one\nline two\n"


def test_tool_traces_go_to_stderr_and_answer_to_stdout(toolchat, mock, calc):
    run = toolchat("-t", calc, tool_prompt(("calc", {"a": 2, "b": 5}), text="Let me add."), server=mock())
    assert run.code == 0, run
    assert run.out == "Let me add.\n\ncalc: 7\n"
    assert run.err.splitlines() == ['→ calc {"a": 2, "b": 5}', run.err.splitlines()[1]]
    assert run.err.splitlines()[1].startswith("← calc ok (") and run.err.splitlines()[1].endswith(" ms): 7")


def test_json_document(toolchat, mock, calc):
    run = toolchat("--json", "-t", calc, tool_prompt(("calc", {"a": 2, "b": 5})), server=mock())
    assert run.code == 0, run
    doc = run.json()
    assert set(doc) == {
        "text",
        "stop_reason",
        "stop_details",
        "incomplete",
        "model",
        "turns",
        "tool_calls",
        "usage",
        "messages",
        "error",
        "conversation_id",
    }
    assert len(doc["conversation_id"]) == 26  # the run was logged under it
    assert (doc["text"], doc["stop_reason"], doc["turns"], doc["error"], doc["incomplete"]) == (
        "calc: 7",
        "end_turn",
        2,
        None,
        None,
    )
    assert doc["model"] == "claude-sonnet-4-20250514"
    [call] = doc["tool_calls"]
    assert (call["name"], call["input"], call["output"], call["is_error"]) == ("calc", {"a": 2, "b": 5}, "7", False)
    assert call["id"].startswith("toolu_") and isinstance(call["duration_ms"], int)
    assert doc["usage"]["input_tokens"] > 0 and doc["usage"]["output_tokens"] > 0
    assert [m["role"] for m in doc["messages"]] == ["user", "assistant", "user", "assistant"]
    assert doc["messages"][2]["content"] == [{"type": "tool_result", "tool_use_id": call["id"], "content": "7"}]


@pytest.mark.skipif(
    shutil.which("jq") is None and not os.environ.get("CI"),
    reason="jq is not installed here (.ci/run installs it; in CI this test must run)",
)
def test_json_piped_into_real_jq(tmp_path, mock):
    server = mock()
    env = clean_env(tmp_path, TOOLCHAT_BASE_URL=server.url, TOOLCHAT_API_KEY=TEST_KEY)
    prompt = tool_prompt(("calculate", {"expression": "(20 + 22) * 2"}))
    out = subprocess.run(
        f"{sys.executable} -m toolchat --json -t {SAMPLE_TOOLS} '{prompt}' | jq -r .text",
        shell=True,
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert (out.returncode, out.stdout) == (0, "calculate: 84\n")
    tools = subprocess.run(
        f"{sys.executable} -m toolchat --json -t {SAMPLE_TOOLS} '{prompt}' | jq -c '[.tool_calls[].name]'",
        shell=True,
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert tools.stdout == '["calculate"]\n'


def test_json_document_is_printed_on_failure_too(toolchat, mock):
    run = toolchat("--json", "hi", server=mock(api_key="the-right-key"))
    assert run.code == 3
    doc = run.json()
    assert doc["error"]["type"] == "authentication_error"
    assert doc["error"]["status"] == 401
    assert doc["error"]["request_id"].startswith("req_")
    assert run.err.strip().splitlines()[-1].startswith("toolchat: error: HTTP 401 authentication_error:")


@pytest.mark.parametrize(
    "args, expected",
    [
        ((), "toolchat: error: no prompt: give one as arguments or on stdin (toolchat --help)"),
        (("-t", "missing.yaml", "hi"), "toolchat: error: missing.yaml: tools file not found"),
        (
            ("--auth-style", "weird", "hi"),
            "toolchat: error: --auth-style: 'weird' is not one of auto, bearer, x-api-key",
        ),
        (
            ("--header", "no-colon", "hi"),
            "toolchat: error: --header: expected 'Name: value' (a name without "
            "spaces, a colon, then a value on one line)",
        ),
        (("--base-url", "ftp://x", "hi"), "toolchat: error: --base-url: 'ftp://x' is not an http(s) URL"),
        # A password in the URL is never shown.
        (
            ("--base-url", "ftp://me:s3cret@x/v1", "hi"),
            "toolchat: error: --base-url: 'ftp://***@x/v1' is not an http(s) URL",
        ),
        (("--base-url", "me:s3cret@x", "hi"), "toolchat: error: --base-url: '***@x' is not an http(s) URL"),
    ],
)
def test_usage_and_configuration_errors_exit_2_with_one_line(toolchat, args, expected):
    run = toolchat(*args)
    assert (run.code, run.out, run.err) == (2, "", expected + "\n")


def test_json_document_for_a_failure_before_the_run(toolchat):
    run = toolchat("--json", "-t", "missing.yaml", "hi")
    assert run.code == 2
    assert run.json() == {
        "text": "",
        "stop_reason": None,
        "stop_details": None,
        "incomplete": None,
        "model": "claude-sonnet-4-20250514",
        "turns": 0,
        "tool_calls": [],
        "usage": {"input_tokens": 0, "output_tokens": 0},
        "messages": [],
        "error": {
            "type": "tools_file_error",
            "message": "missing.yaml: tools file not found",
            "status": None,
            "request_id": None,
        },
        "conversation_id": None,
    }  # refused before the run: nothing is logged
    assert run.err == "toolchat: error: missing.yaml: tools file not found\n"


def test_unknown_option_exits_2(toolchat):
    run = toolchat("--no-such-option", "hi")
    assert run.code == 2 and run.out == ""


def test_missing_credentials_is_an_error_before_any_request(toolchat, mock):
    server = mock()
    run = toolchat("hi", server=server, key=None)
    assert run.code == 2
    assert run.err.startswith("toolchat: error: no API key: set ANTHROPIC_API_KEY")
    assert server.requests == []


def test_broken_tools_file_exits_2_naming_file_tool_and_field(toolchat, tmp_path, mock):
    (tmp_path / "bad.yaml").write_text(
        "tools:\n  - name: x\n    handler: nowhere:f\n    input_schema: {type: object}\n"
    )
    server = mock()
    run = toolchat("-t", "bad.yaml", "hi", server=server)
    assert (run.code, run.out) == (2, "")
    assert (
        run.err == "toolchat: error: bad.yaml: tool 'x': handler: cannot import 'nowhere': No module named 'nowhere'\n"
    )
    assert server.requests == []


def test_wrong_key_exits_3_and_never_shows_the_key(toolchat, mock):
    run = toolchat("hi", server=mock(api_key="the-right-key"))
    assert run.code == 3
    assert run.err == (
        "toolchat: error: HTTP 401 authentication_error: invalid x-api-key (check the API key and --auth-style)\n"
    )
    assert TEST_KEY not in run.out + run.err


def test_connection_refused_exits_3(toolchat):
    run = toolchat("--retries", "0", "hi", env={"TOOLCHAT_BASE_URL": "http://127.0.0.1:9"})
    assert run.code == 3
    assert run.err.startswith("toolchat: error: could not connect to 127.0.0.1:9: ")
    assert "Traceback" not in run.err


def test_truncated_stream_exits_3_after_showing_the_partial_answer(toolchat, mock):
    run = toolchat(json.dumps({"text": "half an answer", "truncate": True}), server=mock())
    assert run.code == 3
    assert run.out == "half an answer\n"
    assert run.err == "toolchat: error: the stream ended before message_stop: the answer is truncated\n"


def test_error_event_mid_stream_exits_3(toolchat, mock):
    run = toolchat(
        json.dumps({"text": "so far", "stream_error": {"type": "overloaded_error", "message": "Overloaded"}}),
        server=mock(),
    )
    assert (run.code, run.out) == (3, "so far\n")
    assert run.err == "toolchat: error: overloaded_error: Overloaded\n"


def test_http_error_exits_3(toolchat, mock):
    run = toolchat(
        "--json",
        json.dumps({"error": {"status": 529, "type": "overloaded_error", "message": "Overloaded"}}),
        server=mock(),
    )
    assert run.code == 3
    assert run.json()["error"] == {
        "type": "overloaded_error",
        "message": "HTTP 529 overloaded_error: Overloaded",
        "status": 529,
        "request_id": run.json()["error"]["request_id"],
    }


@pytest.mark.parametrize(
    "stop_reason, line",
    [
        (
            "max_tokens",
            "toolchat: incomplete answer: the model hit --max-tokens; the answer is cut off (raise --max-tokens)",
        ),
        ("refusal", "toolchat: incomplete answer: the model refused to answer"),
        (
            "model_context_window_exceeded",
            "toolchat: incomplete answer: the conversation no longer fits the model's context window",
        ),
    ],
)
def test_incomplete_answers_exit_4(toolchat, mock, stop_reason, line):
    run = toolchat(json.dumps({"text": "partial", "stop_reason": stop_reason}), server=mock())
    assert (run.code, run.out, run.err) == (4, "partial\n", line + "\n")


def test_refusal_details_are_reported(toolchat, mock):
    run = toolchat(
        json.dumps({"text": "No.", "stop_reason": "refusal", "stop_details": {"type": "refusal", "category": "cyber"}}),
        server=mock(),
    )
    assert run.code == 4
    assert run.err == (
        'toolchat: incomplete answer: the model refused to answer (details: {"type": "refusal", "category": "cyber"})\n'
    )


def test_an_unknown_stop_reason_finishes_and_is_reported_as_is(toolchat, mock):
    run = toolchat(json.dumps({"text": "hm", "stop_reason": "brand_new_reason"}), server=mock())
    assert (run.code, run.out, run.err) == (
        0,
        "hm\n",
        "toolchat: note: the model stopped with stop_reason 'brand_new_reason'\n",
    )


def test_max_turns_exits_4(toolchat, mock, calc):
    run = toolchat("--json", "--max-turns", "1", "-t", calc, tool_prompt(("calc", {"a": 1, "b": 1})), server=mock())
    assert run.code == 4
    assert (run.json()["incomplete"], run.json()["turns"]) == ("max_turns", 1)


def test_dry_run_prints_the_body_and_sends_nothing(toolchat, mock, calc):
    server = mock()
    run = toolchat(
        "--dry-run", "-t", calc, "-s", "Be brief.", "--temperature", "0.2", "--tool-choice", "any", "hi", server=server
    )
    assert run.code == 0
    assert json.loads(run.out) == {
        "model": "claude-sonnet-4-20250514",
        "max_tokens": 4096,
        # Prompt caching is on by default: breakpoints on the last tool, the system prompt, the prompt.
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]}
        ],
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "temperature": 0.2,
        "tools": [
            {
                "name": "calc",
                "input_schema": {
                    "type": "object",
                    "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                    "required": ["a", "b"],
                },
                "description": "Add",
            },
            {"name": "guarded", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}},
        ],
        "tool_choice": {"type": "any"},
        "stream": True,
    }
    assert server.requests == []
    assert TEST_KEY not in run.out + run.err


def test_dry_run_needs_no_key(toolchat):
    run = toolchat("--dry-run", "--no-cache", "hi", key=None)
    assert run.code == 0 and json.loads(run.out)["messages"] == [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    "env, header, value",
    [
        ({"ANTHROPIC_API_KEY": "k-api"}, "x-api-key", "k-api"),
        ({"ANTHROPIC_AUTH_TOKEN": "k-oauth"}, "authorization", "Bearer k-oauth"),
        ({"TOOLCHAT_API_KEY": "k-tc"}, "authorization", "Bearer k-tc"),  # auto: Bearer for any host but Anthropic's
    ],
)
def test_credentials_from_the_environment(toolchat, mock, env, header, value):
    server = mock()
    run = toolchat("hi", server=server, key=None, env=env)
    assert run.code == 0, run
    headers = server.requests[0].headers
    assert headers[header] == value
    assert headers["anthropic-version"] == "2023-06-01"
    other = "authorization" if header == "x-api-key" else "x-api-key"
    assert other not in headers


def test_auth_style_x_api_key_and_extra_headers(toolchat, mock):
    server = mock()
    run = toolchat(
        "--auth-style", "x-api-key", "--header", "anthropic-beta: a,b", "--header", "X-Trace: 1", "hi", server=server
    )
    assert run.code == 0, run
    headers = server.requests[0].headers
    assert (headers["x-api-key"], headers["anthropic-beta"], headers["x-trace"]) == (TEST_KEY, "a,b", "1")


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/", "/v1/messages"])
def test_base_url_suffixes_are_normalised(toolchat, mock, suffix):
    server = mock()
    run = toolchat("hi", env={"ANTHROPIC_BASE_URL": server.url + suffix})
    assert run.code == 0, run
    assert server.requests[0].path == "/v1/messages"


def test_flag_beats_environment_beats_config_file(toolchat, mock, tmp_path):
    server = mock()
    config = tmp_path / "config" / "toolchat"
    config.mkdir(parents=True)
    (config / "config.yaml").write_text("model: from-config\nmax_tokens: 77\nsystem: configured\n")
    toolchat("hi", server=server)
    toolchat("hi", server=server, env={"TOOLCHAT_MODEL": "from-env"})
    toolchat("-m", "from-flag", "hi", server=server, env={"TOOLCHAT_MODEL": "from-env"})
    bodies = [r.body for r in server.requests]
    assert [b["model"] for b in bodies] == ["from-config", "from-env", "from-flag"]
    assert {b["max_tokens"] for b in bodies} == {77} and {b["system"][0]["text"] for b in bodies} == {"configured"}


def test_confirm_tool_is_not_run_without_a_terminal(toolchat, mock, calc):
    run = toolchat("-t", calc, tool_prompt(("guarded", {})), server=mock())
    assert run.code == 0
    assert (
        run.out
        == "guarded: error: not run: tool 'guarded' needs the user's confirmation and there is no terminal to ask on (the user can allow it with -y or --allow-tool)\n"
    )


def test_confirm_tool_runs_with_yes(toolchat, mock, calc):
    run = toolchat("-y", "-t", calc, tool_prompt(("guarded", {})), server=mock())
    assert (run.code, run.out) == (0, "guarded: ran\n")


def test_tools_env_variable(toolchat, mock, calc):
    run = toolchat(tool_prompt(("calc", {"a": 1, "b": 2})), server=mock(), env={"TOOLCHAT_TOOLS": calc})
    assert run.out == "calc: 3\n"


def interrupt_after_line(args, env, stream, line):
    """Start toolchat, wait for `line` on `stream`, send SIGINT; return (code, stdout, stderr)."""
    proc = popen_toolchat(list(args), env)
    try:
        assert getattr(proc, stream).readline() == line
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    return proc.returncode, out, err


def test_sigint_mid_stream_exits_130_keeping_what_was_shown(tmp_path, mock):
    body = sse(*message_events({"type": "text", "text": "shown\n"}))
    shown_end = body.index("\n\n", body.index('"text_delta"')) + 2
    server = mock({"turns": [{"raw": body, "chunks": [shown_end], "delay": 20, "framing": "close"}]})
    env = clean_env(tmp_path, TOOLCHAT_BASE_URL=server.url, TOOLCHAT_API_KEY=TEST_KEY)
    code, out, err = interrupt_after_line(["hi"], env, "stdout", b"shown\n")
    assert (code, err) == (130, b"toolchat: interrupted\n")


def test_help_does_not_import_requests_or_jsonschema(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "toolchat", "--help"],
        capture_output=True,
        text=True,
        env=clean_env(tmp_path),
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0 and "Usage: toolchat" in proc.stdout
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "typer" in imported
    assert not {"requests", "jsonschema", "urllib3", "yaml", "toolchat.mock.server"} & imported


def test_version(toolchat):
    run = toolchat("--version")
    assert (run.code, run.out) == (0, "toolchat 0.1.0\n")


def test_tools_list_validate_and_run(toolchat, calc):
    listed = toolchat("tools", "list", "-t", calc)
    assert (listed.code, listed.out) == (0, "calc\tAdd\nguarded (confirm)\t\n")
    valid = toolchat("tools", "validate", calc, str(SAMPLE_TOOLS))
    assert (valid.code, valid.out) == (0, "ok: 5 tools in 2 files\n")
    ran = toolchat("tools", "run", "calc", "--input", '{"a": 2, "b": 2}', "-t", calc)
    assert (ran.code, ran.out) == (0, "4\n")
    bad = toolchat("tools", "run", "calc", "--input", '{"a": "x"}', "-t", calc)
    assert (bad.code, bad.err) == (
        2,
        "toolchat: error: --input: invalid input: 'b' is a required property (and 1 more problem)\n",
    )
    unknown = toolchat("tools", "run", "nope", "-t", calc)
    assert (unknown.code, unknown.err) == (2, "toolchat: error: no tool named 'nope' (tools: calc, guarded)\n")
    broken = toolchat("tools", "run", "calc", "--input", "{nope", "-t", calc)
    assert broken.code == 2 and broken.err.startswith("toolchat: error: --input is not valid JSON:")


def test_tools_validate_reports_the_first_problem(toolchat, tmp_path):
    (tmp_path / "bad.yaml").write_text("tools: [{name: 'a b', input_schema: {type: object}, handler: x:y}]\n")
    run = toolchat("tools", "validate", "bad.yaml")
    assert (run.code, run.err) == (
        2,
        "toolchat: error: bad.yaml: tool 'a b': name: must match ^[a-zA-Z0-9_-]{1,64}$ (letters, digits, _ and -)\n",
    )


def test_mock_server_command_serves_toolchat(tmp_path):
    env = clean_env(tmp_path)
    server = subprocess.Popen(
        [sys.executable, "-m", "toolchat", "mock-server", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    try:
        line = server.stdout.readline().strip()
        assert line.startswith("mock server listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        run = subprocess.run(
            [sys.executable, "-m", "toolchat", "--base-url", url, "ping"],
            capture_output=True,
            text=True,
            env={**env, "TOOLCHAT_API_KEY": TEST_KEY},
            stdin=subprocess.DEVNULL,
        )
        assert (run.returncode, run.stdout) == (0, "ping\n")
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=10)
    assert server.returncode == 0


def test_demo_runs_the_whole_loop_offline(toolchat):
    run = toolchat("--demo", "What's the weather in San Francisco?", key=None)
    assert run.code == 0, run
    assert run.out.startswith("I'll check the weather and the local time in San Francisco.\n\n")
    assert "- Local time: " in run.out and "America/Los_Angeles" in run.out
    # The weather comes from the mock server's Open-Meteo look-alike, not the network.
    assert '- Weather: {"location": "San Francisco, California, United States", "temperature": 14.2,' in run.out
    assert "error" not in run.out
    assert '→ get_weather {"location": "San Francisco, CA"}' in run.err
    assert "← get_time ok (" in run.err


def test_tool_choice_must_name_a_loaded_tool(toolchat, calc):
    run = toolchat("--dry-run", "-t", calc, "--tool-choice", "nope", "hi")
    assert (run.code, run.err) == (2, "toolchat: error: --tool-choice: no tool named 'nope' (tools: calc, guarded)\n")
    run = toolchat("--dry-run", "--tool-choice", "any", "hi")
    assert (run.code, run.err) == (2, "toolchat: error: --tool-choice needs tools: pass -t FILE\n")


def test_debug_shows_the_request_but_never_the_key(toolchat, mock):
    run = toolchat("--debug", "hi", server=mock(), env={"ANTHROPIC_AUTH_TOKEN": TEST_KEY}, key=None)
    assert run.code == 0
    assert "debug: POST http://127.0.0.1:" in run.err and "'authorization': '[redacted]'" in run.err
    assert "debug: HTTP 200 text/event-stream" in run.err
    assert TEST_KEY not in run.out + run.err


def test_debug_shows_a_traceback_for_errors(toolchat, mock):
    run = toolchat("--debug", json.dumps({"text": "x", "truncate": True}), server=mock())
    assert run.code == 3
    assert "Traceback (most recent call last)" in run.err and "StreamError" in run.err
    assert TEST_KEY not in run.err


def test_mock_server_bad_script_is_a_usage_error(toolchat, tmp_path):
    (tmp_path / "s.yaml").write_text("turns: [{bogus: 1}]\n")
    run = toolchat("mock-server", "--script", "s.yaml")
    assert run.code == 2 and run.err.startswith("toolchat: error: --script s.yaml: ")


@pytest.mark.parametrize(
    "answer, expected",
    [
        ("y", "guarded: ran\n"),
        ("always", "guarded: ran\n"),
        ("n", "guarded: error: not run: the user declined to run 'guarded'\n"),
    ],
)
def test_confirm_tool_asks_on_the_terminal(tmp_path, mock, calc, answer, expected):
    import fcntl
    import pty
    import termios

    server = mock()
    master, slave = pty.openpty()

    def take_terminal():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)  # stdin is the pty's slave side

    env = clean_env(tmp_path, TOOLCHAT_BASE_URL=server.url, TOOLCHAT_API_KEY=TEST_KEY)
    proc = subprocess.Popen(
        [sys.executable, "-m", "toolchat", "-t", calc, tool_prompt(("guarded", {}))],
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        preexec_fn=take_terminal,
    )
    os.close(slave)
    try:
        seen = b""
        deadline = time.monotonic() + 20
        while b"[y]es/[n]o/[a]lways: " not in seen and time.monotonic() < deadline:
            seen += os.read(master, 1024)
        assert seen.startswith(b"Run guarded {}? [y]es/[n]o/[a]lways: ")
        os.write(master, answer.encode() + b"\n")
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
        os.close(master)
    assert (proc.returncode, out.decode()) == (0, expected)


def test_sigint_while_a_tool_runs_exits_130_without_waiting_for_it(tmp_path, mock):
    (tmp_path / "h.py").write_text("import time\n\ndef hang():\n    time.sleep(60)\n")
    (tmp_path / "t.yaml").write_text(
        "tools:\n  - name: hang\n    input_schema: {type: object}\n    handler: h.py:hang\n"
    )
    server = mock()
    env = clean_env(tmp_path, TOOLCHAT_BASE_URL=server.url, TOOLCHAT_API_KEY=TEST_KEY)
    code, out, err = interrupt_after_line(
        ["--json", "-t", str(tmp_path / "t.yaml"), tool_prompt(("hang", {}))], env, "stderr", "→ hang {}\n".encode()
    )
    assert (code, err) == (130, b"toolchat: interrupted\n")
    doc = json.loads(out)
    assert (doc["error"]["type"], doc["turns"]) == ("interrupted", 1)


def test_config_dev_null_means_no_config_file(toolchat, mock):
    server = mock()
    run = toolchat("hello", server=server, env={"TOOLCHAT_CONFIG": "/dev/null"})
    assert (run.code, run.out, run.err) == (0, "hello\n", "")


def test_config_that_does_not_exist_is_still_refused(toolchat, tmp_path):
    run = toolchat("hello", env={"TOOLCHAT_CONFIG": str(tmp_path / "nope.yaml")})
    assert (run.code, run.err) == (
        2,
        f"toolchat: error: {tmp_path / 'nope.yaml'}: config file not found (TOOLCHAT_CONFIG)\n",
    )


@pytest.mark.parametrize(
    "command", [(), ("tools",), ("tools", "list"), ("tools", "validate"), ("tools", "run"), ("mock-server",)]
)
def test_h_is_help_on_every_command(toolchat, command):
    short, long = toolchat(*command, "-h"), toolchat(*command, "--help")
    assert (short.code, short.err) == (0, "")
    assert short.out == long.out and short.out.startswith("Usage: toolchat")


@pytest.mark.parametrize(
    "command, usage, argument",
    [
        ((), "Usage: toolchat [OPTIONS] PROMPT...", "  PROMPT...  The prompt."),
        (("tools", "validate"), "Usage: toolchat tools validate [OPTIONS] FILE...", "  FILE...  Tools YAML files."),
        (("tools", "run"), "Usage: toolchat tools run [OPTIONS] NAME", "  NAME  The tool to run."),
    ],
)
def test_help_names_arguments_plainly(toolchat, command, usage, argument):
    lines = toolchat(*command, "--help").out.splitlines()
    assert lines[0] == usage
    assert any(line.startswith(argument) for line in lines), lines
    shown = [lines[0]] + [line for line in lines if line.startswith(argument)]
    assert not any("<list[str]>" in line or "{" in line for line in shown)


def test_double_dash_sends_words_that_look_like_commands_as_the_prompt(toolchat, mock):
    server = mock()
    run = toolchat("--no-cache", "--", "tools", "are", "great", "--json", server=server)
    assert (run.code, run.out) == (0, "tools are great --json\n")
    assert server.requests[0].body["messages"] == [{"role": "user", "content": "tools are great --json"}]
