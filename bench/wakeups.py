"""Run `larkops <args>` with a probe that says what wakes it (bench/idle.py --why).

Every callback an asyncio loop runs (in any thread) is counted with its CPU time, by what it
runs (a task's coroutine, a timer's function). SIGUSR1 starts a window (counters to zero),
SIGUSR2 writes the window's counts and the process's threads (native id -> name) as JSON to
the file named by the environment variable `LARKOPS_BENCH_WAKEUPS`. With
`LARKOPS_BENCH_PROFILE` set, the window is also profiled (cProfile, thread CPU time, the main
thread: the bot's event loop) and the stats written there.

    LARKOPS_BENCH_WAKEUPS=/tmp/w.json python bench/wakeups.py run
"""

from __future__ import annotations

import asyncio.events
import collections
import cProfile
import json
import os
import signal
import sys
import threading
import time
from typing import Any

PROFILE = cProfile.Profile(time.thread_time)
COUNTS: collections.Counter[str] = collections.Counter()
SECONDS: collections.Counter[str] = collections.Counter()


def _what(handle: asyncio.events.Handle) -> str:
    callback: Any = getattr(handle, "_callback", None)
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coro: Any = owner.get_coro()
        frame = getattr(coro, "cr_frame", None)
        where = f"{frame.f_code.co_filename}:{frame.f_lineno}" if frame is not None else ""
        return f"task {getattr(coro, '__qualname__', coro)} @ {_short(where)}"
    name = getattr(callback, "__qualname__", None) or repr(callback)
    module = getattr(callback, "__module__", "") or ""
    return f"{module}.{name}"


def _short(path: str) -> str:
    for marker in ("site-packages/", "/wt", "/work/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


_run = asyncio.events.Handle._run


def _counted(self: asyncio.events.Handle) -> None:
    started = time.thread_time()
    try:
        _run(self)
    finally:
        key = f"[{threading.current_thread().name}] {_what(self)}"
        COUNTS[key] += 1
        SECONDS[key] += time.thread_time() - started


def _start(*_: object) -> None:
    COUNTS.clear()
    SECONDS.clear()
    if os.environ.get("LARKOPS_BENCH_PROFILE"):
        PROFILE.enable()


def _dump(*_: object) -> None:
    if os.environ.get("LARKOPS_BENCH_PROFILE"):
        PROFILE.disable()
        PROFILE.dump_stats(os.environ["LARKOPS_BENCH_PROFILE"])
    report = {
        "callbacks": [
            {"what": key, "runs": runs, "cpu": SECONDS[key]} for key, runs in COUNTS.most_common()
        ],
        "threads": {str(t.native_id): t.name for t in threading.enumerate()},
    }
    with open(os.environ["LARKOPS_BENCH_WAKEUPS"], "w", encoding="utf-8") as out:
        json.dump(report, out)


def main() -> int:
    asyncio.events.Handle._run = _counted  # type: ignore[method-assign]
    signal.signal(signal.SIGUSR1, _start)
    signal.signal(signal.SIGUSR2, _dump)
    from bot.cli import main as larkops

    return larkops(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
