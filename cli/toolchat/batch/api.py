"""A small client of Anthropic's Message Batches API: create, retrieve, results (streamed JSONL),
cancel. Errors come out as transport.py makes them (APIError with the server's message and retry
hints, TransportError), credentials scrubbed."""

from __future__ import annotations

import json
import time
from typing import Iterator
from urllib.parse import urljoin

from ..dialects.base import endpoint
from ..errors import APIError, ToolchatError

PATH = "/v1/messages/batches"
RETRIES = 5  # status checks and result reads are safe to repeat; a create is not retried


class BatchesAPI:
    def __init__(self, settings, dialect, sleep=time.sleep):
        from ..transport import Transport

        headers = {**dialect.headers(settings), **settings.extra_headers()}
        # The transport's session (auth headers, redirect rules, error mapping) for other URLs.
        self.transport = Transport(
            endpoint(settings.base_url, PATH),
            headers,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            debug=settings.debug,
        )
        self.url = self.transport.url
        self.sleep = sleep

    def close(self) -> None:
        self.transport.close()

    def _call(self, method: str, url: str, body: dict | None = None, stream: bool = False, retry: bool = True):
        from ..transport import error_from_response

        t = self.transport
        for attempt in range(RETRIES + 1 if retry else 1):
            try:
                data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
                response = t.session.request(method, url, data=data, stream=stream, timeout=t.timeout)
            except Exception as exc:
                error = t.failure(exc, mid_response=False)
                if error is None:
                    raise
                if attempt < RETRIES and retry:
                    self.sleep(min(30.0, 2.0**attempt))
                    continue
                raise t.scrubbed(error) from exc
            if response.status_code < 400:
                return response
            error = error_from_response(response, response.content[:64_000])
            response.close()
            if retry and attempt < RETRIES and (response.status_code in (408, 409, 429) or response.status_code >= 500):
                self.sleep(
                    error.retry_after if error.retry_after and 0 < error.retry_after <= 60 else min(30.0, 2.0**attempt)
                )
                continue
            raise t.scrubbed(error)
        raise AssertionError("unreachable")

    def create(self, requests: list[dict]) -> dict:
        return self._call("POST", self.url, {"requests": requests}, retry=False).json()

    def retrieve(self, batch_id: str) -> dict:
        return self._call("GET", f"{self.url}/{batch_id}").json()

    def cancel(self, batch_id: str) -> dict:
        return self._call("POST", f"{self.url}/{batch_id}/cancel").json()

    def results(self, batch: dict) -> Iterator[dict]:
        """The result lines of an ended batch, one at a time as they arrive."""
        url = urljoin(self.url, batch.get("results_url") or f"{self.url}/{batch['id']}/results")
        response = self._call("GET", url, stream=True)
        try:
            pending = b""
            # Split on b"\n" only: U+2028 inside a JSON string is not a line end.
            for piece in response.iter_content(chunk_size=1 << 16):
                pending += piece
                *whole, pending = pending.split(b"\n")
                for line in whole:
                    if line.strip():
                        yield _line(line)
            if pending.strip():
                yield _line(pending)
        finally:
            response.close()


def _line(raw: bytes) -> dict:
    try:
        value = json.loads(raw)
    except ValueError:
        raise APIError("the batch results hold a line that is not JSON", type="malformed_response") from None
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("custom_id"), str)
        or not isinstance(value.get("result"), dict)
    ):
        raise APIError("the batch results hold a line without custom_id and result", type="malformed_response")
    return value


def error_of(result: dict) -> ToolchatError:
    """The error a result that did not succeed stands for."""
    kind = result.get("type")
    if kind == "errored":
        inner = (result.get("error") or {}).get("error") or result.get("error") or {}
        etype = str(inner.get("type") or "api_error")
        return APIError(f"batch request errored: {etype}: {inner.get('message') or ''}".rstrip(": "), type=etype)
    if kind == "expired":
        return APIError("batch request expired: the batch ended (24 hours) before it was processed", type="expired")
    if kind == "canceled":
        return APIError("batch request canceled: the batch was canceled before it was processed", type="canceled")
    return APIError(f"batch request ended as {kind!r}", type="api_error")
