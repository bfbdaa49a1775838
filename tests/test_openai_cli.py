"""toolchat over chat.completions as users run it: `--api openai`, where the key and the base URL
come from, profiles, no key for a local server (settings and dialect in-process, a few real
subprocesses against the mock on loopback), and the same contract as the Anthropic dialect (the views,
--json, --stream-json, --save/--messages, exit codes), a conversation saved under one dialect
continued under the other, and the README's Scripting examples played under chat.completions with
the very same output (most of these two sets are in the slow set: each case is several subprocesses)."""

from __future__ import annotations

import json

import pytest

from conftest import SAMPLE_TOOLS, TEST_KEY
from test_scripting import CASES, README_EXAMPLES, make_shell, needs_jq
from toolchat.dialects.anthropic import AnthropicDialect
from toolchat.dialects.openai import OpenAIDialect
from toolchat.errors import UsageError
from toolchat.session import dialect_for
from toolchat.settings import resolve

CALC = json.dumps(
    {
        "thinking": "Let me think.",
        "text": "Let me work it out.",
        "tool_calls": [{"name": "calculate", "input": {"expression": "6*7"}}],
    }
)


def openai(*args: str) -> tuple[str, ...]:
    return ("--api", "openai", *args)


def paths(server) -> list[str]:
    return [r.path for r in server.requests]


def settings_of(tmp_path, flags=None, config: str | None = None, **env):
    """resolve() as a run would call it: `flags` as main.py passes them, this environment only."""
    environment = {"XDG_CONFIG_HOME": str(tmp_path / "none")}
    if config is not None:
        path = tmp_path / "toolchat.yaml"
        path.write_text(config)
        environment["TOOLCHAT_CONFIG"] = str(path)
    environment.update(env)
    return resolve(flags or {}, environment)


# ---------------------------------------------------------------- choosing the dialect (in-process)


def test_the_dialect_from_the_flag_the_environment_and_the_config_file(tmp_path):
    assert settings_of(tmp_path).api == "anthropic"
    assert settings_of(tmp_path, TOOLCHAT_API="openai").api == "openai"
    assert settings_of(tmp_path, config="api: openai\n").api == "openai"
    assert settings_of(tmp_path, {"api": "anthropic"}, config="api: openai\n", TOOLCHAT_API="openai").api == "anthropic"
    assert settings_of(tmp_path, {"api": "OpenAI"}).api == "openai"
    assert isinstance(dialect_for(settings_of(tmp_path, {"api": "openai"})), OpenAIDialect)
    assert isinstance(dialect_for(settings_of(tmp_path)), AnthropicDialect)


def test_an_unknown_dialect_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="^--api: 'gemini' is not one of anthropic, openai$"):
        settings_of(tmp_path, {"api": "gemini"})


def test_each_dialect_has_its_defaults_and_reads_only_its_own_variables(tmp_path):
    s = settings_of(tmp_path, {"api": "openai"})
    assert (s.base_url, s.model, s.api_key) == ("https://api.openai.com", "gpt-4o-mini", None)
    env = {
        "OPENAI_BASE_URL": "http://127.0.0.1:1/v1",
        "OPENAI_API_KEY": "sk-openai-1",
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:2",
        "ANTHROPIC_API_KEY": "sk-ant-2",
    }
    s = settings_of(tmp_path, {"api": "openai"}, **env)
    assert (s.base_url, s.api_key, s.key_source) == ("http://127.0.0.1:1/v1", "sk-openai-1", "OPENAI_API_KEY")
    s = settings_of(tmp_path, **env)
    assert (s.base_url, s.api_key, s.key_source) == ("http://127.0.0.1:2", "sk-ant-2", "ANTHROPIC_API_KEY")
    assert s.model == "claude-sonnet-4-20250514"
    # TOOLCHAT_* serve both; a flag beats every variable.
    s = settings_of(
        tmp_path,
        {"api": "openai", "base_url": "http://localhost:3"},
        TOOLCHAT_BASE_URL="http://127.0.0.1:4",
        TOOLCHAT_API_KEY="sk-tc",
        OPENAI_API_KEY="sk-o",
    )
    assert (s.base_url, s.api_key) == ("http://localhost:3", "sk-tc")
    assert (
        settings_of(
            tmp_path, {"api": "openai"}, TOOLCHAT_BASE_URL="http://127.0.0.1:4", OPENAI_BASE_URL="http://127.0.0.1:5"
        ).base_url
        == "http://127.0.0.1:4"
    )


