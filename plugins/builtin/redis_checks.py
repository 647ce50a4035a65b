"""Redis diagnostics (low risk, read-only): `redis_info`, `redis_slowlog`, `redis_memory`.

Parameters never carry a URL: every plugin takes an optional `target`, the name of a
configured server (the default target when omitted; see `plugins.builtin.targets`). Each run
opens its own client (`client_name=larkops`, connect and socket timeouts, no retries) and
closes it afterwards. Results name the target, never the URL.

- `redis_info` — `section` (optional; one of server, clients, memory, persistence, stats,
  replication, cpu, keyspace): that INFO section as data; without it a summary of key facts:
  version, uptime, connected clients, used memory, maxmemory and policy, evicted keys, hit
  ratio, role, RDB and AOF status. ok=False when the last RDB save or AOF write failed.
- `redis_slowlog` — `count` (default 10, at most 128): the latest SLOWLOG entries: id, time,
  duration (µs), client address and name, and the command: its name and first argument
  (usually the key), each cut to 100 characters; later arguments (values, which may be
  private) are replaced by `… (N more args)`. ok unless the command fails.
- `redis_memory` — `warn_ratio` (default 0.9): used memory vs `maxmemory`, peak, RSS,
  fragmentation ratio, evicted keys, per-database key and expiry counts (INFO keyspace) and the
  `MEMORY DOCTOR` text when the server allows it. ok=False when maxmemory is set and used
  memory is above `warn_ratio` of it. Key sizes and types are NOT reported: finding big keys
  needs a SCAN of the whole keyspace, which this plugin never does on a server under stress
  (run `redis-cli --bigkeys` off-peak instead).

No remediation plugins: what would fix a Redis incident (FLUSHDB, DEL, CLIENT KILL, CONFIG SET,
failover) is destructive or global, cannot be dry-run or verified meaningfully, and usually
belongs to the owner of the data. Operators who want one can configure a `command` template.

Quota keys (`policy_target()`): `redis:<target>:<check>`. Scope (`policy_scope()`):
`{"target", "host"}`.

Settings (`plugins.settings.redis`)::

    redis:
      targets:
        cache: {url: "redis://default:secret@cache1:6379/0"}
        queue: {url: "rediss://queue1:6380/0"}
      default: cache
      timeout_s: 5        # optional: connect and socket timeout

Usage::

    for plugin in create_plugins(config["plugins"]["settings"].get("redis", {})):
        registry.register(plugin)
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal, cast, get_args
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, Field

from plugins.builtin.targets import (
    TargetParams,
    Targets,
    bind_hosts,
    parse_targets,
    target_hosts,
)
from plugins.contract import Plugin, PluginContext, PluginResult, PluginSpec

if TYPE_CHECKING:
    # redis-py is imported by a run, not with the plugin: 7 MB and 45 ms at every start of a bot
    # that has no Redis target configured (issue 22)
    import redis.asyncio as aioredis

SETTINGS_KEYS = frozenset({"targets", "default", "timeout_s"})
ARG_LIMIT = 100
KEPT_ARGS = 2
DOCTOR_LIMIT = 2000
ERROR_LIMIT = 300

Section = Literal[
    "server", "clients", "memory", "persistence", "stats", "replication", "cpu", "keyspace"
]
SECTIONS: tuple[str, ...] = get_args(Section)


def url_host(url: str) -> str:
    """The host of a `redis://` / `rediss://` URL; ValueError when it is not one."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError("url cannot be parsed") from None
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError("url must be a redis:// or rediss:// URL")
    if not host:
        raise ValueError("url names no host")
    return host


def url_secrets(url: str) -> list[str]:
    """The password in a URL, raw and decoded, to scrub from error messages."""
    userinfo = urlsplit(url).netloc.rpartition("@")[0]
    raw = userinfo.partition(":")[2] if ":" in userinfo else ""
    return [s for s in (raw, unquote(raw)) if s]


