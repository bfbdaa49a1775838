"""The live terminal view, as a person sees it: toolchat in a real pseudo-terminal against the mock
server, its output played into a terminal emulator (pyte) with a scrollback, and the screen read back.

Also the pure part underneath: how a markdown stream is cut into blocks.
"""

from __future__ import annotations

import collections
import re
import subprocess
import sys
import time
from dataclasses import dataclass

import pyte
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import TEST_KEY, clean_env
from ptyrun import run_on_pty
from toolchat.views.markdown import Block, LineBlocks, MarkdownBlocks, Theme, render

TOOLS_YAML = """
tools:
  - name: calc
    input_schema: {type: object, properties: {a: {type: number}, b: {type: number}}, required: [a, b]}
    handler: h.py:add
  - name: slow
    input_schema: {type: object, properties: {seconds: {type: number}, tag: {type: string}}}
    handler: h.py:slow
  - name: boom
    input_schema: {type: object}
    handler: h.py:boom
  - name: hang
    input_schema: {type: object}
    handler: h.py:hang
  - name: guarded
    input_schema: {type: object}
    handler: h.py:guarded
    confirm: true
"""

HANDLERS = """import time

def add(a, b):
    return a + b

def slow(seconds, tag):
    time.sleep(seconds)
    return "slept " + tag

def boom():
    raise ValueError("it broke")

def hang():
    time.sleep(60)

def guarded():
    return "ran"
"""

# Colour in SGR parameters: 30-38/40-48 (8, 256 and true colour), 90-97/100-107 (bright).
_SGR = re.compile(rb"\x1b\[([0-9;]*)m")
_COLOR_CODES = {str(n) for n in [*range(30, 39), *range(40, 49), *range(90, 98), *range(100, 108)]}


@pytest.fixture
def tools(tmp_path):
    (tmp_path / "h.py").write_text(HANDLERS)
    (tmp_path / "t.yaml").write_text(TOOLS_YAML)
    return str(tmp_path / "t.yaml")


@dataclass
class Seen:
    """What a terminal showed: every line that scrolled off the top, then the screen."""

    code: int
    raw: bytes  # everything written to the terminal
    lines: list[str]
    stdout: bytes = b""  # when stdout was a pipe

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def count(self, needle: str) -> int:
        return sum(line.count(needle) for line in self.lines)

    def __repr__(self) -> str:
        return f"Seen(code={self.code}, screen=\n{self.text}\n)"


def in_terminal(
    tmp_path, server, *args, cols=80, rows=24, answers=(), interrupt_on=None, env=None, pipe_stdout=False, timeout=20.0
) -> Seen:
    """Run toolchat with a pty as its terminal (stdin, stdout, stderr, controlling tty).

    `answers` are typed, one per approval question; `interrupt_on` types Ctrl-C once those bytes
    have been shown. The output goes through pyte, so cursor moves and erasures count as they would.
    """
    environment = clean_env(
        tmp_path,
        **{"TERM": "xterm-256color", "TOOLCHAT_BASE_URL": server.url, "TOOLCHAT_API_KEY": TEST_KEY, **(env or {})},
    )
    for name in ("COLUMNS", "LINES"):
        environment.pop(name, None)
    run = run_on_pty(
        [sys.executable, "-m", "toolchat", *args],
        environment,
        tmp_path,
        cols=cols,
        rows=rows,
        answers=answers,
        interrupt_on=interrupt_on,
        pipe_stdout=pipe_stdout,
        timeout=timeout,
    )
    return Seen(run.code, run.raw, screen_lines(run.raw, cols, rows), run.piped)


def screen_lines(raw: bytes, cols: int, rows: int) -> list[str]:
    """The lines a person can see and scroll back to, trailing blank lines dropped."""
    screen = pyte.HistoryScreen(cols, rows, history=100_000)
    pyte.ByteStream(screen).feed(raw)
    lines = ["".join(line[x].data for x in range(cols)).rstrip() for line in screen.history.top]
    lines += [line.rstrip() for line in screen.display]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def colors_used(raw: bytes) -> set[str]:
    return {
        param for match in _SGR.finditer(raw) for param in match.group(1).decode().split(";") if param in _COLOR_CODES
    }


