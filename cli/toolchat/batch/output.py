"""The output JSONL: one whole line per input line, flushed as it is written.

Each line is written with one os.write of the complete line (never half a line from toolchat's
side); a process killed in the middle of that write leaves at most a cut last line, which the next
run cuts off before it appends. What is in the file is the truth about what was written: a restart
reads the file's custom_ids, so no line is written twice and none is lost, whatever moment the
kill came at. Standard output cannot be read back: there a line counts as written once it was
flushed (a kill between the flush and that record may repeat that one line).
"""

from __future__ import annotations

import json
import os
import threading

from ..text import dumps


def key_of(document: dict) -> str | None:
    if document.get("custom_id") is not None:
        return str(document["custom_id"])
    if isinstance(document.get("line"), int):
        return f"line:{document['line']}"
    return None


def recover(path: str) -> set[str]:
    """The keys of the whole lines already in an output file; a cut last line is removed."""
    keys: set[str] = set()
    try:
        handle = open(path, "rb+")
    except FileNotFoundError:
        return keys
    with handle:
        good = 0
        for raw in handle:
            if not raw.endswith(b"\n"):
                break
            try:
                key = key_of(json.loads(raw))
            except (ValueError, AttributeError):
                key = None
            if key is not None:
                keys.add(key)
            good += len(raw)
        handle.truncate(good)
    return keys


class Writer:
    def __init__(self, path: str | None, job, ordered: bool, resume: bool, stdout=None):
        """`path`: the output file, None for standard output (`stdout`, a text stream)."""
        self.job = job
        self.ordered = ordered
        self.lock = threading.Lock()
        self.stdout = stdout
        self.fd = None
        if path is not None:
            if resume:
                job.set_written(recover(path))
            else:
                job.set_written(set())
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (0 if resume else os.O_TRUNC)
            self.fd = os.open(path, flags, 0o644)
        self.written = 0
        self.after = 0  # ordered: the lines up to this one are all in the output

    def _emit(self, document: dict) -> None:
        data = (dumps(document) + "\n").encode("utf-8")
        if self.fd is not None:
            view = memoryview(data)
            while view:  # a regular file takes it all at once; the loop is for the rare short write
                view = view[os.write(self.fd, view) :]
        else:
            self.stdout.write(data.decode("utf-8"))
            self.stdout.flush()
        self.written += 1

    def finished(self, key: str, document: dict) -> None:
        """A line ended (its result is already stored): write it now, or when its turn comes."""
        with self.lock:
            if self.ordered:
                self._drain()
            else:
                self._emit(document)
                self.job.mark_written(key)

    def drain(self) -> None:
        """Every stored result not yet in the output (ordered: up to the first line still running)."""
        with self.lock:
            self._drain()

    def _drain(self) -> None:
        for row in self.job.rows("written = 0", after=self.after):
            if row.status != "done":
                if self.ordered:
                    return
                continue
            self._emit(row.result)
            self.job.mark_written(row.key)
            if self.ordered:
                self.after = row.line  # everything up to here is out: the next look starts after it

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
