"""The conversation log: runs written to a real SQLite file by the log sink, read back by
`toolchat logs`, under concurrency, kill -9, an old schema and a newer one."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import TEST_KEY, Run, assert_no_secret, clean_env, run_toolchat

from toolchat.errors import UsageError
from toolchat.logdb import (
    SCHEMA_V1,
    SCHEMA_VERSION,
    LogDB,
    LogError,
    default_path,
    endpoint_host,
    fts_query,
    new_id,
    parse_since,
    split_marks,
)
from toolchat.schemas import load, validator

HANDLERS = """
import os, time
from pathlib import Path

def sighting(place):
    return f"quokka sightings near {place}: 3 (source: the wildlife register)"

def leak():
    return "the key is " + os.environ.get("TOOLCHAT_API_KEY", "")

def slow(marker):
    Path(marker).write_text("started")
    time.sleep(60)
    return "never"

def quick(n):
    return f"step {n} done"
"""

TOOLS_YAML = """
tools:
  - name: sighting
    description: Wildlife sightings near a place.
    input_schema: {type: object, properties: {place: {type: string}}, required: [place]}
    handler: h.py:sighting
  - name: leak
    description: Says something it should not.
    input_schema: {type: object, properties: {}}
    handler: h.py:leak
  - name: slow
    description: Takes its time.
    input_schema: {type: object, properties: {marker: {type: string}}, required: [marker]}
    handler: h.py:slow
    timeout: 120
  - name: quick
    description: One quick step.
    input_schema: {type: object, properties: {n: {type: integer}}, required: [n]}
    handler: h.py:quick
"""

SIGHTING = {
    "turns": [
        {"text": "Let me look that up.", "tool_calls": [{"name": "sighting", "input": {"place": "Perth"}}]},
        {"text": "There were **3** sightings near Perth."},
    ]
}


@pytest.fixture
def tools(tmp_path):
    (tmp_path / "h.py").write_text(HANDLERS)
    (tmp_path / "t.yaml").write_text(TOOLS_YAML)
    return str(tmp_path / "t.yaml")


@pytest.fixture
def home(tmp_path):
    folder = tmp_path / "home"
    folder.mkdir()
    return folder


@pytest.fixture
def logs(tmp_path, home):
    """`logs(*args)`: `toolchat logs ARGS` on the test's log, in-process (Typer's CliRunner: its
    output, exit code and environment as a process would have them; no process start)."""
    from typer.testing import CliRunner

    from toolchat.main import sub

    def run(*args, env=None):
        environment = clean_env(tmp_path, TOOLCHAT_HOME=str(home), **(env or {}))
        for name in os.environ:  # what clean_env leaves out is unset for the call
            if name not in environment:
                environment[name] = None
        result = CliRunner().invoke(sub, ["logs", *args], env=environment, prog_name="toolchat")
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        run_ = Run.__new__(Run)
        run_.code, run_.out, run_.err = result.exit_code, result.stdout, result.stderr
        assert_no_secret(run_.out, run_.err)
        return run_

    return run


def drive(
    home: Path,
    server,
    prompt: str,
    tools_file: str | None = None,
    env: dict | None = None,
    wait: bool = True,
    args: tuple = (),
):
    """`toolchat [ARGS] PROMPT [-t TOOLS_FILE]` as a real process (plain, piped) against `server`,
    logging into home/logs.db (clean_env's TOOLCHAT_HOME)."""
    environment = clean_env(
        home.parent, TOOLCHAT_API_KEY=TEST_KEY, TOOLCHAT_BASE_URL=server.url, TOOLCHAT_CONFIG=os.devnull, **(env or {})
    )
    assert environment["TOOLCHAT_HOME"] == str(home)
    # --no-cache: these tests compare what was sent with what was logged (no breakpoints in the log)
    command = [sys.executable, "-m", "toolchat", "--no-cache", *args, prompt]
    if tools_file:
        command += ["-t", tools_file]
    if not wait:
        return subprocess.Popen(
            command,
            env=environment,
            cwd=home.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
        )
    done = run_toolchat(command[3:], environment, home.parent, None, 60)
    assert done.returncode in (0, 3), (done.returncode, done.stdout, done.stderr)
    return done.returncode, done.stdout, done.stderr


def only_conversation(logs) -> dict:
    listed = logs("list", "--json")
    assert listed.code == 0, listed
    conversations = listed.json()["conversations"]
    assert len(conversations) == 1, conversations
    return conversations[0]


def integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def check_result(document: dict) -> None:
    errors = sorted(validator("result").iter_errors(document), key=str)
    assert not errors, errors[0]


def check_event(line: dict) -> None:
    errors = sorted(validator("event").iter_errors(line), key=str)
    assert not errors, errors[0]


def check(kind: str, document: dict) -> None:
    """`document` is valid by logs.schema.json, as the output of command `kind`."""
    errors = sorted(validator("logs").iter_errors(document), key=str)
    assert not errors, errors[0]
    assert set(load("logs")["$defs"][kind]["required"]) <= set(document)


# ---------------------------------------------------------------------------------------------
# A run, as logged


def test_a_run_is_logged_with_its_turns_tool_calls_and_exact_messages(home, mock, tools, logs):
    server = mock(script=SIGHTING)
    drive(home, server, "How many quokkas near Perth?", tools)
    summary = only_conversation(logs)
    assert summary["title"] == "How many quokkas near Perth?"
    assert (summary["turns"], summary["tool_calls"], summary["runs"], summary["status"]) == (2, 1, 1, "ok")
    assert summary["endpoint"] == server.url.removeprefix("http://")
    assert summary["dialect"] == "anthropic"
    shown = logs("show", summary["id"], "--json")
    check("show", shown.json())
    conversation = shown.json()
    # The messages are exactly what was sent (the last request) plus the final answer.
    sent = server.requests[-1].body["messages"]
    assert conversation["messages"][:-1] == sent
    assert conversation["messages"][-1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "There were **3** sightings near Perth."}],
    }
    [call] = conversation["tool_calls"]
    assert call["name"] == "sighting" and call["input"] == {"place": "Perth"}
    assert call["output"] == "quokka sightings near Perth: 3 (source: the wildlife register)"
    assert call["is_error"] is False and call["source"] == tools
    assert call["turn_id"] == conversation["turns"][0]["id"]
    first, second = conversation["turns"]
    assert (first["turn"], first["stop_reason"], second["turn"], second["stop_reason"]) == (
        1,
        "tool_use",
        2,
        "end_turn",
    )
    assert first["usage"]["input_tokens"] > 0 and first["error"] is None
    assert conversation["runs"][0]["status"] == "ok" and conversation["runs"][0]["messages"] == 4


