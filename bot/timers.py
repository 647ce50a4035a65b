"""The periods of the bot's own background loops, in one place so tests can drive them.

Production uses the defaults. A test bot passes `Timers(sweep_every=None)` and calls
`LarkRuntime.sweep()` when it wants a sweep, instead of waiting one out; nothing then acts on a
timer the test did not ask for.

    runtime = LarkRuntime(..., timers=Timers(sweep_every=None))
    await runtime.sweep()  # expire due gates, reclaim stranded runs: once, now
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Timers:
    # seconds between two sweeps (gate expiry, action expiry, run reclaim); None: never on
    # its own, only when `sweep()` is called
    sweep_every: float | None = 5.0
    # seconds between two readings of the queue/run/gate gauges (cluster-wide figures for
    # dashboards and alert rules that look at minutes); None: never
    backlog_every: float | None = 15.0
    # seconds an incident or a decided gate is left to its own worker before a sweep takes it
    reclaim_after: float = 5.0
    # seconds between two checks of a fix's verification
    verify_every: float = 5.0
    # seconds between two expiries of what waited too long for a click (drafts); None: never
    # on its own, only in `sweep()`
    expire_every: float | None = 600.0
    # seconds between two looks for due paging steps and shift changes (on-call); None: only
    # in `sweep()`. Paging lateness stays under this (bench/escalation.py: goal < 2 s)
    page_every: float | None = 0.5


PRODUCTION = Timers()