def long_answer() -> tuple[str, list[str]]:
    """A markdown answer several screens long, and the markers each of which must show once."""
    parts, markers = ["# Quarterly report", ""], []
    for i in range(12):
        parts += [
            f"Paragraph {i} has **bold words**, some *emphasis* and `inline code`, long enough "
            f"to wrap on a narrow terminal, ending with P{i}END.",
            "",
        ]
        markers.append(f"P{i}END")
    parts.append("```python")
    for i in range(100):  # a code block taller than the screen
        parts.append(f"value_{i} = compute({i})  # C{i}")
        markers.append(f"C{i}")
    parts += ["```", "", "## Items", ""]
    for i in range(40):  # a list taller than the screen
        parts.append(f"- list item L{i}")
        markers.append(f"L{i}")
    parts += ["", "| name | square |", "|------|--------|"]
    for i in range(40):  # and a table
        parts.append(f"| row T{i} | {i * i} |")
        markers.append(f"T{i}")
    parts += ["", "1. first step S1", "2. second step S2", "", "The end ZZZ."]
    markers += ["S1", "S2", "ZZZ"]
    return "\n".join(parts) + "\n", markers


# ---------------------------------------------------------------------------------------------
# What a person sees


@pytest.mark.parametrize("cols", [80, 40])
def test_long_markdown_answer_shows_every_line_exactly_once(tmp_path, mock, cols):
    text, markers = long_answer()
    # Small slow deltas: the unfinished block is redrawn many times while it grows.
    server = mock({"turns": [{"text": text, "delta_size": 24, "delay": 0.002}]})
    seen = in_terminal(tmp_path, server, "hi", cols=cols)
    assert seen.code == 0, seen
    counts = collections.Counter(re.findall(r"\b(?:P\d+END|C\d+|L\d+|T\d+|S\d|ZZZ)\b", seen.text))
    assert {m: counts[m] for m in markers if counts[m] != 1} == {}, seen
    assert "…" not in seen.text and "**" not in seen.text and "```" not in seen.text
    assert "#" not in seen.text.replace("# C", "")  # headings rendered (code comments aside)
    assert any(line.strip() == "Quarterly report" for line in seen.lines)
    assert seen.count("• list item L") == 40 and seen.count("value_") == 100
    assert " 1. first step S1" in seen.lines and " 2. second step S2" in seen.lines
    assert any(re.fullmatch(r"row T7 +│ +49", line) for line in seen.lines)
    # In order, as written.
    positions = [
        re.search(rf"\b{m}\b", seen.text).start()
        for m in ("P0END", "P11END", "C0", "C99", "L0", "L39", "T0", "T39", "ZZZ")
    ]
    assert positions == sorted(positions)
    # The summary comes last, after a blank line (wrapped by the terminal when it is narrow).
    assert re.fullmatch(
        r"claude-sonnet-4-20250514 · 1 turn · 0 tools · 1 in / 1,176 out tokens · \$0\.0176 ?· \d+\.\d s",
        "".join(seen.lines[len(seen.lines) - seen.lines[::-1].index("") :]),
    ), seen


def test_markdown_is_styled_and_code_is_highlighted(tmp_path, mock):
    text = "Some **bold** text.\n\n```python\ndef f(x):\n    return 'MARK'\n```\n"
    seen = in_terminal(tmp_path, mock({"turns": [{"text": text}]}), "hi")
    assert seen.code == 0, seen
    assert "Some bold text." in seen.lines and "def f(x):" in seen.text
    assert b"\x1b[1mbold" in seen.raw  # bold
    assert "38" in colors_used(seen.raw)  # syntax colours (256-colour palette)


