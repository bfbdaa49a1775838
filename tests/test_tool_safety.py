"""Tool safety as a user runs it: timeouts, output caps, --allow-tool and --deny-tool.

Whatever happens to a tool (it hangs, floods, is denied or fails), the model gets one tool_result per
tool_use, checked here in the bodies the strict mock recorded, and the conversation goes on.
"""

from __future__ import annotations

import json
import time

import pytest

HANDLERS = """
import time

def hang():
    time.sleep(1000)

def flood(size=1000):
    return "x" * size

def guarded():
    return "guarded ran"

def fine():
    return "fine"

def boom():
    raise ValueError("no such thing")
"""

TOOLS = """
tools:
  - name: hang
    input_schema: {type: object}
    handler: h.py:hang
    timeout: 0.5
  - name: flood
    input_schema: {type: object, properties: {size: {type: integer}}}
    handler: h.py:flood
  - name: guarded
    input_schema: {type: object}
    handler: h.py:guarded
    confirm: true
  - name: fine
    input_schema: {type: object}
    handler: h.py:fine
  - name: boom
    input_schema: {type: object}
    handler: h.py:boom
"""


@pytest.fixture
def tools(tmp_path):
    (tmp_path / "h.py").write_text(HANDLERS)
    (tmp_path / "tools.yaml").write_text(TOOLS)
    return "tools.yaml"


def calls(*pairs):
    """A JSON prompt turn: the mock model calls these tools, then echoes their results."""
    return json.dumps({"tool_calls": [{"name": name, "input": value} for name, value in pairs]})


def sent_results(server):
    """The tool_result blocks the second request carried back to the model."""
    return server.requests[1].body["messages"][-1]["content"]


def test_a_hanging_tool_times_out_as_an_error_and_the_run_goes_on(toolchat, mock, tools):
    server = mock()
    started = time.monotonic()
    run = toolchat("--json", "-t", tools, calls(("hang", {})), server=server)
    elapsed = time.monotonic() - started
    assert run.code == 0, run
    assert run.json()["text"] == "hang: error: the tool timed out after 0.5 s"
    [result] = sent_results(server)
    assert (result["is_error"], result["content"]) == (True, "the tool timed out after 0.5 s")
    # The handler sleeps for 1000 s on an abandoned thread; the process does not wait for it.
    assert elapsed < 8, f"took {elapsed:.1f} s"


def test_output_over_the_cap_is_cut_with_a_note(toolchat, mock, tools):
    server = mock()
    run = toolchat("--tool-output-cap", "100", "-t", tools, calls(("flood", {"size": 1000})), server=server)
    assert run.code == 0, run
    [result] = sent_results(server)
    assert result["content"] == "x" * 100 + "\n[output cut: 1,000 characters, only the first 100 sent]"
    assert "is_error" not in result


def test_the_default_cap_is_100000_characters(toolchat, mock, tools):
    # A script, not the echo model: the answer need not carry 100,000 characters back.
    server = mock({"turns": [{"tool_calls": [{"name": "flood", "input": {"size": 150_000}}]}, {"text": "Done."}]})
    run = toolchat("-t", tools, "go", server=server)
    assert (run.code, run.out) == (0, "Done.\n"), run
    [result] = sent_results(server)
    assert result["content"].endswith("\n[output cut: 150,000 characters, only the first 100,000 sent]")
    assert result["content"].startswith("x" * 100_000 + "\n")


def test_output_under_the_cap_is_untouched(toolchat, mock, tools):
    server = mock()
    toolchat("--tool-output-cap", "1000", "-t", tools, calls(("flood", {"size": 1000})), server=server)
    assert sent_results(server)[0]["content"] == "x" * 1000


def test_allow_tool_runs_a_confirm_tool_without_asking(toolchat, mock, tools):
    run = toolchat("--allow-tool", "guarded", "-t", tools, calls(("guarded", {})), server=mock())
    assert (run.code, run.out) == (0, "guarded: guarded ran\n")


