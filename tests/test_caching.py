"""Prompt caching: where toolchat puts its cache_control breakpoints, and the mock's accounting of
them (prefix match at breakpoints, minimum length, lifetimes, the API's rules as 400s)."""

from __future__ import annotations

import json

import pytest

from toolchat.dialects.anthropic import build_body
from toolchat.dialects.cache import breakpoints, place_breakpoints
from toolchat.mock.cache import PromptCache
from toolchat.mock.validate import ApiError

from conftest import run_chat

HANDLERS = """
def add(a, b):
    return a + b

def echo(text):
    return text
"""

TOOLS = """
tools:
  - name: add
    description: Add two numbers and say what the sum is
    input_schema: {type: object, properties: {a: {type: number}, b: {type: number}}, required: [a, b]}
    handler: handlers.py:add
  - name: echo
    description: Say the text back
    input_schema: {type: object, properties: {text: {type: string}}, required: [text]}
    handler: handlers.py:echo
"""

SYSTEM = "You are a careful calculator. " * 20
EPHEMERAL = {"type": "ephemeral"}


@pytest.fixture
def tools_file(tmp_path):
    (tmp_path / "handlers.py").write_text(HANDLERS)
    path = tmp_path / "tools.yaml"
    path.write_text(TOOLS)
    return path


def loop_script(tool_turns: int = 4) -> dict:
    turns = [
        {"text": f"Step {n}.", "tool_calls": [{"name": "add", "input": {"a": n, "b": 1}}]} for n in range(tool_turns)
    ]
    return {"turns": turns + [{"text": "Done: {results}"}]}


def turn_usages(events) -> list[dict]:
    from toolchat.events import TurnEnd

    return [e.usage for e in events if isinstance(e, TurnEnd)]


def test_breakpoints_on_turns_1_2_and_5_of_a_tool_loop(mock, tools_file):
    server = mock(loop_script(4))
    events, result = run_chat(server, "Add up.", [tools_file], system=SYSTEM, cache=True)
    assert (result.error, result.turns) == (None, 5)
    bodies = [r.body for r in server.requests]
    # Turn 1: the last tool, the system prompt, the prompt.
    assert breakpoints(bodies[0]) == ["tools.1", "system.0", "messages.0.0"]
    assert bodies[0]["tools"][1]["cache_control"] == EPHEMERAL and "cache_control" not in bodies[0]["tools"][0]
    assert bodies[0]["system"] == [{"type": "text", "text": SYSTEM, "cache_control": EPHEMERAL}]
    assert bodies[0]["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Add up.", "cache_control": EPHEMERAL}]}
    ]
    # Turn 2: also the first tool result; the prompt keeps its breakpoint (the previous turn's newest).
    assert breakpoints(bodies[1]) == ["tools.1", "system.0", "messages.0.0", "messages.2.0"]
    assert bodies[1]["messages"][2]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": result.messages[1]["content"][1]["id"],
        "content": "1",
        "cache_control": EPHEMERAL,
    }
    # Turn 5: the two message breakpoints moved forward; still 4 in all.
    assert breakpoints(bodies[4]) == ["tools.1", "system.0", "messages.6.0", "messages.8.0"]
    # The transcript itself carries no breakpoints.
    assert "cache_control" not in json.dumps(result.messages)


def test_every_turn_after_the_first_reads_the_previous_prefix_from_the_cache(mock, tools_file):
    server = mock(loop_script(4))
    server.cache.min_tokens = 50
    events, result = run_chat(server, "Add up.", [tools_file], system=SYSTEM, cache=True)
    turns = turn_usages(events)
    assert turns[0]["cache_read_input_tokens"] == 0 and turns[0]["cache_creation_input_tokens"] > 50
    for before, usage in zip(turns, turns[1:]):
        # Exactly what the previous request wrote is read back; only the new turn is written.
        assert usage["cache_read_input_tokens"] == (
            before["cache_read_input_tokens"] + before["cache_creation_input_tokens"]
        )
        assert usage["cache_creation_input_tokens"] > 0
    total = {
        k: sum(t[k] for t in turns) for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    }
    assert {k: result.usage[k] for k in total} == total
    assert result.usage["cache_creation"] == {
        "ephemeral_5m_input_tokens": total["cache_creation_input_tokens"],
        "ephemeral_1h_input_tokens": 0,
    }


def test_no_cache_sends_no_breakpoints_and_reads_nothing(mock, tools_file):
    server = mock(loop_script(2))
    server.cache.min_tokens = 1
    events, result = run_chat(server, "Add up.", [tools_file], system=SYSTEM, cache=False)
    assert all(breakpoints(r.body) == [] for r in server.requests)
    assert server.requests[0].body["system"] == SYSTEM
    assert result.usage["cache_read_input_tokens"] == result.usage["cache_creation_input_tokens"] == 0


