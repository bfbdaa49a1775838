"""Terminal safety outside the live view: untrusted text (the model's answer and thinking, a tool's
input and output, a server's error message and headers) never drives the user's terminal.

Every sequence of issue 10 goes through every such path: plain output on a real pty (read back
through pyte), piped stdout (exact bytes), `--raw` (byte-exact passthrough), `--json` and
`--stream-json` (the exact text once parsed, no raw control bytes on the wire), error lines, the
confirm prompt; and toolchat.text itself. toolchat.text and the plain view's streaming are tested
one sequence at a time; a run of toolchat carries all of them at once, each labelled, so one run
per path checks them all exactly (a process start per sequence and path would take minutes).
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys

import pyte
import pytest

from conftest import TEST_KEY, clean_env, message_events, run_toolchat, sse
from ptyrun import run_on_pty
from toolchat import text
from toolchat.views.ndjson import encode
from toolchat.views.plain import PlainView

# name: (the untrusted text, how a terminal shows it neutralised, how it shows inside the
# confirm prompt's JSON: JSON escapes C0 controls itself, neutralise the rest)
SEQUENCES = {
    "clipboard": ("\x1b]52;c;SGVsbG8=\x07", r"\x1b]52;c;SGVsbG8=\a", r"\u001b]52;c;SGVsbG8=\u0007"),
    "title": ("\x1b]0;TITLE\x07", r"\x1b]0;TITLE\a", r"\u001b]0;TITLE\u0007"),
    "clear": ("\x1b[2J", r"\x1b[2J", r"\u001b[2J"),
    "hidden": ("\x1b[8mhidden\x1b[0m", r"\x1b[8mhidden\x1b[0m", r"\u001b[8mhidden\u001b[0m"),
    "bare_cr": ("rm -rf ./build\rls     ", r"rm -rf ./build\rls     ", r"rm -rf ./build\rls     "),
    "backspace": ("safe\b\b\b\bevil", r"safe\b\b\b\bevil", r"safe\b\b\b\bevil"),
    "bidi_override": ("invoice\u202efdp.exe", r"invoice\u202efdp.exe", r"invoice\u202efdp.exe"),
    "bidi_isolate": ("a\u2066b\u2069c", r"a\u2066b\u2069c", r"a\u2066b\u2069c"),
    "c1_csi": ("\x9b2J\x9b8m", r"\x9b2J\x9b8m", r"\x9b2J\x9b8m"),
    "other_c0": ("\x00\x01\x0b\x0c\x0e\x1f\x7f", r"\0\x01\v\f\x0e\x1f\x7f", r"\u0000\u0001\u000b\f\u000e\u001f\x7f"),
}
NAMES = list(SEQUENCES)

# What must never reach a terminal from untrusted text: ESC, other C0 controls but \t and \n, DEL,
# C1 controls, BIDI controls. (A CR is checked separately: the pty turns each \n into \r\n.)
_UNSAFE = re.compile("[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def wrapped(name: str, column: int = 0) -> str:
    """The sequence between markers, so the test can find it and see nothing was lost around it."""
    return f"<<{SEQUENCES[name][column]}>>"


def every(column: int = 0, names=NAMES) -> str:
    """All the sequences in one text, each labelled: `clipboard=<<...>> title=<<...>> ...`."""
    return " ".join(f"{name}={wrapped(name, column)}" for name in names)


RAW, SHOWN, IN_JSON = every(0), every(1), every(2)


def folded(shown: str) -> str:
    """A trace or error line folds whitespace runs to one space (one line, whatever the input)."""
    return " ".join(shown.split())


def assert_inert(data: bytes, allow_cr: bool = False) -> None:
    """Bytes that cannot act on a terminal: valid UTF-8 with none of the characters above."""
    decoded = data.decode("utf-8")
    found = _UNSAFE.findall(decoded)
    assert not found, f"raw control characters reached the output: {found!r} in {decoded!r}"
    if not allow_cr:
        assert re.search("\r(?!\n)", decoded) is None, f"a bare CR in {decoded!r}"


HANDLERS = f"""
RAW = {RAW!r}

def show():
    return RAW

def echo(cmd):
    return "ran " + cmd
