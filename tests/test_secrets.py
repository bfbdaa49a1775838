"""Credentials never show: not in --debug output, error messages, --dry-run, --json or --stream-json
documents, nor saved transcripts, whichever way the key is sent.

The `toolchat` fixture already fails any run whose stdout, stderr or written files hold the marker
key (TEST_KEY); these tests drive the paths where a key could slip out, and check explicitly too.
"""

from __future__ import annotations

import json

import pytest

from conftest import TEST_KEY, assert_no_secret

# How the key reaches the request: (environment, extra flags, header it must arrive in).
STYLES = [
    pytest.param({"TOOLCHAT_API_KEY": TEST_KEY}, ["--auth-style", "x-api-key"], "x-api-key", id="x-api-key"),
    pytest.param({"TOOLCHAT_API_KEY": TEST_KEY}, ["--auth-style", "bearer"], "authorization", id="bearer"),
    pytest.param({"ANTHROPIC_API_KEY": TEST_KEY}, [], "x-api-key", id="ANTHROPIC_API_KEY"),
    pytest.param({"ANTHROPIC_AUTH_TOKEN": TEST_KEY}, [], "authorization", id="ANTHROPIC_AUTH_TOKEN"),
    pytest.param(
        {"TOOLCHAT_API_KEY": "placeholder-key"},
        ["--header", f"Authorization: Bearer {TEST_KEY}"],
        "authorization",
        id="header-authorization",
    ),
    pytest.param(
        {"TOOLCHAT_API_KEY": "placeholder-key"},
        ["--header", f"x-api-key: {TEST_KEY}"],
        "x-api-key",
        id="header-x-api-key",
    ),
]


def echoed_key_error():
    """A gateway error body that quotes the key back (some do)."""
    return json.dumps(
        {"type": "error", "error": {"type": "authentication_error", "message": f"key {TEST_KEY} is not valid"}}
    )


@pytest.mark.parametrize("env, flags, header", STYLES)
def test_debug_run_with_save_never_shows_the_key(toolchat, mock, tmp_path, env, flags, header):
    server = mock(api_key=TEST_KEY)
    run = toolchat("--debug", "--save", "chat.json", *flags, "hi", server=server, key=None, env=env)
    assert (run.code, run.out) == (0, "hi\n"), run
    assert TEST_KEY in server.requests[0].headers[header]  # it was sent, just never shown
    assert "[redacted]" in run.err
    assert_no_secret(run.out, run.err, (tmp_path / "chat.json").read_text())


@pytest.mark.parametrize("env, flags, header", STYLES)
def test_debug_json_failure_never_shows_the_key(toolchat, mock, tmp_path, env, flags, header):
    server = mock(api_key="a-different-key")
    run = toolchat("--debug", "--json", "--save", "chat.json", *flags, "hi", server=server, key=None, env=env)
    assert run.code == 3
    assert run.json()["error"]["type"] == "authentication_error"
    assert "Traceback" in run.err
    assert_no_secret(run.out, run.err, (tmp_path / "chat.json").read_text())


@pytest.mark.parametrize("env, flags, header", STYLES)
def test_dry_run_never_shows_the_key(toolchat, env, flags, header):
    run = toolchat("--dry-run", "--no-cache", "--debug", *flags, "hi", key=None, env=env)
    assert run.code == 0 and json.loads(run.out)["messages"] == [{"role": "user", "content": "hi"}]
    assert_no_secret(run.out, run.err)


@pytest.mark.parametrize("env, flags, header", STYLES[:2])
def test_stream_json_never_shows_the_key(toolchat, mock, env, flags, header):
    fault = {"error": {"status": 529}, "headers": {"retry-after-ms": "1"}}
    prompt = json.dumps({"text": "ok", "faults": [fault]})
    run = toolchat("--stream-json", "--debug", *flags, prompt, server=mock(), key=None, env=env)
    assert run.code == 0, run
    assert_no_secret(run.out, run.err)


@pytest.mark.parametrize("debug", [[], ["--debug"]], ids=["plain", "debug"])
def test_a_key_echoed_in_an_http_error_body_is_redacted(toolchat, mock, tmp_path, debug):
    server = mock({"turns": [{"raw": echoed_key_error(), "status": 401, "content_type": "application/json"}]})
    run = toolchat(*debug, "--json", "--save", "chat.json", "hi", server=server)
    assert run.code == 3
    assert run.json()["error"]["message"] == (
        "HTTP 401 authentication_error: key [redacted] is not valid (check the API key and --auth-style)"
    )
    assert "toolchat: error: HTTP 401 authentication_error: key [redacted] is not valid" in run.err
    assert_no_secret(run.out, run.err, (tmp_path / "chat.json").read_text())


