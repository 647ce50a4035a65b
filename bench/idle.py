"""Issue 22: what a bot with nothing to do burns. `larkops run` configured like a real Lark app
(pointed at a separate `larkops sandbox`, so the emulator's own work is not counted), started,
connected, then left alone; its CPU time (user + system, the bot process only; the embedded
Postgres is counted separately) over a window, as a share of one core.

The window is the steady state: it opens once the start-up is over and the retention janitor's
first pass (a minute after start) has finished (`larkops_gc_last_run_timestamp_seconds` set),
plus a few seconds. The CPU of each of the bot's threads over the window is printed too (the
lark_oapi long connection's thread, with its pings, among them); `--why` runs the bot under
bench/wakeups.py and prints what woke its event loops during the window.

Goal: ≤ 0.2 % of a core (issue 22; it was about 1.8 %).

    .venv/bin/python bench/idle.py [--seconds 60] [--why]
"""

from __future__ import annotations

import argparse
import json
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
PROBE = str(Path(__file__).with_name("wakeups.py"))
SETTLE = 10.0  # seconds after the janitor's first pass before the window opens


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


def janitor_done(port: int) -> bool:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    for line in text.splitlines():
        if line.startswith("larkops_gc_last_run_timestamp_seconds "):
            return float(line.split()[1]) > 0
    return False


def thread_cpu(process: psutil.Process) -> dict[int, float]:
    return {t.id: t.user_time + t.system_time for t in process.threads()}


def main(seconds: float, why: bool) -> None:
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
        report = home / "wakeups.json"
        command = [LARKOPS, "run"]
        if why:
            command = [sys.executable, PROBE, "run"]
            env["LARKOPS_BENCH_WAKEUPS"] = str(report)
        bot = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

        def connected() -> bool:
            answer = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
            return answer.status_code == 200 and answer.json().get("lark") == "connected"

        wait(connected, 90, "the bot to be ready and connected")
        wait(lambda: janitor_done(port), 180, "the retention janitor's first pass")
        time.sleep(SETTLE)  # what the pass and the start-up left settles
        process = psutil.Process(bot.pid)
        if why:
            process.send_signal(signal.SIGUSR1)
        own, db, threads = cpu(process), postgres_cpu(home), thread_cpu(process)
        began = time.monotonic()
        time.sleep(seconds)  # the measurement window: nothing is sent to the bot
        elapsed = time.monotonic() - began
        share = (cpu(process) - own) / elapsed * 100
        db_share = (postgres_cpu(home) - db) / elapsed * 100
        after = thread_cpu(process)
        names: dict[str, str] = {}
        if why:
            process.send_signal(signal.SIGUSR2)
            wait(report.exists, 10, "the wake-up report")
            time.sleep(0.5)
            found = json.loads(report.read_text())
            names = found["threads"]
        print(
            f"idle for {elapsed:.0f} s (steady state: after the janitor's first pass): "
            f"bot {share:.3f} % of a core (goal ≤ 0.2 %), its Postgres {db_share:.3f} %"
        )
        for tid, used in sorted(
            after.items(), key=lambda item: -(item[1] - threads.get(item[0], 0))
        ):
            spent = used - threads.get(tid, 0.0)
            if spent > 0:
                name = names.get(str(tid), "main" if tid == bot.pid else "?")
                print(
                    f"  thread {tid} {name}: {spent * 1000:.0f} ms ({spent / elapsed * 100:.3f} %)"
                )
        if why:
            for row in found["callbacks"][:25]:
                print(f"  {row['runs']:6d} runs {row['cpu'] * 1000:8.1f} ms  {row['what']}")
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
    parser.add_argument("--why", action="store_true", help="what wakes the bot, by callback")
    arguments = parser.parse_args()
    main(arguments.seconds, arguments.why)
