"""Markdown for the live view: each block of the answer (cut by mdblocks.py) rendered to lines.

Pure (no I/O): text in, lines of text with ANSI styles out. A line is never wider than asked and
nothing is dropped or cut short: a word too long for its line is folded onto the next.

Hand-written rather than rich's Markdown: rendering a 20,000-token answer with rich costs more CPU
than the whole run of the plain view (benchmarks/render.py); this costs a fraction of it, and each
block renders alone exactly as it would inside the whole answer.
"""

from __future__ import annotations

import html
import re
import unicodedata

from .mdblocks import (_DELIMITER_ROW, _FENCE, _HEADING, _LIST_ITEM, _NESTED_ITEM, _QUOTE, _RULE,
                      _SETEXT, Block, LineBlocks, MarkdownBlocks)

__all__ = ["Block", "LineBlocks", "MarkdownBlocks", "Theme", "ansi", "cells", "fold", "render"]

# ---------------------------------------------------------------------------------------------
# Styles


_STYLES = {
    "h1": "1;4", "h2": "1;35", "h3": "1;35", "h4": "3;35", "h5": "3", "h6": "2",
    "strong": "1", "em": "3", "strike": "9", "code": "1;36", "link": "94", "url": "4;34",
    "bullet": "1", "number": "36", "quote": "35", "rule": "2", "border": "36", "header": "1;36",
    "thinking": "2;3",
    # Tool activity and notes (the live view's stderr)
    "ok": "32", "error": "31", "running": "35", "pending": "33", "name": "1", "input": "36",
    "meta": "2", "note": "33",
}

# Code, roughly monokai in the 256-colour palette; the most specific token type wins.
_TOKENS = {
    "Keyword": "38;5;197", "Keyword.Constant": "38;5;141", "Keyword.Type": "38;5;81",
    "Name.Builtin": "38;5;81", "Name.Builtin.Pseudo": "38;5;208", "Name.Function": "38;5;148",
    "Name.Class": "38;5;148", "Name.Decorator": "38;5;148", "Name.Exception": "38;5;148",
    "Name.Tag": "38;5;197", "Name.Attribute": "38;5;148", "Name.Variable": "38;5;208",
    "String": "38;5;186", "String.Escape": "38;5;141", "String.Doc": "38;5;186",
    "Number": "38;5;141", "Literal": "38;5;141", "Comment": "3;38;5;245", "Operator": "38;5;197",
    "Operator.Word": "38;5;197", "Generic.Deleted": "38;5;197", "Generic.Inserted": "38;5;148",
    "Generic.Heading": "1", "Generic.Subheading": "38;5;81", "Generic.Emph": "3",
    "Generic.Strong": "1",
}
_COLOR_PARAMS = {*range(30, 40), *range(40, 50), *range(90, 98), *range(100, 108)}


def strip_color(sgr: str) -> str:
    """SGR parameters without colours: bold, italic, underline and the like stay."""
    params, kept, i = sgr.split(";") if sgr else [], [], 0
    while i < len(params):
        number = int(params[i] or 0)
        if number in (38, 48):  # 38;5;N or 38;2;R;G;B
            i += 3 if i + 1 < len(params) and params[i + 1] == "5" else 5
            continue
        if number not in _COLOR_PARAMS:
            kept.append(params[i])
        i += 1
    return ";".join(kept)


class Theme:
    """SGR parameters for each kind of text: without colour when `color` is False (NO_COLOR), none
    at all when `styled` is False (a dumb terminal)."""

    def __init__(self, color: bool = True, unicode: bool = True, styled: bool = True):
        self.color = color and styled
        fix = (lambda s: "") if not styled else (lambda s: s) if color else strip_color
        self.styles = {name: fix(sgr) for name, sgr in _STYLES.items()}
        self.tokens = {name: fix(sgr) for name, sgr in _TOKENS.items()}
        self._token_cache: dict = {}
        self.bullets = ("•", "◦", "▪") if unicode else ("*", "-", "+")
        self.bar, self.rule, self.column, self.cross = (
            ("▌ ", "─", " │ ", "─┼─") if unicode else ("> ", "-", " | ", "-+-"))

    def __getitem__(self, name: str) -> str:
        return self.styles[name]

    def token(self, ttype) -> str:
        sgr = self._token_cache.get(ttype)
        if sgr is None:
            found, kind = "", ttype
            while kind is not None and len(kind):
                name = ".".join(kind)
                if name in self.tokens:
                    found = self.tokens[name]
                    break
                kind = kind.parent
            sgr = self._token_cache[ttype] = found
        return sgr


