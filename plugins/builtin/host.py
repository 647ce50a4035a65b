"""Host plugins: disks, memory, load, top processes and log tails of the machine the bot runs on.

All are diagnostic, low risk and read-only (psutil and plain files). Each one reports real
numbers in `data` and is ok=False when a threshold is crossed:

- `host_disk` (`path`, else every real mount): usage %, free bytes, inode % (os.statvfs);
  over `warn_percent` (default 90) on either is a problem.
- `host_memory`: total, available, used %, swap; over `warn_percent` (default 90).
- `host_load`: 1/5/15-minute load, per CPU and the CPU count; load1 per CPU over `warn_ratio`
  (default 2.0).
- `host_top` (`by` cpu|memory, `limit` default 10, at most 50): pid, name, user, cpu %, RSS and
  a shortened command line (argv[0]'s base name and the first 3 arguments, 80 characters each:
  command lines often carry secrets; the registry's redactor masks token shapes on top).
- `host_log_tail`: the last lines of a log file in a configured directory; see
  `plugins.builtin.logtail` (its parameters, what it refuses and why).

Settings (`plugins.settings.host`): `log_dirs`, the directories `host_log_tail` may read
(default [/var/log]; see `plugins.builtin.logtail`).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import psutil
from pydantic import BaseModel, ConfigDict, Field, field_validator

from plugins.contract import Plugin, PluginContext, PluginResult, PluginSpec

DATA_BUDGET = 7 * 1024
CPU_SAMPLE_S = 0.5
MAX_MOUNTS = 40


class HostParams(BaseModel):
    """Base of every host plugin's parameters (also `host_log_tail`'s, in logtail)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def policy_scope(self) -> dict[str, str]:
        """Every host plugin looks at the machine the bot runs on."""
        return {"host": socket.gethostname()}


class HostDiskParams(HostParams):
    """Parameters of `host_disk`."""

    path: str | None = Field(default=None, min_length=1, max_length=4096)
    warn_percent: float = Field(default=90.0, gt=0, le=100)

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        return None if value is None else clean_path(value)


class HostMemoryParams(HostParams):
    """Parameters of `host_memory`."""

    warn_percent: float = Field(default=90.0, gt=0, le=100)


class HostLoadParams(HostParams):
    """Parameters of `host_load`."""

    warn_ratio: float = Field(default=2.0, gt=0, le=1000)


class HostTopParams(HostParams):
    """Parameters of `host_top`."""

    by: Literal["cpu", "memory"] = "cpu"
    limit: int = Field(default=10, ge=1, le=50)


def clean_path(value: str) -> str:
    """`value` if it is absolute, without NUL, control characters or `..`; else ValueError."""
    if "\x00" in value:
        raise ValueError("path must not contain NUL bytes")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError("path must not contain control characters")
    if not value.startswith("/"):
        raise ValueError("path must be absolute")
    if ".." in value.split("/"):
        raise ValueError("path must not contain '..' components")
    return value


def host_spec(
    name: str, params: type[BaseModel], zh: tuple[str, str], en: tuple[str, str]
) -> PluginSpec:
    """The spec of a host plugin: diagnostic, low risk, idempotent, 15 s."""
    return PluginSpec(
        name=name,
        category="diagnostic",
        risk="low",
        params=params,
        timeout=15,
        idempotent=True,
        supports_dry_run=False,
        title_zh=zh[0],
        title_en=en[0],
        description_zh=zh[1],
        description_en=en[1],
    )


