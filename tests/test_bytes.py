"""Bytes that are not UTF-8, and terminals that cannot show everything: decoded with replacement,
one warning, and the run goes on to its answer, --json document or --stream-json result line."""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import TEST_KEY, clean_env, run_toolchat

REPLACED = "toolchat: warning: {what} is not valid UTF-8: {n} byte{s} replaced with U+FFFD\n"


def warning(what: str, n: int) -> str:
    return REPLACED.format(what=what, n=n, s="s" * (n != 1))


def run(tmp_path, server, *args, stdin: bytes | None = None, env: dict | None = None):
    environment = clean_env(tmp_path, TOOLCHAT_BASE_URL=server.url, TOOLCHAT_API_KEY=TEST_KEY)
    environment.update(env or {})
    return run_toolchat(list(args), environment, tmp_path, stdin, 60, text=False)


def output(proc, mode: str, encoding: str = "utf-8") -> dict:
    """The --json document, or the --stream-json result line (after a start line)."""
    text = proc.stdout.decode(encoding)
    if mode == "--json":
        return json.loads(text)
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0]["type"] == "start" and lines[-1]["type"] == "result"
    return lines[-1]


def sent_prompt(server) -> str:
    content = server.requests[-1].body["messages"][-1]["content"]
    return content if isinstance(content, str) else "".join(b.get("text", "") for b in content)


