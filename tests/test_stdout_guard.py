"""Stdout belongs to toolchat: what handlers, libraries and subprocesses write goes to stderr."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import TEST_KEY, clean_env, popen_toolchat

NOISY = """\
import os, subprocess, sys, threading, warnings

print("IMPORT-TIME PRINT")


def noisy(n):
    print(f"HANDLER PRINT {n}")
    sys.stdout.write(f"DIRECT WRITE {n}\\n")
    sys.stdout.buffer.write(f"BUFFER WRITE {n}\\n".encode())
    sys.stdout.flush()
    os.write(1, f"FD1 WRITE {n}\\n".encode())
    subprocess.run(["echo", f"SUBPROCESS ECHO {n}"], check=True)
    warnings.warn(f"LIBRARY WARNING {n}")
    thread = threading.Thread(target=lambda: print(f"THREAD PRINT {n}"))
    thread.start()
    thread.join()
    return f"done {n}"
"""

TOOLS = """\
tools:
  - name: noisy
    description: Prints everywhere it can.
    input_schema: {type: object, properties: {n: {type: integer}}, required: [n]}
    handler: noisy.py:noisy
"""

# One turn with three parallel calls of the noisy tool, then an answer quoting their results.
SCRIPT = {
    "turns": [
        {
            "text": "Calling three tools.",
            "tool_calls": [
                {"name": "noisy", "input": {"n": 1}},
                {"name": "noisy", "input": {"n": 2}},
                {"name": "noisy", "input": {"n": 3}},
            ],
        },
        {"text": "All done.\n{results}"},
    ]
}

MARKS = [
    "HANDLER PRINT",
    "DIRECT WRITE",
    "BUFFER WRITE",
    "FD1 WRITE",
    "SUBPROCESS ECHO",
    "LIBRARY WARNING",
    "THREAD PRINT",
]


def setup(tmp_path):
    (tmp_path / "noisy.py").write_text(NOISY)
    (tmp_path / "tools.yaml").write_text(TOOLS)


def run_shell(command: str, tmp_path, server) -> subprocess.CompletedProcess:
    env = clean_env(tmp_path, TOOLCHAT_BASE_URL=server.url, TOOLCHAT_API_KEY=TEST_KEY)
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
    )


def assert_all_on_stderr(err: str) -> None:
    assert err.count("IMPORT-TIME PRINT") == 1
    for mark in MARKS:
        for n in (1, 2, 3):
            assert f"{mark} {n}" in err, (mark, n, err)


def test_json_through_jq_stays_valid_while_three_parallel_handlers_print_spawn_and_warn(tmp_path, mock):
    setup(tmp_path)
    server = mock(script=SCRIPT)
    proc = run_shell(f"{sys.executable} -m toolchat -t tools.yaml --json hi | jq -r .text", tmp_path, server)
    assert proc.returncode == 0, proc
    assert proc.stdout == "All done.\nnoisy: done 1\nnoisy: done 2\nnoisy: done 3\n"
    assert_all_on_stderr(proc.stderr)


def test_stream_json_lines_all_parse_and_end_with_the_result_while_handlers_print(tmp_path, mock):
    setup(tmp_path)
    server = mock(script=SCRIPT)
    proc = run_shell(f"{sys.executable} -m toolchat -t tools.yaml --stream-json hi", tmp_path, server)
    assert proc.returncode == 0, proc
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert events[0]["type"] == "start"
    assert events[-1]["type"] == "result" and events[-1]["error"] is None
    for mark in MARKS + ["IMPORT-TIME PRINT"]:
        assert mark not in proc.stdout
    assert_all_on_stderr(proc.stderr)


def test_plain_answer_on_stdout_is_only_the_answer(tmp_path, mock):
    setup(tmp_path)
    server = mock(script=SCRIPT)
    proc = run_shell(f"{sys.executable} -m toolchat -q -t tools.yaml hi", tmp_path, server)
    assert proc.returncode == 0, proc
    assert proc.stdout.startswith("Calling three tools.")
    for mark in MARKS + ["IMPORT-TIME PRINT"]:
        assert mark not in proc.stdout
    assert_all_on_stderr(proc.stderr)


def test_tools_run_prints_only_the_tool_output_on_stdout(toolchat, tmp_path):
    setup(tmp_path)
    run = toolchat("tools", "run", "noisy", "-t", "tools.yaml", "--input", '{"n": 1}')
    assert (run.code, run.out) == (0, "done 1\n")
    assert "HANDLER PRINT 1" in run.err and "SUBPROCESS ECHO 1" in run.err
    assert "IMPORT-TIME PRINT" in run.err


def test_tools_list_json_stays_valid_when_a_handler_module_prints_on_import(toolchat, tmp_path):
    setup(tmp_path)
    run = toolchat("tools", "list", "-t", "tools.yaml", "--json")
    assert run.code == 0
    assert [tool["name"] for tool in json.loads(run.out)] == ["noisy"]
    assert run.err == "IMPORT-TIME PRINT\n"


def test_a_subprocess_a_handler_starts_does_not_inherit_the_real_stdout(tmp_path, mock):
    # The child writes to its fd 1 and to every other descriptor it has; none of them is stdout.
    (tmp_path / "child.py").write_text(
        "import os\n"
        "def run():\n"
        "    import subprocess, sys\n"
        "    code = 'import os\\nfor fd in range(1, 64):\\n    try: os.write(fd, b\"CHILD\\\\n\")\\n    except OSError: pass'\n"
        "    subprocess.run([sys.executable, '-c', code], close_fds=False, stdin=subprocess.DEVNULL)\n"
        "    return 'ran'\n"
    )
    (tmp_path / "tools.yaml").write_text(TOOLS.replace("noisy.py:noisy", "child.py:run").replace(", required: [n]", ""))
    server = mock(script={"turns": [{"tool_calls": [{"name": "noisy", "input": {}}]}, {"text": "{result:noisy}"}]})
    proc = run_shell(f"{sys.executable} -m toolchat -t tools.yaml --json hi", tmp_path, server)
    assert proc.returncode == 0, proc
    assert json.loads(proc.stdout)["text"] == "ran"
    assert "CHILD" in proc.stderr


def test_a_reader_that_goes_away_ends_the_run_with_exit_1_and_no_traceback(tmp_path, mock):
    """`toolchat ... | head -c 20`: once the reader has closed the pipe, the next flush fails with
    EPIPE; toolchat stops at once, exit 1, nothing on stderr (no traceback, no 'Exception ignored')."""
    server = mock({"turns": [{"text": "word " * 20_000, "delta_size": 5}]})
    env = clean_env(tmp_path, TOOLCHAT_BASE_URL=server.url, TOOLCHAT_API_KEY=TEST_KEY)
    proc = popen_toolchat(["hi"], env, tmp_path)
    assert proc.stdout.read(20) == b"word word word word "
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 1
    assert err == b""