def test_keys_never_cross_dialects(tmp_path):
    s = settings_of(
        tmp_path,
        {"api": "openai", "base_url": "https://gateway.example"},
        ANTHROPIC_API_KEY=TEST_KEY,
        ANTHROPIC_AUTH_TOKEN=TEST_KEY,
    )
    with pytest.raises(UsageError, match="^no API key: set OPENAI_API_KEY or TOOLCHAT_API_KEY"):
        OpenAIDialect(s.base_url).headers(s)
    s = settings_of(tmp_path, {"base_url": "https://gateway.example"}, OPENAI_API_KEY=TEST_KEY)
    with pytest.raises(UsageError, match="^no API key: set ANTHROPIC_API_KEY"):
        AnthropicDialect().headers(s)


def test_a_loopback_server_needs_no_key_a_remote_one_does(tmp_path):
    for base in ("http://localhost:11434/v1", "http://127.0.0.1:8000", "http://[::1]:1234/v1"):
        s = settings_of(tmp_path, {"api": "openai", "base_url": base})
        assert OpenAIDialect(base).headers(s) == {}, base
    s = settings_of(tmp_path, {"api": "openai", "base_url": "https://api.openai.com"})
    with pytest.raises(UsageError, match="OPENAI_API_KEY.*loopback"):
        OpenAIDialect(s.base_url).headers(s)
    s = settings_of(tmp_path, {"api": "openai", "base_url": "http://localhost:1"}, OPENAI_API_KEY="sk-o")
    assert OpenAIDialect(s.base_url).headers(s) == {"authorization": "Bearer sk-o"}
    s = settings_of(tmp_path, {"api": "openai", "auth_style": "x-api-key"}, OPENAI_API_KEY="sk-o")
    assert OpenAIDialect(s.base_url).headers(s) == {"x-api-key": "sk-o"}


def test_unsigned_reasoning_is_not_sent_to_the_messages_api():
    from toolchat.dialects.base import Request

    signed = {"type": "thinking", "thinking": "mine", "signature": "sig"}
    messages = [
        {"role": "user", "content": "a"},
        {
            "role": "assistant",
            "content": [{"type": "thinking", "thinking": "from chat.completions"}, {"type": "text", "text": "b"}],
        },
        {"role": "user", "content": "c"},
        {"role": "assistant", "content": [signed, {"type": "text", "text": "d"}]},
        {"role": "user", "content": "e"},
    ]
    body = AnthropicDialect().body(Request(model="m", max_tokens=5, messages=messages))
    assert body["messages"][1]["content"] == [{"type": "text", "text": "b"}]
    assert body["messages"][3]["content"] == [signed, {"type": "text", "text": "d"}]
    assert messages[1]["content"][0]["type"] == "thinking"  # the transcript itself is unchanged
    plain = messages[2:]
    assert AnthropicDialect().body(Request(model="m", max_tokens=5, messages=plain))["messages"] is plain


# ---------------------------------------------------------------- profiles (in-process)

PROFILES = (
    "model: claude-x\nprofiles:\n  local:\n    api: openai\n    base_url: http://127.0.0.1:9/v1\n"
    "    model: llama3\n    key_env: LOCAL_KEY\n  router:\n    api: openai\n"
    "    base_url: https://openrouter.ai/api/v1\n    key_env: OPENROUTER_API_KEY\n"
)