def test_parallel_tool_turn_shows_a_spinner_per_call_then_each_result(tmp_path, mock, tools):
    server = mock(
        {
            "turns": [
                {
                    "text": "Running **three** tools.",
                    "tool_calls": [
                        {"name": "slow", "input": {"seconds": 0.6, "tag": "A"}},
                        {"name": "slow", "input": {"seconds": 0.9, "tag": "B"}},
                        {"name": "boom"},
                    ],
                },
                {"text": "Done: {results}"},
            ]
        }
    )
    seen = in_terminal(tmp_path, server, "-t", tools, "hi")
    assert seen.code == 0, seen
    # While they ran: one spinner row per running call, with its elapsed time, in one frame.
    assert re.search(
        rb'slow\x1b\[0m\x1b\[36m {"seconds": 0.6, "tag": "A"}\x1b\[0m\x1b\[2m  \d+\.\d s'
        rb'\x1b\[0m\r\n[^\r]*slow\x1b\[0m\x1b\[36m {"seconds": 0.9, "tag": "B"}',
        seen.raw,
    )
    lines = seen.lines
    start = lines.index("Running three tools.")
    results = lines[start + 2 : start + 8]
    assert re.fullmatch(r"✗ boom \{\}  \d+ ms", results[0]) and results[1] == "  ⎿ error: ValueError: it broke"
    assert re.fullmatch(r'✓ slow \{"seconds": 0.6, "tag": "A"\}  \d{3,} ms', results[2]), results
    assert results[3] == "  ⎿ slept A"
    assert re.fullmatch(r'✓ slow \{"seconds": 0.9, "tag": "B"\}  \d{3,} ms', results[4]), results
    assert results[5] == "  ⎿ slept B"
    assert "Done: slow: slept A" in seen.text and seen.count("⠋") + seen.count("⠙") == 0  # spinners gone
    # The summary (with its cost it may wrap on 80 columns) ends the screen.
    assert any(line.startswith("claude-sonnet-4-20250514 · 2 turns · 3 tools · ") for line in lines[-2:])


@pytest.mark.parametrize("answer", ["y", "n"])
def test_approval_pauses_the_display_for_the_question(tmp_path, mock, tools, answer):
    server = mock(
        {
            "turns": [
                {"text": "Let me run the guarded tool.", "tool_calls": [{"name": "guarded"}]},
                {"text": "Then: {results}"},
            ]
        }
    )
    seen = in_terminal(tmp_path, server, "-t", tools, "hi", answers=[answer])
    assert seen.code == 0, seen
    at = seen.lines.index(f"Run guarded {{}}? [y]es/[n]o/[a]lways: {answer}")
    assert seen.lines[at - 2 : at] == ["Let me run the guarded tool.", ""]  # nothing left of the spinner
    if answer == "y":
        assert re.fullmatch(r"✓ guarded \{\}  \d+ ms", seen.lines[at + 1]) and seen.lines[at + 2] == "  ⎿ ran"
        assert "Then: guarded: ran" in seen.lines
    else:  # an is_error result, and the loop goes on
        assert seen.lines[at + 1 : at + 3] == [  # refused: it never ran
            "✗ guarded {}  0 ms",
            "  ⎿ error: not run: the user declined to run 'guarded'",
        ]
        assert "Then: guarded: error: not run: the user declined to run 'guarded'" in seen.lines
    assert seen.count("[a]lways") == 1


def test_ctrl_c_mid_stream_keeps_what_was_shown_and_exits_130(tmp_path, mock):
    words = " ".join(f"w{i}" for i in range(400))
    text = f"# Title\n\nFirst paragraph MARK1.\n\n- item one\n- item MARK2 then {words} NEVER\n"
    server = mock({"turns": [{"text": text, "delay": 0.02}]})
    seen = in_terminal(tmp_path, server, "hi", interrupt_on=b"w3 ")
    assert seen.code == 130, seen
    assert seen.lines[-1] == "toolchat: interrupted"
    assert seen.count("MARK1") == 1 and seen.count("• item MARK2 then w0 w1 w2 w3") == 1
    assert seen.count("• item one") == 1 and "NEVER" not in seen.text
    assert "tokens" not in seen.text  # no summary: the one line says it was interrupted
    assert seen.raw.rstrip().endswith(b"toolchat: interrupted")
    assert b"\x1b[?25h" in seen.raw  # the cursor is back


def test_ctrl_c_while_a_tool_runs_stops_waiting_and_exits_130(tmp_path, mock, tools):
    server = mock({"turns": [{"text": "Hanging.", "tool_calls": [{"name": "hang"}]}]})
    started = time.monotonic()
    seen = in_terminal(tmp_path, server, "-t", tools, "hi", interrupt_on=b"hang")
    assert time.monotonic() - started < 30  # not the tool's 60 s
    assert seen.code == 130, seen
    assert seen.lines[-1] == "toolchat: interrupted"
    assert re.fullmatch(r"◌ hang \{\}  not finished \((\d+ ms|\d+\.\d s)\)", seen.lines[-2]), seen