def test_one_hour_ttl_goes_on_the_tools_and_system_and_messages_keep_five_minutes(mock, tools_file):
    server = mock(loop_script(1))
    server.cache.min_tokens = 1
    events, result = run_chat(server, "Add up.", [tools_file], system=SYSTEM, cache=True, cache_ttl="1h")
    assert result.error is None
    body = server.requests[1].body
    hour = {"type": "ephemeral", "ttl": "1h"}
    assert body["tools"][-1]["cache_control"] == hour and body["system"][0]["cache_control"] == hour
    assert body["messages"][0]["content"][0]["cache_control"] == EPHEMERAL
    first = turn_usages(events)[0]["cache_creation"]
    assert first["ephemeral_1h_input_tokens"] > 0 and first["ephemeral_5m_input_tokens"] > 0


def request(*messages, system=None, tools=None, ttl="5m", model="m"):
    body = build_body(model=model, max_tokens=10, messages=list(messages), system=system, tools=tools)
    return place_breakpoints(body, ttl)


TOOL = {"name": "t", "description": "one two three four", "input_schema": {"type": "object"}}


def test_the_mock_caches_only_prefixes_of_the_minimum_length():
    clock = [0.0]
    cache = PromptCache(min_tokens=11, clock=lambda: clock[0])
    short = request({"role": "user", "content": "five words in this prompt"}, tools=[TOOL])
    assert cache.account(short)["cache_creation_input_tokens"] == 0  # 5 + 5 words: too short
    assert cache.account(short)["cache_read_input_tokens"] == 0
    long = request({"role": "user", "content": "five words in this prompt and five more words here"}, tools=[TOOL])
    assert cache.account(long) == {
        "input_tokens": 0,
        "cache_creation_input_tokens": 15,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 15, "ephemeral_1h_input_tokens": 0},
    }
    assert cache.account(long)["cache_read_input_tokens"] == 15


def test_the_mock_cache_entries_live_five_minutes_or_an_hour_and_a_read_refreshes_them():
    clock = [0.0]
    cache = PromptCache(min_tokens=1, clock=lambda: clock[0])
    five = request({"role": "user", "content": "a b c"})
    hour = request({"role": "user", "content": "x y z"}, system="be brief", ttl="1h")
    cache.account(five), cache.account(hour)
    clock[0] = 299.0
    assert cache.account(five)["cache_read_input_tokens"] == 3  # read at 299 s: alive till 599 s
    clock[0] = 598.0
    assert cache.account(five)["cache_read_input_tokens"] == 3
    clock[0] = 898.0 + 1
    assert cache.account(five)["cache_read_input_tokens"] == 0  # 301 s after the last read
    # The 1-hour system prefix survives; the 5-minute message breakpoint after it did not.
    usage = cache.account(hour)
    assert (usage["cache_read_input_tokens"], usage["cache_creation_input_tokens"]) == (2, 3)
    clock[0] += 3601
    assert cache.account(hour)["cache_read_input_tokens"] == 0


def test_a_breakpoint_finds_a_prefix_up_to_20_blocks_back_and_no_further():
    cache = PromptCache(min_tokens=1)
    first = {"role": "user", "content": [{"type": "text", "text": "start here", "cache_control": EPHEMERAL}]}
    cache.account({"model": "m", "messages": [first]})

    def later(blocks: int) -> dict:
        more = [{"type": "text", "text": f"w{i}"} for i in range(blocks)]
        more[-1] = dict(more[-1], cache_control=EPHEMERAL)
        return {
            "model": "m",
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "start here"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
                {"role": "user", "content": more},
            ],
        }

    assert cache.account(later(19))["cache_read_input_tokens"] == 2  # 20 blocks after the prefix
    cache.clear()
    cache.account({"model": "m", "messages": [first]})
    assert cache.account(later(20))["cache_read_input_tokens"] == 0  # 21: out of reach


def test_the_model_is_part_of_the_cached_prefix():
    cache = PromptCache(min_tokens=1)
    cache.account(request({"role": "user", "content": "a b c"}, model="one"))
    assert cache.account(request({"role": "user", "content": "a b c"}, model="two"))["cache_read_input_tokens"] == 0


@pytest.mark.parametrize(
    "body, message",
    [
        (
            {
                "model": "m",
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "text", "text": f"t{i}", "cache_control": EPHEMERAL} for i in range(5)],
                    }
                ],
            },
            "A maximum of 4 blocks with cache_control may be provided. Found 5.",
        ),
        (
            {
                "model": "m",
                "system": [{"type": "text", "text": "s", "cache_control": EPHEMERAL}],
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "text", "text": "u", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
                    }
                ],
            },
            "a ttl='1h' cache_control block must not come after a ttl='5m' cache_control block "
            "(longer lifetimes first)",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "text", "text": "u", "cache_control": {"type": "persistent"}}],
                    }
                ],
            },
            "cache_control.type: Input should be 'ephemeral'",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "text", "text": "u", "cache_control": {"type": "ephemeral", "ttl": "2h"}}],
                    }
                ],
            },
            "cache_control.ephemeral.ttl: Input should be '5m' or '1h'",
        ),
    ],
)
def test_the_mock_refuses_what_the_api_refuses(body, message):
    with pytest.raises(ApiError) as caught:
        PromptCache().account(body)
    assert (caught.value.status, caught.value.message) == (400, message)


