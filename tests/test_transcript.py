"""Conversations on disk: `--save` writes them whole, `--messages` continues them exactly."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys

import pytest

from toolchat.errors import UsageError
from toolchat.transcript import FORMAT, VERSION, continue_from, load_transcript, parse_transcript, save_transcript
from conftest import SAMPLE_TOOLS, TEST_KEY, clean_env, message_events, popen_toolchat, sse

USER = {"role": "user", "content": "What is 2**10?"}
TOOL_USE = {
    "role": "assistant",
    "content": [
        {"type": "text", "text": "Let me compute."},
        {"type": "tool_use", "id": "toolu_a", "name": "calculate", "input": {"expression": "2**10"}},
    ],
}
TOOL_RESULT = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_a", "content": "1024"}]}
ANSWER = {"role": "assistant", "content": [{"type": "text", "text": "1024."}]}
CONVERSATION = [USER, TOOL_USE, TOOL_RESULT, ANSWER]


# ---------------------------------------------------------------- save_transcript


def test_saved_file_is_the_documented_document(tmp_path):
    path = tmp_path / "chat.json"
    save_transcript(str(path), CONVERSATION, model="claude-x", system="Be brief.")
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n")
    assert json.loads(text) == {
        "format": "toolchat-transcript",
        "version": 1,
        "model": "claude-x",
        "system": "Be brief.",
        "messages": CONVERSATION,
    }
    assert (FORMAT, VERSION) == ("toolchat-transcript", 1)


def test_save_replaces_the_file_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "chat.json"
    path.write_text("old")
    save_transcript(str(path), [USER], model="m")
    assert json.loads(path.read_text())["messages"] == [USER]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chat.json"]


def test_save_keeps_the_permissions_of_an_existing_file(tmp_path):
    path = tmp_path / "chat.json"
    path.write_text("old")
    path.chmod(0o600)
    save_transcript(str(path), [USER], model="m")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_new_file_gets_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        save_transcript(str(tmp_path / "chat.json"), [USER], model="m")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "chat.json").stat().st_mode) == 0o644


def test_save_through_a_symlink_writes_the_target(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "chat.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    save_transcript(str(link), [USER], model="m")
    assert link.is_symlink()
    assert json.loads(target.read_text())["messages"] == [USER]


def test_a_failed_save_leaves_the_old_file_whole(tmp_path, monkeypatch):
    path = tmp_path / "chat.json"
    path.write_text('{"old": true}')

    def interrupted(src, dst):
        raise KeyboardInterrupt  # Ctrl-C at the worst moment: written, not yet renamed

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_transcript(str(path), CONVERSATION, model="m")
    assert path.read_text() == '{"old": true}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chat.json"]


def test_save_into_a_missing_folder_raises_oserror(tmp_path):
    with pytest.raises(OSError):
        save_transcript(str(tmp_path / "nope" / "chat.json"), [USER], model="m")
    with pytest.raises(OSError):
        save_transcript(str(tmp_path), [USER], model="m")  # a folder, not a file
    assert [p.name for p in tmp_path.iterdir()] == []


def test_save_in_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save_transcript("chat.json", [USER], model="m")
    assert json.loads((tmp_path / "chat.json").read_text())["messages"] == [USER]


# ---------------------------------------------------------------- parse_transcript


def test_parse_a_saved_conversation():
    text = json.dumps(
        {"format": FORMAT, "version": 1, "model": "claude-x", "system": "Be brief.", "messages": CONVERSATION}
    )
    loaded = parse_transcript(text, "chat.json")
    assert (loaded.messages, loaded.model, loaded.system) == (CONVERSATION, "claude-x", "Be brief.")


def test_parse_a_bare_messages_array():
    loaded = parse_transcript(json.dumps(CONVERSATION), "m.json")
    assert (loaded.messages, loaded.model, loaded.system) == (CONVERSATION, None, None)


def test_parse_a_json_document():
    from toolchat.events import Result

    document = Result(model="claude-x", text="1024.", messages=CONVERSATION).to_json()
    loaded = parse_transcript(json.dumps(document, indent=2), "run.json")
    assert (loaded.messages, loaded.model, loaded.system) == (CONVERSATION, "claude-x", None)


def test_parse_stream_json_output_takes_its_result_line():
    from toolchat.events import Result
    from toolchat.views.ndjson import result_line, start_line

    text = "\n".join(
        [
            start_line("claude-x"),
            '{"type": "text", "text": "1024."}',
            result_line(Result(model="claude-x", messages=CONVERSATION)),
            "",
        ]
    )
    loaded = parse_transcript(text, "run.ndjson")
    assert (loaded.messages, loaded.model) == (CONVERSATION, "claude-x")


def test_parse_a_request_body_from_dry_run():
    body = {"model": "claude-x", "max_tokens": 10, "system": "Be brief.", "messages": [USER], "stream": True}
    loaded = parse_transcript(json.dumps(body), "body.json")
    assert (loaded.messages, loaded.model, loaded.system) == ([USER], "claude-x", "Be brief.")


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "--messages f: not valid JSON (Expecting value: line 1 column 1 (char 0))"),
        (
            "{nope",
            "--messages f: not valid JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))",
        ),
        (
            '{"text": "x"}',
            "--messages f: expected a saved conversation, a messages array or --json / --stream-json output",
        ),
        ("42", "--messages f: expected a saved conversation, a messages array or --json / --stream-json output"),
        (
            '[{"role": "system", "content": "x"}]',
            "--messages f: message 1: role must be 'user' or 'assistant', not 'system'",
        ),
        (
            '[{"role": "user", "content": "x"}, {"role": "assistant", "content": [{"text": "y"}]}]',
            "--messages f: message 2: content must be a string or a list of content blocks",
        ),
        ('["hi"]', "--messages f: message 1: not an object"),
        (
            '{"format": "toolchat-transcript", "version": 2, "messages": []}',
            "--messages f: transcript version 2 is newer than this toolchat reads (1); upgrade toolchat",
        ),
        (
            '{"type": "start"}\n{"type": "text", "text": "cut off before the result"}\n',
            "--messages f: not valid JSON (Extra data: line 2 column 1 (char 18))",
        ),
    ],
)
def test_parse_rejects_with_one_clear_line(text, message):
    with pytest.raises(UsageError) as caught:
        parse_transcript(text, "f")
    assert caught.value.message == message


def test_load_a_missing_file(tmp_path):
    with pytest.raises(UsageError, match=r"^--messages .*nope.json: file not found$"):
        load_transcript(str(tmp_path / "nope.json"))


# ---------------------------------------------------------------- continue_from


def test_continue_appends_the_prompt_as_the_next_user_message():
    assert continue_from(CONVERSATION, "And 2**11?", "f") == CONVERSATION + [{"role": "user", "content": "And 2**11?"}]


def test_continue_does_not_change_the_loaded_messages():
    loaded = json.loads(json.dumps([USER]))
    continue_from(loaded, "More.", "f")
    assert loaded == [USER]


def test_continue_joins_a_prompt_to_a_trailing_user_message():
    assert continue_from([USER], "Please.", "f") == [
        {"role": "user", "content": [{"type": "text", "text": "What is 2**10?"}, {"type": "text", "text": "Please."}]}
    ]
    assert continue_from(CONVERSATION[:3], "Go on.", "f")[-1] == {
        "role": "user",
        "content": [*TOOL_RESULT["content"], {"type": "text", "text": "Go on."}],
    }


def test_continue_without_a_prompt_resends_a_conversation_that_awaits_the_model():
    assert continue_from(CONVERSATION[:3], "", "f") == CONVERSATION[:3]


@pytest.mark.parametrize(
    "messages, prompt, message",
    [
        (CONVERSATION, "", "--messages f: the conversation ends with the model's answer; give a prompt to continue it"),
        ([], "", "--messages f: the conversation is empty and no prompt was given"),
        (
            CONVERSATION[:2],
            "Hi",
            "--messages f: the conversation ends with tool calls that have no results; "
            "it cannot be continued with a prompt",
        ),
    ],
)
def test_continue_refuses(messages, prompt, message):
    with pytest.raises(UsageError) as caught:
        continue_from(messages, prompt, "f")
    assert caught.value.message == message


# ---------------------------------------------------------------- --save and --messages, end to end

TOOL_SCRIPT = {
    "turns": [
        {"text": "Let me compute.", "tool_calls": [{"name": "calculate", "input": {"expression": "2**10"}}]},
        {"text": "It is {result:calculate}."},
        {"text": "Continued: {prompt}"},
    ]
}


def test_saved_then_continued_sends_the_saved_messages_plus_the_prompt(toolchat, mock, tmp_path):
    server = mock(TOOL_SCRIPT)
    first = toolchat(
        "--no-cache",
        "-q",
        "-m",
        "claude-custom",
        "-s",
        "Be brief.",
        "-t",
        str(SAMPLE_TOOLS),
        "--save",
        "chat.json",
        "What is 2**10?",
        server=server,
    )
    assert (first.code, first.out) == (0, "Let me compute.\n\nIt is 1024.\n"), first
    saved = json.loads((tmp_path / "chat.json").read_text())
    assert (saved["format"], saved["version"], saved["model"], saved["system"]) == (
        "toolchat-transcript",
        1,
        "claude-custom",
        "Be brief.",
    )
    assert saved["messages"] == server.requests[-1].body["messages"] + [
        {"role": "assistant", "content": [{"type": "text", "text": "It is 1024."}]}
    ]
    assert [m["role"] for m in saved["messages"]] == ["user", "assistant", "user", "assistant"]

    second = toolchat("--no-cache", "-t", str(SAMPLE_TOOLS), "--messages", "chat.json", "And now?", server=server)
    assert (second.code, second.out) == (0, "Continued: And now?\n"), second
    body = server.requests[-1].body
    assert body["messages"] == saved["messages"] + [{"role": "user", "content": "And now?"}]
    assert (body["model"], body["system"]) == ("claude-custom", "Be brief.")  # the saved ones


def test_flags_override_the_saved_model_and_system(toolchat, mock, tmp_path):
    save_transcript(str(tmp_path / "chat.json"), [USER, ANSWER], model="saved-model", system="saved system")
    server = mock()
    run = toolchat(
        "--no-cache", "-m", "flag-model", "-s", "flag system", "--messages", "chat.json", "More.", server=server
    )
    assert run.code == 0, run
    body = server.requests[0].body
    assert (body["model"], body["system"]) == ("flag-model", "flag system")


def test_continue_from_a_json_document(toolchat, mock, tmp_path):
    server = mock()
    first = toolchat("--no-cache", "--json", "Hello.", server=server)
    (tmp_path / "run.json").write_text(first.out)
    run = toolchat("--no-cache", "--messages", "run.json", "Again.", server=server)
    assert (run.code, run.out) == (0, "Again.\n")
    assert server.requests[-1].body["messages"] == first.json()["messages"] + [{"role": "user", "content": "Again."}]


def test_continue_from_stream_json_output(toolchat, mock, tmp_path):
    server = mock()
    first = toolchat("--no-cache", "--stream-json", "Hello.", server=server)
    (tmp_path / "run.ndjson").write_text(first.out)
    run = toolchat("--no-cache", "--messages", "run.ndjson", "Again.", server=server)
    assert run.code == 0, run
    assert server.requests[-1].body["messages"] == [
        {"role": "user", "content": "Hello."},
        {"role": "assistant", "content": [{"type": "text", "text": "Hello."}]},
        {"role": "user", "content": "Again."},
    ]


def test_messages_from_stdin(toolchat, mock):
    server = mock()
    run = toolchat("--no-cache", "--messages", "-", "Again.", server=server, stdin=json.dumps([USER, ANSWER]))
    assert (run.code, run.out) == (0, "Again.\n")
    assert server.requests[0].body["messages"] == [USER, ANSWER, {"role": "user", "content": "Again."}]


def test_piped_stdin_is_the_prompt_when_messages_come_from_a_file(toolchat, mock, tmp_path):
    save_transcript(str(tmp_path / "chat.json"), [USER, ANSWER], model="m")
    server = mock()
    run = toolchat("--no-cache", "--messages", "chat.json", "Summarise:", server=server, stdin="the file\n")
    assert run.code == 0, run
    assert server.requests[0].body["messages"][-1] == {"role": "user", "content": "Summarise:\n\nthe file"}


def test_save_after_a_failure_keeps_the_prompt_and_continuing_resends_it(toolchat, mock, tmp_path):
    failing = mock(api_key="another-key")
    run = toolchat("--no-cache", "--save", "chat.json", "Hello?", server=failing)
    assert run.code == 3
    saved = json.loads((tmp_path / "chat.json").read_text())
    assert saved["messages"] == [{"role": "user", "content": "Hello?"}]
    server = mock()
    again = toolchat("--no-cache", "--messages", "chat.json", server=server)  # no prompt: send it as it is
    assert (again.code, again.out) == (0, "Hello?\n")
    assert server.requests[0].body["messages"] == saved["messages"]


@pytest.mark.parametrize("mode", [(), ("--json",), ("--stream-json",)], ids=["plain", "json", "stream-json"])
@pytest.mark.parametrize("target", ["no/such/dir/chat.json", "."])
def test_a_save_that_cannot_be_written_is_an_error_exit_2_before_anything_is_sent(toolchat, mock, mode, target):
    server = mock()
    run = toolchat(*mode, "--save", target, "Hello.", server=server)
    assert run.code == 2
    assert run.err.startswith(f"toolchat: error: --save {target}: cannot write it: ")
    assert len(run.err.splitlines()) == 1
    assert server.requests == []  # checked before the request is sent and paid for
    if mode:
        document = json.loads(run.out.splitlines()[-1])
        assert document["error"]["type"] == "usage_error" and document["text"] == ""
    else:
        assert run.out == ""


@pytest.mark.parametrize(
    "args, message",
    [
        (("--messages", "nope.json", "hi"), "toolchat: error: --messages nope.json: file not found\n"),
        (
            ("--messages", "-"),
            "toolchat: error: --messages stdin: not valid JSON (Expecting value: line 1 column 1 (char 0))\n",
        ),
    ],
)
def test_messages_errors_exit_2_before_any_request(toolchat, mock, args, message):
    server = mock()
    run = toolchat(*args, server=server)
    assert (run.code, run.out, run.err) == (2, "", message)
    assert server.requests == []


def test_messages_error_with_stream_json_prints_start_and_result(toolchat, tmp_path):
    (tmp_path / "chat.json").write_text("[]")
    run = toolchat("--stream-json", "--messages", "chat.json")
    assert run.code == 2
    start, result = [json.loads(line) for line in run.out.splitlines()]
    assert (start["type"], result["type"], result["error"]["type"]) == ("start", "result", "usage_error")
    assert result["error"]["message"] == "--messages chat.json: the conversation is empty and no prompt was given"


# ---------------------------------------------------------------- interrupted runs


def interrupt(args, env, wait_for, sig=signal.SIGINT):
    """Start toolchat --stream-json, wait for a stdout line of type `wait_for`, send `sig`."""
    proc = popen_toolchat(["--stream-json", *args], env, text=True)
    try:
        seen = []
        while not seen or seen[-1]["type"] != wait_for:
            line = proc.stdout.readline()
            assert line, (seen, proc.stderr.read())
            seen.append(json.loads(line))
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    return proc.returncode, seen + [json.loads(line) for line in out.splitlines()], err


def check_saved(path, result):
    """The saved file is whole, matches the result line, and every tool_use has its tool_result."""
    saved = json.loads(path.read_text())
    assert saved["messages"] == result["messages"]
    assert parse_transcript(path.read_text(), "saved").messages == saved["messages"]
    for before, after in zip(saved["messages"], saved["messages"][1:]):
        uses = [b["id"] for b in before["content"] if isinstance(before["content"], list) and b["type"] == "tool_use"]
        if uses:
            assert [b["tool_use_id"] for b in after["content"] if b["type"] == "tool_result"] == uses
    return saved


def test_sigint_mid_stream_leaves_a_whole_save_file_and_a_result_line(tmp_path, mock):
    body = sse(*message_events({"type": "text", "text": "partial answer"}))
    cut = body.index("\n\n", body.index('"text_delta"')) + 2
    server = mock({"turns": [{"raw": body, "chunks": [cut], "delay": 30, "framing": "close"}]})
    env = clean_env(tmp_path, TOOLCHAT_BASE_URL=server.url, TOOLCHAT_API_KEY=TEST_KEY)
    code, events, err = interrupt(["--save", str(tmp_path / "chat.json"), "Tell me."], env, "text")
    assert (code, err) == (130, "toolchat: interrupted\n")
    result = events[-1]
    assert (result["type"], result["error"]["type"], result["text"]) == ("result", "interrupted", "partial answer")
    saved = check_saved(tmp_path / "chat.json", result)
    # The answer that was on screen is kept, as text blocks, so the conversation goes on from it.
    assert saved["messages"] == [
        {"role": "user", "content": "Tell me."},
        {"role": "assistant", "content": [{"type": "text", "text": "partial answer"}]},
    ]
    echo = mock()  # the strict echo model: it must accept the saved conversation
    env["TOOLCHAT_BASE_URL"] = echo.url
    again = subprocess.run(
        [sys.executable, "-m", "toolchat", "--messages", str(tmp_path / "chat.json"), "Go on."],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=30,
    )
    assert (again.returncode, again.stdout) == (0, "Go on.\n"), again.stderr


@pytest.mark.parametrize("sig, code, kind", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_signal_while_tools_run_saves_a_conversation_that_can_be_continued(tmp_path, mock, sig, code, kind):
    (tmp_path / "h.py").write_text(
        "import time\n\ndef hang():\n    time.sleep(60)\n\ndef quick():\n    return 'done'\n"
    )
    (tmp_path / "t.yaml").write_text(
        "tools:\n"
        "  - {name: hang, input_schema: {type: object}, handler: h.py:hang}\n"
        "  - {name: quick, input_schema: {type: object}, handler: h.py:quick}\n"
    )
    server = mock(
        {
            "turns": [
                {
                    "tool_calls": [
                        {"id": "toolu_q", "name": "quick", "input": {}},
                        {"id": "toolu_h", "name": "hang", "input": {}},
                    ]
                },
                {"text": "{results}"},
            ]
        }
    )
    env = clean_env(tmp_path, TOOLCHAT_BASE_URL=server.url, TOOLCHAT_API_KEY=TEST_KEY)
    tools = str(tmp_path / "t.yaml")
    returncode, events, err = interrupt(
        ["-t", tools, "--save", str(tmp_path / "chat.json"), "Go."], env, "tool_result", sig
    )
    assert returncode == code, err
    result = events[-1]
    assert (result["type"], result["error"]["type"]) == ("result", kind)
    assert events[0]["type"] == "start" and [e["type"] for e in events].count("result") == 1
    saved = check_saved(tmp_path / "chat.json", result)
    assert saved["messages"][-1] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_q", "content": "done"},
            {
                "type": "tool_result",
                "tool_use_id": "toolu_h",
                "is_error": True,
                "content": "not run: the run was stopped before this tool finished",
            },
        ],
    }
    # The mock server checks tool_use/tool_result pairing as strictly as the API: it accepts it.
    again = subprocess.run(
        [sys.executable, "-m", "toolchat", "-t", tools, "--messages", str(tmp_path / "chat.json")],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=30,
    )
    assert (again.returncode, again.stdout) == (
        0,
        "quick: done\nhang: error: not run: the run was stopped before this tool finished\n",
    ), again.stderr


@pytest.mark.parametrize(
    "text, problem",
    [
        ('[{"role": "user", "content": [{"type": "text", "text": "x", "n": NaN}]}]', "NaN is not valid JSON"),
        ('[{"role": "user", "content": "x", "n": Infinity}]', "Infinity is not valid JSON"),
        ("[" * 100_000 + "]" * 100_000, "nested more than 200 levels deep"),
        ('[{"role": "user", "content": ' + "[" * 300 + "]" * 300 + "}]", "nested more than 200 levels deep"),
    ],
)
def test_messages_file_with_nan_or_absurd_nesting_is_one_line_exit_2(toolchat, mock, tmp_path, text, problem):
    (tmp_path / "chat.json").write_text(text)
    server = mock()
    for extra in ((), ("--dry-run",), ("--json",)):
        run = toolchat(*extra, "--messages", "chat.json", "go", server=server)
        assert run.code == 2
        assert run.err == f"toolchat: error: --messages chat.json: not valid JSON ({problem})\n"
        if extra == ("--json",):
            assert json.loads(run.out)["error"]["type"] == "usage_error"
        else:
            assert run.out == ""
    assert server.requests == []
