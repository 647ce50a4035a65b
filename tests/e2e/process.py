"""Run `larkops` as a real process, the way an operator does, and talk to it over HTTP."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from tests.support.wait import wait_until_sync

LARKOPS = str(Path(sys.executable).parent / "larkops")


def base_env(**extra: str) -> dict[str, str]:
    env = {key: os.environ[key] for key in ("PATH", "LANG", "TZ") if key in os.environ}
    env["LARKOPS_LOG_FORMAT"] = "json"
    env.update(extra)
    return env


@dataclass
class Bot:
    """One `larkops run` process; stderr goes to a file so a test can read the log."""

    home: Path
    port: int
    env: dict[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()  # after `larkops run`
    # its own process group, as a shell's foreground job: Ctrl-C is SIGINT to the whole group
    own_group: bool = False
    process: subprocess.Popen[bytes] | None = None
    logfile: Path | None = None
    _log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait_ready: bool = True, timeout: float = 60) -> Bot:
        self.logfile = self.home.parent / f"{self.home.name}-{self.port}-{time.time_ns()}.log"
        self._log = self.logfile.open("wb")
        env = base_env(LARKOPS_HOME=str(self.home), LARKOPS_HTTP_PORT=str(self.port), **self.env)
        self.process = subprocess.Popen(
            [LARKOPS, "run", *self.args],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.home.parent,
            start_new_session=self.own_group,
        )
        if wait_ready:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 60) -> httpx.Response:
        process = self.process
        assert process is not None

        def ready() -> httpx.Response | None:
            if process.poll() is not None:
                raise AssertionError(f"larkops exited {process.returncode}:\n{self.log()}")
            try:
                response = httpx.get(f"{self.url}/readyz", timeout=2)
            except httpx.HTTPError:
                return None
            return response if response.status_code == 200 else None

        try:
            answer: httpx.Response = wait_until_sync(ready, timeout, "larkops /readyz 200")
        except AssertionError as exc:
            if process.poll() is not None:
                raise
            raise AssertionError(f"{exc}:\n{self.log()}") from None
        return answer

    def log(self) -> str:
        return self.logfile.read_text(encoding="utf-8", errors="replace") if self.logfile else ""

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 30) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout)
        if self._log is not None:
            self._log.close()
        return code

    async def astop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 30) -> int:
        """`stop` without blocking the event loop: the emulator the bot may still be talking to
        while it shuts down (a card update, the long connection's handshake) runs on it."""
        return await asyncio.to_thread(self.stop, sig, timeout)

    def ctrl_c(self, timeout: float = 30) -> int:
        """What Ctrl-C in a terminal does: SIGINT to every process of the group."""
        assert self.process is not None
        assert self.own_group
        os.killpg(self.process.pid, signal.SIGINT)
        return self.wait_exit(timeout)

    def wait_exit(self, timeout: float = 60) -> int:
        assert self.process is not None
        code = self.process.wait(timeout)
        if self._log is not None:
            self._log.close()
        return code


def postmaster_pid(home: Path) -> int | None:
    pidfile = home / "postgres" / "data" / "postmaster.pid"
    try:
        return int(pidfile.read_text(encoding="utf-8").splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); read its state
    try:
        state = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").split()[2]
    except OSError:
        return False
    return state != "Z"


def wait_gone(pid: int, timeout: float = 30) -> bool:
    """True once `pid` has exited; False if it is still running after `timeout` seconds."""
    try:
        wait_until_sync(lambda: not pid_alive(pid), timeout, f"process {pid} to exit")
    except AssertionError:
        return False
    return True
