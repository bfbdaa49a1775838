"""Markdown for the live view, rendered by rich: each block of the answer (cut by mdblocks.py) to
terminal lines.

markdown-it-py (the parser under rich.markdown) parses a block; each node becomes a rich renderable
(Text, Table, Syntax highlighting, Rule) and a rich Console lays it out at the terminal's width,
with rich's cell widths and colour handling (NO_COLOR, 256 or true colour, none on a dumb terminal).

Not rich.markdown.Markdown itself, because of promises it does not keep: it drops HTML and the
cells of a table row beyond its header, cuts table cells to an ellipsis, centres and boxes
headings, lets nested lists and quotes shrink below zero columns on a narrow terminal, emits
hyperlink escape codes holding untrusted URLs, and builds a new parser per call. What is
hand-written below is only that: the walk from markdown-it's tree to rich renderables, the
narrow-terminal fallbacks, and folding code exactly (rich's Syntax either crops long lines or
word-wraps them, dropping white space).

Terminal safety: a block's source passes through text.neutralise before it is parsed, each unsafe
character replaced by its visible escape (`\\x1b`, `\\r`, `\\u202e`). That keeps the layout
width-correct (the escape is laid out as the text it is) and markdown-inert (a backslash before a
letter is no CommonMark escape). The escapes are framed by SO/SI (`_OPEN`/`_CLOSE`): control
characters, so never left in neutralised text, zero cells wide for rich, and skipped by
markdown-it; the walk below turns each framed escape into dimmed text and drops the frame. Text
markdown-it makes itself (an entity such as `&#x202e;` or `&#13;`) is neutralised again there, so
nothing unsafe from the answer reaches the terminal whatever markdown-it decodes.
"""

from __future__ import annotations

import io
import re
from typing import Any, Iterable

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode
from rich.cells import cell_len, get_character_cell_size
from rich.color import ColorSystem
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.rule import Rule
from rich.segment import Segment
from rich.style import Style
from rich.text import Span, Text

from ..text import is_safe, neutralise
from .mdblocks import Block, LineBlocks, MarkdownBlocks

__all__ = ["Block", "LineBlocks", "MarkdownBlocks", "Theme", "cells", "render", "safe_line", "safe_text", "to_lines"]

_STYLES = {
    "h1": "bold underline",
    "h2": "bold magenta",
    "h3": "bold magenta",
    "h4": "italic magenta",
    "h5": "italic",
    "h6": "dim",
    "strong": "bold",
    "em": "italic",
    "s": "strike",
    "code": "bold cyan",
    "link": "bright_blue",
    "url": "underline blue",
    "bullet": "bold",
    "number": "cyan",
    "quote": "magenta",
    "rule": "dim",
    "border": "cyan",
    "header": "bold cyan",
    "thinking": "dim italic",
    "escape": "dim",
    # Tool activity and notes (the live view's stderr)
    "ok": "green",
    "error": "red",
    "running": "magenta",
    "pending": "yellow",
    "name": "bold",
    "input": "cyan",
    "meta": "dim",
    "note": "yellow",
}
_CODE_THEME = "monokai"
# Nested content is indented only while it keeps this many columns (a wide character needs two).
_NARROWEST = 4


