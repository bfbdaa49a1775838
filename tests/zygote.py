"""A warm interpreter that runs `python -m toolchat ...` for the tests' `toolchat` fixture by forking.

Most of a test's subprocess run is interpreter start-up and imports (typer, click, rich, requests,
yaml, jsonschema: ~0.3-0.5 s of CPU each time, hundreds of times a run). This process imports them
once, then for each request forks a child that becomes what `python -m toolchat ARGS` would be: its
own pid, the test's stdin/stdout/stderr (passed as file descriptors over a Unix socket), working
folder, environment, argv and import path; `__main__` run by runpy; exit code and atexit handlers as
usual. What a fork cannot change is decided at interpreter start-up (locale and encodings, -X
flags, PYTHON* variables): the fixture runs a fresh interpreter whenever a test's environment differs
from this process's in any of those, and TOOLCHAT_TEST_FRESH=1 runs every test fresh (.ci/run plays
the default set that way too).

Protocol, one connection per run: the client sends one JSON line {args, env, cwd} with the three
descriptors attached (socket.send_fds); a monitor process (forked per run, so this server stays
single-threaded and free) forks the run, answers {"pid": N}, waits, then answers {"status": S}
(os.waitpid's status word). Usage: python zygote.py SOCKET_PATH; prints "ready" once listening.
"""

from __future__ import annotations

import json
import os
import socket
import sys


# Start-up-sensitive variables: a fork keeps what the interpreter read at start.
def startup_env(env: dict) -> dict:
    return {k: v for k, v in env.items() if k.startswith(("PYTHON", "LC_")) or k in ("LANG", "LANGUAGE")}


def _preload() -> None:
    import jsonschema  # noqa: F401
    import requests  # noqa: F401
    import rich.console  # noqa: F401
    import rich.live  # noqa: F401
    import yaml  # noqa: F401

    import importlib
    import pkgutil

    import toolchat

    # Every module of the package (the mock server's aside: the tests run it, not toolchat), so a
    # run imports none of its own code again; what they import lazily (the mcp SDK) stays out.
    for module in pkgutil.walk_packages(toolchat.__path__, "toolchat."):
        if not module.name.startswith("toolchat.mock") and not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    import gc

    gc.freeze()  # the preloaded objects out of the collector's sight: fewer pages copied in a fork


def _serve(path: str):
    """Accept runs until killed; return (in a run's child) the request it is to become."""
    with open(path + ".env", "w", encoding="utf-8") as f:  # for client()
        json.dump(startup_env(dict(os.environ)), f)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        conn, _ = listener.accept()
        while True:  # reap the monitors of finished runs
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
        try:
            message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
        except OSError:
            conn.close()
            continue
        if os.fork() != 0:  # the server: on to the next run
            conn.close()
            for fd in fds:
                os.close(fd)
            continue
        # The monitor.
        listener.close()
        request = json.loads(message.decode("utf-8"))
        pid = os.fork()
        if pid == 0:
            return request, fds, conn
        for fd in fds:
            os.close(fd)
        conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
        _, status = os.waitpid(pid, 0)
        conn.sendall(json.dumps({"status": status}).encode() + b"\n")
        conn.close()
        os._exit(0)


def _become(request: dict, fds: list[int], conn: socket.socket) -> None:
    conn.close()
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    # What `python -m` puts first on the import path: the working folder (toolchat's __main__
    # takes it off again, as it does in a fresh interpreter).
    sys.path[0] = os.getcwd()
    sys.argv = ["-m", *request["args"]]

    import runpy

    try:
        runpy.run_module("toolchat", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:  # what Python's own handling of SystemExit makes of it
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        sys.excepthook(*sys.exc_info())  # as Python: the traceback, then the exit by the signal
        _finish()
        import signal

        signal.signal(signal.SIGINT, signal.SIG_DFL)  # as Python does: end by the signal itself
        os.kill(os.getpid(), signal.SIGINT)
        code = 130
    except BaseException:
        sys.excepthook(*sys.exc_info())
        code = 1
    os._exit(_finish(code))


def _finish(code: int = 0) -> int:
    """Python's own exit, up to the interpreter's teardown: wait for the non-daemon threads, run the
    atexit handlers, flush stdout and stderr (a failed flush is exit 120, as Python makes it).

    The teardown itself (every module and object of the warm interpreter freed) is left out: in a
    forked child it copies nearly every page of the parent and took 130-160 ms of a 150-200 ms run,
    hundreds of times a test run. What a real teardown could show (an error from a __del__) is seen
    by the fresh-interpreter pass .ci/run makes (TOOLCHAT_TEST_FRESH=1)."""
    import atexit
    import threading

    # Private, test-only, both: what the interpreter itself calls at exit. threading._shutdown runs
    # the threading-atexit hooks (concurrent.futures' workers are told to stop) and joins every
    # non-daemon thread; atexit._run_exitfuncs is the one way to run the handlers before os._exit.
    threading._shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception as exc:  # noqa: BLE001 - reported as Python reports it
            print(f"Exception ignored on flushing {stream!r}: {exc!r}", file=sys.__stderr__)
            code = 120
    return code


def client(path: str, args: list[str]) -> None:
    """Be `toolchat ARGS` for a shell script (test_scripting puts a `toolchat` on PATH that runs
    `python -S -E zygote.py --client SOCKET ARGS`): this process's own stdin/stdout/stderr, working
    folder and environment go to a run forked from the warm interpreter, signals are passed on, and
    its exit status becomes this one's. An environment the warm interpreter cannot serve (see
    startup_env) runs `python -m toolchat` itself instead."""
    import signal

    with open(path + ".env", encoding="utf-8") as f:
        served = json.load(f)
    if startup_env(dict(os.environ)) != served:
        os.execv(sys.executable, [sys.executable, "-m", "toolchat", *args])
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(path)
    header = json.dumps({"args": args, "env": dict(os.environ), "cwd": os.getcwd()}).encode("utf-8")
    socket.send_fds(conn, [header], [0, 1, 2])
    replies = conn.makefile("rb")
    pid = json.loads(replies.readline())["pid"]
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, lambda signum, frame: os.kill(pid, signum))
    line = replies.readline()
    status = json.loads(line)["status"] if line else 255 << 8
    code = os.waitstatus_to_exitcode(status)
    if code < 0:  # killed by a signal: so is this process, as a shell would see it
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


if __name__ == "__main__":
    if sys.argv[1] == "--client":
        client(sys.argv[2], sys.argv[3:])
    else:
        _preload()
        _become(*_serve(sys.argv[1]))
