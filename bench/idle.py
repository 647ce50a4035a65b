"""Issue 22: what a bot with nothing to do burns. `larkops run` configured like a real Lark app
(pointed at a separate `larkops sandbox`, so the emulator's own work is not counted), started,
connected, then left alone; its CPU time (user + system, the bot process only; the embedded
Postgres is counted separately) over a window, as a share of one core.

Goal: ≤ 0.2 % of a core (issue 22; it was about 1.8 %).

    .venv/bin/python bench/idle.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
from figures import figure

LARKOPS = str(Path(sys.executable).parent / "larkops")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def postgres_cpu(home: Path) -> float:
    total = 0.0
    for proc in psutil.process_iter(["name", "cmdline"]):
        try:
            if "postgres" in (proc.info["name"] or "") and str(home) in " ".join(
                proc.info["cmdline"] or []
            ):
                total += cpu(proc)
        except psutil.Error:
            continue
    return total


def main(seconds: float) -> None:
    home = Path(tempfile.mkdtemp(prefix="larkops-bench-idle-"))
    lark_port, port = free_port(), free_port()
    base = {"PATH": os.environ["PATH"], "LARKOPS_LOG_FORMAT": "json", "LARKOPS_HOME": str(home)}
    sandbox = subprocess.Popen(
        [LARKOPS, "sandbox", "--port", str(lark_port)],
        env=base,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    lark = f"http://127.0.0.1:{lark_port}"
    bot: subprocess.Popen[bytes] | None = None
    try:
        wait(lambda: httpx.get(f"{lark}/sandbox/api/state", timeout=1).is_success, 60, "sandbox")
        env = {
            **base,
            "LARKOPS_HTTP_PORT": str(port),
            "LARK_APP_ID": "cli_sandbox",
            "LARK_APP_SECRET": "sandbox-secret",
            "LARK_DOMAIN": lark,
            "LARKOPS_FETCH_ALLOW": "127.0.0.1",
        }
        bot = subprocess.Popen(
            [LARKOPS, "run"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

        def connected() -> bool:
            answer = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
            return answer.status_code == 200 and answer.json().get("lark") == "connected"

        wait(connected, 90, "the bot to be ready and connected")
        time.sleep(10)  # start-up work (recovery, first sweeps) settles
        process = psutil.Process(bot.pid)
        own, db = cpu(process), postgres_cpu(home)
        began = time.monotonic()
        time.sleep(seconds)  # the measurement window: nothing is sent to the bot
        elapsed = time.monotonic() - began
        share = (cpu(process) - own) / elapsed * 100
        db_share = (postgres_cpu(home) - db) / elapsed * 100
        print(
            f"idle for {elapsed:.0f} s: bot {share:.3f} % of a core, its Postgres {db_share:.3f} %"
        )
        figure(22, "idle CPU of the bot", share, "% of a core", "≤ 0.2", share <= 0.2)
        figure(22, "idle CPU of its embedded Postgres", db_share, "% of a core", "", None)
    finally:
        for child in (bot, sandbox):
            if child is not None and child.poll() is None:
                child.send_signal(signal.SIGTERM)
                try:
                    child.wait(30)
                except subprocess.TimeoutExpired:
                    child.kill()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60)
    main(parser.parse_args().seconds)