def test_a_profile_chooses_dialect_base_url_model_and_the_variable_of_the_key(tmp_path):
    env = {"LOCAL_KEY": "sk-local", "TOOLCHAT_API_KEY": "sk-other", "OPENAI_API_KEY": "sk-other"}
    s = settings_of(tmp_path, {"profile": "local"}, config=PROFILES, **env)
    assert (s.api, s.base_url, s.model, s.api_key, s.key_source, s.profile) == (
        "openai",
        "http://127.0.0.1:9/v1",
        "llama3",
        "sk-local",
        "LOCAL_KEY",
        "local",
    )
    assert settings_of(tmp_path, config=PROFILES, TOOLCHAT_PROFILE="local", **env).model == "llama3"
    # Flags beat the profile; without a profile the file's own keys apply.
    assert settings_of(tmp_path, {"profile": "local", "model": "qwen"}, config=PROFILES, **env).model == "qwen"
    s = settings_of(tmp_path, config=PROFILES, **env)
    assert (s.api, s.model, s.api_key) == ("anthropic", "claude-x", "sk-other")


def test_a_profile_whose_key_variable_is_unset_says_which_one(tmp_path):
    s = settings_of(tmp_path, {"profile": "router"}, config=PROFILES, TOOLCHAT_API_KEY="sk-not-this-one")
    assert s.api_key is None  # the profile's key_env is the only variable read
    with pytest.raises(UsageError) as caught:
        dialect_for(s).headers(s)
    assert str(caught.value) == "no API key: OPENROUTER_API_KEY is not set (key_env of profile 'router')"
    s = settings_of(tmp_path, {"profile": "local"}, config=PROFILES)  # loopback: no key needed
    assert dialect_for(s).headers(s) == {}
    anthropic = "profiles:\n  c: {api: anthropic, key_env: MY_ANT_KEY}\n"
    s = settings_of(tmp_path, {"profile": "c"}, config=anthropic, ANTHROPIC_API_KEY="sk-ant")
    with pytest.raises(UsageError, match="^no API key: MY_ANT_KEY is not set"):
        dialect_for(s).headers(s)


@pytest.mark.parametrize(
    "config, message",
    [
        ("profiles:\n  a: {api: openai}\n", "--profile: no profile 'nope' in .* \\(profiles: a\\)$"),
        ("model: m\n", "--profile: no profile 'nope' in .* \\(profiles: none defined\\)$"),
        ("profiles:\n  nope: {api: openai, api_key: sk-x}\n", "profiles.nope: keep API keys out of config files"),
        ("profiles:\n  nope: {api: cohere}\n", "profiles.nope.api: 'cohere' is not one of anthropic, openai$"),
        ("profiles:\n  nope: {colour: red}\n", "profiles.nope.colour: unknown setting"),
        ("profiles:\n  nope: {key_env: ''}\n", "profiles.nope.key_env: the name of an environment variable$"),
        ("profiles: [a, b]\n", "profiles: must be a mapping"),
    ],
)
def test_profile_mistakes_are_usage_errors(tmp_path, config, message):
    with pytest.raises(UsageError, match=message):
        settings_of(tmp_path, {"profile": "nope"}, config=config)


# ---------------------------------------------------------------- the command line (subprocesses)


def test_api_openai_plays_a_tool_chat_over_chat_completions(toolchat, mock):
    server = mock({"turns": [json.loads(CALC), {"text": "It is {result:calculate}."}]}, api_key=TEST_KEY)
    run = toolchat(*openai("-t", str(SAMPLE_TOOLS), "--json", "what is 6*7"), server=server)
    assert run.code == 0, run
    document = run.json()
    assert document["text"] == "It is 42."
    assert [(c["name"], c["output"]) for c in document["tool_calls"]] == [("calculate", "42")]
    assert paths(server) == ["/v1/chat/completions"] * 2
    first, second = (r.body for r in server.requests)
    assert server.requests[0].headers["authorization"] == f"Bearer {TEST_KEY}"
    assert "x-api-key" not in server.requests[0].headers
    assert (first["stream"], first["stream_options"], first["max_tokens"]) == (True, {"include_usage": True}, 4096)
    assert "max_completion_tokens" not in first  # not api.openai.com: the old name
    assert first["tools"][0]["type"] == "function"
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "tool"]


