"""Incremental Server-Sent Events decoding from raw bytes. Pure: no I/O, no knowledge of Anthropic.

Lines end at CRLF, LF or a bare CR, decided on bytes. A CR that ends one chunk and an LF that starts
the next are one line end. Text is decoded as UTF-8 only once a whole line is in hand, so a character
split across chunks, or U+2028 inside a JSON string, never breaks a line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LINE_END = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True)
class ServerSentEvent:
    event: str
    data: str
    id: str | None = None
    retry: int | None = None


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

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        if self._skip_lf and chunk:
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
            self._skip_lf = False
        if not chunk:
            return []
        buffer = self._buffer + chunk if self._buffer else chunk
        events: list[ServerSentEvent] = []
        start = 0
        for match in _LINE_END.finditer(buffer):
            end = match.end()
            if match.group() == b"\r" and end == len(buffer):
                # Cannot know yet whether an LF follows in the next chunk.
                self._skip_lf = True
            event = self._line(buffer[start:match.start()])
            if event is not None:
                events.append(event)
            start = end
        self._buffer = buffer[start:]
        return events

    def flush(self) -> list[ServerSentEvent]:
        """End of stream: handle an unterminated last line and dispatch a pending event."""
        events = []
        if self._buffer:
            event = self._line(self._buffer)
            self._buffer = b""
            if event is not None:
                events.append(event)
        event = self._dispatch()
        if event is not None:
            events.append(event)
        return events

    def _line(self, raw: bytes) -> ServerSentEvent | None:
        if not raw:
            return self._dispatch()
        line = raw.decode("utf-8", errors="replace")
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

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._has_fields:
            return None
        event = ServerSentEvent(self._event, "\n".join(self._data), self._id, self._retry)
        self._event, self._data, self._retry, self._has_fields = "", [], None, False
        # Per the SSE spec the last event id persists across events.
        return event
