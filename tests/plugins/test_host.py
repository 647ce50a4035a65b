"""Host plugins against this machine: real psutil numbers, real processes, real files."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import psutil
import pytest

from plugins.builtin.host import HostDiskParams, create_plugins, short_cmdline
from plugins.builtin.logtail import HostLogTailParams, pattern_problem
from plugins.contract import PluginContext, PluginResult
from plugins.execution import execute
from plugins.registry import PluginRegistry
from tests.support.language import worded
from tests.support.wait import wait_until_sync

SECRET = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    directory = tmp_path / "logs"
    directory.mkdir()
    lines = [f"2024-05-01T10:{i // 60:02d}:{i % 60:02d} line {i} " for i in range(300)]
    lines = [
        line + ("level=ERROR boom" if i % 7 == 0 else "level=INFO ok")
        for i, line in enumerate(lines)
    ]
    (directory / "app.log").write_text("\n".join(lines) + "\n")
    (tmp_path / "secret.txt").write_text("outside\n")
    return directory


@pytest.fixture
def registry(logs: Path) -> PluginRegistry:
    registry = PluginRegistry()
    for plugin in create_plugins({"log_dirs": [str(logs)]}):
        registry.register(plugin)
    return registry


async def run(registry: PluginRegistry, name: str, params: Mapping[str, Any]) -> PluginResult:
    result = await execute(registry, name, PluginContext(), params)
    worded(result)  # every result, refusals included, reads in Chinese without English
    return result


def test_plugins_settings_and_scope(tmp_path: Path) -> None:
    plugins = create_plugins({})
    names = [p.spec.name for p in plugins]
    assert names == ["host_disk", "host_memory", "host_load", "host_top", "host_log_tail"]
    assert all(p.spec.risk == "low" and p.spec.category == "diagnostic" for p in plugins)
    assert plugins[-1].log_dirs == (os.path.realpath("/var/log"),)  # type: ignore[attr-defined]
    bad_settings: list[dict[str, Any]] = [
        {"log_dirs": ["relative/logs"]},
        {"log_dirs": "/var/log"},
        {"log_dirs": []},
        {"log_dirs": ["/var/log\x00x"]},
        {"log_dir": ["/var/log"]},
    ]
    for bad in bad_settings:
        with pytest.raises(ValueError, match="host: "):
            create_plugins(bad)
    hostname = socket.gethostname()
    assert HostDiskParams().policy_scope() == {"host": hostname}
    params = HostLogTailParams(path="/var/log/syslog")
    assert params.policy_scope() == {"host": hostname}
    assert params.policy_target() == "host_log_tail:/var/log/syslog"


async def test_host_disk_matches_psutil(registry: PluginRegistry) -> None:
    result = await run(registry, "host_disk", {"path": "/"})
    assert result.ok == (result.data["mounts"][0]["percent"] <= 90), result.summary
    row = result.data["mounts"][0]
    usage = psutil.disk_usage("/")
    vfs = os.statvfs("/")
    assert row["path"] == "/"
    assert row["total_bytes"] == usage.total
    assert abs(row["percent"] - usage.percent) < 1
    assert abs(row["free_bytes"] - usage.free) < 512 * 1024 * 1024
    if vfs.f_files:
        expected = (vfs.f_files - vfs.f_ffree) / vfs.f_files * 100
        assert abs(row["inodes_percent"] - expected) < 1
    assert result.evidence[0].startswith(f"/: {row['percent']:g}% used")


async def test_host_disk_all_mounts_and_threshold(registry: PluginRegistry) -> None:
    result = await run(registry, "host_disk", {})
    mounts = {row["path"] for row in result.data["mounts"]}
    expected = {p.mountpoint for p in psutil.disk_partitions(all=False)} or {"/"}
    assert mounts == expected
    strict = await run(registry, "host_disk", {"path": "/", "warn_percent": 0.0001})
    assert not strict.ok
    assert strict.summary == "over 0.0001% (space or inodes): /"
    assert worded(strict).startswith("超过 0.0001%")
    assert "个挂载点" in worded(result) or "超过" in worded(result)
    missing = await run(registry, "host_disk", {"path": "/no/such/mount"})
    assert not missing.ok
    assert missing.summary == "cannot stat /no/such/mount: No such file or directory"
    assert worded(missing).startswith("无法读取")
    relative = await run(registry, "host_disk", {"path": "tmp"})
    assert relative.summary == "invalid parameters: path: path must be absolute"


async def test_host_memory_matches_psutil(registry: PluginRegistry) -> None:
    result = await run(registry, "host_memory", {})
    mem = psutil.virtual_memory()
    assert result.data["total_bytes"] == mem.total
    assert abs(result.data["percent"] - mem.percent) < 5
    assert result.data["swap_total_bytes"] == psutil.swap_memory().total
    assert result.ok == (result.data["percent"] <= 90)
    assert result.summary.startswith(f"memory {result.data['percent']:g}% used")
    strict = await run(registry, "host_memory", {"warn_percent": 0.01})
    assert not strict.ok
    assert strict.summary.endswith("(over 0.01%)")
    assert "超过 0.01%" in worded(strict)
    assert worded(result).startswith(f"内存已用 {result.data['percent']:g}%")
    assert (await run(registry, "host_memory", {"warn_percent": 101})).summary.startswith(
        "invalid parameters: warn_percent:"
    )


async def test_host_load_matches_os(registry: PluginRegistry) -> None:
    result = await run(registry, "host_load", {})
    load1 = os.getloadavg()[0]
    cpus = psutil.cpu_count(logical=True)
    assert result.data["cpus"] == cpus
    assert abs(result.data["load1"] - load1) < 1.0
    assert result.data["ratio"] == pytest.approx(result.data["load1"] / cpus, abs=0.001)
    assert result.ok == (result.data["load1"] / cpus <= 2.0)
    assert result.summary.startswith(f"load {result.data['load1']:.2f} ")
    assert f"on {cpus} CPU(s)" in result.summary
    assert f"（{cpus} 个 CPU" in worded(result)
    strict = await run(registry, "host_load", {"warn_ratio": 0.0001})
    assert ("超过每个 CPU 0.0001" in worded(strict)) == (not strict.ok)


@pytest.fixture
def cpu_burner() -> Iterator[subprocess.Popen[bytes]]:
    code = "while True: pass  # " + "x" * 150
    argv = [sys.executable, "-c", code, SECRET, "second-hidden", "third-hidden"]
    child = subprocess.Popen(argv)
    process = psutil.Process(child.pid)

    def burning() -> bool:
        # an interpreter starts in about 20 ms of CPU: 0.1 s means it is in the loop
        return bool(sum(process.cpu_times()[:2]) >= 0.1)

    wait_until_sync(burning, what="the child burning CPU")
    yield child
    child.kill()
    child.wait()


async def test_host_top_finds_a_cpu_burning_child(
    registry: PluginRegistry, cpu_burner: subprocess.Popen[bytes]
) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        result = await run(registry, "host_top", {"by": "cpu", "limit": 50})
    finally:
        sleeper.kill()
        sleeper.wait()
    assert result.ok, result.summary
    rows = result.data["processes"]
    mine = [row for row in rows if row["pid"] == cpu_burner.pid]
    assert mine, f"pid {cpu_burner.pid} missing from {[r['pid'] for r in rows]}"
    row = mine[0]
    # how much of a core the loop gets depends on the machine's load; that it burns CPU and
    # ranks above an idle process does not
    assert row["cpu_percent"] > 1
    idle = [r for r in rows if r["pid"] == sleeper.pid]  # absent, or ranked below the loop
    assert not idle or rows.index(row) < rows.index(idle[0])
    assert row["user"]
    cmdline = row["cmdline"]
    assert cmdline.startswith(os.path.basename(sys.executable) + " -c while True: pass")
    assert "…" in cmdline  # the 170-character code argument was cut to 80 characters
    assert "second-hidden" not in cmdline
    assert "third-hidden" not in cmdline
    assert cmdline.endswith("(+2 args)")
    text = repr(result)
    assert SECRET not in text  # the third kept argument is masked by the registry's redactor
    cpu = [r["cpu_percent"] for r in rows]
    assert cpu == sorted(cpu, reverse=True)
    assert "CPU 占用最高的是" in worded(result)


async def test_host_top_by_memory_includes_this_process(registry: PluginRegistry) -> None:
    result = await run(registry, "host_top", {"by": "memory", "limit": 50})
    rows = result.data["processes"]
    rss = [r["rss_bytes"] for r in rows]
    assert rss == sorted(rss, reverse=True)
    assert result.data["process_count"] >= len(rows) > 0
    own = psutil.Process().memory_info().rss
    pids = {r["pid"] for r in rows}
    assert os.getpid() in pids or own < rss[-1]
    if os.getpid() in pids:
        row = next(r for r in rows if r["pid"] == os.getpid())
        assert abs(row["rss_bytes"] - own) < 64 * 1024 * 1024
    assert "内存占用最高的是" in worded(result)
    limit = await run(registry, "host_top", {"limit": 51})
    assert limit.summary.startswith("invalid parameters: limit:")


def test_short_cmdline() -> None:
    assert short_cmdline([]) == ""
    assert short_cmdline(["/usr/bin/psql", "-h", "db"]) == "psql -h db"
    shown = short_cmdline(["/x/app", "a" * 200, "b", "c", "--password=hunter2"])
    assert shown == "app " + "a" * 79 + "… b c … (+1 args)"
    assert short_cmdline(["tool", "new\nline"]) == "tool new?line"


async def test_log_tail_plain_and_filters(registry: PluginRegistry, logs: Path) -> None:
    path = str(logs / "app.log")
    plain = await run(registry, "host_log_tail", {"path": path, "lines": 10})
    assert plain.ok, plain.summary
    out = plain.output.splitlines()
    assert len(out) == 10
    assert out[0].startswith("2024-05-01T10:04:50 line 290 ")
    assert out[-1].startswith("2024-05-01T10:04:59 line 299 ")
    assert plain.data["lines_returned"] == 10
    assert plain.data["partial_read"] is False
    assert plain.summary == f"{path}: last 10 line(s)"

    errors = await run(registry, "host_log_tail", {"path": path, "lines": 3, "contains": "ERROR"})
    assert [line.split()[2] for line in errors.output.splitlines()] == ["280", "287", "294"]
    assert errors.summary == f"{path}: last 3 line(s) containing 'ERROR'"

    pattern = await run(registry, "host_log_tail", {"path": path, "pattern": r"line 1[0-4]\d "})
    numbers = [int(line.split()[2]) for line in pattern.output.splitlines()]
    assert numbers == list(range(100, 150))
    assert pattern.data["lines_scanned"] == 300

    none = await run(registry, "host_log_tail", {"path": path, "contains": "no such text"})
    assert none.ok
    assert none.summary == f"{path}: no lines containing 'no such text' among the last 300"
    assert worded(none) == f"`{path}`：最近 300 行中没有包含 `no such text` 的日志"
    assert none.output == ""


async def test_log_tail_keeps_the_newest_lines_when_output_is_capped(
    registry: PluginRegistry, logs: Path
) -> None:
    (logs / "wide.log").write_text("".join(f"{i:04d} {'w' * 200}\n" for i in range(500)))
    result = await run(registry, "host_log_tail", {"path": str(logs / "wide.log"), "lines": 500})
    lines = result.output.splitlines()
    assert lines[0].startswith("… ")
    assert "older line(s) not shown" in lines[0]
    assert lines[-1].startswith("0499 ")
    assert result.data["lines_returned"] == 500
    assert result.data["lines_hidden"] == 500 - (len(lines) - 1)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("{logs}/../secret.txt", "invalid parameters: path: path must not contain '..' components"),
        ("{logs}/app.log\x00.txt", "invalid parameters: path: path must not contain NUL bytes"),
        ("logs/app.log", "invalid parameters: path: path must be absolute"),
    ],
)
async def test_log_tail_rejects_bad_paths(
    registry: PluginRegistry, logs: Path, path: str, message: str
) -> None:
    result = await run(registry, "host_log_tail", {"path": path.format(logs=logs)})
    assert not result.ok
    assert result.summary == message


async def test_log_tail_refuses_symlink_escape(registry: PluginRegistry, logs: Path) -> None:
    (logs / "evil.log").symlink_to(logs.parent / "secret.txt")
    result = await run(registry, "host_log_tail", {"path": str(logs / "evil.log")})
    assert not result.ok
    real = os.path.realpath(logs.parent / "secret.txt")
    assert f"(resolves to {real}) is outside the allowed log directories" in result.summary
    assert "outside\n" not in result.output


async def test_log_tail_refuses_files_outside(registry: PluginRegistry) -> None:
    result = await run(registry, "host_log_tail", {"path": "/etc/passwd"})
    assert not result.ok
    assert result.summary.startswith(
        "refused: /etc/passwd is outside the allowed log directories ("
    )
    assert "root:" not in repr(result)


async def test_log_tail_refuses_fifo_and_directories(registry: PluginRegistry, logs: Path) -> None:
    fifo = logs / "pipe.log"
    os.mkfifo(fifo)
    started = time.perf_counter()
    result = await run(registry, "host_log_tail", {"path": str(fifo)})
    assert time.perf_counter() - started < 1
    assert result.summary == f"refused: {fifo} is a FIFO; only regular files are read"
    assert worded(result).startswith(f"未读取 `{fifo}`：")
    (logs / "sub").mkdir()
    result = await run(registry, "host_log_tail", {"path": str(logs / "sub")})
    assert result.summary == f"refused: {logs / 'sub'} is a directory; only regular files are read"
    result = await run(registry, "host_log_tail", {"path": str(logs / "missing.log")})
    assert (
        result.summary == f"refused: cannot open {logs / 'missing.log'}: No such file or directory"
    )


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("(a+)+$", "nested quantifiers"),
        ("(a*)*b", "nested quantifiers"),
        (r"(?:\w+\s?)+$", "nested quantifiers"),
        ("(x+x+)+y", "nested quantifiers"),
        ("((ab)+c)+", "nested quantifiers"),
        ("(a|aa)*$", "nested quantifiers"),
        ("(.*a){3,}", "nested quantifiers"),
        ("(a{2,5})+", "nested quantifiers"),
        (r"(a)\1", "back-references"),
        ("(?x)(a+) +", "verbose mode"),
        ("(", "not a valid regular expression"),
        ("a" * 201, "at most 200 characters"),
    ],
)
async def test_log_tail_rejects_dangerous_patterns(
    registry: PluginRegistry, logs: Path, pattern: str, message: str
) -> None:
    result = await run(
        registry, "host_log_tail", {"path": str(logs / "app.log"), "pattern": pattern}
    )
    assert not result.ok
    assert result.summary.startswith("invalid parameters: pattern:")
    assert message in result.summary


def test_safe_patterns_pass() -> None:
    for pattern in [r"ERROR \d+", "(foo|bar) baz", r"[a+]+x", "(ab){2}", r"\(a+\)+", "a{1}b*"]:
        assert pattern_problem(pattern) is None, pattern


async def test_log_tail_contains_and_pattern_are_exclusive(
    registry: PluginRegistry, logs: Path
) -> None:
    params = {"path": str(logs / "app.log"), "contains": "a", "pattern": "b"}
    result = await run(registry, "host_log_tail", params)
    assert result.summary == "invalid parameters: give either contains or pattern, not both"


async def test_log_tail_reads_only_the_end_of_a_big_file(
    registry: PluginRegistry, logs: Path
) -> None:
    big = logs / "big.log"
    line = "x" * 99 + "\n"
    with big.open("w") as handle:
        for _ in range(50):
            handle.write(line * 1000)
        handle.write("the very last line\n")
    assert big.stat().st_size > 5 * 1000 * 1000
    started = time.perf_counter()
    result = await run(registry, "host_log_tail", {"path": str(big), "lines": 20})
    assert time.perf_counter() - started < 0.5
    assert result.ok, result.summary
    assert result.data["bytes_read"] == 1024 * 1024
    assert result.data["partial_read"] is True
    assert result.output.splitlines()[-1] == "the very last line"
    assert len(result.output.splitlines()) == 20
    assert result.evidence[0].startswith("read the last 1.0 MiB of 4.8 MiB")