class Theme:
    """The styles and the rich Console for one terminal stream: without colour when `color` is
    False (--color never, NO_COLOR), without any escape code when `styled` is False (TERM=dumb)."""

    def __init__(self, color: bool = True, unicode: bool = True, styled: bool = True):
        self.color = color and styled
        self.styled = styled
        self.styles = {name: Style.parse(spec) for name, spec in _STYLES.items()}
        self.bullets = ("•", "◦", "▪") if unicode else ("*", "-", "+")
        self.bar, self.rule = ("▌ ", "─") if unicode else ("> ", "-")
        self.box: Any = None  # the table box (rich.box.Box), made on first use
        self.unicode = unicode
        # Every setting given, so that rich reads nothing from the environment (FORCE_COLOR,
        # NO_COLOR, COLUMNS): toolchat's settings decide. The width is the most any call asks for.
        self.console = Console(
            file=io.StringIO(),
            width=10_000,
            height=10_000,
            force_terminal=styled,
            force_interactive=False,
            force_jupyter=False,
            color_system="auto" if styled else None,
            no_color=not color,
            legacy_windows=False,
            emoji=False,
            highlight=False,
            markup=False,
            soft_wrap=False,
            tab_size=4,
        )

        self.options = self.console.options.update(overflow="fold", no_wrap=False)
        names = {
            "standard": ColorSystem.STANDARD,
            "256": ColorSystem.EIGHT_BIT,
            "truecolor": ColorSystem.TRUECOLOR,
            "windows": ColorSystem.STANDARD,
        }
        self.color_system = names.get(self.console.color_system or "")
        self._codes: dict[Style, tuple[str, str]] = {}

    def __getitem__(self, name: str) -> Style:
        return self.styles[name]

    def join(self, line: list[Segment]) -> str:
        """One rendered line as text with SGR codes: a run of one style under one code."""
        if self.color_system is None:
            return "".join(segment.text for segment in line)
        out = []
        for text, style, _ in Segment.simplify(line):
            if style and text:
                codes = self._codes.get(style)
                if codes is None:
                    shown = style.without_color if not self.color else style
                    # Style.render writes the start code, the text, the reset: split at the text.
                    before, _, after = shown.render("\x00", color_system=self.color_system).partition("\x00")
                    codes = self._codes[style] = (before, after)
                out.append(codes[0] + text + codes[1])
            else:
                out.append(text)
        return "".join(out)


def cells(text: str) -> int:
    """Terminal columns `text` takes (rich's count)."""
    return cell_len(text)


def to_lines(renderable: RenderableType, width: int, theme: Theme) -> list[str]:
    """A rich renderable as terminal lines (text with SGR codes), none wider than `width`.

    rich lays the lines out (Console.render_lines) and writes each style (Style.render, in the
    console's colour system); the lines are joined here rather than by Console.print, which would
    split them apart again and costs a third more for nothing here."""
    options = theme.options.update(width=max(1, width))
    return [theme.join(line) for line in theme.console.render_lines(renderable, options, pad=False)]


def render(block: Block, width: int, theme: Theme) -> list[str]:
    """A block as terminal lines, none wider than `width` columns (at least 8)."""
    width = max(8, width)
    source = neutralise(block.text, mark=_frame)
    if block.kind == "code":
        return to_lines(_Code(source, block.lexer, theme), width, theme)
    if block.kind == "text":
        return to_lines(safe_text(source, theme, theme["thinking"]), width, theme)
    tree = SyntaxTreeNode(_PARSER.parse(source))
    lines = source.split("\n")
    return to_lines(_Stack([_node(child, theme, 0, lines) for child in tree.children]), width, theme)


# ---------------------------------------------------------------------------------------------
# Untrusted text as rich Text

_OPEN, _CLOSE = "\x0e", "\x0f"
_FRAMED = re.compile("\x0e([^\x0e\x0f]*)\x0f")


def _frame(escape: str) -> str:
    return _OPEN + escape + _CLOSE


def safe_line(value: object, theme: Theme, style: Style | str = "", limit: int = 2000) -> Text:
    """Untrusted text as one line of rich Text: neutralised first (so a bare CR or a C1 control
    shows as its escape instead of being folded away as white space), then white space runs
    folded to one space; at most about `limit` characters of `value` are looked at."""
    text = str(value)[:limit]
    return safe_text(" ".join(neutralise(text, mark=_frame).split()), theme, style)


def safe_text(text: str, theme: Theme, style: Style | str = "", into: Text | None = None) -> Text:
    """`text` as rich Text in `style`, every unsafe character shown as its dimmed escape.

    `text` may already be neutralised with framed escapes (by `render`); whatever else is unsafe
    in it (a stray frame character included) is neutralised here.
    """
    out = into if into is not None else Text()
    if is_safe(text):
        out.append(text, style)
        return out
    dim = theme["escape"]
    escape_style = (style + dim) if isinstance(style, Style) else dim
    at = 0
    for match in _FRAMED.finditer(text):
        if match.start() > at:
            _append_unframed(out, text[at : match.start()], style, escape_style)
        out.append(match.group(1), escape_style)
        at = match.end()
    if at < len(text):
        _append_unframed(out, text[at:], style, escape_style)
    return out


