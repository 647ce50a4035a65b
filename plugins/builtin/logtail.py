"""`host_log_tail`: the last lines of a log file on the machine the bot runs on.

Diagnostic, low risk, read-only; built by `plugins.builtin.host.create_plugins` with the other
host plugins.

Parameters: `path` (absolute, no `..` components, no NUL or control characters), `lines`
(default 100, at most 2000), and at most one filter: `contains` (a plain substring) or
`pattern` (a regular expression), each at most 200 characters. The result's `output` holds the
newest matching lines that fit 7 KiB (older ones are counted in `data.lines_hidden`); `data`
says which file was read (`resolved`), how much of it and how many lines were scanned.

What is refused, and why:

- a file outside the configured log directories: the path is resolved (symlinks included)
  first, so a link inside a log directory cannot lead to `/etc/shadow`;
- anything but a regular file (directories, FIFOs, sockets, devices): reading a FIFO or a
  device can block forever or never end; a file swapped for another between the check and
  the open is refused too;
- patterns with nested quantifiers (`(a+)+`), repeated alternations (`(a|b)*`),
  back-references or verbose mode: they can take exponential time on one crafted line.

Only the last 1 MiB of a file is read, only the first 4096 characters of a line are matched
(1000 shown), and the scan stops after 8 seconds, so a huge or hostile log cannot stall the bot.

Settings (`plugins.settings.host`)::

    host:
      log_dirs: [/var/log, /srv/app/logs]      # absolute; default [/var/log]

Usage::

    plugin = HostLogTailPlugin.from_settings({"log_dirs": ["/srv/app/logs"]})
    params = HostLogTailParams(path="/srv/app/logs/app.log", lines=50, contains="ERROR")
    result = await plugin.run(ctx, params)
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
import time
from collections.abc import Mapping, Sequence
from typing import Any, Self

from pydantic import BaseModel, Field, field_validator, model_validator

from plugins.builtin.host import HostParams, clean_path, format_size, host_spec
from plugins.contract import PluginContext, PluginResult

DEFAULT_LOG_DIRS = ("/var/log",)
TAIL_BYTES = 1024 * 1024
LINE_EXAMINE = 4096
LINE_SHOW = 1000
OUTPUT_BUDGET = 7 * 1024
SCAN_SECONDS = 8.0
_BACKREF = re.compile(r"\\[1-9]|\(\?P=")
_BOUNDED = re.compile(r"\{(\d*)(,?)(\d*)\}")
_FILE_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


class HostLogTailParams(HostParams):
    """Parameters of `host_log_tail`."""

    path: str = Field(min_length=1, max_length=4096)
    lines: int = Field(default=100, ge=1, le=2000)
    contains: str | None = Field(default=None, min_length=1, max_length=200)
    pattern: str | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        return clean_path(value)

    @field_validator("pattern")
    @classmethod
    def _safe_pattern(cls, value: str | None) -> str | None:
        problem = None if value is None else pattern_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _one_filter(self) -> Self:
        if self.contains is not None and self.pattern is not None:
            raise ValueError("give either contains or pattern, not both")
        return self

    def policy_target(self) -> str:
        """Quotas count tails per file."""
        return f"host_log_tail:{self.path}"


def pattern_problem(pattern: str) -> str | None:
    """Why a log filter regex is refused (None when it compiles and cannot blow up)."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        return f"not a valid regular expression: {exc.msg}"
    if compiled.flags & re.VERBOSE:
        return "verbose mode (?x) is not allowed in patterns"
    if _BACKREF.search(pattern):
        return "back-references are not allowed in patterns"
    stack = [[False, False]]  # per open group: contains a repetition, contains an alternation
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "[":
            i = _class_end(pattern, i)
            continue
        if ch == "(":
            stack.append([False, False])
        elif ch == "|":
            stack[-1][1] = True
        elif ch == ")" and len(stack) > 1:
            repeats, branches = stack.pop()
            quantified = _repeats(pattern, i + 1)
            if quantified and (repeats or branches):
                return (
                    "nested quantifiers like (a+)+ or a repeated alternation like (a|b)* "
                    "can take exponential time; simplify the pattern"
                )
            stack[-1][0] = stack[-1][0] or repeats or quantified
            stack[-1][1] = stack[-1][1] or branches
        elif _repeats(pattern, i):
            stack[-1][0] = True
        i += 1
    return None


def _repeats(pattern: str, i: int) -> bool:
    """A quantifier that allows more than one repetition starts at `i`."""
    if i >= len(pattern):
        return False
    if pattern[i] in "*+":
        return True
    bounded = _BOUNDED.match(pattern, i) if pattern[i] == "{" else None
    if bounded is None:
        return False
    low, comma, high = bounded.groups()
    return bool(comma and not high) or int(high or low or "0") > 1


def _class_end(pattern: str, i: int) -> int:
    """Index just after the character class that starts at `i`."""
    j = i + 1
    if j < len(pattern) and pattern[j] == "^":
        j += 1
    if j < len(pattern) and pattern[j] == "]":
        j += 1
    while j < len(pattern) and pattern[j] != "]":
        j += 2 if pattern[j] == "\\" else 1
    return j + 1