def test_thinking_is_dimmed_and_redacted_thinking_is_one_line(tmp_path, mock):
    server = mock(
        {
            "turns": [
                {
                    "thinking": "Deep thought LINE1.\n\nSecond THINK2 line.",
                    "redacted_thinking": True,
                    "text": "The answer.",
                }
            ]
        }
    )
    seen = in_terminal(tmp_path, server, "hi")
    assert seen.code == 0, seen
    assert seen.lines[:5] == ["Deep thought LINE1.", "Second THINK2 line.", "✻ thinking (redacted)", "", "The answer."]
    assert b"\x1b[2;3mDeep thought LINE1." in seen.raw  # dim italic


def test_quiet_shows_the_answer_only(tmp_path, mock, tools):
    server = mock(
        {
            "turns": [
                {"thinking": "hmm", "text": "Checking.", "tool_calls": [{"name": "calc", "input": {"a": 1, "b": 2}}]},
                {"text": "It is **{results}**."},
            ]
        }
    )
    seen = in_terminal(tmp_path, server, "-q", "-t", tools, "hi")
    assert seen.code == 0, seen
    assert seen.lines == ["Checking.", "", "It is calc: 3."]


@pytest.mark.parametrize("how", [("--color", "never"), ("NO_COLOR",)])
def test_no_color_keeps_markdown_structure(tmp_path, mock, how):
    text = "# Head\n\n- **bold** item\n\n```python\nx = 1\n```\n"
    args, env = (list(how), None) if how[0] == "--color" else ([], {"NO_COLOR": "1"})
    seen = in_terminal(tmp_path, mock({"turns": [{"text": text}]}), *args, "hi", env=env)
    assert seen.code == 0, seen
    assert colors_used(seen.raw) == set()
    assert "• bold item" in seen.text and "x = 1" in seen.text and "**" not in seen.text
    assert b"\x1b[1m" in seen.raw  # bold is not colour


def test_plain_flag_on_a_terminal_prints_the_text_as_it_came(tmp_path, mock, tools):
    server = mock(
        {
            "turns": [
                {"text": "Some **bold**.", "tool_calls": [{"name": "calc", "input": {"a": 1, "b": 2}}]},
                {"text": "# {results}"},
            ]
        }
    )
    seen = in_terminal(tmp_path, server, "--plain", "-t", tools, "hi")
    assert seen.code == 0, seen
    assert seen.lines[:5] == ["Some **bold**.", '→ calc {"a": 1, "b": 2}', seen.lines[2], "", "# calc: 3"]
    assert re.fullmatch(r"← calc ok \(\d+ ms\): 3", seen.lines[2])
    assert b"\x1b[?25l" not in seen.raw  # nothing redrawn


def test_piped_stdout_is_plain_text_even_with_color_always(tmp_path, mock, tools):
    server = mock(
        {
            "turns": [
                {
                    "text": "Some **bold**.\n\n```py\nx = 1\n```",
                    "tool_calls": [{"name": "calc", "input": {"a": 1, "b": 2}}],
                },
                {"text": "Got {results}."},
            ]
        }
    )
    seen = in_terminal(tmp_path, server, "--color", "always", "-t", tools, "hi", pipe_stdout=True)
    assert seen.code == 0, seen
    assert seen.stdout == b"Some **bold**.\n\n```py\nx = 1\n```\n\nGot calc: 3.\n"
    # The terminal on stderr still gets the live tool activity and the summary.
    assert re.fullmatch(r'✓ calc \{"a": 1, "b": 2\}  \d+ ms', seen.lines[0]) and seen.lines[1] == "  ⎿ 3"
    assert any(line.startswith("claude-sonnet-4-20250514 · 2 turns · 1 tool · ") for line in seen.lines[-2:])


def test_a_dumb_terminal_gets_finished_blocks_without_escape_codes(tmp_path, mock, tools):
    server = mock(
        {
            "turns": [
                {"text": "# Head\n\nSome **bold**.", "tool_calls": [{"name": "calc", "input": {"a": 1, "b": 2}}]},
                {"text": "Done."},
            ]
        }
    )
    seen = in_terminal(tmp_path, server, "-t", tools, "hi", env={"TERM": "dumb"})
    assert seen.code == 0, seen
    assert b"\x1b" not in seen.raw
    assert seen.lines[:6] == ["Head", "", "Some bold.", "", seen.lines[4], "  ⎿ 3"]
    assert seen.lines[6:8] == ["", "Done."]


