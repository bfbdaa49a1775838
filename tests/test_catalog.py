"""`toolchat models` and `toolchat count-tokens`, and the mock's strict /v1/models and
/v1/messages/count_tokens."""

from __future__ import annotations

import base64
import json

import pytest
import requests

from toolchat.dialects.anthropic import AnthropicDialect
from toolchat.dialects.models import count_tokens_body, models_from_json
from toolchat.dialects.openai import OpenAIDialect
from toolchat.mock.catalog import MODELS


ANTHROPIC = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def test_models_urls_sit_beside_each_dialects_endpoint():
    for base in ("http://h:1", "http://h:1/", "http://h:1/v1", "http://h:1/v1/messages"):
        assert AnthropicDialect().models_url(base) == "http://h:1/v1/models"
        assert AnthropicDialect().count_tokens_url(base) == "http://h:1/v1/messages/count_tokens"
    for base in ("http://h:1", "http://h:1/v1", "http://h:1/v1/chat/completions"):
        assert OpenAIDialect().models_url(base) == "http://h:1/v1/models"


def test_the_mock_pages_its_model_list_like_the_api(mock):
    server = mock()
    first = requests.get(server.url + "/v1/models?limit=3", headers=ANTHROPIC, timeout=10).json()
    assert [m["id"] for m in first["data"]] == [m[0] for m in MODELS[:3]]
    assert (first["has_more"], first["first_id"], first["last_id"]) == (True, MODELS[0][0], MODELS[2][0])
    assert first["data"][0] == {
        "type": "model",
        "id": MODELS[0][0],
        "display_name": MODELS[0][1],
        "created_at": MODELS[0][2],
    }
    rest = requests.get(
        server.url + f"/v1/models?limit=100&after_id={first['last_id']}", headers=ANTHROPIC, timeout=10
    ).json()
    assert [m["id"] for m in rest["data"]] == [m[0] for m in MODELS[3:]] and rest["has_more"] is False
    assert models_from_json(first) == (
        [{k: m[k] for k in ("id", "display_name", "created_at")} for m in first["data"]],
        MODELS[2][0],
    )


@pytest.mark.parametrize(
    "query, status, message",
    [
        ("limit=0", 400, "limit: Input should be greater than or equal to 1 and less than or equal to 1000"),
        ("page=2", 400, "page: Extra inputs are not permitted"),
        ("after_id=claude-nope", 404, "model: claude-nope"),
    ],
)
def test_the_mock_model_list_refuses_what_the_api_refuses(mock, query, status, message):
    server = mock()
    reply = requests.get(server.url + "/v1/models?" + query, headers=ANTHROPIC, timeout=10)
    assert (reply.status_code, reply.json()["error"]["message"]) == (status, message)
    assert requests.get(server.url + "/v1/models", timeout=10).status_code == 401


def test_the_openai_dialect_reads_the_openai_model_list(mock):
    server = mock()
    url = OpenAIDialect().models_url(server.url)
    data = requests.get(url, headers={"Authorization": "Bearer k"}, timeout=10).json()
    assert data["object"] == "list"
    found, more = models_from_json(data)
    assert more is None
    assert found[0] == {"id": MODELS[0][0], "created": 1700000000, "owned_by": "anthropic"}
    assert [m["id"] for m in found] == [m[0] for m in MODELS]


def test_models_lists_every_page_and_json(toolchat, mock):
    server = mock()
    run = toolchat("models", server=server)
    assert run.code == 0, run
    assert run.out == "".join(f"{i}\t{name}\n" for i, name, _ in MODELS)
    assert server.requests[0].path == "/v1/models?limit=1000"
    assert server.requests[0].headers["anthropic-version"] == "2023-06-01"
    as_json = toolchat("models", "--json", server=server)
    assert [m["id"] for m in as_json.json()] == [m[0] for m in MODELS]


def test_models_reports_an_api_error_in_one_line(toolchat, mock):
    server = mock(api_key="another-key")
    run = toolchat("models", server=server)
    assert (run.code, run.out) == (3, "")
    assert run.err.startswith("toolchat: error: ") and "authentication_error" in run.err
    assert len(run.err.splitlines()) == 1


def test_count_tokens_sends_the_tools_system_and_attachments_a_run_would(toolchat, mock, tmp_path, calc):
    server = mock()
    (tmp_path / "dot.png").write_bytes(PNG)
    run = toolchat("count-tokens", "-t", calc, "-s", "Be brief.", "-a", "dot.png", "How", "many?", server=server)
    assert run.code == 0, run
    [sent] = server.requests
    assert sent.path == "/v1/messages/count_tokens"
    body = sent.body
    assert set(body) == {"model", "messages", "system", "tools"}  # no max_tokens, no stream
    assert [t["name"] for t in body["tools"]] == ["calc", "guarded"]
    assert body["messages"][0]["content"][0]["source"]["media_type"] == "image/png"
    assert body["messages"][0]["content"][1]["text"] == "How many?"
    # The mock counts words: "Add" + "calc" + "guarded" (tools), "Be brief." and "How many?".
    assert run.out == "7\n"
    as_json = toolchat("count-tokens", "--json", "-m", "claude-x", "one two", server=server)
    assert as_json.json() == {"model": "claude-x", "input_tokens": 2}


def test_the_mock_count_tokens_is_strict(mock):
    server = mock()
    ok = requests.post(
        server.url + "/v1/messages/count_tokens",
        headers=ANTHROPIC,
        timeout=10,
        json={"model": "m", "messages": [{"role": "user", "content": "a b c"}]},
    )
    assert (ok.status_code, ok.json()) == (200, {"input_tokens": 3})
    extra = requests.post(
        server.url + "/v1/messages/count_tokens",
        headers=ANTHROPIC,
        timeout=10,
        json={"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "a"}]},
    )
    assert (extra.status_code, extra.json()["error"]["message"]) == (400, "max_tokens: Extra inputs are not permitted")
    assert count_tokens_body(
        {"model": "m", "max_tokens": 5, "stream": True, "temperature": 0.5, "messages": [], "system": "s"}
    ) == {"model": "m", "messages": [], "system": "s"}


@pytest.fixture
def calc(tmp_path):
    (tmp_path / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    path = tmp_path / "calc.yaml"
    path.write_text(
        json.dumps(
            {
                "tools": [
                    {
                        "name": "calc",
                        "description": "Add",
                        "handler": "calc.py:add",
                        "input_schema": {"type": "object", "properties": {"a": {"type": "number"}}},
                    },
                    {"name": "guarded", "handler": "calc.py:add", "input_schema": {"type": "object"}},
                ]
            }
        )
    )
    return str(path)
