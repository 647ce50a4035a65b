"""Policy decision cost and plugin dispatch overhead, in microseconds (goal: both < 1 ms).

1. Decision: `PolicyEngine.evaluate` for representative actions with a realistic policy (target
   fences, parameter fences, change windows, a freeze, approver lists): an auto-run diagnostic,
   a `command` fix that needs approval, a Kubernetes scale outside its fence, a refused hostile
   parameter. Median and p99 per call over `--rounds`.
2. Dispatch: `plugins.execution.execute` of a plugin whose `run` returns at once, minus a direct
   `await plugin.run(...)` of the same plugin: what validation, the timeout wrapper, redaction
   and capping add per run. Median per call.
3. The whole `/run` verdict as the bot takes it (`workflows.verdicts.judge`: validation, the
   quota count query on Postgres, the decision), against an embedded Postgres: median and p99.

Prints figures; asserts nothing.

    .venv/bin/python bench/policy.py [--rounds 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from figures import figure
from pydantic import BaseModel, ConfigDict

from cards.texts import texts
from plugins import PluginContext, PluginResult, PluginSpec, PolicyEngine, discover, execute
from plugins.contract import AlertContext
from plugins.registry import PluginRegistry

ALERT = AlertContext("Web down", "critical", {"service": "web"}, {}, "web")
POLICY: dict[str, Any] = {
    "auto_max_risk": "low",
    "approver_lists": {"sre": ["ou_a", "ou_b"]},
    "approvers_by_risk": {"high": "sre", "critical": "sre"},
    "targets": {"hosts": ["*.internal", "127.0.0.1"], "namespaces": ["prod-*", "staging"]},
    "fences": {"command": {"template": {"one_of": ["restart_service"]}}},
    "change_windows": [
        {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00"}
    ],
    "freezes": [{"start": "2026-12-24T00:00:00+08:00", "end": "2026-12-27T00:00:00+08:00"}],
}
SETTINGS = {
    "command": {
        "templates": {
            "restart_service": {
                "argv": ["/bin/echo", "restart", "{service}"],
                "params": {"service": "^[a-z0-9-]{1,40}$"},
            }
        }
    },
    "kubernetes": {"targets": {"prod": {"kubeconfig": "/nonexistent"}}},
}


class Nothing(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    target: str = "x"


class Instant:
    """Does no work: what remains is the cost of dispatching it."""

    spec = PluginSpec(
        name="instant",
        category="diagnostic",
        risk="low",
        params=Nothing,
        timeout=5,
        idempotent=True,
        supports_dry_run=False,
        title_zh="空操作",
        title_en="No-op",
        description_zh="立即返回",
        description_en="Returns at once",
    )

    async def run(self, ctx: PluginContext, params: BaseModel) -> PluginResult:
        return PluginResult(ok=True, summary="done", data={"n": 1}, evidence=("one line",))


def timed(call: Callable[[], object], rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter_ns()
        call()
        samples.append((time.perf_counter_ns() - started) / 1000)
    return samples


def show(name: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    print(f"  {name:<44} median {statistics.median(samples):8.1f} µs   p99 {p99:8.1f} µs")


def decisions(registry: PluginRegistry, rounds: int) -> None:
    engine = PolicyEngine(POLICY, registry=registry, say=texts("zh"))
    cases = {
        "tcp_check (auto)": ("tcp_check", {"host": "db.internal", "port": 5432}),
        "command restart (approve)": (
            "command",
            {"template": "restart_service", "args": {"service": "web"}},
        ),
        "k8s_scale outside fence (refuse)": (
            "k8s_scale",
            {"namespace": "kube-system", "deployment": "dns", "replicas": 3},
        ),
        "command hostile value (refuse)": (
            "command",
            {"template": "restart_service", "args": {"service": "web; rm -rf /"}},
        ),
    }
    print("1. policy decision (PolicyEngine.evaluate)")
    medians = []
    for label, (name, params) in cases.items():
        plugin = registry.get(name)
        assert plugin is not None, name
        spec = plugin.spec
        kind = engine.evaluate(spec, params, alert=ALERT).kind
        samples = timed(lambda s=spec, p=params: engine.evaluate(s, p, alert=ALERT), rounds)
        show(f"{label} → {kind}", samples)
        medians.append(statistics.median(samples))
    worst = max(medians)
    figure(5, "policy decision median (slowest of 4 cases)", worst, "µs", "< 1000", worst < 1000)


async def dispatch(registry: PluginRegistry, rounds: int) -> None:
    plugin = Instant()
    registry.register(plugin)
    ctx, model = PluginContext(), Nothing()
    direct, wrapped = [], []
    for _ in range(rounds):
        started = time.perf_counter_ns()
        await plugin.run(ctx, model)
        direct.append((time.perf_counter_ns() - started) / 1000)
        started = time.perf_counter_ns()
        await execute(registry, "instant", ctx, {"target": "x"})
        wrapped.append((time.perf_counter_ns() - started) / 1000)
    overhead = statistics.median(wrapped) - statistics.median(direct)
    print("2. plugin dispatch (execute vs a direct call)")
    show("direct await plugin.run", direct)
    show("execute (validate, timeout, redact, cap)", wrapped)
    print(f"  {'overhead':<44} median {overhead:8.1f} µs")
    figure(5, "plugin dispatch overhead median", overhead, "µs", "< 1000", overhead < 1000)


async def verdicts(registry: PluginRegistry, rounds: int) -> None:
    from storage.database import Database
    from storage.embedded import EmbeddedPostgres
    from storage.migration import upgrade
    from workflows.verdicts import judge

    home = Path(tempfile.mkdtemp(prefix="larkops-bench-policy-"))
    server = EmbeddedPostgres(home)
    await asyncio.to_thread(server.start)
    try:
        db = await Database.open(server.dsn, pool_size=2)
        await upgrade(db)
        engine = PolicyEngine(POLICY, registry=registry, say=texts("zh"))
        plugin = registry.get("command")
        assert plugin is not None
        params = {"template": "restart_service", "args": {"service": "web"}}
        samples = []
        for _ in range(rounds):
            started = time.perf_counter_ns()
            await judge(db, engine, plugin.spec, params, alert=ALERT)
            samples.append((time.perf_counter_ns() - started) / 1000)
        print("3. /run verdict with the quota query (workflows.verdicts.judge, Postgres)")
        show("judge(command restart)", samples)
        await db.close()
    finally:
        await asyncio.to_thread(server.release)
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20000)
    args = parser.parse_args()
    registry = discover({"settings": SETTINGS})
    decisions(registry, args.rounds)
    asyncio.run(dispatch(registry, args.rounds))
    asyncio.run(verdicts(registry, max(200, args.rounds // 20)))


if __name__ == "__main__":
    main()