def test_help_does_not_import_the_live_view(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "toolchat", "--help"],
        capture_output=True,
        text=True,
        env=clean_env(tmp_path),
        stdin=subprocess.DEVNULL,
    )
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert proc.returncode == 0
    assert not {"rich.markdown", "rich.live", "pygments", "toolchat.views.live", "toolchat.views.markdown"} & imported


# ---------------------------------------------------------------------------------------------
# Cutting the stream into blocks


def blocks_of(text: str, step: int | None = None, chunk_lines: int = 16) -> list[Block]:
    cutter = MarkdownBlocks(chunk_lines=chunk_lines)
    pieces = [text] if step is None else [text[i : i + step] for i in range(0, len(text), step)]
    out = [block for piece in pieces for block in cutter.feed(piece)]
    return out + cutter.close()


def test_blocks_end_at_blank_lines_headings_and_closing_fences():
    text = (
        "# Title\nIntro line one\nline two\n\n```py\na = 1\n\nb = 2\n```\nAfter.\n\n\n| a |\n|---|\n| 1 |\nnot a row\n"
    )
    assert blocks_of(text) == [
        Block("markdown", "# Title"),
        Block("markdown", "Intro line one\nline two"),
        Block("code", "a = 1\n\nb = 2", lexer="py"),
        Block("markdown", "After."),
        Block("markdown", "| a |\n|---|\n| 1 |"),
        Block("markdown", "not a row"),
    ]


@pytest.mark.parametrize("step", [1, 2, 7, 50])
def test_blocks_do_not_depend_on_how_the_stream_was_split(step):
    text, _ = long_answer()
    assert blocks_of(text, step) == blocks_of(text)


def test_a_long_code_block_goes_out_in_chunks_that_add_up_to_it():
    code = [f"line {i}" for i in range(50)]
    blocks = blocks_of("```js\n" + "\n".join(code) + "\n```\n", chunk_lines=16)
    assert [(len(b.text.split("\n")), b.joined) for b in blocks] == [(16, False), (16, True), (16, True), (2, True)]
    assert "\n".join(b.text for b in blocks).split("\n") == code
    assert {b.lexer for b in blocks} == {"js"}


def test_a_long_list_goes_out_at_its_items_and_an_indented_line_continues_an_item():
    items = [f"- item {i}" for i in range(10)]
    blocks = blocks_of("\n".join(items) + "\n", chunk_lines=4)
    assert [b.text.count("\n") + 1 for b in blocks] == [4, 4, 2]
    assert [b.joined for b in blocks] == [False, True, True]
    assert blocks_of("- a\n\n  still a\n- b\n\nafter\n") == [
        Block("markdown", "- a\n\n  still a\n- b"),
        Block("markdown", "after"),
    ]


def test_a_fence_inside_a_list_item_does_not_end_the_list():
    text = "- step:\n\n  ```sh\n  ls\n\n  pwd\n  ```\n- next\n"
    assert blocks_of(text) == [Block("markdown", text.rstrip("\n"))]


def test_the_unfinished_block_is_the_tail():
    cutter = MarkdownBlocks()
    assert cutter.feed("Para one.\n\nPara ") == [Block("markdown", "Para one.")]
    assert cutter.tail() == Block("markdown", "Para ")
    assert cutter.feed("two\n```py\nx = ") == [Block("markdown", "Para two")]  # a fence ends it
    assert cutter.tail() == Block("code", "x = ", lexer="py")
    assert cutter.close() == [Block("code", "x = ", lexer="py")]


def test_crlf_line_ends_are_line_ends_and_a_bare_cr_is_kept():
    assert blocks_of("a\r\nb\r\n\r\nc\rd\r\n") == [Block("markdown", "a\nb"), Block("markdown", "c\rd")]
    cutter = MarkdownBlocks()
    cutter.feed("x\r")
    assert cutter.tail() == Block("markdown", "x")
    assert shown(Block("markdown", "c\rd"), 20) == [r"c\rd"]


def test_thinking_lines_are_compact():
    cutter = LineBlocks()
    assert cutter.feed("one\n\n\n  two\nthr") == [Block("text", "one", joined=True), Block("text", "two", joined=True)]
    assert cutter.tail() == Block("text", "thr", joined=True)
    assert cutter.close() == [Block("text", "thr", joined=True)]


# ---------------------------------------------------------------------------------------------
# Rendering a block

_ESCAPES = re.compile(r"\x1b\[[0-9;]*m")


