"""Two `larkops run` replicas on one Postgres and one Redis, as `docs/operator-guide.md` (Replicas)
describes: an alert storm through both replicas' webhooks and through the long connection (each
event goes to one randomly chosen connection, as Lark does), approval clicks landing on either
replica, a scheduled job due mid-run, and the scheduler's leader killed with SIGKILL while
incidents are in flight. The survivor finishes the work; the killed replica then restarts and
rejoins. Nothing is lost, no card is sent twice, no fix runs twice, the job fires once.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.lark.events import card_text
from bot.sandbox.emulator import LarkEmulator
from bot.sandbox.model import DEFAULT_USERS, ClientConfig, User
from bot.sandbox.record import Message
from bot.sandbox.server import serve_emulator
from tests.support.cluster import (
    RedisServer,
    Replica,
    approve_value,
    check_invariants,
    describe,
    inbox_settled,
    incident_cards,
    replica_env,
    rows,
    running,
)
from tests.support.repair import alert, bot_config, services, write_config
from tests.support.wait import wait_until
from workflows.schedule.spec import Once

SEED = 20240609
WEBHOOK_SERVICES = ["web1", "web2", "web3", "web4"]
REPEATS = 4  # each webhook alert is sent this many times (repeats fold into its incident)
ALERT_BOT = User("ou_alertbot", "Alertmanager")
TASK = "replica drill reminder"


def chat_alert(host: str, n: int) -> str:
    return f"[FIRING:1] DiskFull (instance={host} job=node value={n})"


def reminders(emulator: LarkEmulator) -> list[Message]:
    """The bot's messages that carry the scheduled job's reminder."""
    return [
        m
        for m in emulator.transcript("oc_ops")
        if m.sender_id == emulator.bot.open_id and TASK in m.text + card_text(m.card)
    ]


def probes_answered(emulator: LarkEmulator, probes: list[str]) -> bool:
    """Each probe message has its one answer from the bot (whoever's worker took it)."""
    answers = [
        m.parent_id
        for m in emulator.transcript("oc_ops")
        if m.sender_id == emulator.bot.open_id and m.parent_id in probes
    ]
    assert len(answers) == len(set(answers)), f"a probe answered twice: {answers}"
    return len(answers) == len(probes)


def _leading_fence(log: str) -> int | None:
    """The fence a replica's log says it leads the scheduler with now (None: it does not: it
    never led, or its last word on the lease is that it lost it)."""
    lines = [
        line for line in log.splitlines() if "leads (fence" in line or "lost the lease" in line
    ]
    if not lines or "lost the lease" in lines[-1]:
        return None
    found = re.search(r"leads \(fence (\d+)\)", lines[-1])
    return int(found.group(1)) if found else None


async def leader(replicas: list[Replica]) -> Replica:
    """The replica that leads the scheduler now: the one whose log says it leads with the
    newest fence (under load a lease may change hands early, and both logs say "leads")."""

    def find() -> Replica | None:
        leading = [(fence, r) for r in replicas if (fence := _leading_fence(r.log())) is not None]
        if not leading:
            return None
        return max(leading, key=lambda pair: pair[0])[1]

    found: Replica = await wait_until(find, 30, "a scheduler leader")
    return found


async def _is(value: Any, wanted: str) -> bool:
    return bool(await value == wanted)


def survivor_host(replica: Replica) -> str:
    """The scheduler's name for a replica: `host:pid`."""
    return f"{socket.gethostname()}:{replica.pid}"


async def schedule_job(
    dsn: str, due: datetime, task: str = TASK, action: dict[str, Any] | None = None
) -> int:
    """A confirmed one-shot job due at `due` (a reminder unless `action` says otherwise)."""
    spec = json.dumps(Once(due, "Asia/Shanghai").to_json())
    found = await rows(
        dsn,
        "INSERT INTO schedules (chat_id, created_by, source_text, task, action, timezone, kind, "
        "spec, status, confirmed_by, confirmed_at, next_run_at) VALUES ('oc_ops', 'ou_alice', "
        "%s, %s, CAST(%s AS jsonb), 'Asia/Shanghai', 'once', CAST(%s AS jsonb), "
        "'active', 'ou_alice', now(), %s) RETURNING id",
        task,
        task,
        json.dumps(action or {"type": "reminder"}),
        spec,
        due,
    )
    return int(found[0][0])


def fix_card(emulator: LarkEmulator, service: str) -> tuple[str, dict[str, Any]] | None:
    """The approval card of a requested fix (`/run`, a scheduled fix) for `service`."""
    for message in emulator.transcript("oc_ops"):
        value = approve_value(message) if message.card is not None else None
        if (
            value is not None
            and value.get("gate") == "action"
            and service in card_text(message.card)
        ):
            return message.message_id, value
    return None


async def action_status(dsn: str, service: str) -> str | None:
    found = await rows(
        dsn, "SELECT status FROM actions WHERE params->'args'->>'service' = %s", service
    )
    return str(found[0][0]) if found else None


async def test_two_replicas_lose_nothing_and_repeat_nothing(
    tmp_path: Path, fresh_db_url: str
) -> None:
    began = time.monotonic()
    rng = random.Random(SEED)
    state = tmp_path / "state"
    state.mkdir()
    redis = RedisServer(tmp_path / "redis").start()
    emulator = LarkEmulator(
        seed=SEED,
        users=[*DEFAULT_USERS, ALERT_BOT],
        client_config=ClientConfig(reconnect_interval=1, reconnect_nonce=0),
    )
    clicks: dict[str, int] = {}
    try:
        async with services(state) as board, serve_emulator(emulator) as lark_url:
            board.slow["web3"] = 2.0  # web3's diagnosis is in flight when the leader dies
            (state / "fix-seconds-web4").write_text("4")  # web4's fix is slow
            config = write_config(state, bot_config(state))
            env = replica_env(
                emulator,
                lark_url,
                config,
                DATABASE_URL=fresh_db_url,
                REDIS_URL=redis.url,
                LARKOPS_ALERT_SENDERS=ALERT_BOT.open_id,
            )
            a, b = Replica("a", tmp_path / "a", env), Replica("b", tmp_path / "b", env)
            async with running(a, b):
                await asyncio.gather(a.start(emulator), b.start(emulator))
                first = await leader([a, b])
                survivor = b if first is a else a

                # the storm: webhooks to both replicas at once, alert-bot messages over Lark
                sent = dict.fromkeys([*WEBHOOK_SERVICES, "db1", "db2"], 0)
                posts = []
                for n in range(REPEATS):
                    for i, service in enumerate(WEBHOOK_SERVICES):
                        target = (a, b)[(n + i) % 2]
                        posts.append(target.post(alert(board, service, n)))
                        sent[service] += 1
                answers = await asyncio.gather(*posts)
                assert all(r.status_code == 202 for r in answers), [r.text for r in answers]
                for n in range(2):
                    for host in ("db1", "db2"):
                        delivery = await emulator.send_message(
                            "oc_ops",
                            ALERT_BOT,
                            chat_alert(host, n),
                            mention_bot=False,
                            sender_type="app",
                        )
                        assert delivery.acked
                        sent[host] += 1

                async def gate(service: str, kind: str) -> tuple[str, dict[str, Any]]:
                    """The incident card of `service` once it offers 批准 for gate `kind`."""
                    found_id = await wait_until(
                        lambda: rows(
                            fresh_db_url,
                            "SELECT id FROM incidents WHERE labels->>'service' = %s",
                            service,
                        ),
                        30,
                        f"{service}'s incident",
                    )
                    incident_id = int(found_id[0][0])

                    def offered() -> tuple[str, dict[str, Any]] | None:
                        for message in incident_cards(emulator).get(incident_id, []):
                            value = approve_value(message)
                            if value and value["gate"] == kind:
                                return message.message_id, value
                        return None

                    found: tuple[str, dict[str, Any]] = await wait_until(
                        offered, 60, f"{service}'s {kind} gate"
                    )
                    return found

                async def click(message_id: str, value: dict[str, Any], who: str) -> None:
                    owners = {r.connection(emulator): r.name for r in (a, b) if r.alive}
                    result = await emulator.click(message_id, who, value)
                    for conn in result.delivery.connections:
                        name = owners.get(conn, "?")
                        clicks[name] = clicks.get(name, 0) + 1
                    assert result.toast is not None, result.delivery
                    assert result.toast["type"] == "success", result.toast

                # diagnosis gates of every webhook incident, approved by bob or carol at random
                for service in WEBHOOK_SERVICES:
                    if service == "web3":
                        continue
                    message_id, value = await gate(service, "diagnosis")
                    await click(message_id, value, rng.choice(["ou_bob", "ou_carol"]))
                message_id, value = await gate("web4", "proposal")
                await click(message_id, value, "ou_bob")
                await wait_until(lambda: board.runs()["web4"] == 1, 30, "web4's fix to start")
                web3, web3_value = await gate("web3", "diagnosis")
                await click(web3, web3_value, "ou_carol")  # web3 is now diagnosing slowly
                # a fix asked for with /run, waiting at its gate when the leader dies
                await emulator.send_message(
                    "oc_ops", "ou_alice", "/run command template=restart args.service=run1"
                )
                run1 = await wait_until(lambda: fix_card(emulator, "run1"), 30, "run1's card")

                # one-shot jobs due 3 s from now (a reminder, a fix), the leader killed at once
                due = datetime.now(UTC) + timedelta(seconds=3)
                schedule = await schedule_job(fresh_db_url, due)
                fix_job = {
                    "type": "fix",
                    "plugin": "command",
                    "params": {"template": "restart", "args": {"service": "sched1"}},
                }
                await schedule_job(fresh_db_url, due, "restart sched1", fix_job)
                await first.kill()
                print(f"injected: SIGKILL of replica {first.name} (the scheduler leader)")

                for service in ("web1", "web2", "web3"):
                    message_id, value = await gate(service, "proposal")
                    await click(message_id, value, rng.choice(["ou_bob", "ou_carol"]))

                async def settled() -> bool:
                    found = await rows(
                        fresh_db_url,
                        "SELECT count(*) FROM incidents WHERE labels->>'service' = ANY(%s) "
                        "AND status IN ('resolved', 'escalated')",
                        WEBHOOK_SERVICES,
                    )
                    return bool(found[0][0] == len(WEBHOOK_SERVICES))

                try:
                    await wait_until(settled, 90, f"the survivor {survivor.name} to finish")
                except AssertionError:
                    print(await describe(fresh_db_url))
                    print(survivor.log()[-6000:])
                    raise
                await wait_until(lambda: reminders(emulator), 40, "the scheduled reminder")
                # the fixes: /run's from before the kill and the scheduled one the survivor
                # fired, each approved now and run once
                await click(*run1, "ou_bob")
                sched1 = await wait_until(lambda: fix_card(emulator, "sched1"), 40, "sched1")
                await click(*sched1, "ou_carol")
                for service in ("run1", "sched1"):
                    await wait_until(
                        lambda s=service: _is(action_status(fresh_db_url, s), "succeeded"),
                        60,
                        f"{service}'s fix",
                    )

                # the killed replica comes back and rejoins: it repeats nothing. Its recovery ran
                # before it connected; then it takes new work: a message over its own connection
                # is answered, and nothing is left in the inbox
                await first.start(emulator)
                probes: list[str] = []

                async def taken_by(replica: Replica) -> bool:
                    conn = replica.connection(emulator)
                    delivery = await emulator.send_message("oc_ops", "ou_alice", "/whoami")
                    assert delivery.acked, delivery
                    probes.append(delivery.message_id)
                    return conn is not None and conn in delivery.connections

                await wait_until(
                    lambda: taken_by(first), 30, f"a message taken by the restarted {first.name}"
                )
                await wait_until(
                    lambda: probes_answered(emulator, probes), 30, "the answers to the probes"
                )
                await wait_until(
                    lambda: inbox_settled(fresh_db_url), 30, "every inbound event handled"
                )

                summary = await check_invariants(fresh_db_url, emulator, board, sent)
                outcome = dict(
                    await rows(
                        fresh_db_url,
                        "SELECT labels->>'service', status FROM incidents "
                        "WHERE labels->>'service' = ANY(%s)",
                        WEBHOOK_SERVICES,
                    )
                )
                for service in ("web1", "web2", "web3"):
                    assert outcome[service] == "resolved", outcome
                # web4's fix was running on one replica or the other: either it finished, or
                # the killed replica held it and it is escalated as "outcome unknown"
                assert outcome["web4"] in ("resolved", "escalated"), outcome
                assert board.runs()["web4"] == 1
                assert board.runs()["run1"] == board.runs()["sched1"] == 1
                fired = await rows(
                    fresh_db_url,
                    "SELECT replica, status FROM schedule_runs WHERE schedule_id = %s",
                    schedule,
                )
                assert len(fired) == 1, fired
                assert fired[0][0].startswith(f"{survivor_host(survivor)}#"), fired
                assert len(reminders(emulator)) == 1
                assert clicks.get("a"), clicks  # clicks landed on both replicas
                assert clicks.get("b"), clicks
                print(
                    f"injected: {sum(sent.values())} alerts ({REPEATS} webhook repeats x "
                    f"{len(WEBHOOK_SERVICES)} services through both replicas, 4 alert-bot "
                    f"messages over Lark), clicks per replica {clicks}, a one-shot job due 3 s "
                    f"after its leader {first.name} was SIGKILLed, then {first.name}'s restart"
                )
                print(
                    f"survived: {summary}; webhook incidents {outcome}; job fired once {fired}; "
                    f"replayed sends absorbed by uuid: {len(emulator.duplicates)}; "
                    f"{time.monotonic() - began:.0f} s"
                )
    finally:
        redis.stop()