class HostDiskPlugin:
    """Disk space and inodes of one path or of every real mount."""

    spec = host_spec(
        "host_disk",
        HostDiskParams,
        ("磁盘空间", "本机磁盘使用率、剩余空间和 inode 使用率"),
        ("Disk space", "Disk usage, free space and inode usage of this machine"),
    )

    async def run(self, ctx: PluginContext, params: BaseModel) -> PluginResult:
        """statvfs every mount (in a thread: a hung network mount must not block the loop)."""
        assert isinstance(params, HostDiskParams)
        if params.path is not None:
            paths = [params.path]
        else:
            parts = await asyncio.to_thread(psutil.disk_partitions, False)
            paths = list(dict.fromkeys(p.mountpoint for p in parts))[:MAX_MOUNTS] or ["/"]
        try:
            rows = await asyncio.to_thread(lambda: [_disk_row(p) for p in paths])
        except OSError as exc:
            return PluginResult(
                ok=False,
                summary=f"cannot stat {exc.filename}: {exc.strerror}",
                code="host_unreadable",
                values={"path": str(exc.filename), "reason": str(exc.strerror)},
            )
        full = [
            r
            for r in rows
            if r["percent"] > params.warn_percent
            or (r["inodes_percent"] or 0) > params.warn_percent
        ]
        evidence = [
            f"{r['path']}: {r['percent']:g}% used, {format_size(r['free_bytes'])} free, "
            f"inodes {r['inodes_percent'] if r['inodes_percent'] is not None else 'n/a'}%"
            for r in rows
        ]
        if full:
            names = ", ".join(r["path"] for r in full)
            summary = f"over {params.warn_percent:g}% (space or inodes): {names}"
            code, values = "disk_full", {"warn": f"{params.warn_percent:g}", "paths": names}
        else:
            worst = max(rows, key=lambda r: r["percent"])
            summary = (
                f"{len(rows)} mount(s) below {params.warn_percent:g}%; "
                f"fullest {worst['path']} at {worst['percent']:g}%"
            )
            code = "disk_ok"
            values = {
                "count": str(len(rows)),
                "warn": f"{params.warn_percent:g}",
                "path": str(worst["path"]),
                "percent": f"{worst['percent']:g}",
            }
        return PluginResult(
            code=code,
            values=values,
            ok=not full,
            summary=summary,
            data={"mounts": _fit(rows), "warn_percent": params.warn_percent},
            evidence=tuple(evidence),
        )


def _disk_row(path: str) -> dict[str, Any]:
    usage = psutil.disk_usage(path)
    vfs = os.statvfs(path)
    inodes = round((vfs.f_files - vfs.f_ffree) / vfs.f_files * 100, 1) if vfs.f_files else None
    return {
        "path": path,
        "total_bytes": usage.total,
        "used_bytes": usage.used,
        "free_bytes": usage.free,
        "percent": usage.percent,
        "inodes_percent": inodes,
    }


class HostMemoryPlugin:
    """Memory and swap use."""

    spec = host_spec(
        "host_memory",
        HostMemoryParams,
        ("内存", "本机内存和 swap 使用情况"),
        ("Memory", "Memory and swap use of this machine"),
    )

    async def run(self, ctx: PluginContext, params: BaseModel) -> PluginResult:
        """One psutil sample."""
        assert isinstance(params, HostMemoryParams)
        mem = psutil.virtual_memory()
        swap = psutil.swap_memory()
        data = {
            "total_bytes": mem.total,
            "available_bytes": mem.available,
            "used_bytes": mem.used,
            "percent": mem.percent,
            "swap_total_bytes": swap.total,
            "swap_used_bytes": swap.used,
            "swap_percent": swap.percent,
            "warn_percent": params.warn_percent,
        }
        line = (
            f"memory {mem.percent:g}% used, {format_size(mem.available)} of "
            f"{format_size(mem.total)} available; swap {swap.percent:g}% of "
            f"{format_size(swap.total)}"
        )
        high = mem.percent > params.warn_percent
        summary = f"{line} (over {params.warn_percent:g}%)" if high else line
        values = {
            "percent": f"{mem.percent:g}",
            "available": format_size(mem.available),
            "total": format_size(mem.total),
            "swap": f"{swap.percent:g}",
            "swap_total": format_size(swap.total),
            "warn": f"{params.warn_percent:g}",
        }
        return PluginResult(
            ok=not high,
            summary=summary,
            data=data,
            evidence=(line,),
            code="memory_high" if high else "memory_ok",
            values=values,
        )


class HostLoadPlugin:
    """Load averages, normalised per CPU."""

    spec = host_spec(
        "host_load",
        HostLoadParams,
        ("系统负载", "本机 1/5/15 分钟负载及每 CPU 负载"),
        ("Load average", "1/5/15-minute load of this machine, also per CPU"),
    )

    async def run(self, ctx: PluginContext, params: BaseModel) -> PluginResult:
        """os.getloadavg and the logical CPU count."""
        assert isinstance(params, HostLoadParams)
        loads = os.getloadavg()
        cpus = psutil.cpu_count(logical=True) or os.cpu_count() or 1
        per_cpu = [round(value / cpus, 3) for value in loads]
        data = {
            "load1": loads[0],
            "load5": loads[1],
            "load15": loads[2],
            "cpus": cpus,
            "per_cpu": per_cpu,
            "ratio": per_cpu[0],
            "warn_ratio": params.warn_ratio,
        }
        line = (
            f"load {loads[0]:.2f} {loads[1]:.2f} {loads[2]:.2f} on {cpus} CPU(s); "
            f"{per_cpu[0]:.2f} per CPU"
        )
        high = loads[0] / cpus > params.warn_ratio
        summary = f"{line} (over {params.warn_ratio:g} per CPU)" if high else line
        values = {
            "loads": " ".join(f"{value:.2f}" for value in loads),
            "cpus": str(cpus),
            "ratio": f"{per_cpu[0]:.2f}",
            "warn": f"{params.warn_ratio:g}",
        }
        return PluginResult(
            ok=not high,
            summary=summary,
            data=data,
            evidence=(line,),
            code="load_high" if high else "load_ok",
            values=values,
        )