def _append_unframed(out: Text, text: str, style, escape_style) -> None:
    if is_safe(text):
        out.append(text, style)
        return
    for i, part in enumerate(_FRAMED.split(neutralise(text, mark=_frame))):
        if part:
            out.append(part, escape_style if i % 2 else style)


def _unframe(text: str) -> tuple[str, list[tuple[int, int]]]:
    """Framed text without its frames, and where the escapes are in it."""
    plain: list[str] = []
    spans: list[tuple[int, int]] = []
    at = length = 0
    for match in _FRAMED.finditer(text):
        plain.append(text[at : match.start()])
        length += match.start() - at
        plain.append(match.group(1))
        spans.append((length, length + len(match.group(1))))
        length += len(match.group(1))
        at = match.end()
    plain.append(text[at:])
    return "".join(plain), spans


# ---------------------------------------------------------------------------------------------
# markdown-it's tree to rich renderables

_PARSER = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
# Links are shown as text: keep the URL as written, not percent-encoded.
_PARSER.normalizeLink = lambda url: url  # type: ignore[method-assign]
_PARSER.normalizeLinkText = lambda link: link  # type: ignore[method-assign]


def _node(node: SyntaxTreeNode, theme: Theme, depth: int, lines: list[str] | None = None) -> RenderableType:
    """One block node as a renderable; `lines`, the source, for a table at the top level."""
    kind = node.type
    if kind == "paragraph":
        return _inline(node.children[0], theme) if node.children else Text()
    if kind == "heading":
        level = int(node.tag[1])
        return _inline(node.children[0], theme, theme[f"h{level}"]) if node.children else Text()
    if kind in ("fence", "code_block"):
        info = (node.info or "").strip().split(" ")[0] if kind == "fence" else ""
        return _Code(node.content.rstrip("\n"), info, theme)
    if kind == "blockquote":
        inner = _Stack([_node(child, theme, depth) for child in node.children])
        bar = safe_text(theme.bar, theme, theme["quote"])
        return _Prefixed(inner, bar, bar)
    if kind in ("bullet_list", "ordered_list"):
        return _list(node, theme, depth)
    if kind == "hr":
        return Rule(characters=theme.rule, style=theme["rule"])
    if kind == "table":
        return _Table(node, theme, lines)
    if kind == "html_block":  # not produced with html off; shown as the text it is, if ever
        return safe_text(node.content.rstrip("\n"), theme)
    return Text()


def _inline(node: SyntaxTreeNode, theme: Theme, style: Style | None = None) -> Text:
    text = Text()
    _inline_into(text, node.children, theme, style or Style())
    return text


def _inline_into(out: Text, nodes: Iterable[SyntaxTreeNode], theme: Theme, style: Style) -> None:
    for node in nodes:
        kind = node.type
        if kind == "text":
            safe_text(node.content, theme, style, out)
        elif kind == "softbreak":
            out.append(" ", style)
        elif kind == "hardbreak":
            out.append("\n", style)
        elif kind == "code_inline":
            safe_text(node.content, theme, style + theme["code"], out)
        elif kind in ("em", "strong", "s"):
            _inline_into(out, node.children, theme, style + theme[kind])
        elif kind == "link":
            href = str(node.attrs.get("href", ""))
            label = Text()
            _inline_into(label, node.children, theme, style + theme["link"])
            out.append_text(label)
            if href and href != label.plain and node.markup != "autolink":
                _target(out, href, bool(label.plain), theme, style)
        elif kind == "image":
            src = str(node.attrs.get("src", ""))
            label = Text()
            _inline_into(label, node.children, theme, style + theme["link"])
            out.append_text(label)
            if src:
                _target(out, src, bool(label.plain), theme, style)
        elif node.children:
            _inline_into(out, node.children, theme, style)
        elif node.content:
            safe_text(node.content, theme, style, out)


