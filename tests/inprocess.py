"""toolchat's command line called in-process (no subprocess start-up): `cli(...)` -> Run."""

from __future__ import annotations

import os
import signal
import sys

import pytest

from conftest import TEST_KEY, assert_no_secret, clean_env


class Run:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err

    def json(self):
        import json

        return json.loads(self.out)

    def __repr__(self) -> str:
        return f"Run(code={self.code}, out={self.out[-500:]!r}, err={self.err[-1500:]!r})"


def cli(monkeypatch, capsys, tmp_path, server, *args: str, env: dict | None = None) -> Run:
    """`toolchat ARGS` through main.run in this process: a clean environment (conftest.clean_env)
    pointed at `server`, no stdin, stdout and stderr captured; the SIGTERM handler restored."""
    from toolchat import main

    environment = clean_env(tmp_path, TOOLCHAT_API_KEY=TEST_KEY, TOOLCHAT_CONFIG=os.devnull)
    if server is not None:
        environment["TOOLCHAT_BASE_URL"] = server.url
    environment.update(env or {})
    monkeypatch.setattr(os, "environ", environment)
    monkeypatch.setattr(sys, "stdin", None)
    monkeypatch.chdir(tmp_path)
    handler = signal.getsignal(signal.SIGTERM)
    capsys.readouterr()
    try:
        with pytest.raises(SystemExit) as caught:
            main.run(list(args))
    finally:
        signal.signal(signal.SIGTERM, handler)
    out, err = capsys.readouterr()
    assert_no_secret(out, err)
    code = caught.value.code
    return Run(code if isinstance(code, int) else (0 if code is None else 1), out, err)