class RedisParams(TargetParams):
    """Base of every Redis parameter model: the optional `target` (a configured name)."""

    check: ClassVar[str] = "redis"

    def policy_target(self) -> str:
        """Quotas count runs per target and check."""
        return f"redis:{self.target_name()}:{type(self).check}"


class InfoParams(RedisParams):
    """Parameters of `redis_info`."""

    check: ClassVar[str] = "info"
    section: Section | None = None


class SlowlogParams(RedisParams):
    """Parameters of `redis_slowlog`."""

    check: ClassVar[str] = "slowlog"
    count: int = Field(default=10, ge=1, le=128)


class MemoryParams(RedisParams):
    """Parameters of `redis_memory`."""

    check: ClassVar[str] = "memory"
    warn_ratio: float = Field(default=0.9, gt=0, le=1)


def target_host(body: Mapping[str, Any]) -> str:
    """The host of a configured target (its `url`)."""
    return url_host(str(body["url"]))


class RedisPlugin:
    """Base of the Redis plugins: a per-instance spec, one client per run."""

    name: ClassVar[str]
    params_model: ClassVar[type[RedisParams]]
    title_zh: ClassVar[str]
    title_en: ClassVar[str]
    description_zh: ClassVar[str]
    description_en: ClassVar[str]

    def __init__(self, targets: Targets, timeout: float = 5.0) -> None:
        self.targets = targets
        self.timeout = timeout
        self.spec = PluginSpec(
            name=self.name,
            category="diagnostic",
            risk="low",
            params=bind_hosts(self.params_model, targets, target_host),
            timeout=timeout * 3 + 2,  # connect + a couple of commands; socket timeouts first
            idempotent=True,
            supports_dry_run=False,
            title_zh=self.title_zh,
            title_en=self.title_en,
            description_zh=self.description_zh,
            description_en=self.description_en,
        )

    async def check(self, client: aioredis.Redis, target: str, params: Any) -> PluginResult:
        """The plugin's work with an open client."""
        raise NotImplementedError

    async def run(self, ctx: PluginContext, params: BaseModel) -> PluginResult:
        """Open a client for the target, do the work, always close it."""
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import RedisError

        assert isinstance(params, self.params_model)
        target = params.target_name()
        url = str(self.targets.get(target)["url"])
        # no socket timeout: redis-py then sends every command under `asyncio.wait_for`, which
        # on Python 3.11 returns normally when its caller is cancelled as the send completes
        # (cpython gh-86296; storage/coordination/redis_backend.py met it). The check is
        # bounded as a whole with `asyncio.timeout` instead
        client = aioredis.Redis.from_url(
            url,
            socket_timeout=None,
            socket_connect_timeout=self.timeout,
            retry=Retry(NoBackoff(), 0),
            client_name="larkops",
            decode_responses=True,
            encoding_errors="replace",
        )
        try:
            async with asyncio.timeout(self.timeout * 2):  # connect + a couple of commands
                return await self.check(client, target, params)
        except (RedisError, OSError) as exc:  # TimeoutError included
            detail = str(exc) or f"no answer within {self.timeout * 2:g}s"
            reason = _scrub(f"{type(exc).__name__}: {detail}", url)
            return PluginResult(
                code="redis_failed",
                values={"plugin": self.name, "target": target, "reason": reason},
                ok=False,
                summary=f"{self.name} on {target}: {reason}",
                data={"target": target, "error": reason},
            )
        finally:
            await client.aclose()


