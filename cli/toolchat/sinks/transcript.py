"""--save as a sink: the conversation is written when the run finishes (also when it failed).

Put it before the views: a failure to write becomes the run's error (exit 2) before the result is
shown, so `--json` and the summary tell of it.
"""

from __future__ import annotations

import sys

from ..errors import UsageError
from ..events import Finished
from ..text import neutralise
from .base import Sink


class SaveSink(Sink):
    """`result` is the run's Result (Chat.result): what close() saves if Finished never came."""

    def __init__(self, path: str, result, model: str, system: str | None = None):
        self.path = path
        self.result = result
        self.model = model
        self.system = system
        self._saved = False

    def handle(self, event) -> None:
        if isinstance(event, Finished):
            self.result = event.result
            self.save()

    def close(self) -> None:
        """Save now if Finished never came (a run ended by an unexpected error)."""
        if not self._saved:
            self.save()

    def save(self) -> None:
        from ..transcript import save_transcript

        result = self.result
        self._saved = True
        try:
            save_transcript(self.path, result.messages, model=self.model, system=self.system)
        except OSError as exc:
            problem = f"--save {self.path}: cannot write it: {exc.strerror or exc}"
            if result.error is None:
                result.error = UsageError(problem)
            else:  # the run failed already: its own error decides the exit code
                print(f"toolchat: error: {neutralise(problem)}", file=sys.stderr, flush=True)


def check_target(path: str) -> None:
    """Fail before anything is sent (and paid for) if `--save path` could not be written later."""
    from ..transcript import check_save_target

    try:
        check_save_target(path)
    except OSError as exc:
        raise UsageError(f"--save {path}: cannot write it: {exc.strerror or exc}") from None