@pytest.mark.slow  # over 2.5 s: the slow set, which .ci/run plays after the default run
def test_search_finds_words_from_a_tool_output_prompt_and_answer(home, mock, tools, logs):
    server = mock(script=SIGHTING)
    drive(home, server, "How many quokkas near Perth?", tools)
    drive(home, mock(), "Something else entirely")  # the echo model: no tools
    found = logs("search", "wildlife", "register", "--json")
    check("search", found.json())
    [hit] = found.json()["results"]
    assert hit["title"] == "How many quokkas near Perth?"
    match = hit["match"]
    assert match["kind"] == "tool"
    assert [match["snippet"][a:b] for a, b in match["highlights"]] == ["wildlife", "register"]
    assert logs("search", "sightings", "--json").json()["results"][0]["match"]["kind"] in ("answer", "tool")
    assert [r["title"] for r in logs("search", "entirely", "--json").json()["results"]] == ["Something else entirely"]
    assert logs("search", "nowhere-to-be-found", "--json").json()["results"] == []
    plain = logs("search", "register")
    assert plain.code == 0
    assert plain.out.splitlines()[1] == ("    tool: quokka sightings near Perth: 3 (source: the wildlife register)")


def test_search_text_is_words_not_fts_syntax(home, mock, logs):
    drive(home, mock(), 'what does "NEAR(a b)" AND OR * mean?')
    found = logs("search", '"NEAR(a', "OR", "*", "--json")
    assert found.code == 0, found
    assert len(found.json()["results"]) == 1
    assert fts_query('say "hi"') == '"say" """hi"""'


def test_credentials_are_never_stored(home, mock, tools, logs, tmp_path):
    server = mock(
        script={"turns": [{"text": "Checking.", "tool_calls": [{"name": "leak", "input": {}}]}, {"text": "Done."}]}
    )
    drive(home, server, "Tell me", tools)
    conversation = logs("show", only_conversation(logs)["id"], "--json").json()
    assert conversation["tool_calls"][0]["output"] == "the key is [redacted]"
    # A server that echoes the key in an error.
    gateway = "gw-token-SECRET-4242424242"  # a credential sent as a header
    echo = mock(
        script={
            "turns": [
                {
                    "error": {
                        "status": 400,
                        "type": "invalid_request_error",
                        "message": f"bad request from key {TEST_KEY} via {gateway}",
                    }
                }
            ]
        }
    )
    code, _, _ = drive(home, echo, "Again", args=("--header", f"X-Gateway-Token: {gateway}"))
    assert code == 3
    errors = [
        r["error"]
        for r in logs("show", logs("search", "again", "--json").json()["results"][0]["id"], "--json").json()["runs"]
    ]
    assert errors[0]["type"] == "invalid_request_error"
    files = [p for p in home.iterdir() if p.name.startswith("logs.db")]
    assert files
    for path in files:
        assert TEST_KEY.encode() not in path.read_bytes(), path
        assert TEST_KEY[:20].encode() not in path.read_bytes(), path
        assert gateway.encode() not in path.read_bytes(), path


def test_the_secrets_kept_out_are_the_key_and_credential_headers():
    from toolchat.session import _secrets
    from toolchat.settings import Settings

    settings = Settings(
        api_key=TEST_KEY,
        headers=(
            ("Authorization", "Bearer tok-0123456789"),
            ("X-Gateway-Token", "gw-0123456789"),
            ("Content-Type", "application/json"),
            ("anthropic-beta", "token-efficient-tools-2025-02-19"),
        ),
    )
    secrets = set(_secrets(settings))
    assert {TEST_KEY, "tok-0123456789", "gw-0123456789"} <= secrets
    assert "application/json" not in secrets  # ordinary header values stay searchable
    assert "token-efficient-tools-2025-02-19" not in secrets