def test_allow_tool_from_the_config_file(toolchat, mock, tools, tmp_path):
    (tmp_path / "config" / "toolchat").mkdir(parents=True)
    (tmp_path / "config" / "toolchat" / "config.yaml").write_text("allow_tools: [guarded]\n")
    run = toolchat("-t", tools, calls(("guarded", {})), server=mock())
    assert (run.code, run.out) == (0, "guarded: guarded ran\n")


def test_without_allow_tool_a_confirm_tool_is_not_run_without_a_terminal(toolchat, mock, tools):
    server = mock()
    run = toolchat("-t", tools, calls(("guarded", {})), server=server)
    assert run.code == 0
    [result] = sent_results(server)
    assert result["is_error"] is True and result["content"].startswith("not run: tool 'guarded' needs")


def test_deny_tool_is_not_offered_and_a_call_to_it_is_refused(toolchat, mock, tools):
    server = mock()
    run = toolchat("--no-cache", "--deny-tool", "fine", "-t", tools, calls(("fine", {})), server=server)
    assert run.code == 0, run
    offered = [tool["name"] for tool in server.requests[0].body["tools"]]
    assert offered == ["hang", "flood", "guarded", "boom"]
    [result] = sent_results(server)
    assert result == {
        "type": "tool_result",
        "tool_use_id": result["tool_use_id"],
        "is_error": True,
        "content": "not run: tool 'fine' is denied by the user (--deny-tool)",
    }
    assert run.out == "fine: error: not run: tool 'fine' is denied by the user (--deny-tool)\n"
    assert len(server.requests) == 2  # the loop went on to the answer


def test_deny_tool_beats_allow_tool_and_yes(toolchat, mock, tools):
    server = mock()
    run = toolchat(
        "-y", "--allow-tool", "guarded", "--deny-tool", "guarded", "-t", tools, calls(("guarded", {})), server=server
    )
    assert run.code == 0
    assert sent_results(server)[0]["content"] == "not run: tool 'guarded' is denied by the user (--deny-tool)"


def test_unknown_names_for_allow_and_deny_are_usage_errors(toolchat, tools):
    run = toolchat("--dry-run", "--deny-tool", "nope", "-t", tools, "hi")
    assert (run.code, run.err) == (
        2,
        "toolchat: error: --deny-tool: no tool named 'nope' (tools: hang, flood, guarded, fine, boom)\n",
    )


def test_every_tool_use_gets_its_result_whatever_happened(toolchat, mock, tools):
    server = mock()
    run = toolchat(
        "--json",
        "--tool-output-cap",
        "100",
        "--deny-tool",
        "fine",
        "-t",
        tools,
        calls(
            ("fine", {}),
            ("boom", {}),
            ("flood", {"size": 500}),
            ("hang", {}),
            ("guarded", {}),
            ("invented", {}),
            ("flood", {"size": "big"}),
        ),
        server=server,
    )
    assert run.code == 0, run
    uses = [b for b in server.requests[1].body["messages"][1]["content"] if b["type"] == "tool_use"]
    results = sent_results(server)
    # One result per tool_use, in tool_use order, in one user message.
    assert [r["tool_use_id"] for r in results] == [u["id"] for u in uses]
    assert [(r.get("is_error", False), r["content"][:40]) for r in results] == [
        (True, "not run: tool 'fine' is denied by the us"),
        (True, "ValueError: no such thing"),
        (False, "x" * 40),
        (True, "the tool timed out after 0.5 s"),
        (True, "not run: tool 'guarded' needs the user's"),
        (True, "unknown tool 'invented'; the tools avail"),
        (True, "invalid input: size: 'big' is not of typ"),
    ]
    assert results[2]["content"].endswith("[output cut: 500 characters, only the first 100 sent]")
    doc = run.json()
    assert [c["is_error"] for c in doc["tool_calls"]] == [True, True, False, True, True, True, True]
