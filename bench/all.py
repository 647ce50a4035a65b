"""Every bench script in turn, then one table of the figures the issues named, against the goals.

Each script runs as `python bench/<name>.py ARGS` (the arguments are printed), its output is
streamed live, and its `::figure::` lines (see `bench/figures.py`) are gathered, also from a
script that fails. Goals missed do not fail the run (benchmarks print, they do not assert); the
exit status is non-zero only when a script crashed or timed out.

    .venv/bin/python bench/all.py [--only startup,policy] [--quick] [--timeout 1500]
"""

from __future__ import annotations

import argparse
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from figures import parse

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Script:
    name: str
    issue: int
    full: tuple[str, ...] = ()  # the script's own defaults unless too big for 2 cores
    quick: tuple[str, ...] = ()
    optional: bool = False  # run only when the file exists

    @property
    def path(self) -> Path:
        return HERE / f"{self.name}.py"


SCRIPTS = [
    Script("startup", 2, quick=("--runs", "2")),
    Script("lark_latency", 3, quick=("--seconds", "3")),
    Script(
        "incidents",
        4,
        full=("--paused", "10000"),
        quick=("--seconds", "3", "--incidents", "10", "--paused", "1000", "--samples", "10"),
    ),
    Script("policy", 5, quick=("--rounds", "2000")),
    Script("agent", 6, quick=("--diagnoses", "50", "--http", "10", "--rows", "0,20000")),
    Script("memory", 6, full=("--rows", "100000"), quick=("--rows", "10000", "--queries", "100")),
    Script("schedule_parse", 7, quick=("--rounds", "3", "--cold", "2")),
    Script(
        "scheduler",
        7,
        full=("--schedules", "10000"),
        quick=("--schedules", "2000", "--firing", "50", "--window", "10"),
    ),
    Script("chat_stream", 8, quick=("--questions", "30")),
    Script("retention", 9, optional=True),
    Script("tracing", 20, quick=("--incidents", "40")),
    Script("intake_corpus", 16),
    Script("council", 20, quick=("--rounds", "4")),
    Script("escalation", 18, quick=("--incidents", "200")),
    Script("idle", 22, quick=("--seconds", "20")),
    Script("cli_start", 22, quick=("--runs", "3")),
    Script("ingest", 22, quick=("--alerts", "10000", "--runs", "3", "--seconds", "5")),
    Script(
        "api",
        19,
        quick=("--incidents", "10000", "--seconds", "5", "--alerts", "10"),
    ),
]


@dataclass
class Outcome:
    script: Script
    args: tuple[str, ...]
    seconds: float = 0.0
    status: str = ""  # "" when the script exited 0
    figures: list[dict[str, Any]] = field(default_factory=list)