def test_the_endpoint_is_its_host_only():
    assert endpoint_host("https://user:sk-secret@api.example.com/v1/messages?key=sk-secret") == "api.example.com"
    assert endpoint_host("http://127.0.0.1:8080/") == "127.0.0.1:8080"
    assert endpoint_host("https://api.anthropic.com:443") == "api.anthropic.com"
    assert endpoint_host("http://[::1]:9000/x") == "[::1]:9000"
    assert endpoint_host("") is None


def test_a_failed_run_is_logged_with_its_error(home, mock, logs):
    server = mock(
        script={"turns": [{"error": {"status": 400, "type": "invalid_request_error", "message": "prompt is too long"}}]}
    )
    code, _, _ = drive(home, server, "A very long prompt")
    assert code == 3
    summary = only_conversation(logs)
    assert summary["status"] == "error" and summary["turns"] == 1
    conversation = logs("show", summary["id"], "--json").json()
    assert conversation["messages"] == [{"role": "user", "content": "A very long prompt"}]
    [turn] = conversation["turns"]
    assert turn["stop_reason"] is None
    assert turn["error"]["type"] == "invalid_request_error"
    assert "prompt is too long" in turn["error"]["message"]
    assert conversation["runs"][0]["error"] == turn["error"]
    shown = logs("show", summary["id"])
    assert shown.out.splitlines()[-1].startswith("error: ")
    assert "prompt is too long" in shown.out.splitlines()[-1]


# ---------------------------------------------------------------------------------------------
# Every run logged; -c and --cid continue


FOLLOW_UP = {"turns": SIGHTING["turns"] + [{"text": "And 5 near Sydney."}]}


@pytest.mark.slow  # over 2.5 s: the slow set, which .ci/run plays after the default run
def test_continue_sends_exactly_the_latest_conversation_plus_the_prompt(home, mock, tools, logs):
    server = mock(script=FOLLOW_UP)
    drive(home, server, "How many quokkas near Perth?", tools, args=("-m", "claude-x", "-s", "Be brief."))
    first = only_conversation(logs)
    logged = logs("show", first["id"], "--json").json()["messages"]
    code, out, _ = drive(home, server, "And near Sydney?", tools, args=("-c", "--json"))
    assert code == 0
    document = json.loads(out)
    # The request: exactly the logged conversation, the new prompt after it; its model and system.
    body = server.requests[-1].body
    assert body["messages"] == logged + [{"role": "user", "content": "And near Sydney?"}]
    assert (body["model"], body["system"]) == ("claude-x", "Be brief.")
    assert document["conversation_id"] == first["id"]
    assert document["messages"] == body["messages"] + [
        {"role": "assistant", "content": [{"type": "text", "text": "And 5 near Sydney."}]}
    ]
    check_result(document)
    again = only_conversation(logs)  # the same conversation, one run more
    assert (again["id"], again["runs"], again["turns"], again["title"]) == (
        first["id"],
        2,
        3,
        "How many quokkas near Perth?",
    )
    assert logs("show", first["id"], "--json").json()["messages"] == document["messages"]


@pytest.mark.slow  # over 2.5 s: the slow set, which .ci/run plays after the default run
def test_cid_by_prefix_with_save_and_stream_json(home, mock, tools, logs, tmp_path):
    server = mock(script=FOLLOW_UP)
    drive(home, server, "How many quokkas near Perth?", tools)
    perth = only_conversation(logs)["id"]
    drive(home, mock(), "Another conversation, more recent")
    other = next(c["id"] for c in logs("list", "--json").json()["conversations"] if c["id"] != perth)
    # Ids are ULIDs (time first): two made in the same second share their first 8 characters, so the
    # prefix is the shortest one, of at least 8, that tells them apart.
    prefix = next(perth[:n] for n in range(8, len(perth) + 1) if not other.startswith(perth[:n]))
    saved = tmp_path / "saved.json"
    code, out, _ = drive(
        home,
        server,
        "And near Sydney?",
        tools,
        args=("--cid", prefix.lower(), "-m", "claude-y", "--save", str(saved), "--stream-json"),
    )
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    for line in lines:
        check_event(line)
    assert lines[0]["type"] == "start" and lines[0]["conversation_id"] == perth
    assert lines[-1]["type"] == "result" and lines[-1]["conversation_id"] == perth
    assert server.requests[-1].body["model"] == "claude-y"  # -m wins over the logged model
    assert server.requests[-1].body["messages"][0] == {"role": "user", "content": "How many quokkas near Perth?"}
    # --save writes the whole conversation, as continued.
    assert json.loads(saved.read_text())["messages"] == lines[-1]["messages"]
    assert logs("show", perth, "--json").json()["messages"] == lines[-1]["messages"]


