"""Markdown as it streams, cut into top-level blocks at the boundaries where rendering is stable.

The live view prints each finished block once and redraws only the unfinished one; markdown.py
renders a block (with rich). Pure: text in, Blocks out; a block's text is untrusted as it came,
neutralised when it is rendered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FENCE = re.compile(r"^( *)(`{3,}|~{3,})(.*)$")
_LIST_ITEM = re.compile(r"^( {0,3})([-*+]|(\d{1,9})[.)])( +|$)")
_NESTED_ITEM = re.compile(r"^( *)([-*+]|(\d{1,9})[.)])( +|$)")
_HEADING = re.compile(r"^ {0,3}(#{1,6})(?: +(.*?))?(?: +#+)? *$")
_RULE = re.compile(r"^ {0,3}([-*_])(?: *\1){2,} *$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+) *$")
_QUOTE = re.compile(r"^ {0,3}> ?")
_DELIMITER_ROW = re.compile(r"^ *\|? *:?-+:? *(\| *:?-+:? *)*\|? *$")


# ---------------------------------------------------------------------------------------------
# Cutting the stream into blocks


@dataclass(frozen=True)
class Block:
    """A piece of the answer that renders the same alone as inside the whole document."""

    kind: str  # "markdown" | "code" (lines of a top-level fenced code block) | "text"
    text: str
    joined: bool = False  # continues the block before it: no blank line between them
    lexer: str = ""


class MarkdownBlocks:
    """Cuts streamed markdown into top-level blocks at boundaries where rendering is stable.

    Boundaries: a blank line outside fenced code (a list goes on when the next line is indented),
    a closing fence, a heading line, a line not starting with `|` after a table. A fenced code block
    longer than `chunk_lines` is let out in chunks of whole lines, and a long list at its top-level
    items, so that the unfinished block never needs to be taller than the screen.
    """

    def __init__(self, chunk_lines: int = 16):
        self.chunk_lines = chunk_lines
        self._pieces: list[str] = []  # the unfinished last line, as it arrived
        self._reset()

    def _reset(self) -> None:
        self._lines: list[str] = []  # complete lines of the unfinished block
        self._kind: str | None = None  # None (between blocks) | para | list | table | code
        self._blank = False  # a list saw a blank line: an indented line continues it
        self._fence: tuple[str, int] | None = None  # an open fence: (character, length)
        self._joined = False
        self._lexer = ""
        self._code: list[str] = []  # lines of a top-level fenced code block
        self._sent = 0  # of those, how many went out in chunks already

    def feed(self, text: str) -> list[Block]:
        """Add streamed text; return the blocks it finished."""
        self._pieces.append(text)
        if "\n" not in text:
            return []
        *complete, rest = "".join(self._pieces).split("\n")
        self._pieces = [rest] if rest else []
        out: list[Block] = []
        for line in complete:
            # A CR LF line end is a line end (markdown's too); a bare CR stays, to be shown escaped.
            self._line(line[:-1] if line.endswith("\r") else line, out)
        return out

    def close(self) -> list[Block]:
        """The stream ended (or was stopped): everything left, as blocks."""
        out: list[Block] = []
        if self._pieces:
            line = "".join(self._pieces)
            self._pieces = []
            self._line(line, out)
        if self._kind == "code":
            self._code_chunk(len(self._code), out, last=True)
            self._reset()
        self._emit(out)
        return out

    def tail(self) -> Block | None:
        """The unfinished block as it stands, for the live display."""
        partial = "".join(self._pieces)
        if partial.endswith("\r"):  # most likely the first half of a CR LF
            partial = partial[:-1]
        if self._kind == "code":
            lines = self._code[self._sent :] + ([partial] if partial else [])
            return Block("code", "\n".join(lines), joined=self._sent > 0, lexer=self._lexer)
        lines = self._lines + [partial] if partial else self._lines
        if not lines:
            return None
        return Block("markdown", "\n".join(lines), joined=self._joined)

    def _line(self, line: str, out: list[Block]) -> None:
        stripped = line.strip()
        if self._fence is not None:
            self._in_fence(line, stripped, out)
            return
        if not stripped:
            if self._kind == "list":
                self._blank = True
                self._lines.append(line)
            else:
                self._emit(out)
            return
        indented = line[:1] in (" ", "\t")
        if self._kind == "list" and self._blank:
            if not indented:
                self._emit(out)
            self._blank = False
        elif self._kind == "table" and not stripped.startswith("|"):
            self._emit(out)
        fence = _FENCE.match(line)
        if fence and fence.group(2)[0] == "`" and "`" in fence.group(3):
            fence = None  # ``` with a backtick in the info string is inline code, not a fence
        if fence and (len(fence.group(1)) <= 3 if self._kind != "list" else not indented):
            self._emit(out)
            self._kind, self._fence = "code", (fence.group(2)[0], len(fence.group(2)))
            self._lexer = fence.group(3).strip().split(" ")[0]
            return
        if fence:  # a fence nested in a list item
            self._fence = (fence.group(2)[0], len(fence.group(2)))
            self._lines.append(line)
            return
        if _HEADING.match(line):
            self._emit(out)
            out.append(Block("markdown", line))
            return
        item = _LIST_ITEM.match(line) is not None and not indented and not _RULE.match(line)
        if self._kind is None:
            self._kind = "list" if item else "table" if stripped.startswith("|") else "para"
        elif self._kind == "list" and item and len(self._lines) >= self.chunk_lines:
            self._emit(out)  # a long list goes out item by item: the rest continues it
            self._kind, self._joined = "list", True
        elif self._kind == "para" and item:
            self._kind = "list"
        self._lines.append(line)

    def _in_fence(self, line: str, stripped: str, out: list[Block]) -> None:
        char, length = self._fence  # type: ignore[misc]
        closing = stripped.startswith(char * length) and not stripped.strip(char)
        if self._kind != "code":  # nested in a list item: part of the item's text
            self._lines.append(line)
            if closing:
                self._fence = None
            return
        if closing:
            self._code_chunk(len(self._code), out, last=True)
            self._reset()
            return
        self._code.append(line)
        if len(self._code) - self._sent >= self.chunk_lines:
            self._code_chunk(len(self._code), out, last=False)

    def _code_chunk(self, end: int, out: list[Block], last: bool) -> None:
        lines = self._code[self._sent : end]
        if last:
            while lines and not lines[-1].strip():
                lines.pop()  # as a whole block would: no blank lines at the end
            if not lines and self._sent:
                return
        out.append(Block("code", "\n".join(lines), joined=self._sent > 0, lexer=self._lexer))
        self._sent = end

    def _emit(self, out: list[Block]) -> None:
        lines = self._lines
        while lines and not lines[-1].strip():
            lines.pop()
        if lines:
            out.append(Block("markdown", "\n".join(lines), joined=self._joined))
        self._reset()


class LineBlocks:
    """Thinking: each finished line is a block; blank lines are dropped (compact)."""

    def __init__(self) -> None:
        self._pieces: list[str] = []

    def feed(self, text: str) -> list[Block]:
        self._pieces.append(text)
        if "\n" not in text:
            return []
        *complete, rest = "".join(self._pieces).split("\n")
        self._pieces = [rest] if rest else []
        return [Block("text", line.strip(), joined=True) for line in complete if line.strip()]

    def close(self) -> list[Block]:
        line, self._pieces = "".join(self._pieces).strip(), []
        return [Block("text", line, joined=True)] if line else []

    def tail(self) -> Block | None:
        partial = "".join(self._pieces).strip()
        return Block("text", partial, joined=True) if partial else None
