"""--thinking, --stop, --top-p, --top-k, -s @FILE / --system-file, -x / --extract(-last), the
OpenAI dialect's forms of them, and shell completion: exact request bodies against the mock."""

from __future__ import annotations

import json
import os

import pytest

from conftest import SAMPLE_TOOLS
from inprocess import cli
from toolchat.dialects.base import Request
from toolchat.dialects.openai import OpenAIDialect
from toolchat.mock.validate import ApiError, validate_body
from toolchat.structured import code_blocks, extracted, parse_schema, wire_schema
from test_structured import ADA, PERSON, PERSON_SCHEMA, play, sent


# ---------------------------------------------------------------- thinking


def test_thinking_is_sent_with_its_budget_and_max_tokens_raised_to_fit(tmp_path, monkeypatch, capsys):
    run = cli(monkeypatch, capsys, tmp_path, None, "--thinking", "2048", "--max-tokens", "1000", "--dry-run", "hi")
    body = json.loads(run.out)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048} and body["max_tokens"] == 3048
    assert run.err == (
        "toolchat: note: --max-tokens raised from 1000 to 3048 to fit --thinking 2048 "
        "(the thinking budget counts toward it)\n"
    )
    run = cli(monkeypatch, capsys, tmp_path, None, "--thinking", "2048", "--dry-run", "hi")
    assert json.loads(run.out)["max_tokens"] == 4096 and run.err == ""


@pytest.mark.parametrize(
    "args, message",
    [
        (["--thinking", "1000"], "--thinking: must be at least 1024"),
        (
            ["--thinking", "2048", "--temperature", "0.5"],
            "--thinking cannot be used with --temperature (the API allows only 1)",
        ),
        (["--thinking", "2048", "--top-k", "5"], "--thinking cannot be used with --top-k"),
        (["--thinking", "2048", "--top-p", "0.5"], "--thinking allows --top-p only between 0.95 and 1"),
        (
            ["--thinking", "2048", "--tool-choice", "any", "-t", str(SAMPLE_TOOLS)],
            "--thinking cannot be used with --tool-choice any (the API allows only auto or none while thinking)",
        ),
    ],
)
def test_what_the_api_refuses_beside_thinking_is_refused_before_sending(args, message, tmp_path, monkeypatch, capsys):
    run = cli(monkeypatch, capsys, tmp_path, None, *args, "--dry-run", "hi")
    assert (run.code, run.out, run.err) == (2, "", f"toolchat: error: {message}\n")


def test_thinking_with_tools_asks_for_interleaved_thinking_and_echoes_signed_blocks(mock):
    server = mock(
        script=[
            {
                "thinking": "I should compute.",
                "tool_calls": [{"id": "toolu_1", "name": "calculate", "input": {"expression": "2+2"}}],
            },
            {"thinking": "Done.", "text": "4"},
        ]
    )
    result, _ = play(server, tools_files=[SAMPLE_TOOLS], thinking=1024, max_tokens=4096)
    bodies, betas = sent(server)
    assert betas == ["interleaved-thinking-2025-05-14"] * 2
    assert [b["thinking"] for b in bodies] == [{"type": "enabled", "budget_tokens": 1024}] * 2
    # The second request carries the thinking block back with its signature; the mock checks it.
    echoed = bodies[1]["messages"][1]["content"][0]
    assert echoed["type"] == "thinking" and echoed["thinking"] == "I should compute."
    assert echoed["signature"] == result.messages[1]["content"][0]["signature"] != ""
    assert result.error is None and result.text == "4"


def test_thinking_without_tools_needs_no_beta(mock):
    server = mock(script=[{"thinking": "Hmm.", "text": "yes"}])
    result, _ = play(server, thinking=1024)
    assert sent(server)[1] == [None] and result.text == "yes"


def test_thinking_and_the_answer_tool_leave_tool_choice_to_the_model(mock):
    """Thinking allows no forced tool_choice: the answer tool is offered, the choice stays auto."""
    server = mock(
        script={
            "reject_fields": ["output_config", "output_format"],
            "turns": [
                {"thinking": "Ada.", "tool_calls": [{"id": "toolu_a", "name": "structured_output", "input": ADA}]}
            ],
        }
    )
    result, _ = play(server, thinking=1024, schema=parse_schema(PERSON))
    bodies, _ = sent(server)
    assert "tool_choice" not in bodies[2] and bodies[2]["tools"][0]["name"] == "structured_output"
    assert result.output == ADA