def shown(block: Block, width: int, color: bool = False) -> list[str]:
    """The lines as seen: no styles, no trailing blanks (rich keeps a space where a line wrapped)."""
    return [_ESCAPES.sub("", line).rstrip() for line in render(block, width, Theme(color=color))]


def test_markdown_renders_without_its_markers():
    text = (
        "## A *fine* heading\nSome **bold**, *italic*, ***both***, ~~struck~~, `code`, \\*stars\\*, "
        "snake_case_name, [a link](https://example.com) &amp; <https://auto.example>."
    )
    assert shown(Block("markdown", text), 80) == [
        "A fine heading",
        "",
        "Some bold, italic, both, struck, code, *stars*, snake_case_name, a link",
        "(https://example.com) & https://auto.example.",
    ]


def test_lists_quotes_rules_and_tables():
    # A loose list (a blank line inside it): blank lines between its items and their blocks.
    text = "- one\n- two\n  1. sub\n  2. sub2\n\n  more two\n- three"
    assert shown(Block("markdown", text), 40) == [
        " • one",
        "",
        " • two",
        "",
        "    1. sub",
        "    2. sub2",
        "",
        "   more two",
        "",
        " • three",
    ]
    assert shown(Block("markdown", "- a\n- b\n  - c\n    - d"), 40) == [" • a", " • b", "    ◦ c", "       ▪ d"]
    assert shown(Block("markdown", "> quoted **text**\n> more"), 40) == ["▌ quoted text more"]
    assert shown(Block("markdown", "---"), 10) == ["─" * 10]
    table = "| name | n |\n|---|--:|\n| alpha | 1 |\n| b | 22 |"
    assert shown(Block("markdown", table), 40) == ["name  │  n", "──────┼───", "alpha │  1", "b     │ 22"]


@pytest.mark.parametrize("width", [8, 13, 21, 40])
def test_nothing_is_cut_at_any_width(width):
    words = (
        "A https://example.com/a/very/long/path/that/cannot/fit **bold_and_long_word_here** end. "
        "Ünïcödé 漢字テキスト wide."
    )
    text = f"# {words}\n\n{words}\n\n- {words}\n\n| h | {words} |\n|---|---|\n| x | {words} |"
    cutter = MarkdownBlocks()
    lines = [line for block in cutter.feed(text) + cutter.close() for line in shown(block, width)]
    from toolchat.views.markdown import cells

    assert all(cells(line) <= width for line in lines), lines
    assert "…" not in "".join(lines)
    flat = "".join("".join(lines).split()).replace("│", "").replace("─", "").replace("┼", "")
    for word in words.replace("**", "").split():
        assert word in flat  # folded pieces stay together, in order
    # Heading, paragraph, list item and both table cells: each once, whole.
    assert flat.count("https://example.com/a/very/long/path/that/cannot/fit") == 5


def test_code_is_highlighted_and_folded_never_cut():
    block = Block("code", "def f(x):\n    return 'a_very_long_string_value'  # note", lexer="python")
    colored = render(block, 30, Theme(color=True))
    assert re.match(r"  \x1b\[(3\d|9\d|38;[0-9;]+)mdef\x1b\[0m", colored[0]), colored  # a colour on "def"
    assert render(block, 30, Theme(color=False))[0] == "  def f(x):"  # no colour, no highlighting
    plain = shown(block, 30)
    assert plain == ["  def f(x):", "      return 'a_very_long_stri", "  ng_value'  # note"]
    assert shown(Block("code", "x = 1", lexer="nosuchlanguage"), 30) == ["  x = 1"]


def test_no_color_keeps_bold_and_italic_only():
    lines = render(Block("markdown", "**b** *i* `c` [l](u)"), 40, Theme(color=False))
    assert lines == ["\x1b[1mb\x1b[0m \x1b[3mi\x1b[0m \x1b[1mc\x1b[0m l \x1b[4m(u)\x1b[0m"]


