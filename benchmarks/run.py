"""toolchat against its peers, measured in one run on this machine: `python benchmarks/run.py`.

Builds every scenario itself (tools, mock-server scripts, peer scripts) in a temporary folder,
installs the peers (llm, llm-anthropic, the anthropic SDK) into a virtual environment of their
own, and prints the medians of whole-process wall time, CPU time and peak memory, with each ratio
to a peer measured in the same run. See benchmarks/README.md for the scenarios.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from harness import Command, MockProcess, Spawner, bench, ensure_peers, machine

REPO = Path(__file__).resolve().parent.parent
DEFAULT_VENV = Path(__file__).resolve().parent / ".peers-venv"
KEY = "sk-ant-bench-0000"
LLM_MODEL = "claude-4-sonnet"  # an llm-anthropic alias; the mock answers any model name
PROMPT_CHAT = "What is 2 + 40? Use the add tool."
PROMPT_STREAM = "Tell me a long story."
ONE_DELTA = "Once."  # the one-delta answer: five characters, as each delta of the long one
PROMPT_MCP = "What time is it in UTC? Use the time tool."
# The official time server from toolchat's environment (a test extra), used by both clients.
TIME_SERVER = Path(sysconfig.get_path("scripts")) / "mcp-server-time"
# What an MCP client sends to start a session and list the tools; the server exits at the end of
# its stdin, so this times the server's own start-up and initialize, without any client.
HANDSHAKE = (
    "\n".join(
        json.dumps(m)
        for m in [
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "bench", "version": "0"},
                },
            },
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        ]
    )
    + "\n"
)
STORY = (
    "The quick brown fox jumps over the lazy dog while the tokens of a long answer arrive "
    "one small piece at a time, and every piece has to reach the file. "
)

FUNCTIONS = '''def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b
'''

TOOLS_YAML = """tools:
  - name: add
    description: Add two integers.
    input_schema:
      type: object
      properties: {a: {type: integer}, b: {type: integer}}
      required: [a, b]
    handler: functions.py:add
"""

# The documented streaming loop of the official SDK (README "Streaming helpers").
SDK_LOOP = (
    """import anthropic

client = anthropic.Anthropic()
with client.messages.stream(
    model="claude-sonnet-4-20250514",
    max_tokens=4096,
    messages=[{"role": "user", "content": %r}],
) as stream:
    for text in stream.text_stream:
        print(text, end="", flush=True)
print()
"""
    % PROMPT_STREAM
)

# The documented streaming loop of the official openai SDK (its README, "Streaming responses").
OPENAI_SDK_LOOP = (
    """from openai import OpenAI

client = OpenAI()
stream = client.chat.completions.create(
    model="gpt-4o",
    messages=[{"role": "user", "content": %r}],
    stream=True,
)
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content is not None:
        print(chunk.choices[0].delta.content, end="", flush=True)