class RedisInfo(RedisPlugin):
    """INFO: one section, or a summary of the facts that matter in an incident."""

    name = "redis_info"
    params_model = InfoParams
    title_zh = "Redis 概况"
    title_en = "Redis info"
    description_zh = "读取 INFO：版本、连接数、内存、淘汰、命中率、主从角色、持久化状态"
    description_en = "Reads INFO: version, clients, memory, evictions, hit ratio, role, persistence"

    async def check(self, client: aioredis.Redis, target: str, params: Any) -> PluginResult:
        assert isinstance(params, InfoParams)
        if params.section is not None:
            info = await client.info(params.section)
            section = {str(k): v for k, v in list(info.items())[:100]}
            lines = [f"{k}:{_flat(v)}" for k, v in section.items()]
            summary = f"{target}: INFO {params.section} ({len(section)} fields)"
            return PluginResult(
                code="redis_info_section",
                values={"target": target, "section": params.section, "count": str(len(section))},
                ok=True,
                summary=summary,
                data={"target": target, "section": params.section, "info": section},
                evidence=(summary,),
                output="\n".join(lines),
            )
        info = await client.info()
        facts = summary_facts(info)
        problems = []
        if facts["rdb_last_bgsave_status"] not in (None, "ok"):
            problems.append(f"last RDB save {facts['rdb_last_bgsave_status']}")
        if facts["aof_enabled"] and facts["aof_last_write_status"] not in (None, "ok"):
            problems.append(f"last AOF write {facts['aof_last_write_status']}")
        hit = "n/a" if facts["hit_ratio"] is None else f"{facts['hit_ratio']:.1%}"
        summary = (
            f"{target}: Redis {facts['version']} {facts['role']}, "
            f"{facts['connected_clients']} clients, {facts['used_memory_human']} used "
            f"(max {facts['maxmemory_human']}), {facts['evicted_keys']} evicted, hit ratio {hit}"
        )
        if problems:
            summary += "; " + "; ".join(problems)
        values = {
            "target": target,
            "version": str(facts["version"]),
            "role": str(facts["role"]),
            "clients": str(facts["connected_clients"]),
            "used": str(facts["used_memory_human"]),
            "max": str(facts["maxmemory_human"]) if facts["maxmemory"] else "∞",
            "evicted": str(facts["evicted_keys"]),
            "hit": "—" if facts["hit_ratio"] is None else hit,
            "problems": "; ".join(problems),
        }
        return PluginResult(
            code="redis_info_problem" if problems else "redis_info",
            values=values,
            ok=not problems,
            summary=summary,
            data={"target": target, **facts},
            evidence=(summary, *problems),
        )


def summary_facts(info: Mapping[str, Any]) -> dict[str, Any]:
    """The handful of INFO fields worth showing first."""
    hits, misses = int(info.get("keyspace_hits", 0)), int(info.get("keyspace_misses", 0))
    maxmemory = int(info.get("maxmemory", 0))
    return {
        "version": info.get("redis_version"),
        "uptime_seconds": info.get("uptime_in_seconds"),
        "role": info.get("role"),
        "connected_replicas": info.get("connected_slaves"),
        "connected_clients": info.get("connected_clients"),
        "blocked_clients": info.get("blocked_clients"),
        "used_memory_human": info.get("used_memory_human"),
        "maxmemory": maxmemory,
        "maxmemory_human": info.get("maxmemory_human") if maxmemory else "unlimited",
        "maxmemory_policy": info.get("maxmemory_policy"),
        "evicted_keys": info.get("evicted_keys"),
        "ops_per_sec": info.get("instantaneous_ops_per_sec"),
        "hit_ratio": round(hits / (hits + misses), 4) if hits + misses else None,
        "rdb_last_bgsave_status": info.get("rdb_last_bgsave_status"),
        "rdb_changes_since_last_save": info.get("rdb_changes_since_last_save"),
        "aof_enabled": bool(info.get("aof_enabled")),
        "aof_last_write_status": info.get("aof_last_write_status"),
    }