def test_continue_refusals_are_usage_errors(home, mock, tools, logs, tmp_path, toolchat):
    def ask(*args):
        return toolchat(*args, env={"TOOLCHAT_HOME": str(home), "TOOLCHAT_CONFIG": os.devnull})

    nothing = ask("-c", "hi", "--json")
    assert nothing.code == 2
    assert (
        nothing.err == f"toolchat: error: -c: nothing to continue: no conversation is logged yet ({home / 'logs.db'})\n"
    )
    assert nothing.json()["conversation_id"] is None and nothing.json()["error"]["type"] == "usage_error"
    with LogDB(home / "logs.db") as db:
        db.start_run(
            "01AAAA0000000000000000000A",
            model="m",
            system=None,
            dialect="anthropic",
            endpoint=None,
            messages=[
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": [{"type": "text", "text": "a"}]},
            ],
        )
    for args, message in (
        (("-c", "--cid", "01A", "hi"), "-c/--continue and --cid cannot be used together; pick one"),
        (
            ("--cid", "01A", "--messages", "x.json", "hi"),
            "--messages and --cid cannot be used together: each names the conversation to continue",
        ),
        (("--cid", "01B", "hi"), "--cid: no logged conversation has an id starting with 01B"),
        (("-c",), "-c: the conversation ends with the model's answer; give a prompt to continue it"),
    ):
        refused = ask(*args)
        assert (refused.code, refused.err) == (2, f"toolchat: error: {message}\n"), args
    dry = toolchat(
        "--no-cache",
        "--cid",
        "01aaaa",
        "--dry-run",
        "more",
        stdin="piped text\n",  # stdin joins the prompt
        env={"TOOLCHAT_HOME": str(home), "TOOLCHAT_CONFIG": os.devnull},
    )
    assert json.loads(dry.out)["messages"] == [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": [{"type": "text", "text": "a"}]},
        {"role": "user", "content": "more\n\npiped text"},
    ]
    assert logs("list", "--json").json()["conversations"][0]["runs"] == 1  # a dry run is not a run


def test_no_log_toolchat_log_0_and_config_log_false_write_nothing(home, mock, tmp_path):
    server = mock()
    drive(home, server, "not logged", args=("--no-log",))
    drive(home, server, "not logged either", env={"TOOLCHAT_LOG": "0"})
    assert not (home / "logs.db").exists()
    from toolchat.settings import resolve

    config = tmp_path / "config.yaml"
    config.write_text("log: false\n")
    base = {"TOOLCHAT_HOME": str(home), "TOOLCHAT_CONFIG": str(config)}
    assert resolve({}, base).log_path is None
    assert resolve({}, {**base, "TOOLCHAT_LOG": "1"}).log_path == str(home / "logs.db")  # env > config
    assert resolve({"log": False}, {**base, "TOOLCHAT_LOG": "yes"}).log_path is None  # flag > env
    config.write_text("model: m\n")
    assert resolve({}, base).log_path == str(home / "logs.db")
    assert resolve({}, {"XDG_DATA_HOME": str(tmp_path / "d"), "TOOLCHAT_CONFIG": str(config)}).log_path == str(
        tmp_path / "d" / "toolchat" / "logs.db"
    )
    for word in ("0", "false", "OFF", "no"):
        assert resolve({}, {**base, "TOOLCHAT_LOG": word}).log_path is None
    with pytest.raises(UsageError, match="TOOLCHAT_LOG"):
        resolve({}, {**base, "TOOLCHAT_LOG": "maybe"})


def test_json_carries_the_conversation_id_and_not_logged_is_null(home, mock, logs):
    server = mock()
    code, out, _ = drive(home, server, "hello", args=("--json",))
    document = json.loads(out)
    check_result(document)
    assert document["conversation_id"] == only_conversation(logs)["id"]
    code, out, _ = drive(home, server, "hello", args=("--stream-json", "--no-log"))
    first, last = json.loads(out.splitlines()[0]), json.loads(out.splitlines()[-1])
    assert first["conversation_id"] is None and last["conversation_id"] is None
    check_event(first)


def test_an_interrupted_run_is_logged_with_what_it_showed(home, mock, logs):
    server = mock(
        script={"turns": [{"text": "alpha beta gamma delta epsilon zeta eta theta", "delta_size": 6, "delay": 0.3}]}
    )
    proc = drive(home, server, "Say the letters", wait=False)
    shown = os.read(proc.stdout.fileno(), 1000)  # the first piece of the answer is on stdout
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    shown = shown.decode() + out
    assert shown and "theta" not in shown
    assert integrity(home / "logs.db") == "ok"
    summary = only_conversation(logs)
    assert summary["status"] == "interrupted"
    conversation = logs("show", summary["id"], "--json").json()
    assert conversation["messages"] == [
        {"role": "user", "content": "Say the letters"},
        {"role": "assistant", "content": [{"type": "text", "text": shown.rstrip("\n")}]},
    ]
    assert conversation["runs"][0]["error"]["type"] == "interrupted"
    assert conversation["turns"][0]["error"]["type"] == "interrupted"


# ---------------------------------------------------------------------------------------------
# Many at once, killed at any moment