def test_a_profile_and_a_local_server_without_a_key(toolchat, mock, tmp_path):
    server = mock()
    server.require_auth = False
    config = tmp_path / "toolchat.yaml"
    config.write_text(f"profiles:\n  local: {{api: openai, base_url: '{server.url}/v1', model: llama3}}\n")
    run = toolchat("-p", "local", "hello", key=None, env={"TOOLCHAT_CONFIG": str(config)})
    assert (run.code, run.out) == (0, "hello\n"), run
    request = server.requests[0]
    assert (request.path, request.body["model"]) == ("/v1/chat/completions", "llama3")
    assert "authorization" not in request.headers and "x-api-key" not in request.headers


def test_without_a_key_nothing_is_sent_to_a_remote_host(toolchat):
    run = toolchat(*openai("--base-url", "https://api.openai.com", "hi"), key=None)
    assert (run.code, run.out) == (2, "")
    assert run.err == (
        "toolchat: error: no API key: set OPENAI_API_KEY or TOOLCHAT_API_KEY (sent as "
        "Authorization: Bearer), or name the variable with key_env in a profile; a local "
        "server on a loopback --base-url needs none\n"
    )


def test_dry_run_prints_the_chat_completions_body(toolchat):
    run = toolchat(
        *openai("--dry-run", "-s", "Be brief.", "-t", str(SAMPLE_TOOLS), "--no-parallel", "--tool-choice", "any", "hi"),
        key=None,
    )
    assert run.code == 0, run
    body = json.loads(run.out)
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    assert (body["model"], body["max_completion_tokens"]) == ("gpt-4o-mini", 4096)  # api.openai.com's field
    assert "max_tokens" not in body
    assert (body["tool_choice"], body["parallel_tool_calls"]) == ("required", False)
    assert {t["function"]["name"] for t in body["tools"]} >= {"calculate", "get_time"}


def test_schema_goes_as_response_format_and_the_answer_is_checked(toolchat, mock):
    server = mock({"turns": [{"text": '{"name": "Ada", "age": 36}'}]}, api_key=TEST_KEY)
    run = toolchat(*openai("--schema", "name, age int", "--json", "who?"), server=server)
    assert run.code == 0, run
    assert run.json()["output"] == {"name": "Ada", "age": 36}
    form = server.requests[0].body["response_format"]
    assert (form["type"], form["json_schema"]["name"], form["json_schema"]["strict"]) == ("json_schema", "answer", True)
    assert form["json_schema"]["schema"]["required"] == ["name", "age"]
    assert "output_config" not in server.requests[0].body  # the Messages API's field, not this one's
    # An answer that does not fit is exit 4, incomplete "schema", under this dialect too.
    server = mock({"turns": [{"text": '{"name": "Ada", "age": "old"}'}]}, api_key=TEST_KEY)
    run = toolchat(*openai("--schema", "name, age int", "--json", "who?"), server=server)
    document = run.json()
    assert (run.code, document["incomplete"], document["output"]) == (4, "schema", None), run
    assert document["output_error"] == "age: 'old' is not of type 'integer'"


@pytest.mark.parametrize("budget, effort", [("1024", "low"), ("8000", "medium"), ("20000", "high")])
def test_thinking_goes_as_reasoning_effort(toolchat, budget, effort):
    run = toolchat(*openai("--dry-run", "--thinking", budget, "--max-tokens", "32000", "hi"), key=None)
    assert run.code == 0, run
    body = json.loads(run.out)
    assert body["reasoning_effort"] == effort
    assert "thinking" not in body  # the Messages API's field


# ---------------------------------------------------------------- the same contract