_MARKDOWNISH = [
    "#",
    "##",
    "-",
    "*",
    "**",
    "_",
    "`",
    "```",
    "~~",
    "|",
    ">",
    "1.",
    "2)",
    "  ",
    "    ",
    "\n",
    "\n\n",
    "[",
    "]",
    "(",
    ")",
    "\\",
    "&amp;",
    "word",
    "longerword",
    "漢字",
    "é",
    "🎉",
    "\t",
    "---",
]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(_MARKDOWNISH), max_size=60),
    st.integers(min_value=9, max_value=60),
    st.integers(min_value=1, max_value=9),
)
def test_any_markdown_renders_within_the_width(pieces, width, step):
    from toolchat.views.markdown import cells

    text = " ".join(pieces)
    cutter = MarkdownBlocks(chunk_lines=3)
    blocks = [b for i in range(0, len(text), step) for b in cutter.feed(text[i : i + step])]
    tail = cutter.tail()
    blocks += cutter.close()
    for block in blocks + ([tail] if tail else []):
        for line in shown(block, width):
            assert cells(line) <= width, (block, line)
    # Nothing but blank lines and markup is lost: every word of the text is in some block
    # (unless it is the language of a code fence).
    kept = " ".join(b.text for b in blocks)
    for word in ("longerword", "漢字", "🎉"):
        assert text.count(word) == kept.count(word) or "```" in text


@pytest.mark.parametrize("columns", [10, 20, 40, 80])
def test_tool_lines_fit_the_terminal_however_long_the_input(columns):
    import io

    from toolchat.events import ToolCall, ToolResult
    from toolchat.views.activity import _Activity, _Region, _Screen
    from toolchat.views.markdown import cells

    class Narrow(_Region):
        def size(self):
            return columns, 24

    region = Narrow(io.TextIOWrapper(io.BytesIO(), encoding="utf-8"))
    activity = _Activity(region, _Screen(), Theme())
    activity.call(ToolCall("a", "a_very_long_tool_name_indeed", {"k": "v" * 200, "漢": "字" * 50}))
    activity.call(ToolCall("b", "t", {}))
    for row in activity._rows():  # live rows must not wrap: the redraw counts on one line each
        assert cells(_ESCAPES.sub("", row)) < columns, row
    activity.result(ToolResult("b", "t", {}, "out " * 50, False, 12))
    activity.stop()
    region.stream.seek(0)
    shown_lines = _ESCAPES.sub("", region.stream.read()).split("\n")
    assert any("◌ a_very" in line and "not finished" in line for line in shown_lines)


@pytest.mark.slow  # starts an MCP server (the SDK's import, ~2 s): in .ci/run's slow set
@pytest.mark.parametrize("debug", [False, True])
def test_an_mcp_server_stopping_mid_run_is_one_clean_line_above_the_spinners(tmp_path, mock, tools, debug):
    """The warning comes from the MCP event-loop thread while a spinner turns: it is printed with the
    display paused, so the spinner rows do not overwrite it and it does not cut through them. With
    --debug the server's own stderr lines (from their reader thread) are shown the same way."""
    import json

    from test_mcp_servers import TEST_SERVER

    (tmp_path / "m.json").write_text(
        json.dumps({"mcpServers": {"t": {"command": sys.executable, "args": [TEST_SERVER]}}})
    )
    server = mock(
        {
            "turns": [
                {
                    "text": "Two tools.",
                    "tool_calls": [
                        {"name": "slow", "input": {"seconds": 1.5, "tag": "A"}},
                        {"name": "mcp__t__crash", "input": {}},
                    ],
                },
                {"text": "Done."},
            ]
        }
    )
    seen = in_terminal(
        tmp_path,
        server,
        *(["--debug"] if debug else []),
        "-t",
        tools,
        "--mcp-config",
        str(tmp_path / "m.json"),
        "hi",
        cols=220,
        env={"XDG_STATE_HOME": str(tmp_path / "state")},
        timeout=40,
    )
    assert seen.code == 0, seen
    warnings = [line for line in seen.lines if "MCP server 't' stopped" in line]
    assert len(warnings) == 1 and warnings[0].startswith("toolchat: MCP server 't' stopped: "), seen
    assert "its tools now answer with errors" in warnings[0], seen
    at = seen.lines.index(warnings[0])
    assert seen.lines.index("Two tools.") < at < seen.lines.index("Done."), seen
    assert any(re.fullmatch(r'✓ slow \{"seconds": 1.5, "tag": "A"\}  \d{4,} ms', line) for line in seen.lines), seen
    assert any(line.startswith("✗ mcp__t__crash {}") for line in seen.lines), seen
    assert seen.count("⠋") + seen.count("⠙") == 0, seen  # no spinner row left behind
    if debug:  # the server's last stderr line, whole, before the warning that quotes it
        assert "[mcp t] crash: exiting on request" in seen.lines[:at], seen
