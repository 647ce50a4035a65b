"""A plugin for the directory discovery path: `file_age`, how old is a marker file?

Batch jobs often touch a marker file when they finish (`/var/lib/backup/last-success`). This
plugin reports how long ago such a file was modified and is ok while that is at most
`max_age_s` ago. Diagnostic, low risk, read-only: it only `stat`s the file, never opens it.

Put this file in the configured `plugins.directory`; the registry imports every `*.py` there and
calls `create_plugin(settings)` with `plugins.settings.<module stem>`, here `disk_marker`::

    plugins:
      directory: /etc/larkops/plugins
      settings:
        disk_marker: {base_dir: /var/lib/backup}

Parameters: `path` (relative to `base_dir`; absolute paths, `..`, `~` and control characters
are refused when validated; a path whose symbolic links lead outside `base_dir` is refused when
run), `max_age_s` (default one day, at most 366 days).

Result data: `path`, `age_s`, `modified` (ISO 8601, UTC), `size_bytes`, `max_age_s`, and
`error` when the file could not be checked.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from plugins.contract import PluginContext, PluginResult, PluginSpec

MAX_AGE_S = 366 * 86400


class Refused(Exception):
    """The file was not checked, on purpose (the message says why)."""


class FileAgeParams(BaseModel):
    """Parameters of `file_age`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(min_length=1, max_length=1024)
    max_age_s: int = Field(default=86400, ge=1, le=MAX_AGE_S)

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        if any(ord(ch) < 32 or ord(ch) == 127 or ch == "\\" for ch in value):
            raise ValueError("path must not contain control characters or backslashes")
        pure = PurePosixPath(value)
        if pure.is_absolute() or value.startswith("~"):
            raise ValueError("path must be relative to the base directory")
        if ".." in pure.parts:
            raise ValueError("path must not contain '..'")
        return value

    def policy_target(self) -> str:
        """Quotas count checks per file."""
        return f"file_age:{self.path}"


class FileAgePlugin:
    """Reports the age of one file under the configured base directory."""

    spec = PluginSpec(
        name="file_age",
        category="diagnostic",
        risk="low",
        params=FileAgeParams,
        timeout=10,
        idempotent=True,
        supports_dry_run=False,
        title_zh="文件时间检查",
        title_en="File age",
        description_zh="报告基础目录下某个标记文件距上次修改过了多久",
        description_en="Reports how long ago a marker file under the base directory was modified",
    )

    def __init__(self, base_dir: Path) -> None:
        self._base = base_dir.resolve()
        if not self._base.is_dir():
            raise ValueError(f"file_age: base_dir {base_dir} is not a directory")

    async def run(self, ctx: PluginContext, params: BaseModel) -> PluginResult:
        """Resolve the path (symbolic links included), refuse it outside the base, stat it."""
        if not isinstance(params, FileAgeParams):
            raise TypeError("file_age expects FileAgeParams")
        try:
            stat = await asyncio.to_thread(self._stat, params.path)
        except Refused as exc:
            return _failure(params, str(exc))
        except FileNotFoundError:
            return _failure(params, "no such file")
        except OSError as exc:
            return _failure(params, f"{type(exc).__name__}: {exc.strerror or exc}")
        age_s = max(0, round(time.time() - stat.st_mtime))
        modified = datetime.fromtimestamp(stat.st_mtime, UTC).isoformat(timespec="seconds")
        ok = age_s <= params.max_age_s
        summary = f"{params.path}: modified {_duration(age_s)} ago"
        if not ok:
            summary += f", older than {_duration(params.max_age_s)}"
        return PluginResult(
            ok=ok,
            summary=summary,
            data={
                "path": params.path,
                "age_s": age_s,
                "modified": modified,
                "size_bytes": stat.st_size,
                "max_age_s": params.max_age_s,
            },
            evidence=(f"{params.path}: {stat.st_size} bytes, modified {modified}",),
        )

    def _stat(self, relative: str) -> os.stat_result:
        resolved = (self._base / relative).resolve(strict=True)
        if not resolved.is_relative_to(self._base):
            raise Refused("refused: the path leads outside the base directory")
        return resolved.stat()


def create_plugin(settings: Mapping[str, Any]) -> FileAgePlugin:
    """The directory module's factory: `plugins.settings.disk_marker` needs `base_dir`."""
    unknown = set(settings) - {"base_dir"}
    if unknown:
        raise ValueError(f"file_age: unknown settings {', '.join(sorted(unknown))}")
    base_dir = settings.get("base_dir")
    if not isinstance(base_dir, str) or not base_dir:
        raise ValueError("file_age: settings need base_dir, a directory path")
    return FileAgePlugin(Path(base_dir))


def _duration(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def _failure(params: FileAgeParams, reason: str) -> PluginResult:
    return PluginResult(
        ok=False,
        summary=f"{params.path}: {reason}",
        data={"path": params.path, "age_s": None, "error": reason},
        evidence=(f"{params.path}: not checked: {reason}",),
    )