def test_the_mock_answers_too_many_breakpoints_with_a_400(mock):
    import requests

    server = mock()
    body = {
        "model": "m",
        "max_tokens": 5,
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": f"t{i}", "cache_control": EPHEMERAL} for i in range(5)],
            }
        ],
    }
    reply = requests.post(
        server.url + "/v1/messages",
        json=body,
        timeout=10,
        headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
    )
    assert reply.status_code == 400
    assert reply.json()["error"] == {
        "type": "invalid_request_error",
        "message": "A maximum of 4 blocks with cache_control may be provided. Found 5.",
    }


def test_thinking_blocks_are_skipped_for_the_last_markable_block():
    message = {
        "role": "assistant",
        "content": [{"type": "text", "text": "hi"}, {"type": "thinking", "thinking": "t", "signature": "s"}],
    }
    body = place_breakpoints({"model": "m", "messages": [{"role": "user", "content": "q"}, message]})
    assert breakpoints(body) == ["messages.1.0"]
    assert "cache_control" not in body["messages"][1]["content"][1]
    assert message["content"][0] == {"type": "text", "text": "hi"}  # the transcript is not touched


# ---------------------------------------------------------------------------------------------
# Cost


def test_cost_comes_from_the_shipped_price_table_with_cache_prices():
    from toolchat.pricing import cost_usd, shipped

    assert shipped()["date"] == "2025-11-24"
    usage = {
        "input_tokens": 1_000_000,
        "output_tokens": 100_000,
        "cache_creation_input_tokens": 200_000,
        "cache_read_input_tokens": 2_000_000,
        "cache_creation": {"ephemeral_5m_input_tokens": 100_000, "ephemeral_1h_input_tokens": 100_000},
    }
    # 3 + 1.5 + 0.1 x 3.75 + 0.1 x 6 + 2 x 0.3
    assert cost_usd("claude-sonnet-4-20250514", usage) == pytest.approx(3 + 1.5 + 0.375 + 0.6 + 0.6)
    assert cost_usd("claude-sonnet-4-5", {"input_tokens": 10, "output_tokens": 0}) == 0.00003


@pytest.mark.parametrize("model", ["claude-sonnet-4-7", "claude-sonnet-4-5-preview", "gpt-4o", "m"])
def test_a_model_not_in_the_table_has_no_cost(model):
    from toolchat.pricing import cost_usd

    assert cost_usd(model, {"input_tokens": 10, "output_tokens": 10}) is None


def test_the_config_file_prices_override_the_table_and_cost_shows_in_json_and_summary(toolchat, mock, tmp_path):
    server = mock()
    config = tmp_path / "config" / "toolchat"
    config.mkdir(parents=True)
    (config / "config.yaml").write_text("prices:\n  my-model: {input: 1000000, output: 2000000}\n")
    run = toolchat("--json", "-m", "my-model", "one two three", server=server)
    usage = run.json()["usage"]
    # 3 words in (the prompt), 3 out (the echo): 3 x $1 + 3 x $2 per token.
    assert (usage["input_tokens"], usage["output_tokens"], usage["cost_usd"]) == (3, 3, 9.0)
    unknown = toolchat("--json", "-m", "other-model", "one two three", server=server)
    assert "cost_usd" not in unknown.json()["usage"]


def test_the_summary_line_shows_the_cached_share_and_the_cost():
    from toolchat.events import Result
    from toolchat.views.format import summary

    result = Result(
        model="m",
        turns=2,
        usage={
            "input_tokens": 100,
            "output_tokens": 20,
            "cache_creation_input_tokens": 100,
            "cache_read_input_tokens": 600,
            "cost_usd": 0.01234,
        },
    )
    assert summary(result, 1.25) == "m · 2 turns · 0 tools · 800 in (75% cached) / 20 out tokens · $0.0123 · 1.2 s"
    assert (
        summary(Result(model="m", turns=1, usage={"input_tokens": 5, "output_tokens": 1}), 0.5)
        == "m · 1 turn · 0 tools · 5 in / 1 out tokens · 0.5 s"
    )


def test_breakpoints_already_in_a_transcript_count_towards_the_four():
    marked = {"role": "user", "content": [{"type": "text", "text": "old", "cache_control": EPHEMERAL}]}
    body = place_breakpoints(
        {
            "model": "m",
            "tools": [TOOL],
            "system": "s",
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "older", "cache_control": EPHEMERAL}]},
                {"role": "assistant", "content": "a"},
                marked,
                {"role": "assistant", "content": "b"},
                {"role": "user", "content": "new"},
            ],
        }
    )
    assert breakpoints(body) == ["tools.0", "system.0", "messages.0.0", "messages.2.0"]
    PromptCache().account(body)  # the mock (like the API) takes it: 4 breakpoints
