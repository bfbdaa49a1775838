"""Terminal safety of the live view: nothing a model or a tool sends can drive the terminal.

Each hostile sequence goes into every place the live view shows untrusted text (the answer's
paragraphs, a code block and a table, thinking, a tool's name, input and output), toolchat runs in
a real pseudo-terminal, and the bytes it wrote are read back through a terminal emulator (pyte):
the screen shows the visible escape, the window title is untouched, and the raw bytes hold no
escape sequence, C1 control, bare CR or BIDI control but toolchat's own SGR and cursor codes.
"""

from __future__ import annotations

import re

import pyte
import pytest

from test_live import in_terminal

HANDLERS = """def echo(s):
    return "OUT1 " + s
"""

TOOLS_YAML = """
tools:
  - name: echo
    input_schema: {type: object, properties: {s: {type: string}}, required: [s]}
    handler: h.py:echo
"""

# (id, the hostile text, how the live view shows it, how it shows inside JSON (the tool input))
PAYLOADS = [
    ("clipboard", "\x1b]52;c;SGVsbG8=\x07", r"\x1b]52;c;SGVsbG8=\a", r"\u001b]52;c;SGVsbG8=\u0007"),
    ("title", "\x1b]0;TITLE\x07", r"\x1b]0;TITLE\a", r"\u001b]0;TITLE\u0007"),
    ("clear", "\x1b[2J", r"\x1b[2J", r"\u001b[2J"),
    ("hide", "\x1b[8m", r"\x1b[8m", r"\u001b[8m"),
    ("bare-cr", "rm -rf ./build\rls     ", r"rm -rf ./build\rls", r"rm -rf ./build\rls "),
    ("backspace", "abc\b\b\bxyz", r"abc\b\b\bxyz", r"abc\b\b\bxyz"),
    ("rlo", "abc\u202edef", r"abc\u202edef", r"abc\u202edef"),
    ("lri", "abc\u2066def", r"abc\u2066def", r"abc\u2066def"),
    ("c1-csi", "\x9b31mred", r"\x9b31mred", r"\x9b31mred"),
]

# toolchat's own codes: SGR styles, the redraw (to line start, N lines up, erase below), the cursor.
_OWN = re.compile(r"\x1b\[[0-9;]*m|\r\x1b\[\d+A\x1b\[J|\x1b\[\?25[lh]|\r\n")
_FORBIDDEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def script(payload: str) -> dict:
    answer = (
        f"Answer ANS1 {payload} END1\n\n"
        f"```python\nCODE1 = '{payload}'\n```\n\n"
        f"```\nPLAIN1 {payload}\n```\n\n"
        f"| key | value |\n|-----|-------|\n| TAB1 | {payload} |\n"
    )
    return {
        "turns": [
            {
                "thinking": f"Thinking THK1 {payload} END",
                "text": answer,
                "tool_calls": [{"name": "echo", "input": {"s": payload}}],
            },
            {"text": "Done END2."},
        ]
    }


@pytest.mark.parametrize("payload, visible, in_json", [p[1:] for p in PAYLOADS], ids=[p[0] for p in PAYLOADS])
def test_hostile_text_is_shown_escaped_and_never_reaches_the_terminal(tmp_path, mock, payload, visible, in_json):
    (tmp_path / "h.py").write_text(HANDLERS)
    (tmp_path / "t.yaml").write_text(TOOLS_YAML)
    seen = in_terminal(tmp_path, mock(script(payload)), "-t", str(tmp_path / "t.yaml"), "hi")
    assert seen.code == 0, seen

    def line_with(marker: str) -> str:
        found = [line for line in seen.lines if marker in line]
        assert len(found) == 1, (marker, seen)
        return found[0]

    # The screen shows each place's text with the visible escape, in full.
    assert f"Answer ANS1 {visible}" in line_with("ANS1"), seen
    assert f"CODE1 = '{visible}" in line_with("CODE1"), seen
    assert f"PLAIN1 {visible}" in line_with("PLAIN1"), seen
    assert f"TAB1 │ {visible}" in line_with("TAB1"), seen
    assert f"Thinking THK1 {visible}" in line_with("THK1") and line_with("THK1").endswith(" END"), seen
    assert re.fullmatch(r'✓ echo \{"s": "' + re.escape(in_json) + r'"\}  \d+ ms', line_with("✓ echo")), seen
    assert line_with("OUT1") == f"  ⎿ OUT1 {visible}", seen
    assert "Done END2." in seen.lines

    # The emulator's state: no title or icon name set, nothing hidden or cleared.
    screen = pyte.HistoryScreen(80, 24, history=100_000)
    pyte.ByteStream(screen).feed(seen.raw)
    assert screen.title == "" and screen.icon_name == ""

    # The bytes: once toolchat's own codes are taken out, no control character is left at all.
    text = seen.raw.decode("utf-8")
    rest = _OWN.sub("", text)
    assert _FORBIDDEN.findall(rest) == [], rest
    # Where colour is on, an escape is dimmed in the answer.
    first = re.match(r"\\(x[0-9a-f]{2}|u[0-9a-f]{4}|[rbae])", visible[visible.index("\\") :]).group()
    assert f"\x1b[2m{first}" in text


def test_hostile_tool_name_from_the_model_is_shown_escaped(tmp_path, mock):
    """A tool name is the model's text too (an unknown tool's error line names it)."""
    (tmp_path / "h.py").write_text(HANDLERS)
    (tmp_path / "t.yaml").write_text(TOOLS_YAML)
    server = mock(
        {
            "turns": [
                {"text": "Calling.", "tool_calls": [{"name": "ev\x1b]0;TITLE\x07il", "input": {}}]},
                {"text": "Done END2."},
            ]
        }
    )
    seen = in_terminal(tmp_path, server, "-t", str(tmp_path / "t.yaml"), "hi")
    assert seen.code == 0, seen
    assert any(re.fullmatch(r"✗ ev\\x1b\]0;TITLE\\ail \{\}  \d+ ms", line) for line in seen.lines), seen
    screen = pyte.HistoryScreen(80, 24, history=100_000)
    pyte.ByteStream(screen).feed(seen.raw)
    assert screen.title == ""
    assert _FORBIDDEN.findall(_OWN.sub("", seen.raw.decode("utf-8"))) == []


def test_a_model_name_with_escapes_in_the_summary_is_shown_escaped(tmp_path, mock):
    """The summary names the model: a name with escape codes (from a config file, a script's
    variable) is shown escaped too."""
    server = mock({"turns": [{"text": "Hello END1."}]})
    seen = in_terminal(tmp_path, server, "-m", "claude\x1b]0;TITLE\x07\u202e-x", "hi")
    assert seen.code == 0, seen
    assert seen.lines[-1].startswith(r"claude\x1b]0;TITLE\a\u202e-x · 1 turn · 0 tools · "), seen
    screen = pyte.HistoryScreen(80, 24, history=100_000)
    pyte.ByteStream(screen).feed(seen.raw)
    assert screen.title == ""
    assert _FORBIDDEN.findall(_OWN.sub("", seen.raw.decode("utf-8"))) == []