def combine(outer: str, inner: str) -> str:
    return f"{outer};{inner}" if outer and inner else outer or inner


# ---------------------------------------------------------------------------------------------
# Width, wrapping, output

Run = tuple  # (text, sgr)


def cells(text: str) -> int:
    """Terminal columns `text` takes."""
    if text.isascii():
        return len(text)
    return sum(_char_cells(ch) for ch in text)


def _char_cells(ch: str) -> int:
    if unicodedata.combining(ch) or ch in "\u200b\u200c\u200d\ufe0f":
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def fold(text: str, width: int) -> list[str]:
    """`text` in pieces of at most `width` columns."""
    if text.isascii():
        return [text[i:i + width] for i in range(0, len(text), width)] or [""]
    pieces, piece, used = [], [], 0
    for ch in text:
        w = _char_cells(ch)
        if used + w > width and piece:
            pieces.append("".join(piece))
            piece, used = [], 0
        piece.append(ch)
        used += w
    pieces.append("".join(piece))
    return pieces


_SPACE = re.compile(r"(\s+)")


def wrap(runs: list[Run], width: int) -> list[list[Run]]:
    """Styled runs in lines of at most `width` columns: greedy at spaces, folding longer words.

    Runs of white space become one space; a "\\n" in a run is a line break.
    """
    width = max(1, width)
    lines: list[list[Run]] = []
    line: list[Run] = []
    used = 0
    word: list[Run] = []
    word_cells = 0
    space = False  # a space is due before the next word on this line

    def place() -> None:
        nonlocal line, used, word, word_cells, space
        if line and used + (1 if space else 0) + word_cells > width:
            lines.append(line)
            line, used = [], 0
        elif line and space:
            # The space takes the style around it (an underlined heading stays one line).
            sgr = line[-1][1] if line[-1][1] == word[0][1] else ""
            line.append((" ", sgr))
            used += 1
        if word_cells > width - used:  # a word longer than the line: fold it
            for text, sgr in word:
                for piece in fold(text, width):
                    w = cells(piece)
                    if used + w > width and line:
                        lines.append(line)
                        line, used = [], 0
                    line.append((piece, sgr))
                    used += w
        else:
            line.extend(word)
            used += word_cells
        word, word_cells, space = [], 0, False

    for text, sgr in runs:
        for part in _SPACE.split(text):
            if not part:
                continue
            if part.isspace():
                if word:
                    place()
                if "\n" in part:
                    lines.append(line)
                    line, used, space = [], 0, False
                elif line:
                    space = True
            else:
                word.append((part, sgr))
                word_cells += cells(part)
    if word:
        place()
    if line or not lines:
        lines.append(line)
    return lines


def ansi(line: list[Run]) -> str:
    """One line of runs as text with SGR codes (each style closed before the next)."""
    out, last_sgr, pending = [], None, []
    for text, sgr in line:
        if sgr == last_sgr:
            pending.append(text)
            continue
        if pending:
            out.append(f"\x1b[{last_sgr}m{''.join(pending)}\x1b[0m" if last_sgr else "".join(pending))
        last_sgr, pending = sgr, [text]
    if pending:
        out.append(f"\x1b[{last_sgr}m{''.join(pending)}\x1b[0m" if last_sgr else "".join(pending))
    return "".join(out)