"""

TOOLS_YAML = """
tools:
  - name: show
    description: Shows a test string.
    input_schema: {type: object}
    handler: h.py:show
  - name: echo
    description: Runs a command (asks first).
    input_schema: {type: object, properties: {cmd: {type: string}}, required: [cmd]}
    handler: h.py:echo
    confirm: true
"""


@pytest.fixture
def tools(tmp_path):
    (tmp_path / "h.py").write_text(HANDLERS)
    (tmp_path / "t.yaml").write_text(TOOLS_YAML)
    return str(tmp_path / "t.yaml")


def clipped(line: str, width: int = 200) -> str:
    """A trace clips its untrusted part to `width` characters, the last one an ellipsis."""
    return line if len(line) <= width else line[: width - 1] + "…"


def run_bytes(tmp_path, server, *args, stdin: bytes = b"") -> subprocess.CompletedProcess:
    """toolchat with stdout and stderr as pipes, read as bytes (no newline translation)."""
    env = clean_env(
        tmp_path, TOOLCHAT_API_KEY=TEST_KEY, **({"TOOLCHAT_BASE_URL": server.url} if server is not None else {})
    )
    proc = run_toolchat(list(args), env, tmp_path, stdin, 120, text=False)
    assert TEST_KEY.encode() not in proc.stdout + proc.stderr
    return proc


# ---------------------------------------------------------------------------------------------
# toolchat.text


@pytest.mark.parametrize("name", NAMES)
def test_neutralise_shows_every_sequence_as_its_visible_escape(name):
    raw, shown, _ = SEQUENCES[name]
    assert text.neutralise(raw) == shown
    assert text.is_safe(shown) and not text.is_safe(raw)
    assert text.neutralise(shown) == shown  # the escaped form is itself safe text


def test_neutralise_keeps_text_line_ends_and_tabs_and_marks_escapes():
    assert text.neutralise("a\tb\nc\r\nd") == "a\tb\nc\r\nd"
    assert text.neutralise("x\r\r\ny\r") == "x\\r\r\ny\\r"
    assert text.neutralise("é ü 日本 🎉 \u00a0") == "é ü 日本 🎉 \u00a0"  # printable non-ASCII stays
    assert text.neutralise("\x1b[2Jok\x9b", mark=lambda e: f"[{e}]") == "[\\x1b][2Jok[\\x9b]"


@pytest.mark.parametrize(
    "char, escaped",
    [
        ("\x1b", "\\x1b"),
        ("\r", "\\r"),
        ("\b", "\\b"),
        ("\x07", "\\a"),
        ("\x00", "\\0"),
        ("\x0b", "\\v"),
        ("\x0c", "\\f"),
        ("\x7f", "\\x7f"),
        ("\x85", "\\x85"),
        ("\x9b", "\\x9b"),
        ("\u202a", "\\u202a"),
        ("\u202e", "\\u202e"),
        ("\u2066", "\\u2066"),
        ("\u2069", "\\u2069"),
    ],
)
def test_escape_char(char, escaped):
    assert text.escape_char(char) == escaped
    assert text.neutralise(char) == escaped


def test_clip_never_exceeds_the_limit():
    assert text.clip("abcdef", 6) == "abcdef"
    assert text.clip("abcdefg", 6) == "abcde…"
    assert text.clip("abc", 1) == "…"
    assert text.clip("abc", 0) == ""


def test_one_line_neutralises_before_folding_so_tricks_stay_visible():
    assert text.one_line("rm -rf ./build\rls     ") == "rm -rf ./build\\rls"
    assert text.one_line("a\n\n b\t\tc\r\nd\x0ce") == "a b c d\\fe"
    assert text.one_line("\x1b]0;T\x07" + "x" * 300) == ("\\x1b]0;T\\a" + "x" * 300)[:199] + "…"
    assert text.one_line("x" * 300, None) == "x" * 300
    assert text.one_line({"a": 1}) == "{'a': 1}"


@pytest.mark.parametrize("name", NAMES)
def test_dumps_is_the_same_json_with_nothing_raw_that_acts_on_a_terminal(name):
    value = {"text": wrapped(name), "list": [wrapped(name)], wrapped(name): "key"}
    for options in ({}, {"indent": 2}, {"default": str}):
        dumped = text.dumps(value, **options)
        assert json.loads(dumped) == value
        assert_inert(dumped.encode("utf-8"))
        assert dumped == json.dumps(value, ensure_ascii=False, **options).replace("\x7f", "\\u007f").replace(
            "\x9b", "\\u009b"
        ).replace("\u202e", "\\u202e").replace("\u2066", "\\u2066").replace("\u2069", "\\u2069")


def test_dumps_escapes_line_separators_and_keeps_printable_text_unescaped():
    value = {"t": "a\u2028b\u2029c\x85d é 日本 🎉"}
    assert text.dumps(value) == '{"t": "a\\u2028b\\u2029c\\u0085d é 日本 🎉"}'
    assert text.dumps(value).splitlines() == [text.dumps(value)]
    assert encode({"type": "text", "text": "\x9b\u202e"}) == '{"type": "text", "text": "\\u009b\\u202e"}'


# ---------------------------------------------------------------------------------------------
# The plain view's streaming: a CR LF pair split across deltas stays a line end


def plain(deltas, raw=False) -> str:
    from toolchat.events import TextDelta

    out = io.StringIO()
    view = PlainView(out=out, err=io.StringIO(), raw=raw)
    for delta in deltas:
        view.handle(TextDelta(delta))
    view.finish()
    return out.getvalue()


@pytest.mark.parametrize(
    "deltas, shown",
    [
        (["a\r", "\nb"], "a\r\nb\n"),
        (["a\r", "b"], "a\\rb\n"),
        (["a\r"], "a\\r\n"),
        (["a\r", "\r", "\n"], "a\\r\r\n"),
        (["\r", "\r"], "\\r\\r\n"),
        (["a", "\r", "", "\n", "\x1b", "[2J"], "a\r\n\\x1b[2J\n"),
        (["line\r\n"], "line\r\n"),
    ],
)
def test_plain_view_neutralises_deltas_and_keeps_a_split_cr_lf(deltas, shown):
    assert plain(deltas) == shown


def test_plain_view_raw_writes_the_text_unchanged():
    assert plain(["a\r", "b\x1b[2J", "\u202e"], raw=True) == "a\rb\x1b[2J\u202e\n"


def test_a_held_cr_is_written_before_a_tool_trace():
    from toolchat.events import TextDelta, ToolCall

    out = io.StringIO()
    view = PlainView(out=out, err=out)
    view.handle(TextDelta("x\r"))
    view.handle(ToolCall("toolu_1", "show", {"which": "a\x1b"}))
    assert out.getvalue() == 'x\\r→ show {"which": "a\\u001b"}\n'


# ---------------------------------------------------------------------------------------------
# Piped stdout, --raw, --json, --stream-json: the answer text and the thinking


@pytest.mark.parametrize(
    "flag, stdout",
    [
        (None, f"{SHOWN}\n"),  # piped: neutralised, as the README promises
        ("--plain", f"{SHOWN}\n"),
        ("--raw", f"{RAW}\n"),  # byte-exact
    ],
)
def test_piped_answer_is_neutralised_unless_raw(tmp_path, mock, flag, stdout):
    # One-character deltas: every escape sequence, and the CR of every CR LF, split across deltas.
    server = mock(script={"turns": [{"thinking": RAW, "text": RAW, "delta_size": 1}]})
    proc = run_bytes(tmp_path, server, *[flag] * (flag is not None), "hi")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, stdout.encode(), b"")


@pytest.mark.parametrize("flag", ["--json", "--stream-json"])
def test_json_keeps_the_exact_text_and_thinking_with_nothing_raw(tmp_path, mock, flag):
    server = mock(script={"turns": [{"thinking": RAW, "text": RAW, "delta_size": 3}]})
    proc = run_bytes(tmp_path, server, flag, "hi")
    assert proc.returncode == 0 and proc.stderr == b""
    assert_inert(proc.stdout)
    lines = proc.stdout.split(b"\n")
    assert lines[-1] == b""
    events = [json.loads(line) for line in lines[:-1]]
    if flag == "--stream-json":
        assert "".join(e["text"] for e in events if e["type"] == "text") == RAW
        assert "".join(e["text"] for e in events if e["type"] == "thinking") == RAW
    result = events[-1]
    assert result["text"] == RAW
    assert result["messages"][-1]["content"][0] == {
        "type": "thinking",
        "thinking": RAW,
        "signature": result["messages"][-1]["content"][0]["signature"],
    }
    assert result["messages"][-1]["content"][1] == {"type": "text", "text": RAW}


def test_a_cr_lf_split_across_deltas_is_one_line_end_and_a_bare_cr_is_shown(tmp_path, mock):
    body = sse(*message_events({"type": "text", "text": "", "pieces": ["one\r", "\ntwo\r", "three\r"]}))
    server = mock(script={"turns": [{"raw": body}]})
    assert run_bytes(tmp_path, server, "hi").stdout == b"one\r\ntwo\\rthree\\r\n"
    assert run_bytes(tmp_path, server, "--raw", "hi").stdout == b"one\r\ntwo\rthree\r\n"


@pytest.mark.parametrize("other", ["--json", "--stream-json"])
def test_raw_with_json_output_is_a_usage_error(tmp_path, other):
    proc = run_bytes(tmp_path, None, "--raw", other, "hi")
    assert (proc.returncode, proc.stdout) == (2, b"")
    assert proc.stderr == f"toolchat: error: --raw and {other} cannot be used together; pick one\n".encode()


# ---------------------------------------------------------------------------------------------
# Tool input and output: stderr traces, --json


TOOL_SCRIPT = {
    "turns": [
        {"tool_calls": [{"name": "show", "input": {}}]},
        {"tool_calls": [{"name": "echo", "input": {"cmd": RAW}}]},
        {"text": "done"},
    ]
}


def test_tool_input_and_output_traces_are_neutralised(tmp_path, mock, tools):
    server = mock(script=TOOL_SCRIPT)
    proc = run_bytes(tmp_path, server, "-t", tools, "-y", "hi")
    assert (proc.returncode, proc.stdout) == (0, b"done\n")
    assert_inert(proc.stderr)
    lines = [re.sub(r"\(\d+ ms\)", "(N ms)", line) for line in proc.stderr.decode().split("\n")]
    # Traces are one line each, the input or output clipped to 200 characters.
    assert lines == [
        "→ show {}",
        f"← show ok (N ms): {clipped(folded(SHOWN))}",
        f'→ echo {clipped(folded(f"""{{"cmd": "{IN_JSON}"}}"""))}',
        f"← echo ok (N ms): {clipped(folded('ran ' + SHOWN))}",
        "",
    ]


@pytest.mark.slow  # over 2.5 s: the slow set, which .ci/run plays after the default run
def test_tool_input_and_output_are_exact_in_json(tmp_path, mock, tools):
    server = mock(script=TOOL_SCRIPT)
    for flag in ("--json", "--stream-json"):
        proc = run_bytes(tmp_path, server, "-t", tools, "-y", flag, "hi")
        assert proc.returncode == 0
        assert_inert(proc.stdout + proc.stderr)
        calls = json.loads(proc.stdout.splitlines()[-1])["tool_calls"]
        assert [(c["name"], c["input"], c["output"]) for c in calls] == [
            ("show", {}, RAW),
            ("echo", {"cmd": RAW}, "ran " + RAW),
        ]


# ---------------------------------------------------------------------------------------------
# Error messages and headers from the server


@pytest.mark.slow  # over 2.5 s: the slow set, which .ci/run plays after the default run
def test_an_error_event_message_is_neutralised_on_stderr_and_exact_in_json(tmp_path, mock):
    server = mock(script={"turns": [{"stream_error": {"type": "invalid_request_error", "message": RAW}}]})
    proc = run_bytes(tmp_path, server, "hi")
    assert (proc.returncode, proc.stdout) == (3, b"")
    assert proc.stderr == f"toolchat: error: invalid_request_error: {folded(SHOWN)}\n".encode()
    for flag in ("--json", "--stream-json"):
        doc = run_bytes(tmp_path, server, flag, "hi")
        assert doc.returncode == 3
        assert_inert(doc.stdout + doc.stderr)
        assert json.loads(doc.stdout.splitlines()[-1])["error"]["message"] == f"invalid_request_error: {RAW}"


# transport.py folds the line breaks in an HTTP error body's message itself, so a bare CR there is
# a space before toolchat.text sees it; the error event above covers the bare CR.
HTTP_NAMES = [name for name in NAMES if name != "bare_cr"]


def test_an_http_error_message_is_neutralised_on_stderr_and_exact_in_json(tmp_path, mock):
    raw = every(0, HTTP_NAMES)
    server = mock(script={"turns": [{"error": {"status": 400, "type": "invalid_request_error", "message": raw}}]})
    proc = run_bytes(tmp_path, server, "hi")
    assert (proc.returncode, proc.stdout) == (3, b"")
    assert proc.stderr == f"toolchat: error: HTTP 400 invalid_request_error: {folded(every(1, HTTP_NAMES))}\n".encode()
    doc = run_bytes(tmp_path, server, "--json", "hi")
    assert_inert(doc.stdout + doc.stderr)
    assert json.loads(doc.stdout)["error"]["message"] == f"HTTP 400 invalid_request_error: {raw}"


# Headers are Latin-1 on the wire: CR and LF would end the header line, and BIDI controls cannot be
# sent as themselves (their UTF-8 bytes arrive as Latin-1 text that holds C1 controls: also tried).
HEADER_NAMES = ["clipboard", "title", "clear", "hidden", "backspace", "c1_csi"]
HEADER = every(0, HEADER_NAMES) + " utf8=" + "\u202e".encode().decode("latin-1")


def header_server(mock):
    return mock(
        script={
            "turns": [
                {
                    "error": {"status": 400, "type": "invalid_request_error", "message": "bad"},
                    "headers": {"x-trace": "1", "request-id": HEADER},
                }
            ]
        }
    )


@pytest.mark.parametrize("flag", ["--json", "--stream-json"])
def test_a_request_id_header_is_exact_in_json_with_nothing_raw(tmp_path, mock, flag):
    proc = run_bytes(tmp_path, header_server(mock), flag, "hi")
    assert proc.returncode == 3
    assert_inert(proc.stdout + proc.stderr)
    error = json.loads(proc.stdout.splitlines()[-1])["error"]
    # The mock sends its own request-id header first; the HTTP client joins repeated headers.
    assert re.fullmatch("req_mock_[0-9a-f]{24}, (.*)", error["request_id"], re.S).group(1) == HEADER
    assert proc.stderr == b"toolchat: error: HTTP 400 invalid_request_error: bad\n"


def test_a_request_id_header_in_the_debug_line_is_neutralised(tmp_path, mock):
    proc = run_bytes(tmp_path, header_server(mock), "--debug", "hi")
    assert proc.returncode == 3
    assert_inert(proc.stderr)


def test_the_debug_traceback_shows_the_error_message_escaped(tmp_path, mock):
    server = mock(script={"turns": [{"stream_error": {"type": "invalid_request_error", "message": RAW}}]})
    proc = run_bytes(tmp_path, server, "--debug", "hi")
    assert proc.returncode == 3
    assert_inert(proc.stderr)
    lines = proc.stderr.decode().splitlines()
    assert f"toolchat: error: invalid_request_error: {folded(SHOWN)}" in lines
    # The traceback follows; its last line is the exception with its message, escaped, not folded.
    assert lines[-1] == f"toolchat.errors.APIError: invalid_request_error: {SHOWN}"


# ---------------------------------------------------------------------------------------------
# Other outputs: --dry-run, tools list (--json), tools run


def test_dry_run_json_is_exact_with_nothing_raw(tmp_path):
    messages = tmp_path / "m.json"
    messages.write_text(json.dumps([{"role": "user", "content": RAW}]))
    proc = run_bytes(tmp_path, None, "--messages", str(messages), "--dry-run", "--no-cache")
    assert proc.returncode == 0 and proc.stderr == b""
    assert_inert(proc.stdout)
    assert json.loads(proc.stdout)["messages"] == [{"role": "user", "content": RAW}]


def test_tools_list_and_tools_run_are_neutralised(tmp_path, tools):
    (tmp_path / "d.yaml").write_text(
        f"tools:\n  - name: show\n    description: {json.dumps(RAW)}\n"
        "    input_schema: {type: object}\n    handler: h.py:show\n"
    )
    listed = run_bytes(tmp_path, None, "tools", "list", "-t", "d.yaml", "--json")
    assert listed.returncode == 0, listed.stderr
    assert_inert(listed.stdout)
    assert json.loads(listed.stdout)[0]["description"] == RAW
    plain_list = run_bytes(tmp_path, None, "tools", "list", "-t", "d.yaml")
    assert plain_list.stdout == f"show\t{clipped(folded(SHOWN), 100)}\n".encode()
    ran = run_bytes(tmp_path, None, "tools", "run", "show", "-t", tools)
    assert (ran.returncode, ran.stdout, ran.stderr) == (0, f"{SHOWN}\n".encode(), b"")


# ---------------------------------------------------------------------------------------------
# Plain output on a real terminal: the screen as pyte shows it, the raw bytes the pty received


def in_pty(tmp_path, server, *args, answers=(), cols=600, rows=50, timeout=90.0):
    """Run toolchat on a pty (stdin, stdout, stderr, controlling tty); type `answers`, one per
    confirm question. Return (exit code, raw bytes, pyte screen)."""
    env = clean_env(tmp_path, TERM="xterm-256color", TOOLCHAT_BASE_URL=server.url, TOOLCHAT_API_KEY=TEST_KEY)
    for name in ("COLUMNS", "LINES"):
        env.pop(name, None)
    run = run_on_pty(
        [sys.executable, "-m", "toolchat", *args], env, tmp_path, cols=cols, rows=rows, answers=answers, timeout=timeout
    )
    code, raw = run.code, run.raw
    screen = pyte.HistoryScreen(cols, rows, history=10_000)
    pyte.ByteStream(screen).feed(raw)
    assert TEST_KEY.encode() not in raw
    return code, raw, screen


def screen_text(screen) -> list[str]:
    cols = screen.columns
    lines = ["".join(line[x].data for x in range(cols)).rstrip() for line in screen.history.top]
    lines += [line.rstrip() for line in screen.display]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def test_plain_on_a_terminal_shows_every_sequence_escaped(tmp_path, mock, tools):
    server = mock(script={"turns": [*TOOL_SCRIPT["turns"][:2], {"text": RAW, "delta_size": 1}]})
    code, raw, screen = in_pty(tmp_path, server, "--plain", "-t", tools, "hi", answers=["n"])
    assert code == 0
    # Nothing of the untrusted text acted: no ESC, C1, BIDI or other control, no bare CR (the pty
    # turns every \n into \r\n), and toolchat itself writes no escape codes with --plain.
    assert_inert(raw.replace(b"\r\n", b"\n"))
    assert (screen.title, screen.icon_name) == ("", "")
    lines = [re.sub(r"\(\d+ ms\)", "(N ms)", line) for line in screen_text(screen)]
    lines[-1] = re.sub(
        r"\d+ in / \d+ out tokens · (\$\d+\.\d{4} · )?\d+\.\d s$", "N in / N out tokens · T s", lines[-1]
    )
    assert lines == [
        "→ show {}",
        f"← show ok (N ms): {clipped(folded(SHOWN))}",
        f'→ echo {clipped(folded(f"""{{"cmd": "{IN_JSON}"}}"""))}',
        # The confirm prompt shows the input exactly: whitespace kept, controls escaped.
        f'Run echo {{"cmd": "{IN_JSON}"}}? [y]es/[n]o/[a]lways: n',
        "← echo error (N ms): not run: the user declined to run 'echo'",
        SHOWN,
        "claude-sonnet-4-20250514 · 3 turns · 2 tools · N in / N out tokens · T s",
    ], "\n".join(lines)


def test_an_error_line_on_a_terminal_shows_the_message_escaped(tmp_path, mock):
    server = mock(script={"turns": [{"stream_error": {"type": "invalid_request_error", "message": RAW}}]})
    code, raw, screen = in_pty(tmp_path, server, "--plain", "hi")
    assert code == 3
    assert_inert(raw.replace(b"\r\n", b"\n"))
    assert (screen.title, screen.icon_name) == ("", "")
    lines = screen_text(screen)
    lines[0] = re.sub(r"\d+ in / \d+ out tokens · (\$\d+\.\d{4} · )?\d+\.\d s$", "N in / N out tokens · T s", lines[0])
    assert lines == [
        "claude-sonnet-4-20250514 · 1 turn · 0 tools · N in / N out tokens · T s",
        f"toolchat: error: invalid_request_error: {folded(SHOWN)}",
    ]