def _target(out: Text, url: str, labelled: bool, theme: Theme, style: Style) -> None:
    """A link's URL after its label, as text: ` (url)` (no hyperlink escape codes)."""
    if labelled:
        out.append(" ", style)
        url = f"({url})"
    safe_text(url, theme, style + theme["url"], out)


def _list(node: SyntaxTreeNode, theme: Theme, depth: int) -> RenderableType:
    ordered = node.type == "ordered_list"
    start = int(node.attrs.get("start", 1)) if ordered else 0
    items = node.children
    # Loose (blank lines between its items in the source): a blank line between items and
    # between the blocks of an item, as CommonMark renders it with paragraphs.
    loose = any(child.type == "paragraph" and not child.hidden for item in items for child in item.children)
    marker_width = len(str(start + len(items) - 1)) + 2 if ordered else 2
    rendered: list[RenderableType] = []
    for index, item in enumerate(items):
        if ordered:
            head = f" {start + index}.".rjust(marker_width) + " "
            marker = Text(head, theme["number"])
        else:
            marker = Text(" " + theme.bullets[min(depth, 2)] + " ", theme["bullet"])
        inner = _Stack([_node(child, theme, depth + 1) for child in item.children], gaps=loose)
        rendered.append(_Prefixed(inner, marker, Text(" " * cell_len(marker.plain))))
    return _Stack(rendered, gaps=loose)


class _Stack:
    """Renderables one below the other, a blank line between them (or none, `gaps=False`)."""

    def __init__(self, items: list[RenderableType], gaps: bool = True):
        self.items = items
        self.gaps = gaps

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for index, item in enumerate(self.items):
            if index and self.gaps:
                yield Text()
            yield item


class _Prefixed:
    """A renderable indented by a prefix: `first` on its first line, `rest` on the others. Where
    that would leave fewer than _NARROWEST columns, the prefix takes a line of its own."""

    def __init__(self, inner: RenderableType, first: Text, rest: Text):
        self.inner, self.first, self.rest = inner, first, rest

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        prefix = cell_len(self.first.plain)
        if width - prefix < _NARROWEST:
            if self.first.plain.strip():
                yield self.first
            yield self.inner
            return
        lines = console.render_lines(self.inner, options.update(width=width - prefix), pad=False)
        first = list(self.first.render(console))
        rest = list(self.rest.render(console))
        new_line = Segment.line()
        for index, line in enumerate(lines or [[]]):
            if any(segment.text for segment in line):
                yield from first if index == 0 else rest
                yield from line
            elif index == 0:
                yield from first
            yield new_line


class _Code:
    """A code block: highlighted (when colour is on and the language is known), two columns in,
    each long line folded at the width, never cut, its white space kept exactly."""

    def __init__(self, source: str, lexer: str, theme: Theme):
        self.source, self.lexer, self.theme = source.expandtabs(4), lexer, theme

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        theme = self.theme
        code, spans = _unframe(self.source)
        if theme.color and self.lexer:
            text = _syntax(code, self.lexer).highlight(code)
            # The token colours, not the theme's background: the terminal's own stays.
            text.style = Style()
            text.spans = [Span(span.start, span.end, _foreground(span.style)) for span in text.spans]
        else:
            text = Text(code)
        for start, end in spans:
            text.stylize(theme["escape"], start, end)
        width = options.max_width
        indent = "  " if width - 2 >= _NARROWEST else ""
        room = width - len(indent)
        new_line = Segment.line()
        for line in text.split("\n", allow_blank=True)[: code.count("\n") + 1]:
            line.end = ""
            for piece in _fold(line, room):
                if indent:
                    yield Segment(indent)
                yield from piece.render(console)
                yield new_line


_LEXERS: dict = {}
_THEMES: dict = {}


def _syntax(code: str, lexer: str):
    """rich's Syntax for `code`, the lexer and the theme looked up once per name, not per block.
    Imported on first use: it brings pygments, which an answer without code does not need."""
    from rich.syntax import Syntax

    if lexer not in _LEXERS:
        _LEXERS[lexer] = Syntax("", lexer).lexer  # None for a language pygments does not know
    if not _THEMES:
        _THEMES[_CODE_THEME] = Syntax.get_theme(_CODE_THEME)
    found = _LEXERS[lexer]
    return Syntax(code, found if found is not None else "text", theme=_THEMES[_CODE_THEME])


