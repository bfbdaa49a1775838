"""-a/--attach: images, PDFs, text files and URLs as content blocks, types told from the content,
the API's limits checked before sending; images returned by tool handlers."""

from __future__ import annotations

import base64
import struct
import zlib

import pytest

from toolchat.attachments import attach, load
from toolchat.errors import UsageError

import conftest
from conftest import TEST_KEY, clean_env, run_chat


def png(width: int = 1, height: int = 1) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\x00\x00\x00" * width for _ in range(min(height, 2)))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


JPEG = (
    b"\xff\xd8\xff\xe0"
    + struct.pack(">H", 16)
    + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    + b"\xff\xc0"
    + struct.pack(">HBHH", 17, 8, 30, 40)
    + b"\x03"
    + b"\x00" * 9
    + b"\xff\xd9"
)
GIF = b"GIF89a" + struct.pack("<HH", 3, 2) + b"\x00\x00\x00;"
WEBP = (
    b"RIFF"
    + struct.pack("<I", 30)
    + b"WEBPVP8L"
    + struct.pack("<I", 10)
    + b"\x2f"
    + ((7 - 1) | ((5 - 1) << 14)).to_bytes(4, "little")
    + b"\x00" * 5
)
PDF = (
    b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Count 1 >> endobj\n"
    b"3 0 obj << /Type /Page /Parent 2 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_images_pdfs_and_text_become_blocks_with_the_type_of_their_content(tmp_path):
    files = {
        "a.png": png(),
        "photo.png": JPEG,
        "anim.gif": GIF,
        "pic.webp": WEBP,
        "doc.pdf": PDF,
        "notes.md": "# Notes\nsecond line\n".encode(),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    blocks = load([str(tmp_path / name) for name in files])
    assert [b["source"]["media_type"] if "source" in b else b["type"] for b in blocks] == [
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "application/pdf",
        "text",
    ]
    assert blocks[1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/jpeg", "data": b64(JPEG)},
    }  # named .png, holds a JPEG
    assert blocks[4] == {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": b64(PDF)},
    }
    assert blocks[5] == {"type": "text", "text": f"{tmp_path / 'notes.md'}:\n\n# Notes\nsecond line\n"}


def test_attach_type_overrides_detection_once_for_all_or_once_each(tmp_path):
    (tmp_path / "blob").write_bytes(b"\x01\x02binary")
    (tmp_path / "x.png").write_bytes(png())
    [forced] = load([str(tmp_path / "x.png")], ["text/plain"])
    assert forced["type"] == "text"
    one, two = load([str(tmp_path / "x.png"), str(tmp_path / "x.png")], ["image/png", "image/gif"])
    assert (one["source"]["media_type"], two["source"]["media_type"]) == ("image/png", "image/gif")
    with pytest.raises(UsageError, match=r"^-a .*blob: not an image \(png, jpeg, gif, webp\), a PDF or a text file"):
        load([str(tmp_path / "blob")])
    with pytest.raises(UsageError, match="one type for all attachments or one per -a"):
        load([str(tmp_path / "x.png")] * 3, ["image/png", "image/png"])


def test_urls_are_url_sources_by_extension_or_attach_type():
    assert load(["https://example.com/cat.JPG", "https://example.com/paper.pdf"]) == [
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.JPG"}},
        {"type": "document", "source": {"type": "url", "url": "https://example.com/paper.pdf"}},
    ]
    assert load(["https://example.com/render?id=3"], ["image/webp"])[0]["type"] == "image"
    with pytest.raises(UsageError, match=r"^-a https://example.com/render\?id=3: cannot tell an image from a PDF"):
        load(["https://example.com/render?id=3"])
    with pytest.raises(UsageError, match="takes URLs of images and PDFs only, not text/plain"):
        load(["https://example.com/a.txt"], ["text/plain"])


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda d: [d("big.png", png() + b"\x00" * (5 * 1024 * 1024))],
            r"^-a .*big.png is 5.2 MB; the API takes images up to 5 MB$",
        ),
        (
            lambda d: [d("wide.png", png(9000, 10))],
            r"^-a .*wide.png: 9000x10 pixels; the API takes images up to 8000x8000$",
        ),
        (lambda d: [d("x.png", png())] * 101, r"^-a: 101 images; the API takes at most 100 in a request$"),
        (
            lambda d: [d("x.png", png())] * 20 + [d("y.png", png(2500, 10))],
            r"^-a .*y.png: 2500x10 pixels; the API takes images up to 2000x2000 when a request has more than 20 images$",
        ),
        (
            lambda d: [
                d(
                    "long.pdf",
                    PDF.replace(
                        b"3 0 obj << /Type /Page /Parent 2 0 R >> endobj\n",
                        b"3 0 obj << /Type /Page /Parent 2 0 R >> endobj\n" * 101,
                    ),
                )
            ],
            r"^-a .*long.pdf: 101 pages; the API takes PDFs of up to 100 pages$",
        ),
        (lambda d: ["/nonexistent/photo.png"], r"^-a /nonexistent/photo.png: file not found$"),
    ],
)
def test_the_api_limits_are_checked_before_sending_and_name_the_file(tmp_path, make, message):
    def write(name: str, data: bytes) -> str:
        path = tmp_path / name
        if not path.exists():
            path.write_bytes(data)
        return str(path)

    with pytest.raises(UsageError, match=message):
        load(make(write))