class RedisSlowlog(RedisPlugin):
    """The latest SLOWLOG entries, with argument values hidden."""

    name = "redis_slowlog"
    params_model = SlowlogParams
    title_zh = "Redis 慢日志"
    title_en = "Redis slow log"
    description_zh = "读取最近的 SLOWLOG 记录（命令名和键，参数值隐藏）"
    description_en = "Reads the latest SLOWLOG entries (command and key; values hidden)"

    async def check(self, client: aioredis.Redis, target: str, params: Any) -> PluginResult:
        assert isinstance(params, SlowlogParams)
        raw = await _command(client, "SLOWLOG", "GET", params.count)
        entries = [slowlog_entry(item) for item in raw or []]
        evidence = [
            f"#{e['id']} {e['time']} {e['duration_us']} µs {' '.join(e['command'])} "
            f"from {e['client_addr']}"
            for e in entries
        ]
        if entries:
            slowest = max(entries, key=lambda e: int(e["duration_us"]))
            summary = (
                f"{target}: {len(entries)} slow-log {'entry' if len(entries) == 1 else 'entries'}; "
                f"slowest {slowest['duration_us']} µs: " + " ".join(slowest["command"])
            )
            code = "redis_slowlog"
            values = {
                "target": target,
                "count": str(len(entries)),
                "us": str(slowest["duration_us"]),
                "command": " ".join(slowest["command"]),
            }
        else:
            summary = f"{target}: the slow log is empty"
            code, values = "redis_slowlog_empty", {"target": target}
        return PluginResult(
            code=code,
            values=values,
            ok=True,
            summary=summary,
            data={"target": target, "entries": entries},
            evidence=(summary, *evidence),
        )


def slowlog_entry(item: Any) -> dict[str, Any]:
    """One raw SLOWLOG GET entry as data: values beyond the first args hidden, args cut."""
    args = [str(arg) for arg in item[3]] if len(item) > 3 else []
    command = [_cut(arg) for arg in args[:KEPT_ARGS]]
    if len(args) > KEPT_ARGS:
        command.append(f"… ({len(args) - KEPT_ARGS} more args)")
    moment = dt.datetime.fromtimestamp(int(item[1]), tz=dt.UTC)
    return {
        "id": int(item[0]),
        "time": moment.isoformat(timespec="seconds"),
        "duration_us": int(item[2]),
        "command": command,
        "client_addr": str(item[4]) if len(item) > 4 else "",
        "client_name": str(item[5]) if len(item) > 5 else "",
    }


