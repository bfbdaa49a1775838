"""The seams are real: Chat over a Dialect and a fake transport (no HTTP), a fake ToolSource under
the ToolRunner's policies, the schema-check cache, and no import circles in the package."""

from __future__ import annotations

import ast
import re
import importlib
import io
import json
import threading
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, clean_env, message_events, sse
from toolchat.chat import Chat
from toolchat.dialects.anthropic import AnthropicDialect
from toolchat.errors import StreamError
from toolchat.events import Finished, TextDelta, ToolCall, ToolResult
from toolchat.settings import Settings
from toolchat.sinks.base import Sink
from toolchat.toolsources.base import Call, ToolOutput, ToolSource, ToolSpec
from toolchat.toolsources.runner import ToolRunner
from toolchat.toolsources.validate import plainly_valid

PACKAGE = ROOT / "cli" / "toolchat"


class FakeReply:
    def __init__(self, chunks: list[bytes]):
        self.kind = "sse"
        self._chunks = chunks
        self.closed = False

    def chunks(self):
        yield from self._chunks

    def close(self) -> None:
        self.closed = True


class FakeTransport:
    """Replies with prepared byte chunks, one list per request; records the bodies sent."""

    def __init__(self, *replies: list[bytes]):
        self.replies = list(replies)
        self.bodies: list[dict] = []

    def send(self, body: dict) -> FakeReply:
        self.bodies.append(json.loads(json.dumps(body)))  # a copy: the transcript grows later
        return FakeReply(self.replies.pop(0))

    def scrubbed(self, error):
        return error

    def close(self) -> None:
        pass


def chopped(text: str, size: int) -> list[bytes]:
    data = text.encode("utf-8")
    return [data[i : i + size] for i in range(0, len(data), size)]


class Pictures(ToolSource):
    """A fake source: `snap` answers with text and an image, `slow` outlives its timeout."""

    name = "fake"

    def __init__(self):
        self.calls: list[tuple[str, dict]] = []

    def tools(self) -> list[ToolSpec]:
        schema = {"type": "object", "properties": {"what": {"type": "string"}}, "required": ["what"]}
        return [
            ToolSpec("snap", "Take a picture", schema, source="fake:camera"),
            ToolSpec("slow", "Never done", {"type": "object"}, source="fake:camera", timeout=0.2),
            ToolSpec("guarded", "Asks first", {"type": "object"}, source="fake:camera", confirm=True),
        ]

    def call(self, name: str, input: dict, timeout: float) -> ToolOutput:
        self.calls.append((name, input))
        if name == "slow":
            time.sleep(30)
        if name == "snap":
            return ToolOutput(
                [
                    {"type": "text", "text": f"a picture of {input['what']}"},
                    ToolOutput.of_image("iVBORw0KGgo=", "image/png").content[0],
                ]
            )
        return ToolOutput.of_text("ok")


def test_chat_runs_over_byte_chunks_through_the_dialect_with_no_http():
    body = sse(*message_events({"type": "text", "text": "Hello, wörld!", "pieces": ["Hel", "lo, ", "wörld!"]}))
    transport = FakeTransport(chopped(body, 7))  # chunks cut through events, lines and a UTF-8 char
    chat = Chat(Settings(model="m", cache=False), AnthropicDialect(), transport, ToolRunner())
    events = list(chat.run([{"role": "user", "content": "hi"}]))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello, wörld!"
    assert isinstance(events[-1], Finished)
    result = events[-1].result
    assert (result.text, result.stop_reason, result.error, result.exit_code) == ("Hello, wörld!", "end_turn", None, 0)
    assert transport.bodies == [
        {"model": "m", "max_tokens": 4096, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    ]


def test_a_fake_tool_source_answers_with_text_and_image_blocks():
    tool_turn = sse(
        *message_events(
            {"type": "tool_use", "id": "toolu_1", "name": "snap", "json": ['{"what": ', '"a cat"}']},
            stop_reason="tool_use",
        )
    )
    final = sse(*message_events({"type": "text", "text": "A cat."}))
    source = Pictures()
    transport = FakeTransport(chopped(tool_turn, 5), chopped(final, 11))
    chat = Chat(Settings(model="m", cache=False), AnthropicDialect(), transport, ToolRunner([source]))
    events = list(chat.run([{"role": "user", "content": "picture?"}]))
    assert [type(e).__name__ for e in events if isinstance(e, (ToolCall, ToolResult))] == ["ToolCall", "ToolResult"]
    assert source.calls == [("snap", {"what": "a cat"})]
    assert [t["name"] for t in transport.bodies[0]["tools"]] == ["snap", "slow", "guarded"]
    # The image goes back to the model as a content block; people see its text and a placeholder.
    assert transport.bodies[1]["messages"][2] == {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "toolu_1",
                "content": [
                    {"type": "text", "text": "a picture of a cat"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                ],
            }
        ],
    }
    [call] = events[-1].result.tool_calls
    assert (call.output, call.is_error, call.source) == ("a picture of a cat\n[image/png]", False, "fake:camera")
    assert events[-1].result.text == "A cat."