@pytest.mark.slow
def test_eight_concurrent_runs_all_land(home, mock, tools):
    server = mock(script=SIGHTING)
    procs = [drive(home, server, f"run number {i}", tools, wait=False) for i in range(8)]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, (out, err)
        assert "warning" not in err, err
    assert integrity(home / "logs.db") == "ok"
    with LogDB(home / "logs.db", create=False) as db:
        rows = db.list(limit=None)
        assert sorted(row["title"] for row in rows) == sorted(f"run number {i}" for i in range(8))
        assert all((row["turns"], row["tool_calls"], row["status"]) == (2, 1, "ok") for row in rows)
        assert all(len(db.messages(row["id"])) == 4 for row in rows)


def test_kill_9_in_the_middle_of_a_tool_turn_leaves_an_intact_log(home, mock, tools, logs, tmp_path):
    marker = tmp_path / "tool-started"
    server = mock(
        script={
            "turns": [
                {"text": "First a quick one.", "tool_calls": [{"name": "quick", "input": {"n": 1}}]},
                {"text": "Now the slow one.", "tool_calls": [{"name": "slow", "input": {"marker": str(marker)}}]},
                {"text": "Never reached."},
            ]
        }
    )
    proc = drive(home, server, "Do the steps", tools, wait=False)
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert marker.exists(), proc.communicate()
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert integrity(home / "logs.db") == "ok"
    summary = only_conversation(logs)
    assert (summary["turns"], summary["tool_calls"], summary["status"]) == (2, 1, "running")
    conversation = logs("show", summary["id"], "--json").json()
    # Every turn that ended is there, with its message; the tool results of turn 1 too.
    assert [t["stop_reason"] for t in conversation["turns"]] == ["tool_use", "tool_use"]
    roles = [m["role"] for m in conversation["messages"]]
    assert roles == ["user", "assistant", "user", "assistant"]
    assert conversation["messages"][3]["content"][1]["name"] == "slow"
    assert conversation["tool_calls"][0]["output"] == "step 1 done"
    # Exported, the open tool call is answered, so --messages can continue it.
    exported = logs("export", summary["id"])
    document = json.loads(exported.out)
    last = document["messages"][-1]
    assert last["role"] == "user" and last["content"][0]["is_error"] is True
    assert "not run" in last["content"][0]["content"]


@pytest.mark.slow
def test_kill_9_at_random_moments_never_damages_the_log(home, mock, tools):
    """Killed anywhere in a run of quick tool turns: the file is intact, and every turn row has its
    assistant message (a turn and its message are one transaction)."""
    import random

    turns = [{"text": f"Step {n}.", "tool_calls": [{"name": "quick", "input": {"n": n}}]} for n in range(40)]
    server = mock(script={"turns": turns + [{"text": "All done."}]})
    rng = random.Random(14)
    for attempt in range(8):
        proc = drive(home, server, f"attempt {attempt}", tools, wait=False)
        time.sleep(rng.uniform(0.3, 1.5))
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        assert integrity(home / "logs.db") == "ok"
    with LogDB(home / "logs.db", create=False) as db:
        for row in db.list(limit=None):
            messages = db.messages(row["id"])
            ended = [t for t in db.turns(row["id"]) if t["stop_reason"]]
            answers = [m for m in messages if m["role"] == "assistant"]
            assert len(answers) == len(ended), row
            assert messages[0] == {"role": "user", "content": row["title"]}


# ---------------------------------------------------------------------------------------------
# Schema versions


def write_v1(path: Path) -> None:
    """A log as version 1 wrote it: conversations and messages only."""
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA_V1)
    cid = "01M8S0000000000000000000AB"
    conn.execute(
        "INSERT INTO conversations (id, created, model, title) VALUES (?, ?, ?, ?)",
        (cid, "2026-11-01T10:00:00.000Z", "claude-old", "What did the numbat eat?"),
    )
    messages = [
        {"role": "user", "content": "What did the numbat eat?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_1", "name": "diet", "input": {"animal": "numbat"}},
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "termites, about 20000 a day"}],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "Termites: about 20,000 a day."}]},
    ]
    for position, message in enumerate(messages):
        conn.execute("INSERT INTO messages VALUES (?, ?, ?, ?)", (cid, position, message["role"], json.dumps(message)))
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()


def test_a_version_1_log_is_migrated_to_the_current_version(home, logs):
    path = home / "logs.db"
    write_v1(path)
    listed = logs("list", "--json")
    assert listed.code == 0, listed
    [row] = listed.json()["conversations"]
    assert (row["title"], row["model"], row["updated"], row["tool_calls"]) == (
        "What did the numbat eat?",
        "claude-old",
        "2026-11-01T10:00:00.000Z",
        1,
    )
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    assert integrity(path) == "ok"
    # The tool call was recovered from the messages; everything old is searchable.
    call = logs("show", row["id"][:6], "--json").json()["tool_calls"][0]
    assert (call["name"], call["input"], call["output"]) == (
        "diet",
        {"animal": "numbat"},
        "termites, about 20000 a day",
    )
    for word, kind in (("termites", "tool"), ("numbat", "prompt"), ("20,000", "answer")):
        hits = logs("search", word, "--json").json()["results"]
        assert [h["id"] for h in hits] == [row["id"]], word
    assert logs("search", "termites", "--json").json()["results"][0]["match"]["kind"] in ("tool", "answer")


