"""A Sink consumes the events of a run: views, --save, the conversation log, batch output."""

from __future__ import annotations

from abc import ABC, abstractmethod


class Sink(ABC):
    """Gets every event of a run, in order, Finished last; then close(), also after a failure.

    Any class with `handle(event)` and `close()` counts as a Sink (isinstance works without
    inheriting), so the views need not import this module.
    """

    @abstractmethod
    def handle(self, event) -> None:
        """One event of the run."""

    def close(self) -> None:
        """The run is over (after Finished, or after an error that ended it before Finished)."""

    @classmethod
    def __subclasshook__(cls, other):
        if cls is Sink and all(callable(getattr(other, name, None)) for name in ("handle", "close")):
            return True
        return NotImplemented
