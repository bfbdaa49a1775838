"""The conversation log's costs, measured in one run on this machine: `python benchmarks/logs.py`.

1. **Logging per run.** (a) In fresh processes that have already imported what a run imports, the
   time to import the log, open it (a log of N conversations), write one two-turn tool run through
   the log sink (the prompt before the first request, each turn as it ends, the tool call, the
   outcome) and close it. Target: under 5 ms. (b) When toolchat has `--no-log`: the two-turn tool
   chat of run.py as a whole process, with and without the log (whole-process noise on a busy
   machine is larger than 5 ms: (a) is the precise number, (b) the check that nothing else costs).
2. **`toolchat logs list` and `logs search WORD` over N logged conversations** (default 10,000:
   two-turn tool runs, a prompt, an answer and a tool output each), as whole processes, against
   `llm logs -n 20` and `llm logs -q WORD -n 20` over N prompts logged by llm's own code (a model
   class of its plugin API that answers at once, so no network is involved). Target: under 100 ms.
   The time of the query itself (in-process, log opened) is shown too, and `toolchat logs path`
   (the same process start, no database) as the floor.

Options: --runs N, --conversations N, --quick; the peers come from benchmarks/.peers-venv as in
run.py (installed there on first use).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import Command, MockProcess, Spawner, bench, ensure_peers, machine
from run import (
    DEFAULT_VENV,
    KEY,
    PROMPT_CHAT,
    REPO,
    _base_env,
    _env,
    _expect,
    _text_table,
    _toolchat_command,
    _write_files,
)

sys.path.insert(0, str(REPO / "cli"))

WORDS = 4000  # vocabulary of the synthetic conversations
RARE, COMMON = "numbat", "weather"  # the words searched for: in 1 conversation in 200, and in all

# One run's log writes, replayed through the sink exactly as a run hands it its events.
RUN_EVENTS = r"""
def log_one_run(db, prompt, answer, output):
    from toolchat.events import Finished, Result, Start, ToolResult, TurnEnd, TurnStart
    from toolchat.sinks.log import LogSink

    messages = [{"role": "user", "content": prompt}]
    sink = LogSink(db, messages, model="claude-sonnet-4-20250514", base_url="https://api.anthropic.com",
                   sources={"get_weather": "tools.yaml"}, owns_db=False)
    usage = {"input_tokens": 410, "output_tokens": 52, "cache_creation_input_tokens": 0,
             "cache_read_input_tokens": 0}
    sink.handle(Start("claude-sonnet-4-20250514", ["get_weather"]))
    sink.handle(TurnStart(1))
    messages.append({"role": "assistant", "content": [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"location": "Perth"}}]})
    sink.handle(TurnEnd(1, "tool_use", usage))
    call = ToolResult("toolu_01", "get_weather", {"location": "Perth"}, output, False, 120)
    sink.handle(call)
    messages.append({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_01", "content": output}]})
    sink.handle(TurnStart(2))
    messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    sink.handle(TurnEnd(2, "end_turn", usage))
    result = Result(model="claude-sonnet-4-20250514", text=answer, stop_reason="end_turn", turns=2,
                    tool_calls=[call], usage=usage, messages=messages)
    sink.handle(Finished(result))
    sink.close()
"""

# In a fresh process: what a run has imported anyway, then the log's whole cost for one run.
PER_RUN = (
    RUN_EVENTS
    + r"""
import sys, time
import toolchat.chat, toolchat.transport, toolchat.views.plain, toolchat.events  # a run has these
start, cpu = time.perf_counter(), time.process_time()
from toolchat.logdb import LogDB
imported = time.perf_counter()
db = LogDB(sys.argv[1])
opened = time.perf_counter()
log_one_run(db, "What is the weather in Perth? " + sys.argv[2], "Sunny and 24 °C in Perth.",
            "24 °C, clear sky, wind 12 km/h")
db.close()
done, cpu = time.perf_counter(), time.process_time() - cpu
print(f"{(done - start) * 1000:.3f} {(imported - start) * 1000:.3f} {(opened - imported) * 1000:.3f} "
      f"{(done - opened) * 1000:.3f} {cpu * 1000:.3f}")
"""
)

# llm's own logging code, fed by a model that answers at once (llm's plugin API: llm.Model).
LLM_FILL = r"""
import json, sys
import llm, sqlite_utils
from llm.migrations import migrate

class Instant(llm.Model):
    model_id = "claude-sonnet-4-20250514"
    can_stream = True
    def execute(self, prompt, stream, response, conversation):
        yield ANSWERS[prompt.prompt]

rows = json.load(open(sys.argv[2]))
ANSWERS = {row["prompt"]: row["answer"] for row in rows}
db = sqlite_utils.Database(sys.argv[1])
migrate(db)
model = Instant()
for row in rows:
    response = model.prompt(row["prompt"])
    response.text()
    response.log_to_db(db)
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python benchmarks/logs.py", description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="timed runs of each command (default 5)")
    ap.add_argument("--per-run", type=int, default=20, help="fresh processes measuring one run's logging (default 20)")
    ap.add_argument("--conversations", type=int, default=10_000, help="logged conversations (default 10000)")
    ap.add_argument("--quick", action="store_true", help="2 runs, 1,000 conversations: a rough look")
    ap.add_argument("--no-peers", action="store_true", help="toolchat only (no llm)")
    ap.add_argument("--peers-venv", type=Path, default=DEFAULT_VENV)
    ap.add_argument("--json", type=Path, metavar="FILE", help="write the numbers to FILE as JSON")
    args = ap.parse_args(argv)
    if args.quick:
        args.runs, args.per_run, args.conversations = 2, 8, 1_000
    versions = {} if args.no_peers else ensure_peers(args.peers_venv, log=_log)
    results: dict = {"machine": machine(), "peers": versions, "conversations": args.conversations}
    with tempfile.TemporaryDirectory(prefix="toolchat-logs-bench-") as tmp, Spawner() as spawner:
        work = Path(tmp)
        files = _write_files(work, 10)
        toolchat, how = _toolchat_command(work)
        _log(f"toolchat: {' '.join(toolchat)} ({how})")
        home = work / "toolchat-home"
        home.mkdir()
        rows = _conversations(args.conversations)
        _log(f"logging {len(rows):,} conversations through the log sink ...")
        started = time.perf_counter()
        _fill_toolchat(home / "logs.db", rows)
        fill_seconds = time.perf_counter() - started
        _log(f"  {fill_seconds:.1f} s ({fill_seconds / len(rows) * 1000:.2f} ms a run, in one process)")
        results["fill_ms_per_run_in_process"] = fill_seconds / len(rows) * 1000

        # 1a. The log's cost for one run, in fresh processes.
        _log(f"one run's logging, {args.per_run} fresh processes ...")
        samples = []
        for i in range(args.per_run):
            proc = subprocess.run(
                [sys.executable, "-c", PER_RUN, str(home / "logs.db"), f"probe {i}"],
                capture_output=True,
                text=True,
                env={**_base_env(work), "PYTHONPATH": str(REPO / "cli")},
            )
            if proc.returncode != 0:
                raise SystemExit(f"per-run probe failed: {proc.stderr}")
            samples.append([float(x) for x in proc.stdout.split()])
        per_run = {
            name: statistics.median(s[i] for s in samples)
            for i, name in enumerate(("total", "import", "open", "write", "cpu"))
        }
        results["per_run_ms"] = per_run

        env = {**_base_env(work), "TOOLCHAT_HOME": str(home)}
        env = _env(env, toolchat)
        commands = [
            Command(
                "tc_path", "toolchat logs path (no database)", toolchat + ["logs", "path"], env, _expect(b"logs.db")
            ),
            Command("tc_list", "toolchat logs list -n 20", toolchat + ["logs", "list", "-n", "20"], env, _lines(21)),
            Command(
                "tc_search",
                f"toolchat logs search {RARE} -n 20",
                toolchat + ["logs", "search", RARE, "-n", "20"],
                env,
                _expect(RARE.encode()),
            ),
            Command(
                "tc_search_common",
                f"toolchat logs search {COMMON} -n 20",
                toolchat + ["logs", "search", COMMON, "-n", "20"],
                env,
                _expect(COMMON.encode()),
            ),
        ]
        if not args.no_peers:
            llm_home = work / "llm"
            rows_file = work / "rows.json"
            rows_file.write_text(json.dumps([{"prompt": r["prompt"], "answer": r["answer"]} for r in rows]))
            _log(f"logging {len(rows):,} prompts with llm's own code ...")
            started = time.perf_counter()
            subprocess.run(
                [str(args.peers_venv / "bin" / "python"), "-c", LLM_FILL, str(llm_home / "logs.db"), str(rows_file)],
                check=True,
                env={**_base_env(work)},
            )
            _log(f"  {time.perf_counter() - started:.1f} s")
            llm = str(args.peers_venv / "bin" / "llm")
            commands += [
                Command(
                    "llm_list", "llm logs -n 20", [llm, "logs", "-n", "20"], _base_env(work), _expect(b"## Prompt")
                ),
                Command(
                    "llm_search",
                    f"llm logs -q {RARE} -n 20",
                    [llm, "logs", "-q", RARE, "-n", "20"],
                    _base_env(work),
                    _expect(RARE.encode()),
                ),
                Command(
                    "llm_search_common",
                    f"llm logs -q {COMMON} -n 20",
                    [llm, "logs", "-q", COMMON, "-n", "20"],
                    _base_env(work),
                    _expect(COMMON.encode()),
                ),
            ]
        _log(f"logs commands over {len(rows):,} conversations: {args.runs} runs each")
        bench(spawner, commands, args.runs, work, log=_log)
        results["commands"] = {
            c.key: {"label": c.label, "error": c.error, "wall_ms": [s.wall * 1000 for s in c.samples]} for c in commands
        }
        queries = _queries(home / "logs.db", args.runs * 4)
        results["queries_ms"] = queries

        # 1b. The whole run, with and without the log (once toolchat has --no-log).
        help_text = subprocess.run(toolchat + ["--help"], capture_output=True, text=True, env=env).stdout
        chat_rows: list[list[str]] = []
        if "--no-log" in help_text:
            _log(f"two-turn tool chat with and without the log: {args.runs * 2} runs each")
            with MockProcess(REPO, files["chat_script"], work / "mock-chat.log") as mock:
                chat_env = {
                    **env,
                    "ANTHROPIC_BASE_URL": mock.url,
                    "ANTHROPIC_API_KEY": KEY,
                    "TOOLCHAT_LOG": "1",
                }  # run.py's environment turns the log off
                answer = _expect(b"The sum is 42.")
                chat = [
                    Command(
                        "chat_log",
                        "toolchat -t tools.yaml PROMPT (logged)",
                        toolchat + ["-t", str(files["tools"]), PROMPT_CHAT],
                        chat_env,
                        answer,
                    ),
                    Command(
                        "chat_nolog",
                        "toolchat -t tools.yaml PROMPT --no-log",
                        toolchat + ["-t", str(files["tools"]), PROMPT_CHAT, "--no-log"],
                        chat_env,
                        answer,
                    ),
                ]
                bench(spawner, chat, args.runs * 2, work, log=_log)
            results["chat"] = {c.key: [s.wall * 1000 for s in c.samples] for c in chat}
            if all(c.ok for c in chat):
                logged, unlogged = (c.median() * 1000 for c in chat)
                chat_rows = [
                    ["two-turn tool chat, logged", f"{logged:.1f} ms", ""],
                    ["two-turn tool chat, --no-log", f"{unlogged:.1f} ms", ""],
                    ["difference (whole process)", f"{logged - unlogged:+.1f} ms", "< 5 ms"],
                ]

    by_key = {c.key: c for c in commands}

    def ms(key: str) -> str:
        command = by_key.get(key)
        if command is None or not command.ok:
            return "failed: " + (command.error if command else "not run")
        return f"{command.median() * 1000:.1f} ms"

    print()
    print(f"machine: {results['machine']}")
    if versions:
        print("peers: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(f"{args.conversations:,} logged conversations; {args.runs} runs per command; medians")
    print()
    table = [
        ["logging one run (fresh process: import, open, write, close)", f"{per_run['total']:.2f} ms", "< 5 ms"],
        ["  of which: import the log", f"{per_run['import']:.2f} ms", ""],
        ["  open the log", f"{per_run['open']:.2f} ms", ""],
        ["  write the run (6 transactions)", f"{per_run['write']:.2f} ms", ""],
        ["  CPU time of it all", f"{per_run['cpu']:.2f} ms", "< 5 ms"],
        *chat_rows,
        ["toolchat logs path (process floor, no database)", ms("tc_path"), ""],
        ["toolchat logs list -n 20", ms("tc_list"), "< 100 ms"],
        [f"toolchat logs search {RARE} (rare word)", ms("tc_search"), "< 100 ms"],
        [f"toolchat logs search {COMMON} (in every one)", ms("tc_search_common"), "< 100 ms"],
        ["  query only: list 20", f"{queries['list']:.2f} ms", ""],
        [f"  query only: search {RARE}", f"{queries['search_rare']:.2f} ms", ""],
        [f"  query only: search {COMMON}", f"{queries['search_common']:.2f} ms", ""],
    ]
    if not args.no_peers:
        table += [
            ["llm logs -n 20", ms("llm_list"), ""],
            [f"llm logs -q {RARE} -n 20", ms("llm_search"), ""],
            [f"llm logs -q {COMMON} -n 20", ms("llm_search_common"), ""],
        ]
        for ours, theirs, label in (
            ("tc_list", "llm_list", "list: llm / toolchat"),
            ("tc_search", "llm_search", f"search {RARE}: llm / toolchat"),
            ("tc_search_common", "llm_search_common", f"search {COMMON}: llm / toolchat"),
        ):
            if by_key[ours].ok and by_key[theirs].ok:
                table.append([label, f"{by_key[theirs].median() / by_key[ours].median():.1f}x", ""])
    print(_text_table(["measure", "median", "target"], table))
    failed = [c for c in commands if c.error]
    for command in failed:
        print(f"\nFAILED {command.label}: {command.error}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 1 if failed else 0


def _conversations(n: int) -> list[dict]:
    """n synthetic two-turn weather runs over a vocabulary of WORDS words (seeded: the same each time)."""
    rng = random.Random(14)
    syllables = ["ka", "lo", "mi", "ren", "to", "sa", "vi", "dor", "pe", "qu", "ul", "zan", "fe", "gri"]
    vocabulary = sorted({"".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(WORDS * 2)})
    vocabulary = [w for w in vocabulary if w not in (RARE, COMMON)][:WORDS]
    weights = [1 / (rank + 1) for rank in range(len(vocabulary))]  # Zipf-like: a few words are everywhere

    def words(count: int) -> str:
        return " ".join(rng.choices(vocabulary, weights, k=count))

    rows = []
    for i in range(n):
        rare = f" {RARE}" if i % 200 == 0 else ""
        rows.append(
            {
                "prompt": f"What is the {COMMON} like for the {words(6)}{rare}? ({i})",
                "answer": f"The {COMMON} is mild. {words(40)}.",
                "output": f"{COMMON}: 21 °C, {words(25)}",
            }
        )
    return rows


def _fill_toolchat(path: Path, rows: list[dict]) -> None:
    from toolchat.logdb import LogDB

    namespace: dict = {}
    exec(RUN_EVENTS, namespace)
    with LogDB(path) as db:
        for row in rows:
            namespace["log_one_run"](db, row["prompt"], row["answer"], row["output"])


def _queries(path: Path, repeat: int) -> dict:
    from toolchat.logdb import LogDB

    with LogDB(path, create=False) as db:
        timings: dict[str, list[float]] = {"list": [], "search_rare": [], "search_common": []}
        for _ in range(repeat):
            for key, action in (
                ("list", lambda: db.list(limit=20)),
                ("search_rare", lambda: db.search(RARE, limit=20)),
                ("search_common", lambda: db.search(COMMON, limit=20)),
            ):
                start = time.perf_counter()
                found = action()
                timings[key].append((time.perf_counter() - start) * 1000)
                assert found, key
    return {key: statistics.median(values) for key, values in timings.items()}


def _lines(count: int):
    def check(out: bytes, err: bytes) -> str | None:
        found = len(out.splitlines())
        return None if found == count else f"{found} lines on stdout, expected {count}"

    return check


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