def test_attachments_go_before_the_prompt_in_the_last_user_message():
    image = {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}
    assert attach([{"role": "user", "content": "What is it?"}], [image]) == [
        {"role": "user", "content": [image, {"type": "text", "text": "What is it?"}]}
    ]
    assert attach([{"role": "user", "content": ""}], [image]) == [{"role": "user", "content": [image]}]


def run_toolchat(tmp_path, server, *args, stdin: bytes | None = None):
    env = clean_env(tmp_path, TOOLCHAT_API_KEY=TEST_KEY, TOOLCHAT_BASE_URL=server.url)
    return conftest.run_toolchat(["--no-cache", *args], env, tmp_path, stdin, 60, text=False)


def test_binary_stdin_and_files_reach_the_strict_mock(tmp_path, mock):
    server = mock()
    (tmp_path / "doc.pdf").write_bytes(PDF)
    proc = run_toolchat(tmp_path, server, "-a", "-", "-a", "doc.pdf", "Describe", stdin=png())
    assert proc.returncode == 0, proc.stderr
    assert server.requests[0].body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": b64(png())}},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": b64(PDF)}},
                {"type": "text", "text": "Describe"},
            ],
        }
    ]


def test_a_file_over_a_limit_is_one_line_exit_2_and_nothing_is_sent(tmp_path, mock):
    server = mock()
    (tmp_path / "big.gif").write_bytes(GIF + b"\x00" * (6 * 1024 * 1024))
    proc = run_toolchat(tmp_path, server, "-a", "big.gif", "Describe")
    assert (proc.returncode, proc.stdout) == (2, b"")
    assert proc.stderr == b"toolchat: error: -a big.gif is 6.3 MB; the API takes images up to 5 MB\n"
    assert server.requests == []


def test_the_mock_refuses_an_image_that_is_not_its_media_type(mock):
    import requests

    server = mock()
    body = {
        "model": "m",
        "max_tokens": 5,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": b64(JPEG)}}
                ],
            }
        ],
    }
    reply = requests.post(
        server.url + "/v1/messages",
        json=body,
        timeout=10,
        headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
    )
    assert (reply.status_code, reply.json()["error"]["message"]) == (
        400,
        "messages.0.content.0.image.source.base64.data: Image does not match the provided media type image/png",
    )


HANDLERS = """
from pathlib import Path

def snapshot(kind):
    here = Path(__file__).with_name("shot.png")
    if kind == "path":
        return {"type": "image", "path": str(here)}
    if kind == "bytes":
        return here.read_bytes()
    return ["caption", {"type": "image", "data": here.read_bytes(), "media_type": "image/png"}]
"""

TOOLS = """
tools:
  - name: snapshot
    input_schema: {type: object, properties: {kind: {type: string}}, required: [kind]}
    handler: handlers.py:snapshot
"""


def test_tool_handlers_may_return_images(tmp_path, mock):
    (tmp_path / "handlers.py").write_text(HANDLERS)
    (tmp_path / "shot.png").write_bytes(png())
    (tmp_path / "tools.yaml").write_text(TOOLS)
    calls = [{"name": "snapshot", "input": {"kind": kind}} for kind in ("path", "bytes", "list")]
    server = mock({"turns": [{"tool_calls": calls}, {"text": "Seen."}]})
    events, result = run_chat(server, "Look.", [tmp_path / "tools.yaml"])
    assert (result.error, result.text) == (None, "Seen.")
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": b64(png())}}
    sent = server.requests[1].body["messages"][-1]["content"]
    assert [r["content"] for r in sent] == [[image], [image], [{"type": "text", "text": "caption"}, image]]
    assert [c.output for c in result.tool_calls] == ["[image/png]", "[image/png]", "caption\n[image/png]"]


def test_attachments_go_through_the_openai_dialect():
    from toolchat.dialects.base import Request
    from toolchat.dialects.openai import OpenAIDialect

    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    pdf = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}}
    messages = attach([{"role": "user", "content": "Read these."}], [image, pdf])
    body = OpenAIDialect().body(Request(model="m", max_tokens=5, messages=messages))
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {
                    "type": "file",
                    "file": {"filename": "document.pdf", "file_data": "data:application/pdf;base64,JVBERi0="},
                },
                {"type": "text", "text": "Read these."},
            ],
        }
    ]
