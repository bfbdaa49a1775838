"""A batch run from start to end: input -> job (state.py) -> engine -> output -> summary, exit code."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

from ..errors import EXIT_API, EXIT_INCOMPLETE, EXIT_OK, UsageError

VIAS = ("local", "batches")


@dataclass
class Plan:
    input: str  # a path, or "-" for standard input
    output: str | None  # a path; None or "-": standard output
    concurrency: int = 4
    ordered: bool = False
    via: str = "local"
    poll_interval: float = 5.0
    stream_json: bool = False
    db: str | None = None  # the log database (default: logdb.default_path())
    progress_interval: float = 5.0
    max_requests: int = 100_000  # per Message Batch (the API's limit)
    max_bytes: int = 256_000_000


def check(plan: Plan, settings) -> None:
    """Usage errors, before anything is sent."""
    if plan.via not in VIAS:
        raise UsageError(f"--via: {plan.via!r} is not one of {', '.join(VIAS)}")
    if plan.concurrency < 1:
        raise UsageError("--concurrency: must be at least 1")
    if plan.poll_interval <= 0:
        raise UsageError("--poll-interval: must be above 0")
    api = getattr(settings, "api", None) or getattr(settings, "dialect", None)
    if plan.via == "batches" and api not in (None, "anthropic"):
        raise UsageError(
            f"--via batches drives Anthropic's Message Batches API; with --api {api} use --via local (the default)"
        )
    if plan.stream_json and plan.output in (None, "-"):
        raise UsageError("--stream-json prints events on stdout: write the results to a file with -o FILE")
    if plan.input != "-" and not os.path.isfile(plan.input):
        raise UsageError(f"{plan.input}: input file not found")
    if plan.output not in (None, "-") and os.path.isdir(plan.output):
        raise UsageError(f"-o {plan.output}: is a folder")


def run(plan: Plan, settings, *, stdout=None, stderr=None) -> int:
    from ..session import Session
    from . import state
    from .lines import refuse_confirm
    from .output import Writer
    from .progress import Progress

    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    check(plan, settings)
    path, spooled = plan.input, None
    if path == "-":
        path = spooled = state.spool_stdin(sys.stdin.buffer)
    try:
        digest = state.file_hash(path)
        session = Session(settings, view=_NoView(), approve=refuse_confirm)  # checks tools and names
        try:
            session.dialect.headers(settings)  # no key: one usage error now, not one per line
        except BaseException:
            session.tools.close()
            raise
        # The log's file (its state is needed to resume, so with the log off it is still kept there).
        job = state.Job.open(digest, plan.db or getattr(settings, "log_path", None))
        try:
            resume = job.exists()
            total = job.register(path, "-" if spooled else os.path.abspath(plan.input))
            to_file = plan.output not in (None, "-")
            writer = Writer(plan.output if to_file else None, job, plan.ordered, resume, stdout=stdout)
            try:
                before = job.outcomes()
                done_before = total - before["pending"]
                mode = (
                    "json"
                    if plan.stream_json
                    else "quiet"
                    if settings.quiet
                    else "bar"
                    if _terminal(stderr)
                    else "lines"
                )
                progress = Progress(
                    mode,
                    total,
                    done_before,
                    plan.concurrency,
                    interval=plan.progress_interval,
                    out=stdout,
                    err=stderr,
                    failed=before["failed"],
                    color=settings.color != "never",
                )
                started = time.monotonic()
                progress.begin("-" if spooled else plan.input, plan.via)
                writer.drain()  # results stored before a restart but not in the output yet
                try:
                    if plan.via == "batches":
                        from .rounds import RoundsEngine

                        RoundsEngine(session, job, writer, progress, plan).run()
                    else:
                        from .engine import LocalEngine

                        LocalEngine(session, job, writer, progress, plan.concurrency).run()
                    writer.drain()
                finally:
                    summary = job.outcomes()
                    progress.finish(summary, time.monotonic() - started)
            finally:
                writer.close()
        finally:
            job.close()
            session.tools.close()
    finally:
        if spooled:
            os.unlink(spooled)
    elapsed = time.monotonic() - started
    if not settings.quiet:  # -q: nothing on stderr but errors
        _summary(summary, total, elapsed, stderr)
    if summary["failed"]:
        return EXIT_API
    if summary["incomplete"] or summary["pending"]:
        return EXIT_INCOMPLETE
    return EXIT_OK


def _summary(summary: dict, total: int, elapsed: float, stderr) -> None:
    done = summary["ok"] + summary["incomplete"] + summary["failed"]
    parts = [
        f"{done}/{total} done",
        f"{summary['ok']} ok",
        f"{summary['incomplete']} incomplete",
        f"{summary['failed']} failed",
    ]
    if summary["pending"]:
        parts.append(f"{summary['pending']} pending")
    parts += [f"{summary['input_tokens']:,} input + {summary['output_tokens']:,} output tokens", f"{elapsed:.1f} s"]
    print("toolchat: batch: " + ", ".join(parts), file=stderr, flush=True)


def _terminal(stream) -> bool:
    from ..views.format import is_terminal

    return is_terminal(stream)


class _NoView:
    """The batch shows no conversation; the session wants a view."""

    def handle(self, event) -> None:
        pass

    def close(self) -> None:
        pass