def normal(document: dict) -> dict:
    """A --json document without what differs by dialect by design: ids, usage, the wire messages."""
    error = document["error"]
    return {
        "text": document["text"],
        "stop_reason": document["stop_reason"],
        "incomplete": document["incomplete"],
        "turns": document["turns"],
        "tool_calls": [(c["name"], c["input"], c["output"], c["is_error"]) for c in document["tool_calls"]],
        "error": error and error["type"],
    }


# One case in the default run, the rest in the slow set (each case is six subprocesses).
FAST = ("parallel tools and a tool error",)
SAME = [pytest.param(name, marks=() if name in FAST else pytest.mark.slow) for name in CASES if name not in ("debug",)]


@pytest.mark.parametrize("name", SAME)
def test_every_output_mode_behaves_the_same_under_both_dialects(toolchat, mock, name):
    prompt, args, options, code = CASES[name]
    outcomes = []
    for api in ("anthropic", "openai"):
        server = mock(**options)
        runs = [
            toolchat("--api", api, *mode, *args, prompt, server=server)
            for mode in (("--json",), ("--stream-json",), ())
        ]
        assert [r.code for r in runs] == [code] * 3, runs
        events = [json.loads(line) for line in runs[1].out.splitlines()]
        outcomes.append((normal(runs[0].json()), [e["type"] for e in events], runs[2].out))
    assert outcomes[0] == outcomes[1]


def test_retries_behave_the_same(toolchat, mock):
    script = {
        "turns": [
            {
                "text": "fine",
                "faults": [
                    {
                        "error": {"status": 529, "type": "overloaded_error", "message": "Overloaded"},
                        "headers": {"retry-after": "0"},
                    }
                ],
            }
        ]
    }
    server = mock(script)
    run = toolchat(*openai("--retries", "1", "hi"), server=server)
    assert (run.code, run.out) == (0, "fine\n"), run
    assert "overloaded (529), retrying" in run.err
    assert len(server.requests) == 2


@pytest.mark.slow  # over 2.5 s: the slow set, which .ci/run plays after the default run
def test_a_conversation_saved_under_one_dialect_continues_under_the_other(toolchat, mock, tmp_path):
    server = mock(
        {
            "turns": [
                json.loads(CALC),
                {"text": "It is {result:calculate}."},
                {"thinking": "again", "text": "Still {prompt}."},
                {"text": "Back: {prompt}"},
            ]
        }
    )
    first = toolchat(*openai("-t", str(SAMPLE_TOOLS), "--save", "chat.json", "what is 6*7"), server=server)
    assert (first.code, first.out) == (0, "Let me work it out.\n\nIt is 42.\n"), first
    # The unsigned reasoning of chat.completions is not sent to the Messages API, which refuses it.
    second = toolchat(
        "-t", str(SAMPLE_TOOLS), "--messages", "chat.json", "--save", "chat.json", "and now?", server=server
    )
    assert (second.code, second.out) == (0, "Still and now?.\n"), second
    assert server.requests[-1].path == "/v1/messages"
    third = toolchat(*openai("--messages", "chat.json", "-t", str(SAMPLE_TOOLS), "last"), server=server)
    assert (third.code, third.out) == (0, "Back: last\n"), third
    sent = server.requests[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "assistant", "user", "assistant", "user"]


# ---------------------------------------------------------------- the README's examples


@pytest.fixture
def openai_shell(tmp_path, mock):
    """test_scripting's shell, with TOOLCHAT_API=openai."""
    return make_shell(tmp_path, mock, TOOLCHAT_API="openai")


@needs_jq
@pytest.mark.parametrize(
    "example",
    [pytest.param(e, marks=() if e.name in ("answer", "tools-called") else pytest.mark.slow) for e in README_EXAMPLES],
    ids=[e.name for e in README_EXAMPLES],
)
def test_readme_example_under_chat_completions(openai_shell, example):
    proc, server = openai_shell(example)
    assert (proc.returncode, proc.stdout) == (example.exit, example.output)
    assert {r.path for r in server.requests} <= {"/v1/chat/completions"}
    if example.requests is not None:
        assert len(server.requests) == example.requests