def test_a_migrated_log_takes_new_runs(home, mock, logs):
    write_v1(home / "logs.db")
    drive(home, mock(), "A new question")
    titles = [r["title"] for r in logs("list", "--json").json()["conversations"]]
    assert titles == ["A new question", "What did the numbat eat?"]


def test_a_log_from_a_newer_toolchat_is_refused_and_left_untouched(home, logs, mock):
    path = home / "logs.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE future (x)")
    conn.execute("PRAGMA user_version = 4")
    conn.commit()
    conn.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns
    for args in (("list",), ("search", "x"), ("show", "01"), ("rm", "01")):
        run = logs(*args)
        assert run.code == 2, run
        assert run.err.strip() == (
            f"toolchat: error: {path}: this log was written by a newer toolchat "
            "(log schema 4; this one reads up to 3); upgrade toolchat, or run "
            "with --no-log"
        )
        assert run.out == ""
    with pytest.raises(LogError):
        LogDB(path)
    code, out, err = drive(home, mock(), "hello")  # a run goes on, unlogged, and says so
    assert code == 0 and out == "hello\n"
    assert err == (
        f"toolchat: warning: not logged: {path}: this log was written by a newer toolchat "
        "(log schema 4; this one reads up to 3); upgrade toolchat, or run with --no-log\n"
    )
    assert (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns) == before
    assert sorted(p.name for p in home.iterdir()) == ["logs.db"]


def test_a_file_that_is_not_a_database_is_one_clear_error(home, logs):
    (home / "logs.db").write_text("hello, I am a text file\n" * 100)
    run = logs("list")
    assert run.code == 2
    assert run.err.startswith(f"toolchat: error: {home / 'logs.db'}: not a toolchat log, or damaged")
    assert "Traceback" not in run.err


def test_a_new_log_is_private_to_its_owner(tmp_path):
    path = tmp_path / "deep" / "folder" / "logs.db"
    LogDB(path).close()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"


# ---------------------------------------------------------------------------------------------
# toolchat logs


@pytest.mark.slow  # over 2.5 s: the slow set, which .ci/run plays after the default run
def test_list_is_newest_first_and_filters(home, mock, logs):
    server = mock()
    drive(home, server, "first prompt")
    drive(home, server, "second prompt")
    drive(home, server, "third prompt")
    listed = logs("list", "--json").json()
    check("list", listed)
    assert [r["title"] for r in listed["conversations"]] == ["third prompt", "second prompt", "first prompt"]
    assert [r["title"] for r in logs("-n", "2", "--json").json()["conversations"]] == ["third prompt", "second prompt"]
    assert logs("list", "--model", "nope", "--json").json() == {"conversations": []}
    assert len(logs("list", "--since", "1h", "--json").json()["conversations"]) == 3
    assert logs("list", "--since", "2099-01-01", "--json").json() == {"conversations": []}
    plain = logs()
    assert plain.code == 0
    lines = plain.out.splitlines()
    assert lines[0].split() == ["ID", "TIME", "MODEL", "TURNS", "TOOLS", "TOKENS", "TITLE"]
    assert len(lines) == 4
    assert lines[1].endswith("  third prompt")
    assert lines[1].split()[0] == listed["conversations"][0]["id"]
    bad = logs("list", "--since", "yesterday-ish")
    assert bad.code == 2 and "--since" in bad.err


def test_list_of_nothing_logged_yet(logs, home):
    run = logs("list", "--json")
    assert (run.code, run.json()) == (0, {"conversations": []})
    assert logs().out == ""
    missing = logs("show", "01ABC")
    assert missing.code == 2
    assert missing.err.strip() == f"toolchat: error: nothing is logged yet ({home / 'logs.db'} does not exist)"
    assert not (home / "logs.db").exists()


def test_show_plain_is_the_conversation_with_its_tool_calls(home, mock, tools, logs):
    server = mock(script=SIGHTING)
    drive(home, server, "How many quokkas near Perth?", tools)
    summary = only_conversation(logs)
    shown = logs("show", summary["id"].lower()[:10])
    assert shown.code == 0, shown
    lines = shown.out.splitlines()
    assert lines[0].startswith(f"{summary['id']} · claude-sonnet-4-20250514 · ")
    assert lines[0].endswith(
        f" · 2 turns · 1 tool · {summary['input_tokens']} in / {summary['output_tokens']} out tokens"
    )
    duration = logs("show", summary["id"], "--json").json()["tool_calls"][0]["duration_ms"]
    assert lines[1:] == [
        "",
        "> How many quokkas near Perth?",
        "",
        "Let me look that up.",
        "",
        '→ sighting {"place": "Perth"}',
        f"← sighting ok ({duration} ms): quokka sightings near Perth: 3 (source: the wildlife register)",
        "",
        "There were **3** sightings near Perth.",
    ]


