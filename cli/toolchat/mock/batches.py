"""The mock's Message Batches API: create, retrieve, list, results (.jsonl), cancel, delete.

A batch is processed all at once when its processing delay has passed (`batch_delay` seconds
after creation), each request answered by the same scripted or echo model as `/v1/messages`.
Per-request outcomes are scriptable: `batch_outcomes` maps a custom_id to an outcome
(succeeded | errored | canceled | expired) or to a list of them, one per batch the custom_id
appears in (the last repeats), so a test can let round 2 of a tool loop expire. A request whose
params the real API would refuse (schema, tool pairing) is `errored` with that error.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from .model import build_reply
from .validate import ApiError, invalid, validate_body

OUTCOMES = ("succeeded", "errored", "canceled", "expired")
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_REQUESTS = 100_000
PREFIX = "/v1/messages/batches"


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, timezone.utc).isoformat().replace("+00:00", "Z")


class Batches:
    def __init__(self, script: Any, delay: float = 0.0, outcomes: dict | None = None):
        self.script = script
        self.delay = delay
        self.outcomes = dict(outcomes or {})
        self.seen: dict[str, int] = {}  # custom_id -> batches it was in
        self.batches: dict[str, dict] = {}  # id -> batch state, in creation order
        self.creates = 0  # POST /v1/messages/batches received (tests: no second create on resume)
        self.lock = threading.Lock()
        self._numbers = iter(range(1, 1 << 62))

    # ---------------------------------------------------------------- routes

    def handle(self, method: str, path: str, query: dict, raw: bytes) -> tuple[int, Any, str]:
        """(status, body, kind): kind "json" (body a dict) or "jsonl" (body bytes)."""
        rest = path[len(PREFIX) :].strip("/")
        parts = rest.split("/") if rest else []
        if not parts:
            if method == "POST":
                return 200, self.create(raw), "json"
            if method == "GET":
                return 200, self.list(query), "json"
            raise ApiError(405, "invalid_request_error", f"Method {method} not allowed")
        batch_id = parts[0]
        if len(parts) == 1:
            if method == "GET":
                return 200, self.retrieve(batch_id), "json"
            if method == "DELETE":
                return 200, self.delete(batch_id), "json"
        elif len(parts) == 2 and parts[1] == "results" and method == "GET":
            return 200, self.results(batch_id), "jsonl"
        elif len(parts) == 2 and parts[1] == "cancel" and method == "POST":
            return 200, self.cancel(batch_id), "json"
        raise ApiError(404, "not_found_error", "Not Found")

    # ---------------------------------------------------------------- operations

    def create(self, raw: bytes) -> dict:
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise invalid("request body is not valid JSON") from None
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            raise invalid("requests: a non-empty list is required")
        if len(requests) > MAX_REQUESTS:
            raise invalid(f"requests: at most {MAX_REQUESTS} requests per batch")
        ids = set()
        for i, request in enumerate(requests):
            if not isinstance(request, dict) or set(request) != {"custom_id", "params"}:
                raise invalid(f"requests.{i}: needs exactly custom_id and params")
            cid = request["custom_id"]
            if not isinstance(cid, str) or not CUSTOM_ID.match(cid):
                raise invalid(f"requests.{i}.custom_id: must match ^[a-zA-Z0-9_-]{{1,64}}$")
            if cid in ids:
                raise invalid(f"requests.{i}.custom_id: {cid!r} is not unique in the batch")
            ids.add(cid)
            if not isinstance(request["params"], dict):
                raise invalid(f"requests.{i}.params: must be an object")
            if request["params"].get("stream"):
                raise invalid(f"requests.{i}.params.stream: batch requests cannot stream")
        now = time.time()
        with self.lock:
            self.creates += 1
            batch_id = f"msgbatch_mock_{next(self._numbers):06d}{secrets.token_hex(6)}"
            planned = []
            for request in requests:
                cid = request["custom_id"]
                count = self.seen.get(cid, 0)
                self.seen[cid] = count + 1
                planned.append((cid, request["params"], self._outcome(cid, count)))
            self.batches[batch_id] = {
                "id": batch_id,
                "created": now,
                "requests": planned,
                "cancel_at": None,
                "ended": None,
                "results": None,
            }
            return self._view(self.batches[batch_id], now)

    def _outcome(self, cid: str, count: int) -> str:
        spec = self.outcomes.get(cid, "succeeded")
        if isinstance(spec, (list, tuple)):
            spec = spec[min(count, len(spec) - 1)] if spec else "succeeded"
        if spec not in OUTCOMES:
            raise ValueError(f"batch_outcomes[{cid!r}]: {spec!r} is not one of {', '.join(OUTCOMES)}")
        return spec

    def retrieve(self, batch_id: str) -> dict:
        with self.lock:
            return self._view(self._get(batch_id), time.time())

    def list(self, query: dict) -> dict:
        limit = int((query.get("limit") or ["20"])[0])
        after = (query.get("after_id") or [None])[0]
        with self.lock:
            ids = list(reversed(self.batches))  # newest first, as the API lists them
            if after in self.batches:
                ids = ids[ids.index(after) + 1 :]
            page = ids[: max(1, min(limit, 1000))]
            now = time.time()
            data = [self._view(self.batches[i], now) for i in page]
        return {
            "data": data,
            "has_more": len(ids) > len(page),
            "first_id": page[0] if page else None,
            "last_id": page[-1] if page else None,
        }

    def cancel(self, batch_id: str) -> dict:
        with self.lock:
            batch = self._get(batch_id)
            now = time.time()
            self._settle(batch, now)
            if batch["ended"] is None and batch["cancel_at"] is None:
                batch["cancel_at"] = now  # what is left is canceled when the batch is next looked at
            return self._view(batch, now, settle=False)

    def delete(self, batch_id: str) -> dict:
        with self.lock:
            batch = self._get(batch_id)
            self._settle(batch, time.time())
            if batch["ended"] is None:
                raise invalid("a batch must end (or be canceled) before it can be deleted")
            del self.batches[batch_id]
        return {"id": batch_id, "type": "message_batch_deleted"}

    def results(self, batch_id: str) -> bytes:
        with self.lock:
            batch = self._get(batch_id)
            self._settle(batch, time.time())
            if batch["ended"] is None:
                raise invalid(f"batch {batch_id} is still in progress: its results are not ready")
            return b"".join(json.dumps(line, ensure_ascii=False).encode("utf-8") + b"\n" for line in batch["results"])

    # ---------------------------------------------------------------- processing

    def _get(self, batch_id: str) -> dict:
        batch = self.batches.get(batch_id)
        if batch is None:
            raise ApiError(404, "not_found_error", f"batch {batch_id} not found")
        return batch

    def _settle(self, batch: dict, now: float) -> None:
        """Process the batch if its time has come (or a cancel ends it)."""
        if batch["ended"] is not None:
            return
        canceled = batch["cancel_at"] is not None
        if not canceled and now < batch["created"] + self.delay:
            return
        results = []
        for number, (cid, params, outcome) in enumerate(batch["requests"], 1):
            if canceled:
                outcome = "canceled"
            results.append({"custom_id": cid, "result": self._answer(params, outcome, number)})
        # "in no guaranteed order": reversed, so a client that relies on the order is caught.
        batch["results"] = list(reversed(results))
        batch["ended"] = now

    def _answer(self, params: dict, outcome: str, number: int) -> dict:
        if outcome in ("canceled", "expired"):
            return {"type": outcome}
        if outcome == "errored":
            return {
                "type": "errored",
                "error": {
                    "type": "error",
                    "error": {"type": "api_error", "message": "mock: this request was scripted to fail"},
                },
            }
        try:
            validate_body(params)
            message = build_reply(self.script, params, number).message
        except ApiError as exc:
            return {"type": "errored", "error": {"type": "error", "error": {"type": exc.type, "message": exc.message}}}
        return {"type": "succeeded", "message": message}

    def _view(self, batch: dict, now: float, settle: bool = True) -> dict:
        if settle:
            self._settle(batch, now)
        counts = dict.fromkeys(("processing", *OUTCOMES), 0)
        if batch["ended"] is None:
            counts["processing"] = len(batch["requests"])
        else:
            for line in batch["results"]:
                counts[line["result"]["type"]] += 1
        ended = batch["ended"] is not None
        return {
            "id": batch["id"],
            "type": "message_batch",
            "processing_status": "ended" if ended else "canceling" if batch["cancel_at"] else "in_progress",
            "request_counts": counts,
            "created_at": _iso(batch["created"]),
            "expires_at": _iso(batch["created"] + timedelta(hours=24).total_seconds()),
            "ended_at": _iso(batch["ended"]),
            "cancel_initiated_at": _iso(batch["cancel_at"]),
            "archived_at": None,
            "results_url": f"{PREFIX}/{batch['id']}/results" if ended else None,
        }
