"""The mock server's Message Batches endpoints and its rate limit (real headers, 429 above it)."""

from __future__ import annotations

import json
import time

import pytest
import requests

from toolchat.mock.ratelimit import RateLimit
from toolchat.mock.server import MockServer

HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
BODY = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hello there"}]}


def _create(server, *ids, params=BODY):
    answer = requests.post(
        server.url + "/v1/messages/batches",
        headers=HEADERS,
        json={"requests": [{"custom_id": i, "params": params} for i in ids]},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def _get(server, path):
    return requests.get(server.url + path, headers=HEADERS)


def test_a_batch_is_in_progress_until_its_delay_passes_then_ends_with_every_result():
    with MockServer(batch_delay=0.2, log=False) as server:
        batch = _create(server, "a", "b")
        assert batch["type"] == "message_batch" and batch["processing_status"] == "in_progress"
        assert batch["request_counts"] == {"processing": 2, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        assert batch["results_url"] is None
        assert _get(server, f"/v1/messages/batches/{batch['id']}/results").status_code == 400
        time.sleep(0.25)
        ended = _get(server, f"/v1/messages/batches/{batch['id']}").json()
        assert ended["processing_status"] == "ended" and ended["request_counts"]["succeeded"] == 2
        assert ended["ended_at"] is not None
        results = _get(server, ended["results_url"])
        lines = [json.loads(line) for line in results.text.splitlines()]
        assert sorted(line["custom_id"] for line in lines) == ["a", "b"]
        assert {line["result"]["type"] for line in lines} == {"succeeded"}
        assert lines[0]["result"]["message"]["content"] == [{"type": "text", "text": "hello there"}]


def test_outcomes_are_scripted_per_custom_id_and_per_appearance():
    outcomes = {"x": ["succeeded", "expired"], "e": "errored", "c": "canceled"}
    with MockServer(batch_outcomes=outcomes, log=False) as server:
        first = _create(server, "x", "e", "c")
        second = _create(server, "x")
        one = {
            json.loads(line)["custom_id"]: json.loads(line)["result"]
            for line in _get(server, f"/v1/messages/batches/{first['id']}/results").text.splitlines()
        }
        assert one["x"]["type"] == "succeeded"
        assert one["e"] == {
            "type": "errored",
            "error": {
                "type": "error",
                "error": {"type": "api_error", "message": "mock: this request was scripted to fail"},
            },
        }
        assert one["c"] == {"type": "canceled"}
        two = _get(server, f"/v1/messages/batches/{second['id']}/results").text
        assert json.loads(two)["result"] == {"type": "expired"}
        assert _get(server, f"/v1/messages/batches/{second['id']}").json()["request_counts"]["expired"] == 1


def test_a_request_the_api_would_refuse_is_errored_with_the_reason():
    with MockServer(log=False) as server:
        batch = _create(server, "bad", params={"model": "m", "messages": []})
        line = json.loads(_get(server, f"/v1/messages/batches/{batch['id']}/results").text)
        assert line["result"]["type"] == "errored"
        assert line["result"]["error"]["error"]["type"] == "invalid_request_error"


def test_create_refuses_bad_custom_ids_duplicates_and_streaming_params():
    with MockServer(log=False) as server:
        url = server.url + "/v1/messages/batches"
        for requests_ in (
            [{"custom_id": "a b", "params": BODY}],
            [{"custom_id": "a", "params": BODY}, {"custom_id": "a", "params": BODY}],
            [{"custom_id": "a", "params": {**BODY, "stream": True}}],
            [],
        ):
            answer = requests.post(url, headers=HEADERS, json={"requests": requests_})
            assert answer.status_code == 400 and answer.json()["error"]["type"] == "invalid_request_error"
        assert requests.post(url, json={"requests": []}).status_code == 401
        assert server.batches.creates == 0


def test_cancel_answers_canceling_then_the_batch_ends_with_canceled_requests():
    with MockServer(batch_delay=60, log=False) as server:
        batch = _create(server, "a", "b")
        canceled = requests.post(server.url + f"/v1/messages/batches/{batch['id']}/cancel", headers=HEADERS)
        assert canceled.json()["processing_status"] == "canceling"
        after = _get(server, f"/v1/messages/batches/{batch['id']}").json()
        assert after["processing_status"] == "ended"
        assert after["request_counts"]["canceled"] == 2


def test_list_is_newest_first_with_paging_and_delete_removes_an_ended_batch():
    with MockServer(log=False) as server:
        ids = [_create(server, "a")["id"] for _ in range(3)]
        page = _get(server, "/v1/messages/batches?limit=2").json()
        assert [b["id"] for b in page["data"]] == ids[::-1][:2] and page["has_more"] is True
        rest = _get(server, f"/v1/messages/batches?limit=2&after_id={page['last_id']}").json()
        assert [b["id"] for b in rest["data"]] == [ids[0]] and rest["has_more"] is False
        gone = requests.delete(server.url + f"/v1/messages/batches/{ids[0]}", headers=HEADERS)
        assert gone.json() == {"id": ids[0], "type": "message_batch_deleted"}
        assert _get(server, f"/v1/messages/batches/{ids[0]}").status_code == 404


def test_the_rate_limit_sends_the_real_headers_and_429_with_retry_after_above_it():
    with MockServer(rate_limit={"requests": 60, "input_tokens": 10_000, "burst": 2}, log=False) as server:
        answers = [requests.post(server.url + "/v1/messages", headers=HEADERS, json=BODY) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        first = answers[0].headers
        assert first["anthropic-ratelimit-requests-limit"] == "60"
        assert first["anthropic-ratelimit-requests-remaining"] == "1"
        assert first["anthropic-ratelimit-input-tokens-limit"] == "10000"
        assert first["anthropic-ratelimit-input-tokens-remaining"] == str(10_000 - 2)
        assert first["anthropic-ratelimit-requests-reset"].endswith("Z")
        refused = answers[2]
        assert refused.json()["error"]["type"] == "rate_limit_error"
        assert refused.headers["retry-after"] == "1"
        assert refused.headers["anthropic-ratelimit-requests-remaining"] == "0"
        assert server.rate_limit.accepted == 2 and server.rate_limit.refused == 1


def test_the_bucket_refills_at_the_per_minute_rate():
    now = [0.0]
    limit = RateLimit({"requests": 120, "burst": 1}, clock=lambda: now[0], wall=lambda: 0.0)
    assert limit.admit(1)[0] is True
    admitted, headers = limit.admit(1)
    assert admitted is False and headers["retry-after"] == "1"
    now[0] = 0.5  # 120 a minute: one more every half second
    assert limit.admit(1)[0] is True
    with pytest.raises(ValueError):
        RateLimit({"requests_per_second": 1})


def test_output_tokens_taken_after_the_answer_hold_back_the_next_request():
    now = [0.0]
    limit = RateLimit({"output_tokens": 60}, clock=lambda: now[0], wall=lambda: 0.0)
    assert limit.admit(1)[0] is True
    headers = limit.spend(90)
    assert headers["anthropic-ratelimit-output-tokens-remaining"] == "0"
    admitted, headers = limit.admit(1)
    assert admitted is False and headers["retry-after"] == "31"