def run(script: Script, args: tuple[str, ...], timeout: float) -> Outcome:
    command = [sys.executable, str(script.path), *args]
    print(f"\n=== {' '.join(['bench/' + script.path.name, *args])} ===", flush=True)
    outcome = Outcome(script, args)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    began = time.monotonic()
    proc = subprocess.Popen(
        command,
        cwd=HERE.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
        bufsize=1,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    deadline, stopping = began + timeout, 0.0
    try:
        while True:
            try:
                line = lines.get(timeout=1.0)
            except queue.Empty:
                if not stopping and time.monotonic() > deadline:
                    # SIGINT: the script's finally blocks stop its bot and Postgres
                    print(f"--- {script.name}: timed out after {timeout:.0f} s, interrupting")
                    proc.send_signal(signal.SIGINT)
                    outcome.status, stopping = f"timed out ({timeout:.0f} s)", time.monotonic()
                elif stopping and time.monotonic() - stopping > 120:
                    proc.kill()
                continue
            if line is None:
                break
            record = parse(line)
            if record is None:
                print(line, end="", flush=True)
            else:
                outcome.figures.append(record)
    except KeyboardInterrupt:  # the terminal interrupted the script too: let it clean up
        outcome.status = "interrupted"
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
    finally:
        code = proc.wait()
        outcome.seconds = time.monotonic() - began
        if code and not outcome.status:
            outcome.status = f"failed (exit {code})"
    print(f"--- {script.name}: {outcome.status or 'done'} in {outcome.seconds:.0f} s", flush=True)
    return outcome


def number(value: float | None) -> str:
    if value is None:
        return "n/a"
    size = abs(value)
    if value == int(value) or size >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if size >= 10 else f"{value:.2f}" if size >= 1 else f"{value:.3f}"


def table(outcomes: list[Outcome]) -> list[list[str]]:
    rows: list[tuple[int, list[str]]] = []
    for outcome in outcomes:
        for record in outcome.figures:
            met = record.get("met")
            mark = "–" if met is None else "✓" if met else "✗"
            rows.append(
                (
                    int(record.get("issue", outcome.script.issue)),
                    [
                        str(record.get("issue", "")),
                        str(record.get("name", "")),
                        number(record.get("value")),
                        str(record.get("unit", "")),
                        str(record.get("goal") or "–"),
                        mark,
                    ],
                )
            )
        if outcome.status or not outcome.figures:
            issue = outcome.script.issue
            what = outcome.status or "no figures printed"
            rows.append((issue, [str(issue), f"bench/{outcome.script.name}.py", what, "", "", "–"]))
    rows.sort(key=lambda row: row[0])  # stable: each script's own order within an issue
    return [row for _, row in rows]


def render(rows: list[list[str]]) -> str:
    header = ["issue", "figure", "value", "unit", "goal", "met"]
    widths = [max(len(r[n]) for r in [header, *rows]) for n in range(len(header))]
    right = {0, 2}

    def line(cells: list[str]) -> str:
        padded = [
            c.rjust(w) if n in right else c.ljust(w)
            for n, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(
        "-" * (w + 1) + ":" if n in right else "-" * (w + 2) for n, w in enumerate(widths)
    )
    return "\n".join([line(header), rule + "|", *(line(r) for r in rows)])


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated names, e.g. startup,policy")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, a few minutes")
    parser.add_argument("--timeout", type=float, default=1500, help="seconds per script")
    options = parser.parse_args()
    known = {s.name: s for s in SCRIPTS}
    wanted = [n.strip().removeprefix("bench/").removesuffix(".py") for n in options.only.split(",")]
    wanted = [n for n in wanted if n]
    unknown = [n for n in wanted if n not in known]
    if unknown:
        parser.error(f"unknown bench {', '.join(unknown)}; known: {', '.join(known)}")
    chosen = [known[n] for n in wanted] if wanted else SCRIPTS
    chosen = [s for s in chosen if not (s.optional and not s.path.exists())]
    mode = "quick" if options.quick else "full"
    print(f"bench/all.py ({mode}): {', '.join(s.name for s in chosen)}; {os.cpu_count()} cores")
    outcomes: list[Outcome] = []
    started = time.monotonic()
    for script in chosen:
        outcomes.append(
            run(script, script.quick if options.quick else script.full, options.timeout)
        )
        if outcomes[-1].status == "interrupted":
            print("\ninterrupted: the table shows the scripts run so far")
            break
    print(f"\n=== ran ({mode}, {time.monotonic() - started:.0f} s in all) ===")
    for outcome in outcomes:
        shown = " ".join(outcome.args) or "(defaults)"
        print(f"  bench/{outcome.script.name}.py {shown}: {outcome.seconds:.0f} s")
    print()
    print(render(table(outcomes)))
    print("\n✓ goal met, ✗ goal missed, – no goal set. Figures depend on the machine and its load.")
    crashed = [o for o in outcomes if o.status]
    return 1 if crashed or len(outcomes) < len(chosen) else 0


if __name__ == "__main__":
    sys.exit(main())
