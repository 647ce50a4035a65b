"""Issue 18: escalation timer lateness with many incidents escalating at once, and the Lark
calls per second it causes.

N incidents (default 1,000) each get one paging step due at the same instant (a level of
`urgent_app` to the on-call person on the incident's card); two pagers (two replicas' worth, in
one process, sharing the embedded Postgres) run their loops (`Pager.run`, every 0.5 s) against
the emulator served over HTTP with Lark's limits (50 calls/s per app). Figures:

- timer lateness: due time → the step claimed by a replica (p50, p99; goal p99 < 2 s);
- delivery: due time → the urgent call made (Lark's 50/s app limit paces a burst: N/45 s);
- Lark calls per second (the busiest second) and the calls Lark refused for rate (goal: none);
- each step fired exactly once (no step claimed twice, one urgent call per incident).

    python bench/escalation.py --incidents 1000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

from figures import figure
from sqlalchemy import text

from bot.config import load_settings
from bot.incidents.presenter import LarkPresenter
from bot.lark.api import LarkApi
from bot.lark.patcher import CardPatcher
from bot.oncall.pager import Pager
from bot.oncall.roster import Roster
from bot.sandbox.emulator import LarkEmulator
from bot.sandbox.envelopes import new_id
from bot.sandbox.record import Message
from bot.sandbox.server import serve_emulator
from storage.coordination import MemoryCoordination
from storage.database import Database
from storage.embedded import EmbeddedPostgres
from storage.migration import upgrade

SETTINGS = {
    "oncall": {"schedules": {"primary": {"layers": [{"users": ["ou_bob"], "shift": "weekly"}]}}},
    "escalation": {
        "policies": {
            "default": [{"after": "0m", "notify": ["oncall:primary"], "via": ["urgent_app"]}]
        }
    },
}
INCIDENTS = (
    "INSERT INTO incidents (fingerprint, title, chat_id, severity, card_message_id) "
    "SELECT md5(random()::text), 'HighLatency', 'oc_ops', 'critical', :card "
    "FROM generate_series(1, :n) RETURNING id"
)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def card_message(emulator: LarkEmulator) -> str:
    """One bot card in oc_ops every incident points at (urgent notices need a bot message)."""
    message = Message(
        seq=emulator.store.next_seq(),
        message_id=new_id("om_"),
        chat_id="oc_ops",
        sender_id=emulator.bot.open_id,
        sender_name=emulator.bot.name,
        sender_type="bot",
        msg_type="interactive",
        content="{}",
    )
    emulator.store.add(message)
    return message.message_id


async def bench(incidents: int, lead: float) -> None:
    home = Path(tempfile.mkdtemp(prefix="larkops-bench-escalation-"))
    server = EmbeddedPostgres(home, fsync=False)
    dsn = server.start()
    emulator = LarkEmulator()
    settings = load_settings(home=str(home / "bot"), **SETTINGS)
    db = await Database.open(dsn)
    try:
        await upgrade(db)
        card = card_message(emulator)
        async with serve_emulator(emulator) as base:
            coordination = MemoryCoordination()  # one process: the app's bucket is shared
            pagers, apis = [], []
            for replica in ("a", "b"):
                api = LarkApi(emulator.app_id, emulator.app_secret, base, coordination)
                presenter = LarkPresenter(
                    db, api, CardPatcher(api, coordination), settings, b"k" * 32
                )
                roster = Roster(settings, db, api)
                pagers.append(Pager(settings, db, api, presenter, roster, replica=replica))
                apis.append(api)
            async with db.engine.begin() as conn:
                ids = [
                    r[0]
                    for r in await conn.execute(text(INCIDENTS), {"n": incidents, "card": card})
                ]
                await conn.execute(
                    text(
                        "INSERT INTO pages (incident_id, policy, step, level, due_at) "
                        "SELECT id, 'default', 1, 1, now() + make_interval(secs => :lead) "
                        "FROM incidents WHERE id = ANY(:ids)"
                    ),
                    {"ids": ids, "lead": lead},
                )
            print(f"{incidents} incidents, one urgent_app step each, due in {lead:g} s")
            started = time.time()
            loops = [asyncio.create_task(p.run(0.5)) for p in pagers]
            deadline = time.monotonic() + lead + incidents / 20 + 60
            while time.monotonic() < deadline:
                async with db.engine.connect() as conn:
                    done = await conn.scalar(
                        text("SELECT count(*) FROM pages WHERE status = 'done'")
                    )
                if done == incidents:
                    break
                await asyncio.sleep(0.5)
            for loop in loops:
                loop.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await loop
            for pager in pagers:
                await pager.drain()
            async with db.engine.connect() as conn:
                rows = (
                    await conn.execute(
                        text(
                            "SELECT extract(epoch FROM claimed_at - due_at), "
                            "extract(epoch FROM fired_at - due_at), attempts, claimed_by, status "
                            "FROM pages"
                        )
                    )
                ).all()
            for api in apis:
                await api.close()
    finally:
        await db.close()
        server.release()
        shutil.rmtree(home, ignore_errors=True)

    claimed = [float(r[0]) for r in rows if r[0] is not None]
    fired = [float(r[1]) for r in rows if r[1] is not None]
    calls = [c for c in emulator.calls if c.at >= started and c.path.startswith("/open-apis/")]
    per_second = Counter(int(c.at) for c in calls)
    busiest = max(per_second.values(), default=0)
    limited = sum(1 for c in calls if c.status == 429 or c.code in (99991400, 230020))
    urgent = [c for c in calls if c.path.endswith("/urgent_app") and c.status == 200]
    by_replica = Counter(r[3] for r in rows)
    twice = sum(1 for r in rows if r[2] != 1)
    print(
        f"steps done: {sum(1 for r in rows if r[4] == 'done')}/{incidents}, "
        f"by replica {dict(by_replica)}"
    )
    print(
        f"timer lateness (due → claimed): p50 {statistics.median(claimed):.3f} s, "
        f"p99 {pct(claimed, 0.99):.3f} s (goal p99 < 2 s)"
    )
    print(
        f"delivery (due → urgent call made): p50 {statistics.median(fired):.2f} s, "
        f"p99 {pct(fired, 0.99):.2f} s (Lark's 50 calls/s per app paces {incidents} calls)"
    )
    print(
        f"Lark calls: {len(calls)} in all, busiest second {busiest}/s (Lark's app limit 50/s), "
        f"{limited} refused for rate; urgent calls {len(urgent)}, steps claimed twice {twice}"
    )
    p99 = pct(claimed, 0.99)
    figure(18, f"escalation timer lateness p99, {incidents} incidents", p99, "s", "< 2", p99 < 2)
    figure(18, f"escalation delivery p99, {incidents} incidents", pct(fired, 0.99), "s", "", None)
    figure(18, "Lark calls in the busiest second", busiest, "/s", "<= 50", busiest <= 50)
    figure(
        18,
        "steps fired more than once",
        twice + max(len(urgent) - incidents, 0),
        "",
        "0",
        twice == 0,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=1000)
    parser.add_argument("--lead", type=float, default=3.0, help="seconds until the steps are due")
    args = parser.parse_args()
    asyncio.run(bench(args.incidents, args.lead))


if __name__ == "__main__":
    main()
