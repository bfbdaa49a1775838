"""Incremental Server-Sent Events decoding from raw bytes. Pure: no I/O, no knowledge of Anthropic.

Lines end at CRLF, LF or a bare CR, decided on bytes. A CR that ends one chunk and an LF that starts
the next are one line end. Text is decoded as UTF-8 only once a whole line is in hand, so a character
split across chunks, or U+2028 inside a JSON string, never breaks a line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_LINE_END = re.compile(rb"\r\n|\r|\n")
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class ServerSentEvent:
    event: str
    data: str
    id: str | None = None
    retry: int | None = None
    # The stream ended in the middle of this event's last line: its data is probably cut short.
    cut: bool = field(default=False, compare=False)


class SSEDecoder:
    """Feed byte chunks with `feed`; each call returns the events those bytes completed."""

    def __init__(self) -> None:
        self._buffer = b""
        self._skip_lf = False  # the previous chunk ended in CR: a leading LF belongs to it
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None
        self._retry: int | None = None
        self._has_fields = False
        self._at_start = True  # a UTF-8 byte order mark may open the stream (the spec drops it)

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        if self._skip_lf and chunk:
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
            self._skip_lf = False
        if not chunk:
            return []
        if not self._buffer and not self._at_start and chunk[-2:] == b"\n\n" and b"\r" not in chunk:
            # The common case by far: a piece (one HTTP chunk, as the server flushed it) that holds
            # whole events, LF line ends only. Decoded at once and cut at the blank lines.
            return self._whole_events(chunk.decode("utf-8", errors="replace"))
        buffer = self._buffer + chunk if self._buffer else chunk
        if self._at_start:
            if len(buffer) < 3 and _BOM.startswith(buffer):
                self._buffer = buffer  # too short to tell yet
                return []
            self._at_start = False
            buffer = buffer.removeprefix(_BOM)
        events: list[ServerSentEvent] = []
        if b"\r" not in buffer:
            # The common case, LF line ends only: decode every whole line at once and split the text
            # (an LF byte is never part of a UTF-8 character, so each line decodes the same).
            last = buffer.rfind(b"\n")
            if last < 0:
                self._buffer = buffer
                return events
            self._buffer = buffer[last + 1 :]
            for line in buffer[:last].decode("utf-8", errors="replace").split("\n"):
                event = self._text_line(line) if line else self._dispatch()
                if event is not None:
                    events.append(event)
            return events
        start = 0
        for match in _LINE_END.finditer(buffer):
            end = match.end()
            if match.group() == b"\r" and end == len(buffer):
                # Cannot know yet whether an LF follows in the next chunk.
                self._skip_lf = True
            event = self._line(buffer[start : match.start()])
            if event is not None:
                events.append(event)
            start = end
        self._buffer = buffer[start:]
        return events

    def _whole_events(self, text: str) -> list[ServerSentEvent]:
        """`text`: whole lines ending in a blank line, no CR. The same as _text_line/_dispatch line by
        line, with the usual `event: NAME` + `data: JSON` pair built directly."""
        events = []
        for block in text[:-2].split("\n\n"):
            lines = block.split("\n")
            if len(lines) == 2 and not self._has_fields and lines[0][:7] == "event: " and lines[1][:6] == "data: ":
                events.append(ServerSentEvent(lines[0][7:], lines[1][6:], self._id))
                continue
            if len(lines) == 1 and not self._has_fields and lines[0][:6] == "data: ":  # data only (OpenAI)
                events.append(ServerSentEvent("", lines[0][6:], self._id))
                continue
            for line in lines:
                event = self._text_line(line) if line else self._dispatch()
                if event is not None:
                    events.append(event)
            event = self._dispatch()
            if event is not None:
                events.append(event)
        return events

    def flush(self) -> list[ServerSentEvent]:
        """End of stream: handle an unterminated last line and dispatch a pending event."""
        events = []
        cut = bool(self._buffer)
        if self._buffer:
            event = self._line(self._buffer)
            self._buffer = b""
            if event is not None:
                events.append(event)
        event = self._dispatch(cut)
        if event is not None:
            events.append(event)
        return events

    def _line(self, raw: bytes) -> ServerSentEvent | None:
        if not raw:
            return self._dispatch()
        return self._text_line(raw.decode("utf-8", errors="replace"))

    def _text_line(self, line: str) -> ServerSentEvent | None:
        if line.startswith(":"):
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._id = value
        elif name == "retry":
            if value.isdigit():
                self._retry = int(value)
        else:
            return None
        self._has_fields = True
        return None

    def _dispatch(self, cut: bool = False) -> ServerSentEvent | None:
        if not self._has_fields:
            return None
        event = ServerSentEvent(self._event, "\n".join(self._data), self._id, self._retry, cut)
        self._event, self._data, self._retry, self._has_fields = "", [], None, False
        # Per the SSE spec the last event id persists across events.
        return event
