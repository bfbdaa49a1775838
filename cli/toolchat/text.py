"""The one place that decides what untrusted text may reach a terminal, and how it is clipped.

Text from a model (answer, thinking), a tool (input, output), a server (error messages, headers) or a
file is untrusted: escape sequences in it could clear the screen, retitle the window, write the
clipboard (OSC 52), hide text, or reorder what is shown (bare CR, backspace, BIDI overrides:
"Trojan Source", CVE-2021-42574). Every path to a terminal passes such text through `neutralise`,
which shows each of those characters as a visible escape (`\\x1b`, `\\r`, `\\u202e`) instead.
JSON output does not need it: JSON escaping keeps the exact text and is inert, once `dumps` also
escapes the few characters json.dumps leaves raw (C1 and BIDI controls).
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

# What acts on a terminal: C0 controls but \t and \n, DEL, C1 controls (U+0080-U+009F; U+009B is CSI
# on some terminals), and the BIDI embedding/override/isolate controls. ESC is a C0 control, so every
# escape sequence (CSI, OSC, DCS, APC, ...) loses its introducer and is shown as text. A bare CR is
# matched too: only CR LF, the line end of Windows text, passes (as the line end it is).
UNSAFE = re.compile(r"\r(?!\n)|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x80-\x9f\u202a-\u202e\u2066-\u2069]")

_NAMED = {"\r": "\\r", "\x1b": "\\x1b", "\b": "\\b", "\x07": "\\a", "\x0b": "\\v", "\x0c": "\\f", "\x00": "\\0"}


def escape_char(char: str) -> str:
    """The visible form of one unsafe character: `\\x1b`, `\\r`, `\\u202e`..."""
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def neutralise(text: str, mark: Callable[[str], str] | None = None) -> str:
    """`text` with every character that could act on a terminal shown as a visible escape.

    `mark`, if given, wraps each escape (for example to dim it where colour is on). A CR LF pair is
    kept as a line end; a lone CR is escaped, since it would let later text overwrite earlier text.
    """
    if not UNSAFE.search(text):  # the common case: nothing to do, no copy
        return text
    if mark is None:
        return UNSAFE.sub(lambda m: escape_char(m.group()), text)
    return UNSAFE.sub(lambda m: mark(escape_char(m.group())), text)


def is_safe(text: str) -> bool:
    """Whether `text` holds nothing that `neutralise` would change."""
    return UNSAFE.search(text) is None


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, an ellipsis marking the cut."""
    if len(text) <= limit:
        return text
    return "…"[:limit] if limit <= 1 else text[: limit - 1] + "…"


def one_line(text: Any, width: int | None = 200) -> str:
    """Untrusted text as one safe line: neutralised, whitespace runs folded to one space, clipped
    to `width` characters (None: not clipped).

    Neutralised first, so a bare CR, a form feed or a C1 control shows as its escape instead of
    being folded away as whitespace (the trick stays visible); line ends and tabs fold to spaces.
    """
    line = " ".join(neutralise(str(text)).split())
    return line if width is None else clip(line, width)


# JSON needs no neutralising: json.dumps escapes C0 controls (ESC becomes \u001b). But with
# ensure_ascii=False it writes these raw inside strings: DEL, the C1 controls (U+009B is CSI on some
# terminals), the BIDI controls, and U+2028/U+2029, which some line splitters (Python's
# str.splitlines, JavaScript readers) take for line ends. `dumps` escapes them as \uXXXX too.
_JSON_UNSAFE = re.compile(r"[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def dumps(value: Any, **options: Any) -> str:
    """`json.dumps(value, ensure_ascii=False, **options)` that is also inert on a terminal.

    Still valid JSON that parses to the same value: the characters above only ever occur inside
    JSON strings (json.dumps writes nothing else outside ASCII), where `\\uXXXX` means the same.
    """
    text = json.dumps(value, ensure_ascii=False, **options)
    if not _JSON_UNSAFE.search(text):
        return text
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def compact_json(value: Any) -> str:
    """JSON on one line for people (`{"a": 1, "b": 2}`); not neutralised: pass it through one_line."""
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