def _pad(line: list[Run], width: int, align: str) -> list[Run]:
    gap = width - sum(cells(text) for text, _ in line)
    if gap <= 0:
        return line
    if align == "right":
        return [(" " * gap, ""), *line]
    if align == "center":
        return [(" " * (gap // 2), ""), *line, (" " * (gap - gap // 2), "")]
    return [*line, (" " * gap, "")]


# ---------------------------------------------------------------------------------------------
# Inline markdown


_INLINE = re.compile(r"""
    (?P<code>(?P<ticks>`+)(?P<codetext>.+?)(?<!`)(?P=ticks)(?!`))
  | (?P<image>!\[(?P<alt>[^\]\n]*)\]\((?P<src>[^)\s]*)(?:\s+"[^"]*")?\))
  | (?P<link>\[(?P<label>[^\]\n]+)\]\((?P<href>[^)\s]*)(?:\s+"[^"]*")?\))
  | (?P<auto><(?P<url>(?:https?|ftp|mailto):[^>\s]+)>)
  | (?P<both>\*\*\*(?=\S)(?P<btext>.+?)(?<=\S)\*\*\*)
  | (?P<strong>\*\*(?=[^\s*])(?P<stext>.+?)(?<=\S)\*\*(?!\*)
              |(?<![\w_])__(?=[^\s_])(?P<utext>.+?)(?<=\S)__(?![\w_]))
  | (?P<em>(?<!\*)\*(?=[^\s*])(?P<etext>.+?)(?<=[^\s*])\*(?!\*)
          |(?<![\w_])_(?=[^\s_])(?P<e2text>.+?)(?<=[^\s_])_(?![\w_]))
  | (?P<strike>~~(?=\S)(?P<ttext>.+?)(?<=\S)~~)
  | (?P<escape>\\(?P<char>[!-/:-@\[-`{-~]))
""", re.X | re.S)
_MARKUP = re.compile(r"[`*_~\[\\<!]")


def inline(text: str, theme: Theme, style: str = "") -> list[Run]:
    """Inline markdown (code, links, emphasis, escapes) as styled runs."""
    if not _MARKUP.search(text):
        return [(_plain(text), style)]
    runs: list[Run] = []
    at = 0
    for match in _INLINE.finditer(text):
        if match.start() > at:
            runs.append((_plain(text[at:match.start()]), style))
        at = match.end()
        kind = match.lastgroup if match.lastgroup in _KINDS else _kind_of(match)
        if kind == "code":
            code = match.group("codetext")
            if code.startswith(" ") and code.endswith(" ") and code.strip():
                code = code[1:-1]
            runs.append((code, combine(style, theme["code"])))
        elif kind in ("link", "image"):
            label = match.group("label") if kind == "link" else match.group("alt")
            href = match.group("href") if kind == "link" else match.group("src")
            runs += inline(label, theme, combine(style, theme["link"])) if label else []
            if href and href != label:
                runs.append((f" ({href})" if label else href, combine(style, theme["url"])))
        elif kind == "auto":
            runs.append((match.group("url"), combine(style, theme["url"])))
        elif kind == "both":
            runs += inline(match.group("btext"), theme,
                           combine(style, combine(theme["strong"], theme["em"])))
        elif kind == "strong":
            inner = match.group("stext") or match.group("utext")
            runs += inline(inner, theme, combine(style, theme["strong"]))
        elif kind == "em":
            inner = match.group("etext") or match.group("e2text")
            runs += inline(inner, theme, combine(style, theme["em"]))
        elif kind == "strike":
            runs += inline(match.group("ttext"), theme, combine(style, theme["strike"]))
        else:
            runs.append((match.group("char"), style))
    if at < len(text):
        runs.append((_plain(text[at:]), style))
    return runs


_KINDS = ("code", "image", "link", "auto", "both", "strong", "em", "strike", "escape")


def _kind_of(match: re.Match) -> str:
    for kind in _KINDS:
        if match.group(kind) is not None:
            return kind
    return "escape"


def _plain(text: str) -> str:
    return html.unescape(text) if "&" in text else text


# ---------------------------------------------------------------------------------------------
# Blocks

# Nested content is indented only while it keeps this many columns (a wide character needs two).
_NARROWEST = 4


def render(block: Block, width: int, theme: Theme) -> list[str]:
    """A block as terminal lines, none wider than `width` columns (at least 8)."""
    width = max(8, width)
    if block.kind == "code":
        return _code(block.text, block.lexer, width, theme)
    if block.kind == "text":
        return [ansi(line) for line in wrap([(block.text, theme["thinking"])], width)]
    return [ansi(line) if isinstance(line, list) else line
            for line in _elements(block.text.split("\n"), width, theme, 0)]


def _elements(lines: list[str], width: int, theme: Theme, depth: int) -> list:
    """Render a container's lines (the document, a list item, a quote); one blank line where the
    source had blank lines between elements."""
    out: list = []
    i, n = 0, len(lines)
    gap = False
    while i < n:
        line = lines[i]
        if not line.strip():
            gap = bool(out)
            i += 1
            continue
        if gap:
            out.append("")
            gap = False
        i = _element(lines, i, width, theme, depth, out)
    return out


def _element(lines: list[str], i: int, width: int, theme: Theme, depth: int, out: list) -> int:
    """Render the element starting at lines[i] into `out`; the index after it."""
    line = lines[i]
    n = len(lines)
    heading = _HEADING.match(line)
    if heading:
        level = len(heading.group(1))
        out += wrap(inline(heading.group(2) or "", theme, theme[f"h{level}"]), width)
        return i + 1
    if _RULE.match(line):
        out.append([(theme.rule * width, theme["rule"])])
        return i + 1
    fence = _FENCE.match(line)
    if fence and not (fence.group(2)[0] == "`" and "`" in fence.group(3)):
        char, length, indent = fence.group(2)[0], len(fence.group(2)), len(fence.group(1))
        code: list[str] = []
        i += 1
        while i < n:
            stripped = lines[i].strip()
            if stripped.startswith(char * length) and not stripped.strip(char):
                i += 1
                break
            code.append(_dedent(lines[i], indent))
            i += 1
        out += _code("\n".join(code), fence.group(3).strip().split(" ")[0], width, theme)
        return i
    if _QUOTE.match(line):
        inner: list[str] = []
        while i < n and lines[i].strip() and (_QUOTE.match(lines[i]) or inner):
            match = _QUOTE.match(lines[i])
            inner.append(lines[i][match.end():] if match else lines[i])
            i += 1
        bar = ansi([(theme.bar, theme["quote"])]) if width - 2 >= _NARROWEST else ""
        for rendered in _elements(inner, width - 2 if bar else width, theme, depth):
            out.append(bar + (ansi(rendered) if isinstance(rendered, list) else rendered))
        return i
    if "|" in line and i + 1 < n and _DELIMITER_ROW.match(lines[i + 1]) and "-" in lines[i + 1]:
        rows = [line, lines[i + 1]]
        i += 2
        while i < n and lines[i].strip() and "|" in lines[i]:
            rows.append(lines[i])
            i += 1
        out += _table(rows, width, theme)
        return i
    item = _NESTED_ITEM.match(line)
    if item and not _RULE.match(line):
        return _list(lines, i, width, theme, depth, out)
    if len(line) - len(line.lstrip(" ")) >= 4:  # indented code
        code = []
        while i < n and (not lines[i].strip() or lines[i].startswith("    ")):
            code.append(lines[i][4:])
            i += 1
        while code and not code[-1].strip():
            code.pop()
        out += _code("\n".join(code), "", width, theme)
        return i
    return _paragraph(lines, i, width, theme, out)


def _paragraph(lines: list[str], i: int, width: int, theme: Theme, out: list) -> int:
    n = len(lines)
    parts = [lines[i].strip()]
    i += 1
    while i < n and lines[i].strip():
        line = lines[i]
        if _SETEXT.match(line):
            style = theme["h1"] if line.strip()[0] == "=" else theme["h2"]
            out += wrap(inline(" ".join(parts), theme, style), width)
            return i + 1
        if _starts_block(line):
            break
        # A hard break: two spaces or a backslash at the end of the line before.
        if lines[i - 1].endswith("  ") or lines[i - 1].rstrip().endswith("\\"):
            if parts[-1].endswith("\\"):
                parts[-1] = parts[-1][:-1]
            parts.append("\n")
        parts.append(line.strip())
        i += 1
    text = " ".join(parts).replace(" \n ", "\n")
    out += wrap(inline(text, theme), width)
    return i


def _starts_block(line: str) -> bool:
    if _HEADING.match(line) or _RULE.match(line) or _QUOTE.match(line):
        return True
    fence = _FENCE.match(line)
    if fence and len(fence.group(1)) <= 3:
        return True
    item = _LIST_ITEM.match(line)
    # An ordered list interrupts a paragraph only when it starts at 1 (CommonMark).
    return bool(item) and line[item.end():].strip() != "" and item.group(3) in (None, "1")


def _list(lines: list[str], i: int, width: int, theme: Theme, depth: int, out: list) -> int:
    n = len(lines)
    first = _NESTED_ITEM.match(lines[i])
    indent = len(first.group(1))
    ordered = first.group(3) is not None
    number = int(first.group(3)) if ordered else 0
    items: list[list[str]] = []
    blank_between = False
    while i < n:
        match = _NESTED_ITEM.match(lines[i])
        if not match or len(match.group(1)) != indent or (match.group(3) is not None) != ordered \
                or _RULE.match(lines[i]):
            break
        content = [lines[i][match.end():]]
        column = match.end() if match.group(4) else match.end() + 1
        i += 1
        while i < n:
            line = lines[i]
            if not line.strip():
                ahead = i + 1
                while ahead < n and not lines[ahead].strip():
                    ahead += 1
                if ahead < n and _indent(lines[ahead]) > indent:
                    content += [""] * (ahead - i)
                    i = ahead
                    continue
                if ahead < n and _NESTED_ITEM.match(lines[ahead]) and _indent(lines[ahead]) == indent:
                    blank_between = True
                break
            if _indent(line) > indent:
                content.append(_dedent(line, column))
            elif _NESTED_ITEM.match(line) or _starts_block(line) or (
                    "|" in line and i + 1 < n and _DELIMITER_ROW.match(lines[i + 1])):
                break
            else:
                content.append(line)  # a lazy continuation line
            i += 1
        items.append(content)
        while i < n and not lines[i].strip():
            i += 1
            if i < n and not (_NESTED_ITEM.match(lines[i]) and _indent(lines[i]) == indent):
                i -= 1
                break
    last = number + len(items) - 1
    marker_width = (len(str(last)) + 2) if ordered else 2
    for index, content in enumerate(items):
        if ordered:
            marker = f"{number + index}.".rjust(marker_width - 1) + " "
            head = ansi([(marker, theme["number"])])
        else:
            head = ansi([(theme.bullets[min(depth, 2)] + " ", theme["bullet"])])
        inner = width - marker_width - 1
        if index and blank_between:
            out.append("")
        if inner < _NARROWEST:  # no room to indent: the marker on a line of its own
            out.append(head)
            out += _elements(content, width, theme, depth + 1)
            continue
        pad = " " * marker_width
        rendered = _elements(content, inner, theme, depth + 1) or [[]]
        for k, line in enumerate(rendered):
            text = ansi(line) if isinstance(line, list) else line
            out.append((" " + head if k == 0 else " " + pad) + text if text else "")
    return i


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _dedent(line: str, columns: int) -> str:
    return line[min(columns, _indent(line)):]


def _table(rows: list[str], width: int, theme: Theme) -> list:
    cells_of = [_cells_of(row) for row in rows]
    header, delimiter, body = cells_of[0], cells_of[1], cells_of[2:]
    count = len(header)
    aligns = []
    for spec in delimiter[:count] + [""] * (count - len(delimiter)):
        spec = spec.strip()
        aligns.append("center" if spec.startswith(":") and spec.endswith(":") and len(spec) > 1
                      else "right" if spec.endswith(":") else "left")
    # Never drop a cell: extra ones join the last column, missing ones are empty.
    body = [row[:count - 1] + [" | ".join(row[count - 1:])] if len(row) > count
            else row + [""] * (count - len(row)) for row in body]
    runs = [[inline(cell, theme, theme["header"]) for cell in header]]
    runs += [[inline(cell, theme) for cell in row] for row in body]
    natural = [max(1, max(sum(cells(t) for t, _ in row[c]) for row in runs)) for c in range(count)]
    column = len(theme.column)
    room = width - column * (count - 1)
    if room < 3 * count:  # too narrow for columns: each row as "header: value" lines
        out: list = []
        for row in body:
            for c, cell in enumerate(row):
                label = [(theme.bullets[0] + " " if c == 0 else "  ", theme["bullet"])]
                out += wrap(label + inline(header[c], theme, theme["header"]) + [(": ", "")]
                            + inline(cell, theme), width)
        return out
    widths = _fit(natural, room)
    border = ansi([(theme.column, theme["border"])])
    out = []
    for r, row in enumerate(runs):
        wrapped = [wrap(row[c], widths[c]) for c in range(count)]
        height = max(len(lines) for lines in wrapped)
        for k in range(height):
            parts = [ansi(_pad(wrapped[c][k] if k < len(wrapped[c]) else [], widths[c], aligns[c]))
                     for c in range(count)]
            out.append(border.join(parts))
        if r == 0:
            out.append(ansi([(theme.cross.join(theme.rule * w for w in widths), theme["border"])]))
    return out


def _fit(natural: list[int], room: int) -> list[int]:
    """Column widths: natural ones if they fit, else the narrow columns keep theirs and the wide
    ones share what is left."""
    if sum(natural) <= room:
        return natural
    widths = [0] * len(natural)
    left = room
    order = sorted(range(len(natural)), key=lambda c: natural[c])
    for position, c in enumerate(order):
        share = max(1, left // (len(order) - position))
        widths[c] = min(natural[c], share)
        left -= widths[c]
    return widths


def _cells_of(row: str) -> list[str]:
    """A table row's cells: split at | outside code spans and escapes, outer pipes dropped."""
    row = row.strip()
    if row.startswith("|"):
        row = row[1:]
    if row.endswith("|") and not row.endswith("\\|"):
        row = row[:-1]
    cells_, cell, in_code, i = [], [], False, 0
    while i < len(row):
        ch = row[i]
        if ch == "\\" and i + 1 < len(row) and row[i + 1] == "|":
            cell.append("|")
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


# ---------------------------------------------------------------------------------------------
# Code


_LEXERS: dict = {}


def _code(text: str, lexer: str, width: int, theme: Theme) -> list[str]:
    """A code block: highlighted, indented by two columns, long lines folded (never cut)."""
    text = text.expandtabs(4)
    indent = "  " if width - 2 >= _NARROWEST else ""
    out = []
    for line in _highlight(text, lexer, theme):
        for folded in _fold_runs(line, width - len(indent)):
            out.append(indent + ansi(folded))
    return out


def _fold_runs(line: list[Run], width: int) -> list[list[Run]]:
    """A line of runs cut into lines of at most `width` columns (a wide character needs two)."""
    if sum(cells(text) for text, _ in line) <= width:
        return [line]
    lines: list[list[Run]] = []
    current: list[Run] = []
    used = 0
    for text, sgr in line:
        piece: list[str] = []
        for ch in text:
            w = cells(ch)
            if used + w > width and (current or piece):
                if piece:
                    current.append(("".join(piece), sgr))
                    piece = []
                lines.append(current)
                current, used = [], 0
            piece.append(ch)
            used += w
        if piece:
            current.append(("".join(piece), sgr))
    lines.append(current)
    return lines


def _highlight(code: str, name: str, theme: Theme) -> list[list[Run]]:
    """Lines of styled runs, by pygments when it knows the language and colour is on."""
    lexer = _lexer(name) if theme.color and name else None
    if lexer is None:
        return [[(line, "")] if line else [] for line in code.split("\n")]
    lines: list[list[Run]] = [[]]
    for ttype, value in lexer.get_tokens(code):
        sgr = theme.token(ttype)
        first = True
        for part in value.split("\n"):
            if not first:
                lines.append([])
            first = False
            if part:
                lines[-1].append((part, sgr))
    wanted = code.count("\n") + 1
    return lines[:wanted] + [[]] * (wanted - len(lines))


def _lexer(name: str):
    if name not in _LEXERS:
        try:
            from pygments.lexers import get_lexer_by_name
            from pygments.util import ClassNotFound

            try:
                _LEXERS[name] = get_lexer_by_name(name, stripnl=False, ensurenl=False)
            except ClassNotFound:
                _LEXERS[name] = None
        except ImportError:  # pragma: no cover - a declared dependency, but keep working without it
            _LEXERS[name] = None
    return _LEXERS[name]
