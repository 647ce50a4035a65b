"""The REST API v1 as a script sees it: keys, roles, gates decided as a click would, jobs,
silences, the schedule reader, rate limits, the change stream and the key CLI."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg

from bot.lark.events import card_text
from storage.database import driver_url
from tests.api.conftest import Api
from tests.conftest import World
from tests.lark.test_incidents import card_with, fire, settings_for
from tests.lark.testbot import wait_until
from tests.support.health import health_service

APPROVE = "批准"
ROLES = {"default": "viewer", "chats": {"oc_ops": {"default": "operator"}}}


def _settings(state: Path, **extra: Any) -> dict[str, Any]:
    return settings_for(state, roles=ROLES, **extra)


async def test_no_key_a_bad_key_or_a_revoked_key_is_401(make_api: Any, tmp_path: Path) -> None:
    api: Api = await make_api(settings=_settings(tmp_path))
    anonymous = api.client()
    answer = await anonymous.get("/incidents")
    assert answer.status_code == 401
    assert answer.json()["error"] == "unauthenticated"
    key = await api.key("ou_alice")
    forged = key[:-4] + ("aaaa" if not key.endswith("aaaa") else "bbbb")
    assert (await api.client(forged).get("/incidents")).status_code == 401
    assert (await api.client("lko_nonsense").get("/incidents")).status_code == 401
    good = api.client(key)
    assert (await good.get("/incidents")).status_code == 200
    from storage import api_keys

    assert await api_keys.revoke(api.bot.db, key.split("_")[1]) is not None
    revoked = await good.get("/incidents")
    assert revoked.status_code == 401
    assert revoked.json()["error"] == "bad_key"
    # the OpenAPI document is public; every route in it asks for a key
    document = (await anonymous.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.")
    assert "/incidents/{incident_id}/ack" in document["paths"]


async def test_a_key_revoked_elsewhere_fails_on_the_next_request(
    make_api: Any, tmp_path: Path
) -> None:
    api: Api = await make_api(settings=_settings(tmp_path))
    key = await api.key("ou_alice")
    client = api.client(key)
    assert (await client.get("/incidents")).status_code == 200  # known to this process now
    first = (await api.bot.rows("SELECT last_used_at FROM api_keys"))[0][0]
    assert first is not None
    assert (await client.get("/incidents")).status_code == 200
    # its last use is noted at most once a minute, not on every request
    assert (await api.bot.rows("SELECT last_used_at FROM api_keys"))[0][0] == first
    assert api.backend.feed is not None
    async with api.backend.feed.subscribe() as notices:
        # `larkops apikey revoke` or another replica: another connection, none of this code
        other = await asyncpg.connect(driver_url(api.bot.db.url, ""))
        try:
            await other.execute(
                "UPDATE api_keys SET revoked_at = now() WHERE prefix = $1", key.split("_")[1]
            )
        finally:
            await other.close()
        while (await asyncio.wait_for(notices.get(), 10)).get("kind") != "api_key":
            pass  # the database's notice has reached this process
    revoked = await client.get("/incidents")
    assert revoked.status_code == 401
    assert revoked.json()["error"] == "bad_key"


async def test_a_revocation_lost_in_a_flood_of_changes_still_counts(
    make_api: Any, tmp_path: Path
) -> None:
    api: Api = await make_api(settings=_settings(tmp_path))
    key = await api.key("ou_alice")
    client = api.client(key)
    assert (await client.get("/incidents")).status_code == 200  # known to this process now
    assert api.backend.feed is not None
    async with api.backend.feed.subscribe() as notices:
        other = await asyncpg.connect(driver_url(api.bot.db.url, ""))
        try:
            await other.execute(
                "UPDATE api_keys SET revoked_at = now() WHERE prefix = $1", key.split("_")[1]
            )
            # so many changes after it that a waiting queue drops the revocation's notice
            last = await other.fetchval(
                "WITH made AS (INSERT INTO incidents (fingerprint, title, chat_id, severity) "
                "SELECT md5(g::text), 'flood', 'oc_ops', 'info' FROM generate_series(1, 300) g "
                "RETURNING id) SELECT max(id) FROM made"
            )
        finally:
            await other.close()
        while (await asyncio.wait_for(notices.get(), 10)).get("id") != last:
            pass  # every notice has reached this process (the newest is never dropped)
    assert (await client.get("/incidents")).status_code == 401


async def test_a_key_acts_with_its_owners_roles_never_more(make_api: Any, tmp_path: Path) -> None:
    async with health_service(tmp_path / "healthy-web") as url:
        api: Api = await make_api(settings=_settings(tmp_path), incidents=True)
        await fire(api.bot, url)
        incident = (await api.bot.rows("SELECT id FROM incidents"))[0][0]
        # ou_alice is an operator in oc_ops (its default): she may acknowledge, not resolve
        alice = await api.as_user("ou_alice")
        refused = await alice.post(f"/incidents/{incident}/resolve", json={"note": "done"})
        assert refused.status_code == 403
        assert refused.json()["needs"] == "approver"
        assert "审批人" in refused.json()["message"]
        acked = await alice.post(f"/incidents/{incident}/ack")
        assert acked.status_code == 200
        assert acked.json()["acknowledged_by"] == "ou_alice"
        owner = await api.bot.rows("SELECT acknowledged_by FROM incidents")
        assert owner[0][0] == "ou_alice"
        # ou_bob (LARKOPS_APPROVERS) may resolve; the timeline names him and his key
        bob_key = await api.key("ou_bob", "bob's script")
        bob = api.client(bob_key)
        resolved = await bob.post(f"/incidents/{incident}/resolve", json={"note": "fixed"})
        assert resolved.status_code == 200
        assert resolved.json()["status"] == "resolved"
        again = await bob.post(f"/incidents/{incident}/resolve", json={})
        assert again.status_code == 409
        detail = (await bob.get(f"/incidents/{incident}")).json()
        kinds = [(e["kind"], e["actor"], e["data"].get("via")) for e in detail["timeline"]]
        prefix = bob_key.split("_")[1]
        assert ("api.incident.resolve", "ou_bob", f"key:{prefix}") in kinds
        assert ("incident.resolved_by_hand", "ou_bob", None) in kinds
        assert any(k[:2] == ("api.incident.ack", "ou_alice") and k[2] for k in kinds)
        # someone with no role in any chat but the global default (viewer) may only read
        dave = await api.as_user("ou_dave")
        assert (await dave.get("/incidents", params={"status": "resolved"})).status_code == 200
        assert (await dave.post(f"/incidents/{incident}/escalate")).status_code == 403


async def test_a_gate_is_decided_as_a_card_click_and_the_card_changes(
    make_api: Any, tmp_path: Path
) -> None:
    async with health_service(tmp_path / "healthy-web") as url:
        api: Api = await make_api(settings=_settings(tmp_path), incidents=True)
        card = await fire(api.bot, url)
        await card_with(api.bot, card, "http_check", APPROVE)
        alice = await api.as_user("ou_alice")
        pending = (await alice.get("/gates", params={"status": "pending"})).json()
        assert len(pending) == 1
        gate = pending[0]
        assert gate["chat_id"] == "oc_ops"
        # an operator who is not an approver is refused by the gates service, as on the card
        refused = await alice.post(f"/gates/{gate['id']}/decision", json={"decision": "approve"})
        assert refused.status_code == 403
        assert refused.json()["error"] == "not_approver"
        bob = await api.as_user("ou_bob")
        decided = await bob.post(
            f"/gates/{gate['id']}/decision", json={"decision": "approve", "comment": "go"}
        )
        assert decided.status_code == 200, decided.text
        assert decided.json()["decided"] is True
        assert decided.json()["gate"]["status"] == "approved"
        # the run went on: the Feishu card now proposes the fix
        proposed = await card_with(api.bot, card, "restart_web", APPROVE)
        assert "restart_web" in card_text(proposed.card)
        late = await bob.post(f"/gates/{gate['id']}/decision", json={"decision": "reject"})
        assert late.status_code == 409
        events = await api.bot.rows(
            "SELECT kind, actor, data->>'via' FROM incident_events WHERE kind LIKE '%click%'"
            " OR kind = 'api.gate.decision' ORDER BY id"
        )
        assert ("click.accepted", "ou_bob", None) in [tuple(e) for e in events]
        assert any(e[0] == "api.gate.decision" and e[2].startswith("key:") for e in events)


async def test_schedule_parse_answers_exactly_the_cli_json(make_api: Any, tmp_path: Path) -> None:
    api: Api = await make_api(settings=_settings(tmp_path))
    client = await api.as_user("ou_dave")
    for text, now, tz in [
        ("每个工作日早上9点检查服务器健康", "2026-03-02T10:00:00+08:00", "Asia/Shanghai"),
        ("every Friday at 5pm", "2026-03-02T10:00:00+08:00", "UTC"),
        ("hello there", "2026-03-02T10:00:00", "Europe/Berlin"),
    ]:
        got = await client.post("/schedules/parse", json={"text": text, "now": now, "tz": tz})
        assert got.status_code == 200
        cli = subprocess.run(
            [
                sys.executable,
                "-m",
                "bot.cli",
                "schedule",
                "parse",
                text,
                "--now",
                now,
                "--tz",
                tz,
                "--json",
            ],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "LLM_PROVIDER": "rules"},
        )
        assert got.json() == json.loads(cli.stdout)
    bad = await client.post("/schedules/parse", json={"text": "每天9点", "tz": "Mars/Base"})
    assert bad.json()["status"] == "not_schedule"
    assert "unknown time zone" in bad.json()["error"]


async def test_jobs_from_a_sentence_and_their_changes(make_api: Any, tmp_path: Path) -> None:
    api: Api = await make_api(settings=_settings(tmp_path))
    alice = await api.as_user("ou_alice")
    made = await alice.post(
        "/jobs", json={"text": "每天早上9点检查服务器健康", "chat_id": "oc_ops"}
    )
    assert made.status_code == 201, made.text
    job = made.json()["job"]
    assert job["status"] == "active"
    assert job["next_runs"]
    listed = (await alice.get("/jobs", params={"chat_id": "oc_ops"})).json()
    assert [j["id"] for j in listed] == [job["id"]]
    paused = await alice.post(f"/jobs/{job['id']}/pause")
    assert paused.json()["status"] == "paused"
    # another operator may not change alice's job; a viewer elsewhere may not even try
    carol_op = await api.as_user("ou_erin")
    other = await carol_op.post(f"/jobs/{job['id']}/resume")
    assert other.status_code == 403
    assert other.json()["error"] == "not_yours"
    resumed = await alice.post(f"/jobs/{job['id']}/resume")
    assert resumed.json()["status"] == "active"
    gone = await alice.delete(f"/jobs/{job['id']}")
    assert gone.json()["status"] == "deleted"
    assert (await alice.delete(f"/jobs/{job['id']}")).status_code == 404
    nonsense = await alice.post("/jobs", json={"text": "hello there", "chat_id": "oc_ops"})
    assert nonsense.status_code == 422
    elsewhere = await alice.post("/jobs", json={"text": "每天9点检查", "chat_id": "oc_other"})
    assert elsewhere.status_code == 403
    assert elsewhere.json()["needs"] == "operator"


async def test_silences_made_and_ended_by_approvers(make_api: Any, tmp_path: Path) -> None:
    api: Api = await make_api(settings=_settings(tmp_path))
    alice, bob = await api.as_user("ou_alice"), await api.as_user("ou_bob")
    body = {"chat_id": "oc_ops", "matcher": "alertname=DiskFull", "duration": "2h"}
    assert (await alice.post("/silences", json=body)).status_code == 403
    made = await bob.post("/silences", json={**body, "reason": "maintenance"})
    assert made.status_code == 201
    silence = made.json()
    assert [s["id"] for s in (await alice.get("/silences")).json()] == [silence["id"]]
    bare = await bob.post("/silences", json={**body, "matcher": "DiskFull"})
    assert bare.status_code == 422
    # a silence of every alert, or over 24 h, is decided on its card by a second approver
    for broad in ({"matcher": 'alertname=~".*"'}, {"duration": "3d"}):
        refused = await bob.post("/silences", json={**body, **broad})
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"] == "needs_confirmation"
        assert "/silence" in refused.json()["message"]
    ended = await bob.delete(f"/silences/{silence['id']}")
    assert ended.status_code == 200
    assert (await bob.delete(f"/silences/{silence['id']}")).status_code == 409
    assert (await alice.get("/silences")).json() == []
    audit = await api.bot.rows(
        "SELECT kind, actor FROM incident_events WHERE kind LIKE '%silence%' ORDER BY id"
    )
    assert [tuple(a) for a in audit] == [
        ("silence.created", "ou_bob"),
        ("api.silence.created", "ou_bob"),
        ("silence.ended", "ou_bob"),
        ("api.silence.ended", "ou_bob"),
    ]


async def test_catalogue_and_report(make_api: Any, tmp_path: Path) -> None:
    api: Api = await make_api(settings=_settings(tmp_path))
    client = await api.as_user("ou_dave")
    plugins = (await client.get("/plugins")).json()
    assert "http_check" in {p["name"] for p in plugins}
    assert (await client.get("/runbooks")).json()[0]["name"] == "web-down"
    assert "policy" in (await client.get("/policy")).json()
    check = await client.post("/policy/check", json={"plugin": "http_check", "params": {}})
    assert check.status_code == 200
    assert check.json()["kind"] in ("auto", "approve", "refuse")
    assert (await client.post("/policy/check", json={"plugin": "nope"})).status_code == 404
    report = await client.get("/reports", params={"period": "7d"})
    assert report.status_code == 200
    assert report.json()["hours"] == 168
    assert (await client.get("/reports", params={"period": "9y"})).status_code == 422


async def test_too_many_requests_are_429_with_retry_after(make_api: Any, tmp_path: Path) -> None:
    api: Api = await make_api(settings=_settings(tmp_path, api={"key_rate": 0.5, "key_burst": 3}))
    client = await api.as_user("ou_alice")
    answers = [await client.get("/incidents") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert int(answers[-1].headers["retry-after"]) >= 1
    # another key of another person has its own bucket
    assert (await (await api.as_user("ou_bob")).get("/incidents")).status_code == 200


async def test_per_address_limit_counts_before_the_key(make_api: Any, tmp_path: Path) -> None:
    api: Api = await make_api(settings=_settings(tmp_path, api={"ip_rate": 0.5, "ip_burst": 2}))
    client = api.client("lko_guessing")
    codes = [(await client.get("/incidents")).status_code for _ in range(3)]
    assert codes == [401, 401, 429]


async def test_the_stream_reports_changes_as_they_happen(make_api: Any, tmp_path: Path) -> None:
    async with health_service(tmp_path / "healthy-web") as url:
        api: Api = await make_api(settings=_settings(tmp_path), incidents=True)
        client = await api.as_user("ou_alice")
        seen: list[tuple[str, dict[str, Any]]] = []
        connected = asyncio.Event()

        async def listen() -> None:
            async with client.stream("GET", "/stream", params={"seconds": 30}) as answer:
                assert answer.status_code == 200
                name = ""
                async for line in answer.aiter_lines():
                    if line.startswith(": connected"):
                        connected.set()
                    elif line.startswith("event: "):
                        name = line[7:]
                    elif line.startswith("data: "):
                        seen.append((name, json.loads(line[6:])))

        listener = asyncio.create_task(listen())
        try:
            await asyncio.wait_for(connected.wait(), 10)
            await fire(api.bot, url)
            await wait_until(
                lambda: any(n == "incident" and d["op"] == "insert" for n, d in seen),
                what="the new incident on the stream",
            )
            await wait_until(
                lambda: any(n == "gate" and d["status"] == "pending" for n, d in seen),
                timeout=15,
                what="its gate on the stream",
            )
        finally:
            listener.cancel()


async def test_apikey_cli_prints_once_lists_and_revokes(world: World) -> None:
    env = {**os.environ, "DATABASE_URL": world.db_url, "LARKOPS_HOME": str(world.tmp)}
    probe = (
        "import sys; from bot.cli import main; code = main(sys.argv[1:]); "
        "heavy = [m for m in ('lark_oapi', 'bot.app', 'uvicorn', 'fastapi') if m in sys.modules]; "
        "print('HEAVY', heavy, file=sys.stderr); sys.exit(code)"
    )

    def larkops(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", probe, *args], capture_output=True, text=True, env=env
        )

    made = larkops("apikey", "create", "--name", "ci", "--owner", "ou_alice")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("lko_")
    assert "HEAVY []" in made.stderr
    listed = larkops("apikey", "list", "--json")
    assert listed.returncode == 0
    entries = [json.loads(line) for line in listed.stdout.splitlines()]
    assert entries[0]["owner"] == "ou_alice"
    assert entries[0]["prefix"] == key.split("_")[1]
    assert key not in listed.stdout  # the key itself is never shown again
    stored = await _stored(world)
    assert key.split("_")[2] not in stored
    assert larkops("apikey", "revoke", entries[0]["prefix"]).returncode == 0
    assert larkops("apikey", "revoke", entries[0]["prefix"]).returncode == 1
    again = [json.loads(line) for line in larkops("apikey", "list", "--json").stdout.splitlines()]
    assert again[0]["revoked_at"] is not None
    assert larkops("apikey", "create", "--name", "x", "--owner", "alice").returncode == 2


async def _stored(world: World) -> str:
    from sqlalchemy import text

    async with world.db.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM api_keys"))).all()
    return repr(rows)


async def test_a_critical_fix_needs_two_approvers_and_not_its_requester(
    make_api: Any, tmp_path: Path
) -> None:
    from tests.lark.test_plugin_commands import settings_for as plugin_settings

    settings = plugin_settings(tmp_path)
    template = settings["plugins"]["settings"]["command"]["templates"]["make_marker"]
    template["risk"] = "critical"
    settings["approvers"] = ["ou_alice", "ou_bob", "ou_carol"]
    api: Api = await make_api(settings=settings)
    await api.bot.send("/run command template=make_marker args.name=web", user="ou_alice")
    card = await api.bot.expect_reply(contains="make_marker")
    alice, bob, carol = [await api.as_user(who) for who in ("ou_alice", "ou_bob", "ou_carol")]
    gates = (await alice.get("/gates", params={"status": "pending"})).json()
    assert len(gates) == 1
    gate = gates[0]
    assert gate["required_approvals"] == 2
    assert gate["requester"] == "ou_alice"
    assert gate["chat_id"] == "oc_ops"
    own = await alice.post(f"/gates/{gate['id']}/decision", json={"decision": "approve"})
    assert own.status_code == 403
    assert own.json()["error"] == "own_request"
    first = await bob.post(f"/gates/{gate['id']}/decision", json={"decision": "approve"})
    assert first.status_code == 200
    assert (first.json()["decided"], first.json()["approvals"]) == (False, 1)
    again = await bob.post(f"/gates/{gate['id']}/decision", json={"decision": "approve"})
    assert again.status_code == 409  # the same person cannot count twice
    second = await carol.post(f"/gates/{gate['id']}/decision", json={"decision": "approve"})
    assert second.status_code == 200
    assert second.json()["decided"] is True
    # the fix ran (once) and the Feishu card says so, as after two clicks
    await wait_until(lambda: (tmp_path / "marker-web").exists(), timeout=15, what="the fix")
    await api.bot.emulator.wait_for_bot_message(
        "oc_ops",
        lambda m: m.message_id == card.message_id and "ou_carol" in json.dumps(m.card),
        15,
    )