def test_the_runner_applies_every_policy_to_any_source():
    asked = []

    def approve(spec, call):
        asked.append(spec.name)
        return "not run: the user declined"

    runner = ToolRunner([Pictures()], deny=["slow"], approve=approve, output_cap=10)
    assert runner.names() == ["snap", "guarded"]  # denied: not offered
    results = {
        r.id: r
        for r in runner.run(
            [
                Call("1", "snap", {"what": "a very long cat"}),
                Call("2", "slow", {}),
                Call("3", "guarded", {}),
                Call("4", "snap", {"what": 3}),
                Call("5", "nope", {}),
            ]
        )
    }
    assert asked == ["guarded"]
    # The cap counts the text of all blocks; the image is kept.
    assert results["1"].content == [
        {"type": "text", "text": "a picture \n[output cut: 28 characters, only the first 10 sent]"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
    ]
    assert results["2"].output == "not run: tool 'slow' is denied by the user (--deny-tool)"
    assert results["3"].output == "not run: the user declined"
    assert results["4"].output == "invalid input: what: 3 is not of type 'string'"
    assert results["5"].output == "unknown tool 'nope'; the tools available are: snap, guarded"
    assert [results[i].is_error for i in "12345"] == [False, True, True, True, True]

    one_at_a_time = ToolRunner([Pictures()], parallel=False, yes=True)
    first, second = sorted(one_at_a_time.run([Call("a", "guarded", {}), Call("b", "guarded", {})]), key=lambda r: r.id)
    assert (first.output, second.output) == (
        "ok",
        "not run: at most one tool call per turn (--no-parallel); call the tools one at a time",
    )


def test_a_source_call_that_overruns_its_timeout_is_reported_as_timed_out():
    [result] = ToolRunner([Pictures()]).run([Call("1", "slow", {})])
    assert (result.output, result.is_error) == ("the tool timed out after 0.2 s", True)


def test_two_sources_may_not_offer_the_same_tool_name():
    from toolchat.errors import ToolsFileError

    with pytest.raises(ToolsFileError, match="tool 'snap': name: already defined in fake:camera"):
        ToolRunner([Pictures(), Pictures()])


def test_the_decoder_shows_what_came_before_a_failure_in_the_same_chunk():
    events = message_events({"type": "text", "text": "partial"})[:4]
    body = sse(*events, {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})
    decoder = AnthropicDialect().decoder()
    assert [e.text for e in decoder.feed(body.encode()) if isinstance(e, TextDelta)] == ["partial"]
    assert decoder.committed  # shown: a retry would show it twice
    with pytest.raises(Exception, match="overloaded_error: busy"):
        decoder.close()


def test_a_tool_use_block_commits_the_attempt_before_any_text():
    events = message_events({"type": "tool_use", "id": "t", "name": "x", "json": []})[:3]
    decoder = AnthropicDialect().decoder()
    assert decoder.feed(sse(*events[:2]).encode()) == []
    assert not decoder.committed  # message_start and ping: nothing shown, nothing begun
    assert decoder.feed(sse(events[2]).encode()) == []
    assert decoder.committed
    with pytest.raises(StreamError, match="before message_stop"):
        decoder.close()
        decoder.message()


def test_views_and_save_are_sinks():
    from toolchat.sinks.transcript import SaveSink
    from toolchat.views.jsonout import JsonView
    from toolchat.views.ndjson import NdjsonView
    from toolchat.views.plain import PlainView

    for view in (PlainView, JsonView, NdjsonView, SaveSink):
        assert issubclass(view, Sink), view


# ------------------------------------------------------------------ the schema-check cache

TOOLS = """tools:
  - name: add
    input_schema: {type: object, properties: {a: {type: integer}}}
    handler: h.py:add
"""

PROBE = (
    "import sys; from toolchat.toolsources.yaml import YamlSource; YamlSource([sys.argv[1]]); "
    "print('jsonschema' in sys.modules)"
)


def test_schemas_of_an_unchanged_tools_file_are_checked_once(tmp_path):
    (tmp_path / "h.py").write_text("def add(a=0):\n    return a\n")
    tools = tmp_path / "tools.yaml"
    tools.write_text(TOOLS)
    env = clean_env(tmp_path)

    def checked() -> bool:
        proc = subprocess.run(
            [sys.executable, "-c", PROBE, str(tools)], env=env, capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip() == "True"  # jsonschema imported: the schemas were checked

    assert checked() is True
    assert checked() is False
    [marker] = (tmp_path / "cache" / "toolchat" / "schemas").iterdir()
    marker.write_text("garbage")  # a corrupt marker counts as no marker, and is written again
    assert checked() is True
    assert checked() is False
    tools.write_text(TOOLS.replace("integer", "number"))  # other bytes: checked again
    assert checked() is True
    assert checked() is False


def test_an_invalid_schema_is_never_remembered_as_checked(tmp_path):
    from toolchat.errors import ToolsFileError
    from toolchat.toolsources.yaml import YamlSource

    (tmp_path / "h.py").write_text("def add(a=0):\n    return a\n")
    tools = tmp_path / "tools.yaml"
    tools.write_text(TOOLS.replace("{type: integer}", "{type: 12}"))
    for _ in range(2):
        with pytest.raises(ToolsFileError, match="not a valid JSON Schema"):
            YamlSource([tools])


SCHEMAS = [
    {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]},
    {"type": "object", "properties": {"s": {"type": "string", "enum": ["x", "y"]}}, "additionalProperties": False},
    {"type": "object", "properties": {"n": {"type": "number"}, "f": {"type": "boolean"}, "z": {"type": "null"}}},
    {"type": "object", "properties": {"n": {"type": "integer", "minimum": 3}}},
    {"type": "object", "$schema": "http://json-schema.org/draft-04/schema#", "properties": {"i": {"type": "integer"}}},
]
INPUTS = [
    {},
    {"a": 1, "b": 2},
    {"a": 1.0, "b": 2},
    {"a": True, "b": 2},
    {"a": "1", "b": 2},
    {"s": "x"},
    {"s": "z"},
    {"s": 1},
    {"t": 1},
    {"n": 1},
    {"n": 1.5},
    {"n": False},
    {"f": 0},
    {"z": None},
    {"z": 0},
    {"n": 2},
    {"i": 1.0},
    {"i": 2},
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_the_fast_path_only_accepts_what_jsonschema_accepts(schema):
    import jsonschema

    validator = jsonschema.validators.validator_for(schema)(schema)
    for value in INPUTS:
        if plainly_valid(schema, value):
            assert validator.is_valid(value), (schema, value)
    assert not plainly_valid(SCHEMAS[3], {"n": 2})  # a keyword it does not know: jsonschema decides


# ------------------------------------------------------------------ no import circles


def _module_imports(path: Path) -> set[str]:
    """The toolchat modules `path` imports at module level (imports inside functions are lazy)."""
    name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if name.endswith(".__init__"):
        name = name[: -len(".__init__")]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("toolchat")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("toolchat"):
                found.add(target)
                found |= {f"{target}.{alias.name}" for alias in node.names}
    return found


def test_every_module_imports_and_none_takes_part_in_an_import_circle():
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = path
    for name in modules:
        if name != "toolchat.__main__":  # that one runs the command line
            importlib.import_module(name)
    graph = {name: {m for m in _module_imports(path) if m in modules and m != name} for name, path in modules.items()}
    # A package's __init__ importing nothing is the rule here, so edges into packages are real.
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for child in sorted(graph[name]):
            if state.get(child) == 1:
                raise AssertionError("import circle: " + " -> ".join(stack[stack.index(child) :] + [child]))
            if child not in state:
                visit(child)
        stack.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_the_readme_layout_names_every_module_of_the_package_and_nothing_else():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Development", 1)[1].split("```", 2)[1]
    named = set(re.findall(r"[\w]+\.py|[\w]+/", block))
    top = {p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py")}
    packages = {p.name + "/" for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    inside = {
        p.name
        for folder in ("dialects", "toolsources", "sinks")
        for p in (PACKAGE / folder).glob("*.py")
        if p.name != "__init__.py"
    }
    assert top | packages <= named
    assert inside <= named
    assert {n for n in named if n.endswith(".py")} <= top | inside | {p.name for p in (PACKAGE / "views").glob("*.py")}


class _Flushes(io.StringIO):
    """A stdout that records, at each flush, the thread that flushed and what had gone out."""

    def __init__(self):
        super().__init__()
        self.seen: list[tuple[str, str]] = []

    def flush(self):
        self.seen.append((threading.current_thread().name, self.getvalue()))


def _text_reads(pieces: list[str], per_read: int = 1) -> list[bytes]:
    """The SSE body of an answer of `pieces`, cut into network reads of `per_read` deltas each
    (the first read also holds the starts, the last one the ends)."""
    body = sse(*message_events({"type": "text", "text": "".join(pieces), "pieces": pieces})).encode()
    events = [e + b"\n\n" for e in body.split(b"\n\n")[:-1]]
    head, deltas, tail = events[:3], events[3 : 3 + len(pieces)], events[3 + len(pieces) :]
    reads = [b"".join(deltas[i : i + per_read]) for i in range(0, len(deltas), per_read)]
    return [b"".join(head) + reads[0], *reads[1:-1], reads[-1] + b"".join(tail)]


def _play_into_plain_view(reads, out: _Flushes, pause_before=None) -> None:
    """Run a chat over `reads` into a PlainView on `out`; `pause_before(i)` runs before read i."""
    from toolchat.views.plain import PlainView

    class Paced(FakeTransport):
        def send(self, body):
            reply = super().send(body)
            chunks = reply._chunks

            def paced():
                for i, chunk in enumerate(chunks):
                    if pause_before is not None:
                        pause_before(i)
                    yield chunk

            reply.chunks = paced
            return reply

    view = PlainView(out=out, err=io.StringIO())
    chat = Chat(Settings(model="m"), AnthropicDialect(), Paced(reads), ToolRunner())
    for event in chat.run([{"role": "user", "content": "hi"}]):
        view.handle(event)
    view.close()


def test_the_plain_view_does_not_flush_once_per_delta():
    from toolchat.views.plain import FLUSH_INTERVAL

    pieces = [f"t{i:04d} " for i in range(2000)]
    started = time.monotonic()
    out = _Flushes()
    _play_into_plain_view(_text_reads(pieces), out)  # 2,000 reads back to back, a delta each
    elapsed = time.monotonic() - started
    assert out.getvalue() == "".join(pieces) + "\n"
    # Not one flush per read: each flush of the main thread comes FLUSH_INTERVAL after the last
    # flush, and the flusher's FLUSH_INTERVAL after a deferred read, so at most two per interval
    # (and the last one), however slow the machine.
    assert len(out.seen) <= 2 * elapsed / FLUSH_INTERVAL + 3, (len(out.seen), elapsed)
    assert len(out.seen) < len(pieces) / 4, (len(out.seen), elapsed)
    assert out.seen[-1][1] == out.getvalue()


def test_text_goes_out_while_the_stream_pauses_and_at_once_after_a_pause():
    from toolchat.views.plain import FLUSH_INTERVAL

    pieces = ["ab", "cd", "ef", "gh"]
    out = _Flushes()
    shown_in_pause: list[str] = []

    def pause_before(i):
        if i == 2:  # "ab" went out at once (the first flush), "cd" within FLUSH_INTERVAL
            time.sleep(FLUSH_INTERVAL * 20)
            shown_in_pause.append(out.seen[-1][1])

    _play_into_plain_view(_text_reads(pieces), out, pause_before)
    assert out.getvalue() == "abcdefgh\n"
    assert shown_in_pause == ["abcd"]  # nothing held back while the stream waits
    by_thread = [(name, text) for name, text in out.seen]
    assert ("MainThread", "ab") in by_thread  # the first read's text: flushed at once
    assert ("toolchat-flush", "abcd") in by_thread  # the second's: by the flusher, within the interval
    assert ("MainThread", "abcdef") in by_thread  # after the pause: at once again