class RedisMemory(RedisPlugin):
    """Memory use vs maxmemory, fragmentation, evictions, key counts, MEMORY DOCTOR."""

    name = "redis_memory"
    params_model = MemoryParams
    title_zh = "Redis 内存"
    title_en = "Redis memory"
    description_zh = "内存用量与上限、碎片率、峰值、淘汰数、各库键数和 MEMORY DOCTOR 建议"
    description_en = "Memory vs maxmemory, fragmentation, peak, evictions, key counts, doctor"

    async def check(self, client: aioredis.Redis, target: str, params: Any) -> PluginResult:
        from redis.exceptions import ResponseError

        assert isinstance(params, MemoryParams)
        memory = await client.info("memory")
        stats = await client.info("stats")
        keyspace = await client.info("keyspace")
        try:
            doctor = str(await _command(client, "MEMORY", "DOCTOR"))[:DOCTOR_LIMIT]
        except ResponseError as exc:
            doctor = f"MEMORY DOCTOR unavailable: {exc}"[:ERROR_LIMIT]
        used, maxmemory = int(memory.get("used_memory", 0)), int(memory.get("maxmemory", 0))
        ratio = round(used / maxmemory, 3) if maxmemory else None
        ok = ratio is None or ratio <= params.warn_ratio
        databases = {str(db): dict(v) for db, v in keyspace.items() if isinstance(v, dict)}
        data = {
            "target": target,
            "used_memory": used,
            "used_memory_human": memory.get("used_memory_human"),
            "used_memory_rss_human": memory.get("used_memory_rss_human"),
            "used_memory_peak_human": memory.get("used_memory_peak_human"),
            "maxmemory": maxmemory,
            "maxmemory_human": memory.get("maxmemory_human") if maxmemory else "unlimited",
            "maxmemory_policy": memory.get("maxmemory_policy"),
            "used_ratio": ratio,
            "fragmentation_ratio": memory.get("mem_fragmentation_ratio"),
            "evicted_keys": stats.get("evicted_keys"),
            "keyspace": databases,
            "doctor": doctor,
        }
        limit = "no maxmemory" if ratio is None else f"{ratio:.0%} of {data['maxmemory_human']}"
        summary = (
            f"{target}: {data['used_memory_human']} used ({limit}), peak "
            f"{data['used_memory_peak_human']}, fragmentation {data['fragmentation_ratio']}, "
            f"{data['evicted_keys']} evicted"
        )
        if not ok:
            summary += f"; above the warning ratio {params.warn_ratio:.0%}"
        keys = ", ".join(f"{db}: {v.get('keys')} keys" for db, v in databases.items())
        values = {
            "target": target,
            "used": str(data["used_memory_human"]),
            "max": str(data["maxmemory_human"]),
            "ratio": "" if ratio is None else f"{ratio:.0%}",
            "peak": str(data["used_memory_peak_human"]),
            "fragmentation": str(data["fragmentation_ratio"]),
            "evicted": str(data["evicted_keys"]),
            "warn": f"{params.warn_ratio:.0%}",
        }
        code = "redis_memory" if ratio is not None else "redis_memory_unlimited"
        return PluginResult(
            code=code if ok else "redis_memory_high",
            values=values,
            ok=ok,
            summary=summary,
            data=data,
            evidence=(summary, f"keyspace: {keys or 'empty'}"),
            output=doctor,
        )


PLUGIN_CLASSES: tuple[type[RedisPlugin], ...] = (RedisInfo, RedisSlowlog, RedisMemory)
NAMES = tuple(cls.name for cls in PLUGIN_CLASSES)


def create_plugins(settings: Mapping[str, Any]) -> list[Plugin]:
    """The Redis plugins for `plugins.settings.redis`; [] when no target is configured.

    ValueError (naming the problem, never a URL) for bad settings.
    """
    if not isinstance(settings, Mapping):
        raise ValueError("redis: settings must be a mapping")
    unknown = set(settings) - SETTINGS_KEYS
    if unknown:
        raise ValueError(f"redis: unknown settings {', '.join(sorted(map(str, unknown)))}")
    targets = parse_targets("redis", settings, fields={"url": str}, required=frozenset({"url"}))
    target_hosts(targets, target_host)  # every URL names a host
    timeout = settings.get("timeout_s", 5.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 60:
        raise ValueError("redis: timeout_s must be a number of seconds in (0, 60]")
    if not targets.entries:
        return []
    return [cls(targets, float(timeout)) for cls in PLUGIN_CLASSES]


async def _command(client: aioredis.Redis, *args: str | int) -> Any:
    """A raw command, without redis-py's reply parsing (SLOWLOG args keep their boundaries)."""
    send = cast(Callable[..., Awaitable[Any]], client.execute_command)
    return await send(*args)


def _flat(value: Any) -> str:
    """INFO values as Redis prints them (`keys=1,expires=0` for a keyspace line)."""
    if isinstance(value, Mapping):
        return ",".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def _cut(text: str) -> str:
    return text if len(text) <= ARG_LIMIT else text[: ARG_LIMIT - 1] + "…"


def _scrub(text: str, url: str) -> str:
    for secret in sorted(url_secrets(url), key=len, reverse=True):
        text = text.replace(secret, "***")
    text = " ".join(text.split())
    return text if len(text) <= ERROR_LIMIT else text[: ERROR_LIMIT - 1] + "…"


__all__ = ["NAMES", "PLUGIN_CLASSES", "create_plugins"]