@pytest.mark.parametrize(
    "fields, message",
    [
        (
            {"tool_choice": {"type": "any"}, "tools": [{"name": "t", "input_schema": {"type": "object"}}]},
            "Thinking may not be enabled when tool_choice forces tool use.",
        ),
        (
            {"temperature": 0.2},
            "`temperature` may only be set to 1 when thinking is enabled. Please consult "
            "our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking",
        ),
        ({"top_k": 3}, "`top_k` is not supported when thinking is enabled."),
    ],
)
def test_the_mock_refuses_what_thinking_forbids(fields, message):
    body = {
        "model": "m",
        "max_tokens": 4000,
        "messages": [{"role": "user", "content": "hi"}],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        **fields,
    }
    with pytest.raises(ApiError) as caught:
        validate_body(body)
    assert caught.value.message == message


def test_an_anthropic_beta_header_of_ones_own_is_joined_with_the_request_betas(mock):
    server = mock(
        script=[
            {"thinking": "x", "tool_calls": [{"id": "toolu_1", "name": "calculate", "input": {"expression": "1"}}]},
            {"text": "1"},
        ]
    )
    play(server, tools_files=[SAMPLE_TOOLS], thinking=1024, headers=(("anthropic-beta", "mine-1"),))
    assert sent(server)[1] == ["mine-1,interleaved-thinking-2025-05-14"] * 2


# ---------------------------------------------------------------- sampling and stop sequences


def test_stop_top_p_and_top_k_are_sent_and_the_mock_stops_at_the_first_sequence(mock):
    server = mock(script=[{"text": "one two END three STOP"}])
    result, _ = play(server, stop=("STOP", "END"), top_p=0.9, top_k=40)
    body = sent(server)[0][0]
    assert (body["stop_sequences"], body["top_p"], body["top_k"]) == (["STOP", "END"], 0.9, 40)
    assert result.text == "one two " and result.stop_reason == "stop_sequence"


def test_the_command_line_builds_the_sampling_fields(tmp_path, monkeypatch, capsys):
    run = cli(
        monkeypatch,
        capsys,
        tmp_path,
        None,
        "--stop",
        "A",
        "--stop",
        "B",
        "--top-p",
        "0.5",
        "--top-k",
        "7",
        "--dry-run",
        "hi",
    )
    body = json.loads(run.out)
    assert {k: body[k] for k in ("stop_sequences", "top_p", "top_k")} == {
        "stop_sequences": ["A", "B"],
        "top_p": 0.5,
        "top_k": 7,
    }
    run = cli(monkeypatch, capsys, tmp_path, None, "--dry-run", "hi")
    assert not {"stop_sequences", "top_p", "top_k", "thinking", "output_config"} & set(json.loads(run.out))
    run = cli(monkeypatch, capsys, tmp_path, None, "--top-p", "1.5", "--dry-run", "hi")
    assert (run.code, run.err) == (2, "toolchat: error: --top-p must be between 0 and 1\n")


# ---------------------------------------------------------------- the system prompt from a file


def test_system_at_file_and_system_file_read_the_prompt_from_a_file(tmp_path, monkeypatch, capsys):
    (tmp_path / "sys.txt").write_text("Be brief.\nAlways.", encoding="utf-8")
    for args in (["-s", "@sys.txt"], ["--system-file", "sys.txt"]):
        run = cli(monkeypatch, capsys, tmp_path, None, *args, "--no-cache", "--dry-run", "hi")
        assert json.loads(run.out)["system"] == "Be brief.\nAlways.", args
    run = cli(monkeypatch, capsys, tmp_path, None, "-s", "@@home", "--no-cache", "--dry-run", "hi")
    assert json.loads(run.out)["system"] == "@home"


def test_a_system_file_that_cannot_be_read_or_two_system_prompts_are_usage_errors(tmp_path, monkeypatch, capsys):
    run = cli(monkeypatch, capsys, tmp_path, None, "-s", "@missing.txt", "--dry-run", "hi")
    assert (run.code, run.err) == (
        2,
        "toolchat: error: -s @FILE missing.txt: cannot read it: No such file or directory\n",
    )
    (tmp_path / "sys.txt").write_text("x")
    run = cli(monkeypatch, capsys, tmp_path, None, "-s", "a", "--system-file", "sys.txt", "--dry-run", "hi")
    assert (run.code, run.err) == (
        2,
        "toolchat: error: -s/--system and --system-file cannot be used together; pick one\n",
    )


