"""What prompt caching saves on a 10-turn tool conversation: `python benchmarks/caching.py`.

One conversation, played by the mock server (toolchat's own, in this process, so its prompt-cache
accounting can be read request by request): 9 turns that each call a `lookup` tool whose result is a
paragraph, then the answer; six tools with documentation-sized descriptions and a system prompt of
a few hundred words, as real tool setups have. The mock bills each request as Anthropic documents it
(mock/cache.py: prefix match at breakpoints, 20-block lookback, 1,024-token minimum, 5-minute
lifetime; its tokens are words). The figure compared is billed-input-equivalent tokens:

    input_tokens + 1.25 x cache_creation_input_tokens + 0.1 x cache_read_input_tokens

summed over the conversation's requests, for:

- toolchat (caching on by default) and toolchat --no-cache;
- llm with llm-anthropic, `-o cache 1` and without, on the same conversation (`--functions` with the
  same six tools, `--cl 20` so its tool chain is not cut at 5), from benchmarks/.peers-venv (the
  peers' environment run.py builds; `--no-peers` skips them).

Target (issue 16): toolchat at most 30% of its uncached figure. Each client starts with an empty
cache. Prints a table (`--json FILE` writes the numbers too).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "cli"))

from toolchat.mock.server import MockServer  # noqa: E402

KEY = "sk-ant-bench-0000"
MODEL = "claude-sonnet-4-20250514"
LLM_MODEL = "claude-4-sonnet"
TURNS = 10
PROMPT = "Look up the nine topics of the release checklist one by one, then summarise them."
TOPICS = ["build", "tests", "docs", "changelog", "version", "tag", "wheel", "upload", "announce"]

SYSTEM = " ".join(
    [
        "You are the release assistant of a small open-source project.",
        "Follow the checklist exactly, one tool call per step, and never skip a step.",
        "When a tool result names a command, repeat the command verbatim in the summary.",
    ]
    * 12
)

WORDS = (
    "the project release step command output check file version tag branch build wheel test "
    "document change note publish verify upload announce mirror index archive sign"
).split()


def paragraph(seed: int, words: int) -> str:
    return " ".join(WORDS[(seed * 7 + i * 3) % len(WORDS)] for i in range(words)) + "."


TOOL_NAMES = ["lookup", "run_command", "read_file", "write_file", "search_issues", "post_message"]


def functions_source() -> str:
    """The tools as Python functions: toolchat's handlers and llm's --functions alike."""
    out = ["# The benchmark's tools: handlers for toolchat, --functions for llm.", ""]
    for number, name in enumerate(TOOL_NAMES):
        doc = paragraph(number, 160).replace('"', "'")
        arg = "topic" if name == "lookup" else "text"
        body = (
            f"return {json.dumps('Checklist entry for ')} + {arg} + ': ' + {json.dumps(paragraph(99, 120))}"
            if name == "lookup"
            else f"return 'done: ' + {arg}"
        )
        out += [f"def {name}({arg}: str) -> str:", f'    """{doc}"""', f"    {body}", "", ""]
    return "\n".join(out)


def tools_yaml() -> str:
    lines = ["tools:"]
    for number, name in enumerate(TOOL_NAMES):
        arg = "topic" if name == "lookup" else "text"
        lines += [
            f"  - name: {name}",
            f"    description: {json.dumps(paragraph(number, 160))}",
            f"    input_schema: {{type: object, properties: {{{arg}: {{type: string}}}}, required: [{arg}]}}",
            f"    handler: functions.py:{name}",
        ]
    return "\n".join(lines) + "\n"


def script(calls: int = 1) -> dict:
    turns = [
        {
            "text": f"Step {n + 1}: {topic}.",
            "tool_calls": [
                {"id": f"toolu_bench_{n}_{k}", "name": "lookup", "input": {"topic": f"{topic} part {k + 1}"}}
                for k in range(calls)
            ],
        }
        for n, topic in enumerate(TOPICS[: TURNS - 1])
    ]
    return {"turns": turns + [{"text": "All nine steps are checked."}]}


def billed(usages: list[dict]) -> dict:
    total = {
        k: sum(int(u.get(k) or 0) for u in usages)
        for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    }
    total["requests"] = len(usages)
    total["billed"] = round(
        total["input_tokens"] + 1.25 * total["cache_creation_input_tokens"] + 0.1 * total["cache_read_input_tokens"], 1
    )
    return total


def play(server: MockServer, label: str, argv: list[str], env: dict, work: Path) -> dict:
    server.cache.clear()
    start = len(server.billed)
    proc = subprocess.run(
        argv, env=env, cwd=work, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
    )
    usages = server.billed[start:]
    result = {"client": label, **billed(usages), "exit": proc.returncode}
    if proc.returncode != 0 or len(usages) != TURNS:
        result["problem"] = (proc.stderr.strip().splitlines() or ["(no stderr)"])[-1][:300]
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-peers", action="store_true", help="toolchat only")
    ap.add_argument("--peers-venv", type=Path, default=HERE / ".peers-venv")
    ap.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = ap.parse_args()
    results, ok = {}, True
    for calls in (1, PARALLEL):
        rows, met = scenario(calls, args)
        results[f"{calls} call{'s' * (calls != 1)} per turn"] = rows
        ok = ok and (met or calls != 1)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if ok else 1


PARALLEL = 12  # tool calls per turn in the second conversation: 24 blocks a turn, past the lookback


def scenario(calls: int, args) -> tuple[list[dict], bool]:
    rows = []
    with (
        tempfile.TemporaryDirectory(prefix="toolchat-caching-") as tmp,
        MockServer(script=script(calls), log=False) as server,
    ):
        work = Path(tmp)
        (work / "functions.py").write_text(functions_source())
        (work / "tools.yaml").write_text(tools_yaml())
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("ANTHROPIC_", "TOOLCHAT_", "LLM_"))
            and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")
        }
        base.update(
            {
                "HOME": str(work),
                "XDG_CONFIG_HOME": str(work / "config"),
                "LLM_USER_PATH": str(work / "llm"),
                "TOOLCHAT_CONFIG": os.devnull,
                "TOOLCHAT_LOG": "0",
                "no_proxy": "127.0.0.1",
            }
        )
        toolchat = [
            sys.executable,
            "-m",
            "toolchat",
            "-q",
            "-m",
            MODEL,
            "-t",
            "tools.yaml",
            "-s",
            SYSTEM,
            "--max-turns",
            str(TURNS),
            "--plain",
        ]
        env = {**base, "TOOLCHAT_BASE_URL": server.url, "TOOLCHAT_API_KEY": KEY, "PYTHONPATH": str(REPO / "cli")}
        rows.append(play(server, "toolchat", toolchat + [PROMPT], env, work))
        rows.append(play(server, "toolchat --no-cache", toolchat + ["--no-cache", PROMPT], env, work))
        llm = args.peers_venv / "bin" / "llm"
        if not args.no_peers and llm.exists():
            peer_env = {**base, "ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_API_KEY": KEY}
            command = [
                str(llm),
                "-m",
                LLM_MODEL,
                "--functions",
                "functions.py",
                "--td",
                "-n",
                "--cl",
                "20",
                "-s",
                SYSTEM,
            ]
            rows.append(play(server, "llm -o cache 1", command + ["-o", "cache", "1", PROMPT], peer_env, work))
            rows.append(play(server, "llm", command + [PROMPT], peer_env, work))
        elif not args.no_peers:
            print(f"note: {llm} not found (python benchmarks/run.py builds it); peers skipped", file=sys.stderr)

    uncached = {"toolchat": "toolchat --no-cache", "llm -o cache 1": "llm"}
    by_client = {row["client"]: row for row in rows}
    print(
        f"\n{TURNS}-turn tool conversation, {calls} tool call{'s' * (calls != 1)} per turn, "
        "mock prompt cache (tokens are the mock's words)\n"
    )
    print("| client | requests | input | cache writes | cache reads | billed-input-equivalent | vs. uncached |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        base_row = by_client.get(uncached.get(row["client"], ""))
        share = f"{100 * row['billed'] / base_row['billed']:.1f}%" if base_row and base_row["billed"] else ""
        row["share_of_uncached"] = round(row["billed"] / base_row["billed"], 4) if share else None
        print(
            f"| {row['client']} | {row['requests']} | {row['input_tokens']:,} | "
            f"{row['cache_creation_input_tokens']:,} | {row['cache_read_input_tokens']:,} | "
            f"{row['billed']:,.1f} | {share} |" + (f" problem: {row['problem']}" if "problem" in row else "")
        )
    ours = by_client["toolchat"].get("share_of_uncached")
    verdict = "met" if ours is not None and ours <= 0.30 else "NOT met"
    print(f"\ntarget: toolchat at most 30% of uncached: {verdict} ({100 * (ours or 0):.1f}%)")
    return rows, verdict == "met" and all("problem" not in r for r in rows if r["client"].startswith("toolchat"))


if __name__ == "__main__":
    sys.exit(main())