def test_ids_by_unique_prefix(home, logs, tmp_path):
    path = home / "logs.db"
    with LogDB(path) as db:
        for cid in ("01AAAA0000000000000000000A", "01AAAB0000000000000000000B"):
            db.start_run(
                cid,
                model="m",
                system=None,
                dialect="anthropic",
                endpoint=None,
                messages=[{"role": "user", "content": cid}],
            )
    assert logs("show", "01aaaa", "--json").json()["conversation"]["id"] == "01AAAA0000000000000000000A"
    ambiguous = logs("show", "01AAA")
    assert ambiguous.code == 2
    assert ambiguous.err.strip() == (
        "toolchat: error: more than one logged conversation has an id starting with 01AAA; give more of it"
    )
    unknown = logs("export", "01ZZ")
    assert unknown.err.strip() == "toolchat: error: no logged conversation has an id starting with 01ZZ"
    not_an_id = logs("rm", "hello!")
    assert not_an_id.code == 2 and "is not a conversation id" in not_an_id.err


def test_export_is_a_transcript_that_messages_continues(home, mock, tools, logs, toolchat, tmp_path):
    server = mock(script=SIGHTING)
    drive(home, server, "How many quokkas near Perth?", tools, args=("-s", "Be brief."))
    cid = only_conversation(logs)["id"]
    exported = logs("export", cid)
    document = json.loads(exported.out)
    shown = logs("show", cid, "--json").json()
    assert document == {
        "format": "toolchat-transcript",
        "version": 1,
        "model": "claude-sonnet-4-20250514",
        "system": "Be brief.",
        "messages": shown["messages"],
    }
    saved = tmp_path / "saved.json"
    assert logs("export", cid[:8], "-o", str(saved)).code == 0
    assert json.loads(saved.read_text()) == document
    dry = toolchat(
        "--messages", str(saved), "And near Sydney?", "--dry-run", "--no-cache", env={"TOOLCHAT_CONFIG": os.devnull}
    )
    assert dry.code == 0, dry
    body = json.loads(dry.out)
    assert body["messages"] == shown["messages"] + [{"role": "user", "content": "And near Sydney?"}]
    assert body["system"] == "Be brief."


def test_rm_removes_a_conversation_and_its_search_entries(home, mock, tools, logs):
    server = mock(script=SIGHTING)
    drive(home, server, "How many quokkas near Perth?", tools)
    drive(home, mock(), "keep this one")
    cid = logs("search", "quokkas", "--json").json()["results"][0]["id"]
    removed = logs("rm", cid[:9], "--json")
    check("rm", removed.json())
    assert removed.json() == {"deleted": [cid]}
    assert logs("search", "quokkas", "--json").json()["results"] == []
    assert logs("search", "wildlife", "--json").json()["results"] == []
    assert [r["title"] for r in logs("list", "--json").json()["conversations"]] == ["keep this one"]
    conn = sqlite3.connect(home / "logs.db")
    for table in ("messages", "turns", "tool_calls", "runs", "search_text"):
        assert conn.execute(f"SELECT count(*) FROM {table} WHERE conversation_id = ?", (cid,)).fetchone() == (0,)
    conn.close()
    assert integrity(home / "logs.db") == "ok"
    assert logs("rm", cid).code == 2


def test_path_follows_toolchat_home_then_xdg(tmp_path, logs, home):
    assert logs("path").out == f"{home / 'logs.db'}\n"
    check("path", logs("path", "--json").json())
    assert default_path({"XDG_DATA_HOME": "/data"}) == Path("/data/toolchat/logs.db")
    assert default_path({"HOME": "/home/u"}).parts[-4:] == (".local", "share", "toolchat", "logs.db")
    assert default_path({"TOOLCHAT_HOME": "/t", "XDG_DATA_HOME": "/data"}) == Path("/t/logs.db")


def test_off_and_on_flip_the_config_key_and_keep_the_rest(tmp_path, logs, toolchat):
    config = tmp_path / "config" / "toolchat" / "config.yaml"
    config.parent.mkdir(parents=True)
    config.write_text("# my settings\nmodel: claude-x  # the usual\n")
    off = logs("off", "--json")
    assert off.code == 0, off
    check("switch", off.json())
    assert off.json() == {"log": False, "config": str(config)}
    assert config.read_text() == "# my settings\nmodel: claude-x  # the usual\nlog: false\n"
    # A run still loads the config file with the key in it.
    dry = toolchat("--dry-run", "hi")
    assert dry.code == 0, dry
    on = logs("on")
    assert on.out == f"logging on ({config})\n"
    assert config.read_text() == "# my settings\nmodel: claude-x  # the usual\nlog: true\n"
    missing = tmp_path / "fresh.yaml"
    assert logs("off", env={"TOOLCHAT_CONFIG": str(missing)}).code == 0  # named, not there yet
    assert missing.read_text() == "log: false\n"
    refused = logs("off", env={"TOOLCHAT_CONFIG": os.devnull})
    assert (refused.code, refused.err) == (
        2,
        "toolchat: error: /dev/null: not a config file that can be written (TOOLCHAT_CONFIG)\n",
    )