_FOREGROUND: dict = {}


def _foreground(style) -> Style:
    """A token style without its background colour."""
    found = _FOREGROUND.get(style)
    if found is None:
        if isinstance(style, str):
            style = Style.parse(style)
        found = _FOREGROUND[style] = Style(
            color=style.color, bold=style.bold, italic=style.italic, underline=style.underline
        )
    return found


def _fold(line: Text, width: int) -> list[Text]:
    """`line` cut into pieces of at most `width` cells, every character kept."""
    plain = line.plain
    if cell_len(plain) <= width:
        return [line]
    offsets, used = [], 0
    for index, char in enumerate(plain):
        size = get_character_cell_size(char)
        if used + size > width and used:
            offsets.append(index)
            used = 0
        used += size
    return list(line.divide(offsets))


class _Table:
    """A table in rich's Table, its cells folded, never cut; too narrow for its columns, each row
    as `header: value` lines."""

    def __init__(self, node: SyntaxTreeNode, theme: Theme, lines: list[str] | None):
        self.theme = theme
        self.header: list[Text] = []
        self.aligns: list[str] = []
        self.rows: list[list[Text]] = []
        for section in node.children:
            for row in section.children:
                texts = [_inline(cell.children[0], theme) if cell.children else Text() for cell in row.children]
                if section.type == "thead":
                    self.header = texts
                    for cell in row.children:
                        align = str(cell.attrs.get("style", ""))
                        self.aligns.append("right" if "right" in align else "center" if "center" in align else "left")
                else:
                    if lines is not None and row.map and texts:
                        self._extra_cells(lines[row.map[0]], texts)
                    self.rows.append(texts)

    def _extra_cells(self, line: str, texts: list[Text]) -> None:
        """Cells beyond the header's count, which markdown-it drops, joined to the last one."""
        cells_ = _cells_of(line)
        if len(cells_) <= len(texts):
            return
        extra = SyntaxTreeNode(_PARSER.parseInline(" | ".join(cells_[len(texts) :])))
        texts[-1].append(" | ")
        texts[-1].append_text(_inline(extra.children[0], self.theme))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        theme = self.theme
        count = len(self.header)
        width = options.max_width
        if not count:
            return
        if width - 3 * (count - 1) < 3 * count:
            for row in self.rows:
                for c, cell in enumerate(row):
                    line = Text((theme.bullets[0] + " ") if c == 0 else "  ", theme["bullet"])
                    line.append_text(self._header(c))
                    line.append(": ")
                    line.append_text(cell)
                    yield line
            return
        from rich.table import Table

        if theme.box is None:
            from rich import box

            theme.box = box.SQUARE if theme.unicode else box.ASCII
        table = Table(
            box=theme.box,
            show_edge=False,
            pad_edge=False,
            show_header=True,
            border_style=theme["border"],
            expand=False,
            highlight=False,
        )
        for c in range(count):
            table.add_column(
                self._header(c),
                justify=self.aligns[c],  # type: ignore[arg-type]
                overflow="fold",
                no_wrap=False,
                min_width=1,
            )
        for row in self.rows:
            table.add_row(*row)
        yield table

    def _header(self, c: int) -> Text:
        text = self.header[c].copy()
        text.stylize(self.theme["header"])
        return text


def _cells_of(row: str) -> list[str]:
    """A table row's cells as GFM splits them: at | outside code spans and escapes, outer pipes
    dropped."""
    row = row.strip()
    if row.startswith("|"):
        row = row[1:]
    if row.endswith("|") and not row.endswith("\\|"):
        row = row[:-1]
    cells_, cell, in_code, i = [], [], False, 0
    while i < len(row):
        ch = row[i]
        if ch == "\\" and i + 1 < len(row) and row[i + 1] == "|":
            cell.append("\\|")
            i += 2
            continue
        if ch == "`":
            in_code = not in_code
        if ch == "|" and not in_code:
            cells_.append("".join(cell).strip())
            cell = []
        else:
            cell.append(ch)
        i += 1
    cells_.append("".join(cell).strip())
    return cells_