class HostLogTailPlugin:
    """The last lines (optionally filtered) of a log file inside the configured directories."""

    spec = host_spec(
        "host_log_tail",
        HostLogTailParams,
        ("查看日志", "读取允许目录中日志文件的最后若干行，可按字符串或正则过滤"),
        ("Log tail", "The last lines of a log file in an allowed directory, optionally filtered"),
    )

    def __init__(self, log_dirs: Sequence[str] = DEFAULT_LOG_DIRS) -> None:
        self.log_dirs = tuple(dict.fromkeys(os.path.realpath(d) for d in log_dirs))

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> HostLogTailPlugin:
        """Build from `plugins.settings.host` (`log_dirs`); ValueError for a bad entry."""
        dirs = settings.get("log_dirs", list(DEFAULT_LOG_DIRS))
        if isinstance(dirs, str) or not isinstance(dirs, Sequence) or not dirs:
            raise ValueError("host: log_dirs must be a non-empty list of absolute directories")
        for entry in dirs:
            if not isinstance(entry, str) or not entry.startswith("/") or "\x00" in entry:
                raise ValueError(f"host: log_dirs entry {entry!r} must be an absolute path")
        return cls(dirs)

    async def run(self, ctx: PluginContext, params: BaseModel) -> PluginResult:
        """Resolve, check, read the end of the file and filter (in a worker thread)."""
        assert isinstance(params, HostLogTailParams)
        return await asyncio.to_thread(tail_log, self.log_dirs, params)


def tail_log(log_dirs: Sequence[str], params: HostLogTailParams) -> PluginResult:
    """Blocking body of `host_log_tail`."""
    real = os.path.realpath(params.path)
    if not any(real == d or real.startswith(d.rstrip("/") + "/") for d in log_dirs):
        where = params.path if real == params.path else f"{params.path} (resolves to {real})"
        allowed = ", ".join(log_dirs)
        return _refuse(params.path, f"{where} is outside the allowed log directories ({allowed})")
    try:
        before = os.stat(real)
        if not stat.S_ISREG(before.st_mode):
            kind = _FILE_KINDS.get(stat.S_IFMT(before.st_mode), "not a regular file")
            return _refuse(params.path, f"{params.path} is {kind}; only regular files are read")
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        return _refuse(params.path, f"cannot open {params.path}: {exc.strerror}")
    try:
        after = os.fstat(fd)
        if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
            return _refuse(params.path, f"{params.path} changed while it was opened; try again")
        size = after.st_size
        start = max(0, size - TAIL_BYTES)
        raw = _read_range(fd, start, size)
    finally:
        os.close(fd)
    if start > 0:
        raw = raw[raw.find(b"\n") + 1 :]  # drop the partial first line
    lines = raw.decode("utf-8", errors="replace").splitlines()
    matched, scanned, stopped = _last_matching(lines, params)
    label = _filter_label(params)
    text, hidden = _newest_fitting(matched)
    note = f" (scan stopped after {scanned} lines: time limit)" if stopped else ""
    if matched:
        summary = f"{params.path}: last {len(matched)} line(s){label}{note}"
    else:
        summary = f"{params.path}: no lines{label} among the last {scanned}{note}"
    data = {
        "path": params.path,
        "resolved": real,
        "size_bytes": size,
        "bytes_read": size - start,
        "lines_scanned": scanned,
        "lines_returned": len(matched),
        "lines_hidden": hidden,
        "partial_read": start > 0,
    }
    read = f"read the last {format_size(size - start)} of {format_size(size)}"
    evidence = [f"{read}; {scanned} lines scanned", *(line[:300] for line in matched[-5:])]
    code = "log_lines" if matched else "log_none"
    if params.contains is not None:
        code += "_containing"
    elif params.pattern is not None:
        code += "_matching"
    values = {
        "path": params.path,
        "count": str(len(matched)),
        "scanned": str(scanned),
        "text": str(params.contains if params.contains is not None else params.pattern),
    }
    return PluginResult(
        ok=True,
        summary=summary,
        data=data,
        evidence=tuple(evidence),
        output=text,
        code=code + ("_stopped" if stopped else ""),
        values=values,
    )


def _read_range(fd: int, start: int, end: int) -> bytes:
    chunks = []
    pos = start
    while pos < end:
        chunk = os.pread(fd, min(end - pos, 256 * 1024), pos)
        if not chunk:
            break
        chunks.append(chunk)
        pos += len(chunk)
    return b"".join(chunks)


def _last_matching(lines: list[str], params: HostLogTailParams) -> tuple[list[str], int, bool]:
    """The last `params.lines` matching lines (oldest first), lines scanned, stopped early."""
    regex = re.compile(params.pattern) if params.pattern else None
    deadline = time.monotonic() + SCAN_SECONDS
    found: list[str] = []
    scanned = 0
    for line in reversed(lines):
        if len(found) >= params.lines:
            break
        if scanned % 256 == 0 and time.monotonic() > deadline:
            return found[::-1], scanned, True
        scanned += 1
        head = line[:LINE_EXAMINE]
        if params.contains is not None and params.contains not in head:
            continue
        if regex is not None and regex.search(head) is None:
            continue
        found.append(line[:LINE_SHOW])
    return found[::-1], scanned, False


def _filter_label(params: HostLogTailParams) -> str:
    if params.contains is not None:
        return f" containing {params.contains!r}"
    if params.pattern is not None:
        return f" matching /{params.pattern}/"
    return ""


def _newest_fitting(lines: list[str]) -> tuple[str, int]:
    """The newest lines that fit the output budget, and how many older ones were left out."""
    kept: list[str] = []
    size = 0
    for line in reversed(lines):
        size += len(line.encode()) + 1
        if size > OUTPUT_BUDGET:
            break
        kept.append(line)
    hidden = len(lines) - len(kept)
    head = [f"… {hidden} older line(s) not shown"] if hidden else []
    return "\n".join(head + kept[::-1]), hidden


def _refuse(path: str, reason: str) -> PluginResult:
    return PluginResult(
        ok=False,
        summary=f"refused: {reason}",
        data={"error": reason},
        code="log_refused",
        values={"path": path, "reason": reason},
    )