class HostTopPlugin:
    """The busiest processes by CPU (sampled over half a second) or by resident memory."""

    spec = host_spec(
        "host_top",
        HostTopParams,
        ("进程排行", "按 CPU 或内存列出本机最忙的进程"),
        ("Top processes", "The busiest processes of this machine by CPU or memory"),
    )

    async def run(self, ctx: PluginContext, params: BaseModel) -> PluginResult:
        """Sample every process twice (for CPU %) and keep the top `limit`."""
        assert isinstance(params, HostTopParams)
        procs = await asyncio.to_thread(_prime_processes)
        await asyncio.sleep(CPU_SAMPLE_S)  # cpu % is measured between two samples
        rows = await asyncio.to_thread(_process_rows, procs)
        key = "cpu_percent" if params.by == "cpu" else "rss_bytes"
        rows.sort(key=lambda r: r[key], reverse=True)
        top = rows[: params.limit]
        evidence = [
            f"{r['pid']} {r['name']} ({r['user'] or '?'}): cpu {r['cpu_percent']:g}%, "
            f"rss {format_size(r['rss_bytes'])}: {r['cmdline']}"
            for r in top
        ]
        first = f"; top: {top[0]['name']} (pid {top[0]['pid']})" if top else ""
        values: dict[str, str] = {"count": str(len(rows))}
        if top:
            values |= {"name": str(top[0]["name"]), "pid": str(top[0]["pid"])}
        return PluginResult(
            code=f"top_{params.by}" if top else "top_none",
            values=values,
            ok=True,
            summary=f"{len(rows)} processes by {params.by}{first}",
            data={"by": params.by, "processes": _fit(top), "process_count": len(rows)},
            evidence=tuple(evidence[:10]),
            output="\n".join(evidence),
        )


def _prime_processes() -> list[psutil.Process]:
    procs = []
    for proc in psutil.process_iter():
        try:
            proc.cpu_percent(None)
        except psutil.Error:
            continue
        procs.append(proc)
    return procs


def _process_rows(procs: list[psutil.Process]) -> list[dict[str, Any]]:
    rows = []
    for proc in procs:
        try:
            with proc.oneshot():
                rows.append(
                    {
                        "pid": proc.pid,
                        "name": proc.name()[:80],
                        "user": _quiet(proc.username),
                        "cpu_percent": round(proc.cpu_percent(None), 1),
                        "rss_bytes": proc.memory_info().rss,
                        "cmdline": short_cmdline(_quiet(proc.cmdline) or []),
                    }
                )
        except psutil.Error:
            continue
    return rows


def _quiet(getter: Any) -> Any:
    try:
        return getter()
    except psutil.AccessDenied:
        return None


def short_cmdline(argv: Sequence[str], args: int = 3, width: int = 80) -> str:
    """argv[0]'s base name and the first `args` arguments, each cut to `width` characters."""
    if not argv:
        return ""
    kept = [os.path.basename(argv[0]), *argv[1 : 1 + args]]
    shown = [
        _printable(arg)[: width - 1] + "…" if len(arg) > width else _printable(arg) for arg in kept
    ]
    dropped = len(argv) - len(kept)
    return " ".join(shown) + (f" … (+{dropped} args)" if dropped > 0 else "")


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def _fit(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """As many rows as fit the data budget (the registry drops data larger than its cap)."""
    kept = list(rows)
    while kept and len(json.dumps(kept, default=str)) > DATA_BUDGET:
        kept.pop()
    return kept


def format_size(count: float) -> str:
    """A byte count for people: `512 B`, `1.5 MiB`."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


def create_plugins(settings: Mapping[str, Any]) -> list[Plugin]:
    """The five host plugins from `plugins.settings.host` (`log_dirs`: absolute directories)."""
    # Imported here: logtail builds on this module's parameter base and spec.
    from plugins.builtin.logtail import HostLogTailPlugin

    unknown = set(settings) - {"log_dirs"}
    if unknown:
        raise ValueError(f"host: unknown settings {', '.join(sorted(map(str, unknown)))}")
    return [
        HostDiskPlugin(),
        HostMemoryPlugin(),
        HostLoadPlugin(),
        HostTopPlugin(),
        HostLogTailPlugin.from_settings(settings),
    ]
