"""Issue 22 item 5: the CLI paths that do not need the app start in under half a second.

Each command is run as a fresh process (`larkops …`, the installed entry point) several times;
the median wall time to exit is printed beside the 0.5 s goal. Nothing is asserted.
`apikey list` needs the database: the bench starts an embedded Postgres of its own (or uses
`DATABASE_URL` when set), migrates it, makes one key, and points the command at it; the time
is the command's own (connect, check the revision, list), not the server's start.

    .venv/bin/python bench/cli_start.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from figures import figure

from storage.embedded import EmbeddedPostgres

LARKOPS = str(Path(sys.executable).parent / "larkops")
GOAL = 0.5

COMMANDS: tuple[tuple[str, ...], ...] = (
    ("--version",),
    ("config", "check"),
    ("schedule", "parse", "每个工作日早上9点检查服务器健康", "--json"),
    ("apikey", "list"),
)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def once(command: tuple[str, ...], env: dict[str, str]) -> tuple[float, float] | None:
    """Wall seconds to exit and the command's CPU seconds (user + system: the figure to trust
    on a busy machine), or None when it failed."""
    started, used = time.perf_counter(), children_cpu()
    done = subprocess.run([LARKOPS, *command], env=env, capture_output=True, check=False)
    took = time.perf_counter() - started
    return (took, children_cpu() - used) if done.returncode == 0 else None


def database(home: str) -> tuple[str, EmbeddedPostgres | None]:
    """A migrated database with one key: `DATABASE_URL`, or an embedded server under `home`."""
    server: EmbeddedPostgres | None = None
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        server = EmbeddedPostgres(Path(home) / "db", fsync=False)
        url = server.start()
    env = {**os.environ, "LARKOPS_HOME": home, "DATABASE_URL": url}
    for command in (("migrate",), ("apikey", "create", "--name", "bench", "--owner", "ou_bench")):
        subprocess.run([LARKOPS, *command], env=env, capture_output=True, check=True)
    return url, server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        url, server = database(home)
        try:
            measure({**os.environ, "LARKOPS_HOME": home, "DATABASE_URL": url}, args.runs)
        finally:
            if server is not None:
                server.release()
    return 0


def measure(env: dict[str, str], runs: int) -> None:
    for command in COMMANDS:
        results = [once(command, env) for _ in range(runs)]
        if any(r is None for r in results):
            print(f"larkops {' '.join(command)}: not available here (exit ≠ 0), not measured")
            continue
        median = statistics.median(r[0] for r in results if r is not None)
        cpu = statistics.median(r[1] for r in results if r is not None)
        name = f"larkops {command[0]}{' ' + command[1] if command[0] != '--version' else ''}"
        print(
            f"{name}: median {median:.3f} s over {runs} runs, {cpu:.3f} s of CPU (goal < {GOAL} s)"
        )
        figure(22, f"{name} CPU time", cpu, "s", "", None)
        figure(22, f"{name} start to exit", median, "s", f"< {GOAL}", median < GOAL)


if __name__ == "__main__":
    sys.exit(main())