def test_a_key_echoed_in_an_error_event_is_redacted(toolchat, mock):
    event = {"type": "error", "error": {"type": "invalid_request_error", "message": f"bad key {TEST_KEY}"}}
    server = mock({"turns": [{"raw": f"event: error\ndata: {json.dumps(event)}\n\n"}]})
    run = toolchat("--debug", "hi", server=server)
    assert run.code == 3
    assert "toolchat: error: invalid_request_error: bad key [redacted]" in run.err


@pytest.mark.parametrize(
    "key",
    [TEST_KEY + "\nsecond-line", "prefix\n" + TEST_KEY, TEST_KEY + "\u2019"],
    ids=["newline-after", "newline-before", "not-latin-1"],
)
@pytest.mark.parametrize("debug", [[], ["--debug"]], ids=["plain", "debug"])
def test_a_key_http_cannot_carry_fails_in_one_line_without_showing_it(toolchat, mock, key, debug):
    run = toolchat(*debug, "hi", server=mock(), key=key)
    assert (run.code, run.out) == (3, "")
    if not debug:
        [line] = run.err.splitlines()
        assert line.startswith("toolchat: error: cannot send the request to 127.0.0.1:")
    assert_no_secret(run.out, run.err)


def test_a_transcript_saved_after_a_tool_run_has_no_key(toolchat, mock, tmp_path):
    (tmp_path / "h.py").write_text("def two():\n    return 2\n")
    (tmp_path / "t.yaml").write_text("tools:\n  - name: two\n    input_schema: {type: object}\n    handler: h.py:two\n")
    prompt = json.dumps({"tool_calls": [{"name": "two", "input": {}}]})
    run = toolchat("--debug", "--json", "--save", "chat.json", "-t", "t.yaml", prompt, server=mock(api_key=TEST_KEY))
    assert run.code == 0, run
    saved = json.loads((tmp_path / "chat.json").read_text())
    assert [m["role"] for m in saved["messages"]] == ["user", "assistant", "user", "assistant"]
    assert_no_secret(run.out, run.err, json.dumps(saved))


def test_the_leak_check_itself_catches_a_leak(tmp_path):
    (tmp_path / "out.txt").write_text(f"oops {TEST_KEY}")
    with pytest.raises(AssertionError, match="leaked into"):
        assert_no_secret(root=tmp_path)
    with pytest.raises(AssertionError, match="leaked into output"):
        assert_no_secret(b"x " + TEST_KEY.encode())


@pytest.mark.parametrize("prefix", ["x" * 90, "sk-ant-api03-" + "A" * 90], ids=["long-x", "long-key"])
@pytest.mark.parametrize("json_flag", [[], ["--json"]], ids=["plain", "json"])
def test_no_part_of_a_long_key_http_cannot_carry_is_shown(toolchat, mock, prefix, json_flag):
    # A long value used to be clipped before redaction, leaving part of the key in the message.
    key = prefix + TEST_KEY + "\nBBBBB"
    run = toolchat(*json_flag, "hi", server=mock(), env={"ANTHROPIC_AUTH_TOKEN": key}, key=None)
    assert run.code == 3
    assert prefix[:20] not in run.out + run.err
    assert run.err.splitlines()[-1] == (
        f"toolchat: error: cannot send the request to 127.0.0.1:{run_port(run)}: a header value has "
        "characters HTTP headers cannot carry; check the API key and --header values"
    )


def run_port(run) -> str:
    return run.err.split("127.0.0.1:")[1].split(":")[0]


@pytest.mark.parametrize("debug", [[], ["--debug"]], ids=["plain", "debug"])
def test_a_password_in_the_base_url_is_never_shown(toolchat, debug):
    run = toolchat(*debug, "--base-url", "http://user:hunter2-secret@127.0.0.1:9/", "--retries", "0", "hi")
    assert run.code == 3
    assert "hunter2-secret" not in run.out + run.err
    errors = [line for line in run.err.splitlines() if line.startswith("toolchat: error:")]
    assert errors == ["toolchat: error: could not connect to 127.0.0.1:9: Connection refused"]
    if debug:
        assert "debug: POST http://127.0.0.1:9/v1/messages headers=" in run.err


def test_a_malformed_header_is_not_echoed(toolchat):
    run = toolchat("--header", f"x-api-key {TEST_KEY}", "hi")
    assert (run.code, run.out) == (2, "")
    assert TEST_KEY not in run.err
