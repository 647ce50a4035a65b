"""Cold and warm start of `larkops run` to a 200 from /readyz, and memory after start.

Prints figures (medians over several runs); asserts nothing. Goals from the foundation issue:
warm start < 3 s, RSS < 250 MB; from issue 22: Lark (the sandbox mode's emulator) connected
≤ 2 s after start, RSS with Lark connected ≤ 160 MB.

    .venv/bin/python bench/startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import httpx
import psutil
from figures import figure

LARKOPS = str(Path(sys.executable).parent / "larkops")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Start(NamedTuple):
    ready: float  # seconds to /readyz 200
    ready_rss: float  # bot RSS then (MB)
    postgres_rss: float  # embedded postgres RSS (MB, all its processes)
    connected: float  # seconds until the Lark (sandbox) long connection is up
    connected_rss: float  # bot RSS once connected AND ready: everything built (MB)
    connected_cpu: float  # the bot's CPU seconds (user + system) until connected


def one_start(home: Path) -> Start:
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "LARKOPS_HOME": str(home),
        "LARKOPS_HTTP_PORT": str(port),
        "LARKOPS_LOG_FORMAT": "json",
    }
    began = time.perf_counter()
    process = subprocess.Popen(
        [LARKOPS, "run"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    bot = psutil.Process(process.pid)
    ready = connected = connected_cpu = bot_rss = 0.0
    try:
        # /readyz answers from the first moments (the app serves HTTP first) and says where the
        # Lark connection is; the connection opens before the desks are built, so it is
        # usually up before /readyz turns 200
        while not (ready and connected):
            if process.poll() is not None:
                raise SystemExit(f"larkops exited with {process.returncode}")
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
            except httpx.HTTPError:
                time.sleep(0.01)
                continue
            now = time.perf_counter() - began
            state = str(answer.json().get("lark"))
            if not connected and state == "connected":
                connected, cpu = now, bot.cpu_times()
                connected_cpu = cpu.user + cpu.system
            if not ready and answer.status_code == 200:
                ready, bot_rss = now, bot.memory_info().rss / 2**20
            if state.startswith("error") or now > 60:
                raise SystemExit(f"lark did not connect: {state}")
            time.sleep(0.01)
        # with everything built (ready) and Lark connected: what the bot keeps from then on
        connected_rss = bot.memory_info().rss / 2**20
        pg_rss = 0.0
        for proc in psutil.process_iter(["name", "cmdline"]):
            cmdline = proc.info["cmdline"] or []
            if proc.info["name"] == "postgres" and str(home) in " ".join(cmdline):
                pg_rss += proc.memory_info().rss / 2**20
                pg_rss += sum(c.memory_info().rss for c in proc.children()) / 2**20
        return Start(ready, bot_rss, pg_rss, connected, connected_rss, connected_cpu)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="larkops-bench-")) / "home"
    try:
        first = one_start(home)
        cold, cold_rss = first.ready, first.ready_rss
        warm = [one_start(home) for _ in range(args.runs)]
    finally:
        shutil.rmtree(home.parent, ignore_errors=True)
    times = [w.ready for w in warm]
    rss = [w.ready_rss for w in warm]
    pg = [w.postgres_rss for w in warm]
    connected = [w.connected for w in warm]
    connected_rss = [w.connected_rss for w in warm]
    connected_cpu = [w.connected_cpu for w in warm]
    print(f"cold start (initdb + migrate) to /readyz : {cold:6.2f} s")
    print(
        f"warm start to /readyz, median of {args.runs}     : {statistics.median(times):6.2f} s"
        f"   (min {min(times):.2f}, max {max(times):.2f}; goal < 3 s)"
    )
    print(
        f"bot RSS after ready, median            : {statistics.median(rss):6.1f} MB"
        f"  (cold run {cold_rss:.1f} MB; goal < 250 MB)"
    )
    print(f"embedded postgres RSS (all processes)  : {statistics.median(pg):6.1f} MB")
    print(
        f"warm start to Lark sandbox connected   : {statistics.median(connected):6.2f} s"
        "   (the connection opens once the database is ready, before the desks are built)"
    )
    print(
        f"bot CPU until Lark connected, median   : {statistics.median(connected_cpu):6.2f} s"
        "   (user + system: what the wall time is on a quiet machine, less waits)"
    )
    print(
        f"bot RSS with Lark connected, median    : {statistics.median(connected_rss):6.1f} MB"
        "  (once connected and ready: everything built)"
    )
    warm_s, rss_mb = statistics.median(times), statistics.median(rss)
    figure(2, "cold start to /readyz (initdb + migrate)", cold, "s", "", None)
    figure(2, f"warm start to /readyz, median of {args.runs}", warm_s, "s", "< 3", warm_s < 3)
    figure(2, "bot RSS after ready, median", rss_mb, "MB", "< 250", rss_mb < 250)
    linked, linked_rss = statistics.median(connected), statistics.median(connected_rss)
    figure(22, "warm start to Lark connected, median", linked, "s", "≤ 2", linked <= 2)
    figure(22, "bot RSS with Lark connected, median", linked_rss, "MB", "≤ 160", linked_rss <= 160)


if __name__ == "__main__":
    main()
