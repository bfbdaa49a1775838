"""The SSE decoder on its own: bytes in any chunking -> the same events."""

from toolchat.sse import ServerSentEvent, SSEDecoder


def decode(*chunks: bytes) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    return events + decoder.flush()


def test_event_and_data_lines_make_one_event():
    assert decode(b"event: ping\ndata: {}\n\n") == [ServerSentEvent("ping", "{}")]


def test_crlf_split_between_chunks_is_one_line_end():
    events = decode(b"event: a\r", b"\ndata: 1\r", b"\n\r", b"\n")
    assert events == [ServerSentEvent("a", "1")]


def test_bare_cr_line_ends():
    assert decode(b"event: a\rdata: 1\r\revent: b\rdata: 2\r\r") == [
        ServerSentEvent("a", "1"),
        ServerSentEvent("b", "2"),
    ]


def test_comment_lines_are_ignored():
    assert decode(b": keep-alive\n\n: OPENROUTER PROCESSING\ndata: x\n\n") == [ServerSentEvent("", "x")]


def test_multi_line_data_joins_with_newline():
    assert decode(b"data: one\ndata: two\ndata:three\n\n") == [ServerSentEvent("", "one\ntwo\nthree")]


def test_only_one_space_after_the_colon_is_stripped():
    assert decode(b"data:  padded \n\n") == [ServerSentEvent("", " padded ")]


def test_u2028_inside_data_does_not_split_the_line():
    payload = '{"text": "a\u2028b\u2029c\x85d"}'.encode()
    assert decode(b"data: " + payload + b"\n\n") == [ServerSentEvent("", payload.decode())]


def test_utf8_character_split_across_chunks():
    raw = "data: caf\u00e9 \U0001f600\n\n".encode()
    cut = raw.index(b"\xc3") + 1
    emoji = raw.index(b"\xf0") + 2
    assert decode(raw[:cut], raw[cut:emoji], raw[emoji:]) == [ServerSentEvent("", "caf\u00e9 \U0001f600")]


def test_last_event_without_its_blank_line_is_dispatched_at_end():
    assert decode(b"data: a\n\ndata: b\n") == [ServerSentEvent("", "a"), ServerSentEvent("", "b")]
    assert decode(b"data: last") == [ServerSentEvent("", "last")]


def test_every_one_byte_chunking_gives_the_same_events():
    raw = b"event: x\r\ndata: 1\r\n\r\n: c\rdata: \xe2\x80\xa8\n\nevent: y\ndata: 2"
    whole = decode(raw)
    assert decode(*[raw[i : i + 1] for i in range(len(raw))]) == whole
    assert whole == [ServerSentEvent("x", "1"), ServerSentEvent("", "\u2028"), ServerSentEvent("y", "2")]


def test_empty_data_line_gives_an_event_with_empty_data():
    assert decode(b"data:\n\n") == [ServerSentEvent("", "")]


def test_blank_lines_alone_dispatch_nothing():
    assert decode(b"\n\n\r\n\r\r") == []


def test_id_and_retry_fields():
    assert decode(b"id: 7\nretry: 1500\ndata: x\n\n") == [ServerSentEvent("", "x", "7", 1500)]


def test_pieces_of_whole_events_decode_as_the_same_bytes_fed_one_at_a_time():
    # The fast path (a piece that ends at a blank line) against the line-by-line path.
    pieces = [
        b"event: a\ndata: 1\n\n",
        b"id: 7\nevent: b\ndata: 2\n\n",
        b"event: c\ndata: 3\n\n",
        b": comment\n\nretry: 50\ndata: x\ndata: y\n\n\n\n",
        b'event: d\ndata: {"k": "\xc3\xa9"}\n\n',
        b"event:e\ndata:5\n\n",
        b"data: only\n\nevent: f\ndata: 6\n\n",
        b"event: g\n\n",
    ]
    decoder = SSEDecoder()
    fast = [event for piece in pieces for event in decoder.feed(piece)] + decoder.flush()
    slow = decode(*[bytes([b]) for b in b"".join(pieces)])
    assert fast == slow
    assert [(e.event, e.data, e.id, e.retry) for e in fast] == [
        ("a", "1", None, None),
        ("b", "2", "7", None),
        ("c", "3", "7", None),
        ("", "x\ny", "7", 50),
        ("d", '{"k": "é"}', "7", None),
        ("e", "5", "7", None),
        ("", "only", "7", None),
        ("f", "6", "7", None),
        ("g", "", "7", None),
    ]


def test_pieces_of_whole_events_decode_as_the_same_bytes_one_at_a_time():
    """Pieces that hold whole events (after the first) take the decoder's whole-event path, the
    `event:` + `data:` pair and the data-only event (OpenAI) built directly: the same events as
    the line-by-line path, the last event id carried over, a retry field kept to its own event."""
    pieces = [
        b"data: first\n\n",
        b"id: 7\ndata: a\n\n",
        b"data: b\n\n",
        b"event: e\ndata: c\n\ndata: d\n\n",
        b"retry: 10\ndata: r\n\n",
        b'data: {"choices": []}\n\n',
        b": keep-alive\n\n",
        b"data: last\n\n",
    ]
    raw = b"".join(pieces)
    expected = decode(*[raw[i : i + 1] for i in range(len(raw))])
    assert decode(*pieces) == expected
    assert expected == [
        ServerSentEvent("", "first"),
        ServerSentEvent("", "a", "7"),
        ServerSentEvent("", "b", "7"),
        ServerSentEvent("e", "c", "7"),
        ServerSentEvent("", "d", "7"),
        ServerSentEvent("", "r", "7", 10),
        ServerSentEvent("", '{"choices": []}', "7"),
        ServerSentEvent("", "last", "7"),
    ]