def test_untrusted_text_is_neutralised_piped_and_on_a_terminal(home, logs, tmp_path):
    path = home / "logs.db"
    evil = "clip\x1b]52;c;ZXZpbA==\x07 and \x1b[2J gone\rover \u202eright"
    with LogDB(path) as db:
        cid, run, stored = db.start_run(
            None,
            model="m\x1b[31m",
            system=None,
            dialect="anthropic",
            endpoint=None,
            messages=[{"role": "user", "content": evil}],
        )
        db.end_turn(
            cid,
            run,
            {"turn": 1, "requested": "2026-12-01T00:00:00.000Z", "stop_reason": "end_turn"},
            [{"role": "user", "content": evil}, {"role": "assistant", "content": [{"type": "text", "text": evil}]}],
            stored,
        )
    for args in (("show", cid), ("list",), ("search", "clip")):
        piped = logs(*args)
        assert piped.code == 0
        assert "\x1b" not in piped.out and "\r" not in piped.out and "\u202e" not in piped.out, args
        assert "\\x1b" in piped.out, args
        seen = on_terminal(tmp_path, home, "logs", *args)
        assert b"\x1b]52" not in seen and b"\x1b[2J" not in seen and "\u202e".encode() not in seen, args
        assert b"\\x1b]52" in seen, args
        assert b"\x1b[" in seen  # styled: it is a terminal


def on_terminal(tmp_path, home, *args, cols=100, env=None) -> bytes:
    """What `toolchat ARGS` writes to a terminal (a pty of `cols` columns)."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    environment = clean_env(tmp_path, TERM="xterm-256color", TOOLCHAT_HOME=str(home), **(env or {}))
    for name in ("COLUMNS", "LINES"):
        environment.pop(name, None)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, cols, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "toolchat", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=environment,
        cwd=tmp_path,
    )
    os.close(slave)
    raw = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not select.select([master], [], [], 0.5)[0]:
            if proc.poll() is not None:
                break
            continue
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        raw += data
    proc.wait(timeout=30)
    os.close(master)
    assert proc.returncode == 0, raw
    return raw


def test_show_on_a_terminal_uses_the_live_view_styles(home, mock, tools, tmp_path, logs):
    server = mock(script=SIGHTING)
    drive(home, server, "How many quokkas near Perth?", tools)
    cid = only_conversation(logs)["id"]
    raw = on_terminal(tmp_path, home, "logs", "show", cid)
    assert b"\x1b[1m3\x1b[0m" in raw  # **3**: the answer is rendered as markdown
    assert b"\x1b[1msighting\x1b[0m" in raw  # the tool name in bold, as in the live view
    assert b"\x1b[32m" in raw  # the ok mark in green
    assert b"**" not in raw


def test_no_color_is_honoured_on_a_terminal(home, mock, tools, tmp_path, logs):
    drive(home, mock(script=SIGHTING), "How many quokkas near Perth?", tools)
    cid = only_conversation(logs)["id"]
    raw = on_terminal(tmp_path, home, "logs", "show", cid, env={"NO_COLOR": "1"})
    assert b"\x1b[1msighting\x1b[0m" in raw
    assert not any(f"\x1b[{code}m".encode() in raw for code in range(30, 38)), raw


# ---------------------------------------------------------------------------------------------
# Pieces


def test_ids_sort_by_time_and_are_unique():
    earlier = [new_id(1_700_000_000.000) for _ in range(100)]
    later = new_id(1_700_000_000.001)
    assert len(set(earlier)) == 100
    assert all(len(i) == 26 and i < later for i in earlier)
    assert new_id(0).startswith("0000000000")


def test_since_takes_durations_and_dates():
    from datetime import datetime, timezone

    now = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
    assert parse_since("30m", now) == "2026-12-01T11:30:00.000Z"
    assert parse_since("2h", now) == "2026-12-01T10:00:00.000Z"
    assert parse_since("1w", now) == "2026-11-24T12:00:00.000Z"
    assert parse_since("2026-11-30T08:00:00Z", now) == "2026-11-30T08:00:00.000Z"
    with pytest.raises(UsageError):
        parse_since("soon", now)


def test_snippet_marks_split_into_pieces():
    assert split_marks("a \ue000b\ue001 c") == [("a ", False), ("b", True), (" c", False)]
    assert split_marks("\ue000x\ue001") == [("x", True)]


def test_search_ranks_the_newest_passages_when_a_word_is_everywhere(tmp_path, monkeypatch):
    import toolchat.logdb as logdb

    with LogDB(tmp_path / "logs.db") as db:
        ids = []
        for i in range(6):
            # Older ones repeat the word more: they would rank first if everything were ranked.
            text = " ".join(["wombat"] * (6 - i)) + f" number {i}"
            cid, _, _ = db.start_run(
                None,
                model="m",
                system=None,
                dialect="anthropic",
                endpoint=None,
                messages=[{"role": "user", "content": text}],
            )
            ids.append(cid)
        assert [r["id"] for r in db.search("wombat")][:2] == [ids[0], ids[1]]
        monkeypatch.setattr(logdb, "SEARCH_WINDOW", 3)
        assert [r["id"] for r in db.search("wombat")] == [ids[3], ids[4], ids[5]]
        assert [r["id"] for r in db.search("number 1")] == [ids[1]]  # fewer matches: all ranked
