"""`toolchat batch status INPUT` and `toolchat batch cancel INPUT`: the job of an input file."""

from __future__ import annotations

import os

from ..errors import ToolchatError, UsageError
from ..text import dumps, one_line
from . import state


def _job(path: str) -> state.Job:
    if not os.path.isfile(path):
        raise UsageError(f"{path}: input file not found")
    job = state.Job.open(state.file_hash(path))
    if not job.exists():
        job.close()
        raise UsageError(f"{path}: no batch job for this input (its content) in the log")
    return job


def _api(settings):
    from ..dialects.anthropic import AnthropicDialect
    from .api import BatchesAPI

    return BatchesAPI(settings, AnthropicDialect())


def status(path: str, as_json: bool, settings) -> int:
    job = _job(path)
    try:
        summary = job.outcomes()
        batches = job.batches()
        open_ = [b for b in batches if not b["consumed"]]
        if open_:
            try:
                api = _api(settings)
            except ToolchatError:
                api = None  # no key: the stored status is what there is
            try:
                for b in open_:
                    if api is not None:
                        try:
                            live = api.retrieve(b["id"])
                            b["status"] = live.get("processing_status", b["status"])
                            b["request_counts"] = live.get("request_counts")
                        except ToolchatError as exc:
                            b["error"] = exc.message
            finally:
                if api is not None:
                    api.close()
    finally:
        job.close()
    if as_json:
        print(dumps({"input": path, **summary, "batches": batches}))
        return 0
    total = sum(summary[k] for k in ("ok", "incomplete", "failed", "pending"))
    print(
        f"{path}: {total - summary['pending']}/{total} done, {summary['ok']} ok, {summary['incomplete']} "
        f"incomplete, {summary['failed']} failed, {summary['pending']} pending"
    )
    for b in batches:
        counts = b.get("request_counts")
        extra = f"\t{one_line(dumps(counts))}" if counts else ""
        error = f"\terror: {one_line(b['error'], 200)}" if b.get("error") else ""
        print(
            f"{one_line(b['id'])}\tround {b['round']}\t{b['requests']} requests\t"
            f"{one_line(str(b['status']))}{' (read)' if b['consumed'] else ''}{extra}{error}"
        )
    return 0


def cancel(path: str, settings) -> int:
    job = _job(path)
    try:
        open_ = [b for b in job.batches() if not b["consumed"]]
        if not open_:
            print(f"{path}: no batch in progress")
            return 0
        api = _api(settings)
        try:
            for b in open_:
                answer = api.cancel(b["id"])
                status = str(answer.get("processing_status", "canceling"))
                job.batch_status(b["id"], status)
                print(f"{one_line(b['id'])}\t{one_line(status)}")
        finally:
            api.close()
    finally:
        job.close()
    return 0