@pytest.fixture
def latin1_diff(tmp_path) -> bytes:
    """`git diff` of a file saved as Latin-1: the bytes a user pipes in."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "menu.txt").write_bytes("café\n".encode("latin-1"))
    subprocess.run([*git, "add", "menu.txt"], check=True)
    subprocess.run([*git, "commit", "-qm", "menu"], check=True)
    (repo / "menu.txt").write_bytes("café crème brûlée\n".encode("latin-1"))
    diff = subprocess.run([*git, "diff"], check=True, capture_output=True).stdout
    assert b"caf\xe9 cr\xe8me br\xfbl\xe9e" in diff
    return diff


@pytest.mark.parametrize("mode", ["--json", "--stream-json"])
def test_latin1_git_diff_on_stdin_is_replaced_with_one_warning(tmp_path, mock, latin1_diff, mode):
    server = mock()
    proc = run(tmp_path, server, mode, "Review this diff:", stdin=latin1_diff)
    assert proc.returncode == 0, proc
    assert proc.stderr.decode() == warning("stdin", 5)
    assert output(proc, mode)["error"] is None
    assert "+caf\ufffd cr\ufffdme br\ufffdl\ufffde" in sent_prompt(server)
    assert "+caf\ufffd cr\ufffdme br\ufffdl\ufffde" in output(proc, mode)["text"]  # the echo model


@pytest.mark.parametrize("mode", ["--json", "--stream-json"])
def test_non_utf8_argv_and_system_text_are_replaced_with_one_warning(tmp_path, mock, mode):
    server = mock()
    proc = run(tmp_path, server, mode, "--no-cache", "-s", b"be n\xefce", b"caf\xe9", b"\xed\xa0\x80x")
    assert proc.returncode == 0, proc
    assert proc.stderr.decode() == warning("the command line", 5)
    assert output(proc, mode)["error"] is None
    body = server.requests[-1].body
    assert body["system"] == "be n\ufffdce"
    assert body["messages"] == [{"role": "user", "content": "caf\ufffd \ufffd\ufffd\ufffdx"}]


def test_utf8_input_gives_no_warning(tmp_path, mock):
    server = mock()
    proc = run(tmp_path, server, "--json", "-s", "crème", "café ☕", stdin="brûlée 😀".encode())
    assert (proc.returncode, proc.stderr) == (0, b"")
    assert sent_prompt(server) == "café ☕\n\nbrûlée 😀"


def test_a_latin1_messages_file_and_tools_file_are_read_with_one_warning_each(tmp_path, mock):
    (tmp_path / "m.json").write_bytes('[{"role": "user", "content": "caf\xe9"}]'.encode("latin-1"))
    (tmp_path / "t.yaml").write_bytes(
        "tools:\n  - name: t\n    description: caf\xe9 cr\xe8me\n    input_schema: {type: object}\n"
        "    handler: platform:system\n".encode("latin-1")
    )
    server = mock()
    proc = run(tmp_path, server, "--json", "--no-cache", "--messages", "m.json", "-t", "t.yaml")
    assert proc.returncode == 0, proc
    assert proc.stderr.decode() == warning("--messages m.json", 1) + warning("t.yaml", 2)
    body = server.requests[-1].body
    assert body["messages"] == [{"role": "user", "content": "caf\ufffd"}]
    assert body["tools"][0]["description"] == "caf\ufffd cr\ufffdme"


def test_lone_surrogates_in_a_messages_file_are_replaced_not_a_traceback(tmp_path, mock):
    (tmp_path / "m.json").write_text('[{"role": "user", "content": "a \\ud800 b \\udcff"}]')
    server = mock()
    proc = run(tmp_path, server, "--stream-json", "--messages", "m.json")
    assert proc.returncode == 0, proc
    assert proc.stderr.decode() == warning("--messages m.json", 2)
    assert output(proc, "--stream-json")["error"] is None
    assert sent_prompt(server) == "a \ufffd b \ufffd"


def test_messages_on_stdin_as_latin1(tmp_path, mock):
    server = mock()
    proc = run(
        tmp_path,
        server,
        "--json",
        "--messages",
        "-",
        stdin='[{"role": "user", "content": "na\xefve"}]'.encode("latin-1"),
    )
    assert proc.returncode == 0, proc
    assert proc.stderr.decode() == warning("--messages stdin", 1)
    assert sent_prompt(server) == "na\ufffdve"


ANSWER = "café ☕ 😀 \u202e"


@pytest.mark.parametrize(
    "env", [{"PYTHONIOENCODING": "ascii"}, {"LC_ALL": "C", "LANG": "C"}, {"PYTHONIOENCODING": "latin-1", "LC_ALL": "C"}]
)
@pytest.mark.parametrize("mode", ["--json", "--stream-json"])
def test_json_output_is_exact_and_valid_on_any_output_encoding(tmp_path, mock, env, mode):
    server = mock(script={"turns": [{"text": ANSWER}]})
    proc = run(tmp_path, server, mode, "hi", env=env)
    assert proc.returncode == 0, proc
    # What the encoding lacks is a \u escape inside the JSON string: the exact text all the same.
    assert output(proc, mode, env.get("PYTHONIOENCODING", "utf-8"))["text"] == ANSWER
    assert proc.stderr == b""


@pytest.mark.parametrize(
    "env, shown",
    [
        ({"PYTHONIOENCODING": "ascii"}, b"caf\\u00e9 \\u2615\n"),
        ({"LC_ALL": "C", "LANG": "C"}, "café ☕\n".encode()),  # Python's UTF-8 mode for the C locale
    ],
)
def test_plain_output_on_an_ascii_stdout_is_escaped_not_a_traceback(tmp_path, mock, env, shown):
    server = mock(script={"turns": [{"text": "café ☕"}]})
    proc = run(tmp_path, server, "-q", "hi", env=env)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, shown, b"")


def test_an_error_line_with_undecodable_argv_under_ascii_is_one_line(tmp_path, mock):
    server = mock()
    proc = run(tmp_path, server, "--json", "--allow-tool", b"caf\xe9", "hi", env={"PYTHONIOENCODING": "ascii"})
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["error"]["message"] == "--allow-tool: no tool named 'caf\ufffd' (tools: none)"
    assert proc.stderr.decode("ascii").splitlines() == [
        "toolchat: warning: the command line is not valid UTF-8: 1 byte replaced with U+FFFD",
        "toolchat: error: --allow-tool: no tool named 'caf\\ufffd' (tools: none)",
    ]


def test_a_tool_returning_a_non_utf8_file_name_is_sent_with_replacement(tmp_path, mock):
    (tmp_path / "ls.py").write_text("import os\ndef ls():\n    return sorted(os.listdir('d'))\n")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "caf\udce9.txt").write_text("")  # the name is the Latin-1 bytes caf\xe9.txt
    (tmp_path / "t.yaml").write_text(
        "tools:\n  - name: ls\n    description: list\n    input_schema: {type: object}\n    handler: ls.py:ls\n"
    )
    server = mock(script={"turns": [{"tool_calls": [{"name": "ls", "input": {}}]}, {"text": "{result:ls}"}]})
    proc = run(tmp_path, server, "--json", "-t", "t.yaml", "hi")
    assert proc.returncode == 0, proc
    assert output(proc, "--json")["text"] == '["caf\ufffd.txt"]'


def test_a_non_utf8_environment_variable_is_replaced_with_one_warning(tmp_path, mock):
    server = mock()
    proc = run(
        tmp_path, server, "--stream-json", "hi", env={"TOOLCHAT_MODEL": b"m\xff".decode("utf-8", "surrogateescape")}
    )
    assert proc.returncode == 0, proc
    assert proc.stderr.decode() == warning("the environment (TOOLCHAT_*, ANTHROPIC_*)", 1)
    assert output(proc, "--stream-json")["model"] == "m\ufffd"
    assert server.requests[-1].body["model"] == "m\ufffd"