def test_a_saved_system_prompt_starting_with_at_is_text_not_a_file(tmp_path, monkeypatch, capsys):
    saved = tmp_path / "conv.json"
    saved.write_text(
        json.dumps(
            {
                "system": "@sys.txt",
                "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
            }
        )
    )
    (tmp_path / "sys.txt").write_text("from the file")
    run = cli(monkeypatch, capsys, tmp_path, None, "--messages", str(saved), "--no-cache", "--dry-run", "more")
    assert json.loads(run.out)["system"] == "@sys.txt"


# ---------------------------------------------------------------- -x / --extract

ANSWER = "Here:\n\n```python\nprint(1)\n```\n\nand\n\n~~~sh\necho 2\n~~~\n\nDone."


def test_code_blocks_are_the_fenced_blocks_in_order():
    assert code_blocks(ANSWER) == ["print(1)\n", "echo 2\n"]
    assert extracted(ANSWER) == "print(1)\n\necho 2\n"
    assert extracted(ANSWER, last=True) == "echo 2\n"
    assert extracted("no code") is None
    assert code_blocks("````md\n```inner```\n````\n") == ["```inner```\n"]


@pytest.mark.parametrize(
    "flag, out", [("-x", "print(1)\n\necho 2\n"), ("--extract", "print(1)\n\necho 2\n"), ("--extract-last", "echo 2\n")]
)
def test_extract_prints_only_the_code_blocks(flag, out, mock, tmp_path, monkeypatch, capsys):
    server = mock(script=[{"text": ANSWER}])
    run = cli(monkeypatch, capsys, tmp_path, server, flag, "code please")
    assert (run.code, run.out) == (0, out)


def test_extract_prints_an_answer_without_code_whole_and_neutralised(mock, tmp_path, monkeypatch, capsys):
    server = mock(script=[{"text": "just \x1b[2Jtext"}])
    run = cli(monkeypatch, capsys, tmp_path, server, "-x", "code please")
    assert run.out == "just \\x1b[2Jtext\n"


def test_extract_and_schema_do_not_go_together(tmp_path, monkeypatch, capsys):
    run = cli(monkeypatch, capsys, tmp_path, None, "-x", "--schema", "name", "--dry-run", "hi")
    assert (run.code, run.err) == (2, "toolchat: error: --schema and -x/--extract cannot be used together; pick one\n")


# ---------------------------------------------------------------- the OpenAI dialect


def _openai_body(**extra):
    request = Request(model="gpt-x", max_tokens=100, messages=[{"role": "user", "content": "hi"}], extra=extra)
    return OpenAIDialect("https://api.openai.com").body(request)


def test_the_openai_dialect_sends_the_schema_as_response_format():
    body = _openai_body(output_schema=wire_schema(parse_schema(PERSON)), schema_mode="native")
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": PERSON_SCHEMA, "strict": True},
    }
    assert "output_config" not in body and "output_format" not in body


@pytest.mark.parametrize(
    "budget, effort",
    [(1024, "low"), (2048, "low"), (2049, "medium"), (8192, "medium"), (8193, "high"), (32000, "high")],
)
def test_the_openai_dialect_maps_the_thinking_budget_to_reasoning_effort(budget, effort):
    body = _openai_body(thinking=budget)
    assert body["reasoning_effort"] == effort and "thinking" not in body


def test_the_openai_dialect_maps_stop_and_top_p_and_leaves_top_k_out():
    body = _openai_body(stop_sequences=["END"], top_p=0.5, top_k=3)
    assert (body["stop"], body["top_p"]) == (["END"], 0.5) and "top_k" not in body
    assert "stop_sequences" not in body