print()
"""
    % PROMPT_STREAM
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python benchmarks/run.py", description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="timed runs of each tool chat and stream command (default 5)")
    ap.add_argument("--cold-runs", type=int, default=10, help="timed runs of each cold-start command (default 10)")
    ap.add_argument(
        "--quick", action="store_true", help="2 runs (3 for cold start): a rough look, not numbers to quote"
    )
    ap.add_argument("--deltas", type=int, default=20_000, help="text deltas in the streaming scenario (default 20000)")
    ap.add_argument(
        "--only",
        default="cold,chat,stream,mcp,openai",
        help="comma-separated scenarios to run: cold, chat, stream, mcp, openai",
    )
    ap.add_argument(
        "--peers-venv",
        type=Path,
        default=DEFAULT_VENV,
        help=f"peers' virtual environment (default {DEFAULT_VENV.relative_to(REPO)})",
    )
    ap.add_argument(
        "--refresh-peers", action="store_true", help="recreate the peers' virtual environment with the latest releases"
    )
    ap.add_argument("--markdown", action="store_true", help="also print the tables as Markdown (for the README)")
    ap.add_argument("--json", type=Path, metavar="FILE", help="write every sample to FILE as JSON")
    args = ap.parse_args(argv)
    if args.quick:
        args.runs, args.cold_runs = 2, 3
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - {"cold", "chat", "stream", "mcp", "openai"}
    if unknown:
        ap.error(f"--only: unknown scenario {sorted(unknown)[0]!r}")

    started = time.time()
    log = _log
    try:
        versions = ensure_peers(args.peers_venv, refresh=args.refresh_peers, log=log)
    except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
        log(f"error: could not set up the peers in {args.peers_venv}: {exc}")
        return 2
    peer_bin = args.peers_venv / "bin"
    with tempfile.TemporaryDirectory(prefix="toolchat-bench-") as tmp, Spawner() as spawner:
        work = Path(tmp)
        files = _write_files(work, args.deltas)
        toolchat, how = _toolchat_command(work)
        log(f"toolchat: {' '.join(toolchat)} ({how})")
        base_env = _base_env(work)
        commands: dict[str, Command] = {}

        if "cold" in only:
            log(f"cold start: {args.cold_runs} runs each")
            cold = [
                Command(
                    "tc_version",
                    "toolchat --version",
                    toolchat + ["--version"],
                    _env(base_env, toolchat),
                    _expect(b"toolchat "),
                ),
                Command(
                    "tc_help", "toolchat --help", toolchat + ["--help"], _env(base_env, toolchat), _expect(b"Usage")
                ),
                Command(
                    "tc_module_help",
                    "python -m toolchat --help",
                    [sys.executable, "-m", "toolchat", "--help"],
                    {**base_env, "PYTHONPATH": str(REPO)},
                    _expect(b"Usage"),
                ),
                Command(
                    "python_pass", "python -c pass", [sys.executable, "-c", "pass"], base_env, lambda out, err: None
                ),
                Command(
                    "llm_version", "llm --version", [str(peer_bin / "llm"), "--version"], base_env, _expect(b"version")
                ),
                Command("llm_help", "llm --help", [str(peer_bin / "llm"), "--help"], base_env, _expect(b"Usage")),
            ]
            bench(spawner, cold, args.cold_runs, work, log=log)
            commands.update({c.key: c for c in cold})

        if "chat" in only:
            log(f"two-turn tool chat: {args.runs} runs each")
            with MockProcess(REPO, files["chat_script"], work / "mock-chat.log") as mock:
                env = {**base_env, "ANTHROPIC_BASE_URL": mock.url, "ANTHROPIC_API_KEY": KEY}
                answer = _expect(b"The sum is 42.")
                chat = [
                    Command(
                        "tc_chat",
                        "toolchat -t tools.yaml PROMPT",
                        toolchat + ["-t", str(files["tools"]), PROMPT_CHAT],
                        _env(env, toolchat),
                        answer,
                    ),
                    Command(
                        "llm_chat",
                        "llm --functions functions.py --td -n PROMPT",
                        [
                            str(peer_bin / "llm"),
                            "-m",
                            LLM_MODEL,
                            "--functions",
                            str(files["functions"]),
                            "--td",
                            "-n",
                            PROMPT_CHAT,
                        ],
                        env,
                        answer,
                    ),
                ]
                bench(spawner, chat, args.runs, work, log=log)
            commands.update({c.key: c for c in chat})

        if "mcp" in only:
            commands.update(_mcp_scenario(spawner, files, toolchat, base_env, peer_bin, args.runs, work, log))

        # Scenarios 3 and 6: the same commands over the Messages API and over chat.completions.
        stream_scenario = functools.partial(_stream_scenario, spawner, files, toolchat, peer_bin, args, work, log)
        if "stream" in only:
            log(f"{args.deltas:,} text deltas to a file: {args.runs} runs each")
            commands.update(
                stream_scenario(
                    keys=("tc_stream", "sdk_stream", "curl_stream"),
                    env_of=lambda url: {**base_env, "ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": KEY},
                    toolchat_args=[],
                    toolchat_label="toolchat PROMPT > file",
                    sdk=("anthropic SDK messages.stream loop > file", "sdk_loop"),
                    curl=("curl -N > file", "/v1/messages", ANTHROPIC_HEADERS, "curl_body"),
                    marker=b'"type":"text_delta"',
                    logs="mock-stream",
                )
            )

        if "openai" in only:
            log(f"{args.deltas:,} chat.completions deltas to a file: {args.runs} runs each")
            commands.update(
                stream_scenario(
                    keys=("tc_openai", "openai_sdk_stream", "curl_openai"),
                    env_of=lambda url: {**base_env, "OPENAI_BASE_URL": url + "/v1", "OPENAI_API_KEY": KEY},
                    toolchat_args=["--api", "openai", "-m", "gpt-4o"],
                    toolchat_label="toolchat --api openai PROMPT > file",
                    sdk=("openai SDK chat.completions stream loop > file", "openai_sdk_loop"),
                    curl=(
                        "curl -N /v1/chat/completions > file",
                        "/v1/chat/completions",
                        OPENAI_HEADERS,
                        "openai_curl_body",
                    ),
                    marker=b'"delta":{"content":',
                    logs="mock-openai",
                )
            )

    rows = _rows(commands, args.deltas)
    info = {
        "machine": machine(),
        "peers": versions,
        "toolchat": " ".join(toolchat),
        "runs": args.runs,
        "cold_runs": args.cold_runs,
        "deltas": args.deltas,
        "seconds": round(time.time() - started, 1),
    }
    print()
    print(_header(info))
    print()
    print(_text_table(["scenario", "toolchat", "peer", "peer median", "ratio", "target", "result"], rows))
    print()
    details = _details(commands)
    print(_text_table(["command", "runs", "wall median", "wall min-max", "CPU median", "max RSS median"], details))
    failed = [c for c in commands.values() if c.error]
    for command in failed:
        print(f"\nFAILED {command.label}: {command.error}")
    if args.markdown:
        print("\n" + _markdown(["scenario", "toolchat", "peer", "peer median", "ratio", "target", "result"], rows))
        print(
            "\n"
            + _markdown(["command", "runs", "wall median", "wall min-max", "CPU median", "max RSS median"], details)
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    **info,
                    "commands": {
                        k: {
                            "label": c.label,
                            "argv": c.argv,
                            "error": c.error,
                            "samples": [s.__dict__ for s in c.samples],
                        }
                        for k, c in commands.items()
                    },
                    "rows": rows,
                },
                indent=2,
            )
        )
    return 1 if failed else 0


# ---------------------------------------------------------------------------------------------
# Scenario files and commands


def _write_files(work: Path, deltas: int) -> dict[str, Path]:
    size = 5  # characters per text delta, about one token of English
    story = (STORY * (deltas * size // len(STORY) + 1))[: deltas * size]
    files = {
        "functions": work / "functions.py",
        "tools": work / "tools.yaml",
        "chat_script": work / "chat-script.json",
        "stream_script": work / "stream-script.json",
        "story": work / "story.txt",
        "sdk_loop": work / "sdk_loop.py",
        "curl_body": work / "curl-body.json",
        "openai_sdk_loop": work / "openai_sdk_loop.py",
        "openai_curl_body": work / "openai-curl-body.json",
    }
    files["functions"].write_text(FUNCTIONS)
    files["tools"].write_text(TOOLS_YAML)
    # JSON is YAML too: the mock reads these as scripts.
    files["chat_script"].write_text(
        json.dumps(
            {
                "turns": [
                    {"text": "Let me add those.", "tool_calls": [{"name": "add", "input": {"a": 2, "b": 40}}]},
                    {"text": "The sum is {result:add}."},
                ]
            }
        )
    )
    files["stream_script"].write_text(json.dumps({"turns": [{"text": story, "delta_size": size}]}))
    files["one_delta_script"] = work / "one-delta-script.json"
    files["one_delta_script"].write_text(json.dumps({"turns": [{"text": ONE_DELTA, "delta_size": size}]}))
    # The same server for both clients; each offers its tool under its own name.
    (work / "mcp").mkdir()
    files["mcp_json"] = work / "mcp" / "mcp.json"
    files["mcp_json"].write_text(
        json.dumps({"mcpServers": {"time": {"command": str(TIME_SERVER), "args": ["--local-timezone", "UTC"]}}})
    )
    for client, tool in (("tc", "mcp__time__get_current_time"), ("llm", "get_current_time")):
        files[f"mcp_{client}_script"] = work / f"mcp-{client}-script.json"
        files[f"mcp_{client}_script"].write_text(
            json.dumps(
                {
                    "turns": [
                        {"text": "Let me look.", "tool_calls": [{"name": tool, "input": {"timezone": "UTC"}}]},
                        {"text": "It is {result:%s}" % tool},
                    ]
                }
            )
        )
    files["mcp_handshake"] = work / "mcp-handshake.jsonl"
    files["mcp_handshake"].write_text(HANDSHAKE)
    files["story"].write_text(story)
    files["sdk_loop"].write_text(SDK_LOOP)
    files["curl_body"].write_text(
        json.dumps(
            {
                "model": "claude-sonnet-4-20250514",
                "max_tokens": 4096,
                "stream": True,
                "messages": [{"role": "user", "content": PROMPT_STREAM}],
            }
        )
    )
    files["openai_sdk_loop"].write_text(OPENAI_SDK_LOOP)
    files["openai_curl_body"].write_text(
        json.dumps(
            {
                "model": "gpt-4o",
                "max_tokens": 4096,
                "stream": True,
                "messages": [{"role": "user", "content": PROMPT_STREAM}],
            }
        )
    )
    (work / "home" / ".config").mkdir(parents=True)
    (work / "llm").mkdir()
    return files


def _stream_scenario(
    spawner,
    files,
    toolchat,
    peer_bin,
    args,
    work,
    log,
    *,
    keys,
    env_of,
    toolchat_args,
    toolchat_label,
    sdk,
    curl,
    marker,
    logs,
) -> dict:
    """A 20,000-delta stream to a file (scenarios 3 and 6): toolchat, the SDK's documented loop and
    curl against a mock streaming the story, and toolchat and curl again against a second mock
    with a one-delta answer (start-up and one request: the `_1` keys, for the rows with start-up
    taken out). `keys`: toolchat's, the SDK's and curl's; `sdk`: (label, the loop's files key);
    `curl`: (label, path, headers, the body's files key); `marker`: one per delta in curl's output."""
    tc_key, sdk_key, curl_key = keys
    sdk_label, sdk_loop = sdk
    curl_label, path, headers, body = curl
    with (
        MockProcess(REPO, files["stream_script"], work / f"{logs}.log") as mock,
        MockProcess(REPO, files["one_delta_script"], work / f"{logs}-one.log") as one,
    ):
        env, env_one = env_of(mock.url), env_of(one.url)
        text = files["story"].read_bytes() + b"\n"
        argv = toolchat + toolchat_args + [PROMPT_STREAM]
        stream = [
            Command(tc_key, toolchat_label, argv, _env(env, toolchat), _exactly(text)),
            Command(sdk_key, sdk_label, [str(peer_bin / "python"), str(files[sdk_loop])], env, _exactly(text)),
            Command(
                curl_key, curl_label, _curl(mock.url + path, headers, files[body]), env, _count(marker, args.deltas)
            ),
            # The same with a one-delta answer: what is left is start-up and one request.
            Command(
                tc_key + "_1",
                toolchat_label + " (one delta)",
                argv,
                _env(env_one, toolchat),
                _exactly(ONE_DELTA.encode() + b"\n"),
            ),
            Command(
                curl_key + "_1",
                curl_label + " (one delta)",
                _curl(one.url + path, headers, files[body]),
                env,
                _count(marker, 1),
            ),
        ]
        bench(spawner, stream, args.runs, work, log=log)
    return {c.key: c for c in stream}


def _mcp_scenario(spawner, files, toolchat, base_env, peer_bin, runs, work, log) -> dict:
    """One tool call through the time server: toolchat --mcp-config against llm -T MCP (llm-tools-mcp),
    and the server's own start-up (handshake and tools/list from a file, no client)."""
    if not TIME_SERVER.exists():
        log(f"mcp: skipped, {TIME_SERVER} is not installed (pip install -e '.[test]')")
        return {}
    log(f"one-tool chat via the stdio MCP time server: {runs} runs each")
    answer = _expect(b'"timezone": "UTC"')
    with (
        MockProcess(REPO, files["mcp_tc_script"], work / "mock-mcp-tc.log") as tc_mock,
        MockProcess(REPO, files["mcp_llm_script"], work / "mock-mcp-llm.log") as llm_mock,
    ):

        def env(mock):
            return {
                **base_env,
                "ANTHROPIC_BASE_URL": mock.url,
                "ANTHROPIC_API_KEY": KEY,
                "LLM_TOOLS_MCP_CONFIG_DIR": str(files["mcp_json"].parent),
                "XDG_STATE_HOME": str(work / "state"),
            }

        mcp = [
            Command(
                "tc_mcp",
                "toolchat --mcp-config mcp.json PROMPT",
                toolchat + ["--mcp-config", str(files["mcp_json"]), PROMPT_MCP],
                _env(env(tc_mock), toolchat),
                answer,
            ),
            Command(
                "llm_mcp",
                "llm -T MCP --td -n PROMPT (llm-tools-mcp)",
                [str(peer_bin / "llm"), "-m", LLM_MODEL, "-T", "MCP", "--td", "-n", PROMPT_MCP],
                env(llm_mock),
                answer,
            ),
            # The server may exit at the end of its stdin before it answers tools/list: the
            # check is the initialize answer, which comes once it has started.
            Command(
                "mcp_server_start",
                "mcp-server-time alone: start and initialize",
                ["sh", "-c", 'exec "$0" --local-timezone UTC < "$1"', str(TIME_SERVER), str(files["mcp_handshake"])],
                base_env,
                _expect(b'"serverInfo"'),
            ),
        ]
        bench(spawner, mcp, runs, work, log=log)
    return {c.key: c for c in mcp}


def _toolchat_command(work: Path) -> tuple[list[str], str]:
    """The `toolchat` console script when it runs this checkout (as users run it), else `-m toolchat`."""
    script = Path(sysconfig.get_path("scripts")) / "toolchat"
    if script.is_file():
        probe = subprocess.run(
            [sys.executable, "-c", "import toolchat; print(toolchat.__file__)"],
            cwd=work,
            env={"PATH": os.environ.get("PATH", "")},
            capture_output=True,
            text=True,
        )
        where = Path(probe.stdout.strip()).resolve() if probe.returncode == 0 else None
        if where == REPO / "cli" / "toolchat" / "__init__.py":
            return [str(script)], "console script of this checkout"
        how = f"the console script runs {where or 'another install'}, not this checkout"
    else:
        how = "no console script installed"
    return [sys.executable, "-m", "toolchat"], how + ": running python -m toolchat"


def _base_env(work: Path) -> dict:
    """A clean environment: no user config, no proxies, nothing of the caller's keys."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(work / "home"),
        "XDG_CONFIG_HOME": str(work / "home" / ".config"),
        "LLM_USER_PATH": str(work / "llm"),
        "LANG": "C.UTF-8",
        "TOOLCHAT_LOG": "0",  # like llm -n: neither side logs (benchmarks/logs.py measures the log)
    }


def _env(env: dict, toolchat: list[str]) -> dict:
    if toolchat[:3] == [sys.executable, "-m", "toolchat"]:
        return {**env, "PYTHONPATH": str(REPO)}
    return env


def _expect(needle: bytes):
    def check(out: bytes, err: bytes) -> str | None:
        return None if needle in out else f"stdout lacks {needle!r}: {out[:200]!r}"

    return check


def _exactly(expected: bytes):
    def check(out: bytes, err: bytes) -> str | None:
        if out == expected:
            return None
        return f"stdout is not the streamed text ({len(out):,} bytes, expected {len(expected):,})"

    return check


def _count(needle: bytes, times: int):
    def check(out: bytes, err: bytes) -> str | None:
        found = out.count(needle)
        return None if found == times else f"saw {found:,} {needle!r} in stdout, expected {times:,}"

    return check


# ---------------------------------------------------------------------------------------------
# Tables


def _rows(c: dict[str, Command], deltas: int) -> list[list[str]]:
    rows = []

    def add(scenario, ours, peer, kind, target=None):
        if ours not in c or peer not in c:
            return
        a, b = c[ours], c[peer]
        if not (a.ok and b.ok):
            rows.append(
                [
                    scenario,
                    _ms(a) if a.ok else "failed",
                    b.label,
                    _ms(b) if b.ok else "failed",
                    "-",
                    _target_text(kind, target),
                    "error",
                ]
            )
            return
        ta, tb = a.median(), b.median()
        if kind == "faster":  # peer time / our time
            ratio = tb / ta
            text, passed = f"{ratio:.1f}x faster", ratio >= target if target else None
        elif kind == "within":  # our time / peer time
            ratio = ta / tb
            text, passed = f"{ratio:.2f}x its time", ratio <= target
        else:  # informative: how far above the peer
            ratio = ta / tb
            text, passed = f"{ratio:.1f}x its time", None
        result = "-" if passed is None else ("pass" if passed else "MISS")
        rows.append([scenario, _ms(a), b.label, _ms(b), text, _target_text(kind, target), result])

    add("cold start: --version", "tc_version", "python_pass", "info")
    add("cold start: --version", "tc_version", "llm_version", "faster")
    add("cold start: --help", "tc_help", "python_pass", "info")
    add("cold start: --help", "tc_help", "llm_help", "faster", 10)
    add("two-turn tool chat", "tc_chat", "llm_chat", "faster", 8)
    add("one-tool chat via a stdio MCP server", "tc_mcp", "llm_mcp", "faster")
    add("one-tool chat via a stdio MCP server", "tc_mcp", "mcp_server_start", "info")
    add(f"{deltas:,} deltas to a file", "tc_stream", "sdk_stream", "faster", 3)
    add(f"{deltas:,} deltas to a file", "tc_stream", "curl_stream", "within", 2)
    _stream_rows(c, rows, f"{deltas:,} deltas, start-up taken out", "tc_stream", "curl_stream")
    _memory_rows(c, rows, "tc_stream", ("sdk_stream", "curl_stream"), f"peak memory, {deltas:,} deltas")
    add(f"{deltas:,} chat.completions deltas", "tc_openai", "openai_sdk_stream", "faster", 3)
    add(f"{deltas:,} chat.completions deltas", "tc_openai", "curl_openai", "within", 2)
    _stream_rows(c, rows, f"{deltas:,} chat.completions deltas, start-up taken out", "tc_openai", "curl_openai")
    _memory_rows(
        c, rows, "tc_openai", ("openai_sdk_stream", "curl_openai"), f"peak memory, {deltas:,} chat.completions deltas"
    )
    return rows


ANTHROPIC_HEADERS = [f"x-api-key: {KEY}", "anthropic-version: 2023-06-01", "content-type: application/json"]
OPENAI_HEADERS = [f"authorization: Bearer {KEY}", "content-type: application/json"]


def _curl(url: str, headers: list[str], body: Path) -> list[str]:
    """`curl -N` posting `body` to `url`: it copies the streamed bytes, the floor of any client."""
    argv = ["curl", "-sS", "-N", "--fail", url]
    for header in headers:
        argv += ["-H", header]
    return argv + ["--data-binary", f"@{body}"]


def _stream_rows(c: dict[str, Command], rows: list, scenario: str, ours: str, curl: str) -> None:
    """The stream alone: each command's median less the median of the same command on a one-delta
    answer (start-up, the request, the first bytes), toolchat against curl; and toolchat's start-up
    against the whole of curl's stream, which says how much of the 2x the start-up leaves."""
    keys = (ours, ours + "_1", curl, curl + "_1")
    if not all(k in c and c[k].ok for k in keys):
        return
    ta, ta1, tb, tb1 = (c[k].median() for k in keys)
    ratio = (ta - ta1) / (tb - tb1)
    rows.append(
        [
            scenario,
            f"{(ta - ta1) * 1000:.0f} ms",
            c[curl].label + " (less one delta)",
            f"{(tb - tb1) * 1000:.0f} ms",
            f"{ratio:.2f}x its time",
            "<= 2x its time",
            "pass" if ratio <= 2 else "MISS",
        ]
    )
    rows.append(
        [
            "  toolchat start-up (one-delta answer)",
            f"{ta1 * 1000:.0f} ms",
            c[curl].label,
            f"{tb * 1000:.0f} ms",
            f"{ta1 / tb:.2f}x its time",
            "-",
            "-",
        ]
    )


def _memory_rows(c: dict[str, Command], rows: list, ours_key: str, peers: tuple, scenario: str) -> None:
    """Peak memory of `ours_key` against each peer; the target (< 60 MB) on the first row."""
    if ours_key in c and c[ours_key].ok:
        ours = c[ours_key].median("rss_kib") * 1024  # bytes
        verdict = "pass" if ours < 60e6 else "MISS"
        shown = False
        for peer in peers:
            if peer in c and c[peer].ok:
                theirs = c[peer].median("rss_kib") * 1024
                target = "-" if shown else "< 60 MB"
                rows.append(
                    [
                        scenario,
                        f"{ours / 2**20:.1f} MiB",
                        c[peer].label,
                        f"{theirs / 2**20:.1f} MiB",
                        f"{ours / theirs:.2f}x its memory",
                        target,
                        "-" if shown else verdict,
                    ]
                )
                shown = True
        if not shown:
            rows.append([scenario, f"{ours / 2**20:.1f} MiB", "-", "-", "-", "< 60 MB", verdict])


def _target_text(kind: str, target) -> str:
    if target is None:
        return "-"
    return f">= {target}x faster" if kind == "faster" else f"<= {target}x its time"


def _details(c: dict[str, Command]) -> list[list[str]]:
    rows = []
    for command in c.values():
        if not command.ok:
            rows.append([command.label, "0", "failed", "-", "-", "-"])
            continue
        rows.append(
            [
                command.label,
                str(len(command.samples)),
                _ms(command),
                f"{command.low() * 1000:.0f}-{command.high() * 1000:.0f} ms",
                f"{command.median('cpu') * 1000:.0f} ms",
                f"{command.median('rss_kib') / 1024:.1f} MiB",
            ]
        )
    return rows


def _ms(command: Command) -> str:
    return f"{command.median() * 1000:.0f} ms"


def _text_table(head: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in column) for column in zip(head, *rows)]
    line = lambda cells: "  ".join(str(x).ljust(w) for x, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _markdown(head: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(" --- " for _ in head) + "|"]
    out += ["| " + " | ".join(str(x) for x in row) + " |" for row in rows]
    return "\n".join(out)


def _header(info: dict) -> str:
    m = info["machine"]
    peers = ", ".join(f"{k} {v}" for k, v in info["peers"].items())
    return (
        f"machine: {m['cpu']}, {m['cores']} cores, {m['memory']}, {m['os']}, Python {m['python']}\n"
        f"peers: {peers}\n"
        f"medians of {info['runs']} runs ({info['cold_runs']} for cold start), "
        f"each command warmed up once first; whole run {info['seconds']} s"
    )


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