def test_the_openai_dialect_forces_the_answer_tool_in_tool_mode(mock):
    from toolchat.chat import Chat
    from toolchat.session import tool_runner
    from toolchat.settings import Settings

    settings = Settings(schema=parse_schema(PERSON))
    chat = Chat(settings, OpenAIDialect(), None, tool_runner(settings))
    assert OpenAIDialect.schema_modes == ("native", "tool")
    chat.schema_mode = "tool"
    body = chat.dialect.body(chat.request([{"role": "user", "content": "hi"}]))
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "structured_output",
                "description": "Give the final answer. Call this tool exactly once, "
                "with the answer as its input, when you have it.",
                "parameters": PERSON_SCHEMA,
            },
        }
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "structured_output"}}
    assert "response_format" not in body


# ---------------------------------------------------------------- shell completion


@pytest.mark.parametrize(
    "shell, words",
    [
        ("bash", ["complete -o default -F _toolchat_completion toolchat", "_TOOLCHAT_COMPLETE=complete_bash"]),
        ("zsh", ["#compdef toolchat", "_TOOLCHAT_COMPLETE=complete_zsh"]),
        ("fish", ["complete --command toolchat", "_TOOLCHAT_COMPLETE=complete_fish"]),
    ],
)
def test_show_completion_prints_the_script_for_each_shell(shell, words, tmp_path, monkeypatch, capsys):
    # Typer's own switch (its test suite's) to name the shell instead of detecting the parent process.
    run = cli(
        monkeypatch,
        capsys,
        tmp_path,
        None,
        "--show-completion",
        shell,
        env={"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"},
    )
    assert run.code == 0 and run.err == ""
    for word in words:
        assert word in run.out, (shell, word)


def test_completion_completes_the_new_options(tmp_path, monkeypatch, capsys):
    run = cli(
        monkeypatch,
        capsys,
        tmp_path,
        None,
        env={"_TOOLCHAT_COMPLETE": "complete_bash", "COMP_WORDS": "toolchat --sch", "COMP_CWORD": "1"},
    )
    assert run.code == 0 and run.out.split() == ["--schema", "--schema-multi"]


def test_install_completion_writes_the_script_into_the_shells_rc_file(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setattr(os.path, "expanduser", lambda p: p.replace("~", str(home), 1))
    run = cli(
        monkeypatch,
        capsys,
        tmp_path,
        None,
        "--install-completion",
        "bash",
        env={"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1", "HOME": str(home)},
    )
    assert run.code == 0 and "bash completion installed in" in run.out
    script = home / ".bash_completions" / "toolchat.sh"
    assert "_TOOLCHAT_COMPLETE=complete_bash" in script.read_text()
    assert "source" in (home / ".bashrc").read_text()


def test_a_schema_with_optional_fields_goes_to_openai_without_strict_which_would_refuse_it():
    from toolchat.mock.openai import validate_body as openai_validate

    loose = wire_schema(
        {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}, "required": ["a"]}
    )
    body = _openai_body(output_schema=loose, schema_mode="native")
    assert body["response_format"]["json_schema"]["strict"] is False
    openai_validate(body)
    body["response_format"]["json_schema"]["strict"] = True
    with pytest.raises(ApiError) as caught:
        openai_validate(body)
    assert caught.value.message == (
        "Invalid schema for response_format 'answer': In context=(), 'required' "
        "is required to be supplied and to be an array including every key in "
        "properties. Missing 'b'."
    )
    strict = _openai_body(output_schema=wire_schema(parse_schema(PERSON)), schema_mode="native", thinking=4000)
    openai_validate(strict)


def test_completion_of_a_subcommand_line_completes_the_subcommand(tmp_path, monkeypatch, capsys):
    run = cli(
        monkeypatch,
        capsys,
        tmp_path,
        None,
        env={"_TOOLCHAT_COMPLETE": "complete_bash", "COMP_WORDS": "toolchat logs s", "COMP_CWORD": "2"},
    )
    assert run.code == 0 and run.out.split() == ["show", "search"]


def test_fish_gets_one_line_per_candidate_however_long_its_help(toolchat):
    """A subprocess: Typer reads the help width when it first imports its rich helpers."""
    run = toolchat(
        env={
            "_TOOLCHAT_COMPLETE": "complete_fish",
            "_TYPER_COMPLETE_ARGS": "toolchat --thi",
            "_TYPER_COMPLETE_FISH_ACTION": "get-args",
        }
    )
    assert run.code == 0
    assert run.out == (
        "--thinking\tExtended thinking with this token budget (at least 1024; --max-tokens is raised to fit).\n"
    )
