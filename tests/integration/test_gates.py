"""The gates service on the real Postgres: every verdict a click can get, who may decide a
gate of the usual list and of a list the policy named, and that changing the configuration
after a gate opened does not change who may decide it."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

from sqlalchemy import text

from storage.database import Database
from storage.models import Approval
from workflows import gates
from workflows.approvers import Decider, GatePolicy
from workflows.gates import Click

POLICY = GatePolicy(approvers=("ou_bob",), by_chat={"oc_ops": ("ou_carol",)}, admins=("ou_root",))
CHAT = "oc_ops"


async def opened(
    db: Database,
    *,
    named: tuple[str, ...] = (),
    required: int = 1,
    requester: str | None = "ou_alice",
    policy: GatePolicy = POLICY,
) -> tuple[Approval, Click]:
    run_id = str(uuid.uuid4())
    gate = await gates.open_gate(
        db,
        policy,
        run_id=run_id,
        incident_id=None,
        chat_id=CHAT,
        gate="action",
        token=run_id,
        named=named,
        required=required,
        requester=requester,
    )
    return gate, Click(run_id, "action", run_id, None, "approve", expires=time.time() + 60)


async def audit(db: Database) -> list[tuple[str, str, str | None]]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT kind, actor, data->>'reason' FROM incident_events ORDER BY id")
        )
        return [(str(k), str(a), r) for k, a, r in rows.all()]


async def test_usual_list_names_the_chats_approvers_and_admits_the_approver_role(
    migrated_db: Database,
) -> None:
    gate, click = await opened(migrated_db)
    assert list(gate.allowed_approvers) == ["ou_bob", "ou_carol"]
    assert gate.approvers_named is False
    outsider = await gates.decide(migrated_db, POLICY, click, Decider("ou_x"), CHAT)
    assert outsider.refusal == "not_approver"
    # someone holding the approver role in the chat decides a gate of the usual list
    sre = await gates.decide(migrated_db, POLICY, click, Decider("ou_sre", approver=True), CHAT)
    assert sre.refusal is None
    assert sre.closed
    assert sre.gate is not None
    assert sre.gate.decided_by == "ou_sre"
    again = await gates.decide(migrated_db, POLICY, click, Decider("ou_bob"), CHAT)
    assert again.refusal == "stale"
    assert again.stale
    assert [(kind, reason) for kind, _, reason in await audit(migrated_db)] == [
        ("click.refused", "not_approver"),
        ("click.accepted", None),
        ("click.refused", "stale"),
    ]


async def test_a_named_list_admits_only_its_members_and_admins(migrated_db: Database) -> None:
    _, click = await opened(migrated_db, named=("ou_dba",))
    role = await gates.decide(migrated_db, POLICY, click, Decider("ou_bob", approver=True), CHAT)
    assert role.refusal == "not_approver"  # a usual approver, but the policy named the DBA
    admin = Decider("ou_root", admin=True)
    _, other = await opened(migrated_db, named=("ou_dba",))
    assert (await gates.decide(migrated_db, POLICY, other, admin, CHAT)).closed
    assert (await gates.decide(migrated_db, POLICY, click, Decider("ou_dba"), CHAT)).closed


async def test_a_named_list_equal_to_the_usual_one_stays_named(migrated_db: Database) -> None:
    """The gate remembers where its list came from: it is not inferred by comparing lists."""
    _, click = await opened(migrated_db, named=("ou_bob", "ou_carol"))
    verdict = await gates.decide(migrated_db, POLICY, click, Decider("ou_sre", approver=True), CHAT)
    assert verdict.refusal == "not_approver"


async def test_configuration_changed_after_opening_keeps_the_gate_s_list(
    migrated_db: Database,
) -> None:
    _, click = await opened(migrated_db)
    later = GatePolicy(approvers=("ou_new",), admins=("ou_root",))
    # ou_carol was a usual approver when the gate opened; the gate's own list still names her
    assert (await gates.decide(migrated_db, later, click, Decider("ou_carol"), CHAT)).closed


async def test_the_requester_cannot_approve_but_may_reject(migrated_db: Database) -> None:
    _, click = await opened(migrated_db, requester="ou_bob")
    own = await gates.decide(migrated_db, POLICY, click, Decider("ou_bob"), CHAT)
    assert own.refusal == "own_request"
    reject = Click(click.run_id, click.gate, click.token, None, "reject", click.expires)
    refused = await gates.decide(migrated_db, POLICY, reject, Decider("ou_bob"), CHAT)
    assert refused.closed
    assert refused.gate is not None
    assert refused.gate.status == "rejected"
    relaxed = GatePolicy(approvers=("ou_bob",), requester_may_approve=True)
    _, mine = await opened(migrated_db, requester="ou_bob", policy=relaxed)
    assert (await gates.decide(migrated_db, relaxed, mine, Decider("ou_bob"), CHAT)).closed


async def test_two_approvers_each_count_once(migrated_db: Database) -> None:
    _, click = await opened(migrated_db, required=2)
    first = await gates.decide(migrated_db, POLICY, click, Decider("ou_bob"), CHAT)
    assert first.refusal is None
    assert not first.closed
    assert first.approvals_so_far == 1
    twice = await gates.decide(migrated_db, POLICY, click, Decider("ou_bob"), CHAT)
    assert twice.refusal == "duplicate"
    second = await gates.decide(migrated_db, POLICY, click, Decider("ou_carol"), CHAT)
    assert second.closed
    assert second.approvals_so_far == 2


async def test_late_forged_and_due_clicks_change_nothing(migrated_db: Database) -> None:
    _, click = await opened(migrated_db)
    late = Click(click.run_id, click.gate, click.token, None, "approve", expires=time.time() - 1)
    assert (await gates.decide(migrated_db, POLICY, late, Decider("ou_bob"), CHAT)).refusal == (
        "expired"
    )
    forged = Click("not-a-uuid", click.gate, click.token, None, "approve")
    assert (await gates.decide(migrated_db, POLICY, forged, Decider("ou_bob"), CHAT)).refusal == (
        "unknown"
    )
    elsewhere = Click(click.run_id, click.gate, click.token, 42, "approve")  # another incident's
    assert (
        await gates.decide(migrated_db, POLICY, elsewhere, Decider("ou_bob"), CHAT)
    ).refusal == "unknown"
    # due but not yet swept: refused as expired, then the sweep closes it once
    quick = GatePolicy(ttl=timedelta(0), approvers=("ou_bob",))
    _, due = await opened(migrated_db, policy=quick)
    assert (await gates.decide(migrated_db, quick, due, Decider("ou_bob"), CHAT)).refusal == (
        "expired"
    )
    swept = await gates.sweep(migrated_db, incident_gates=False)
    assert [str(row.run_id) for row in swept] == [due.run_id]
    assert await gates.sweep(migrated_db, incident_gates=False) == []


def test_who_approves_a_chat_without_a_gate() -> None:
    """The report's suggestions and other approver-only buttons: the approver role here, or
    anyone when nothing at all is configured and there is no `roles:` section."""
    nobody = GatePolicy()
    assert nobody.approves(Decider("ou_x"), CHAT)
    assert not GatePolicy(roles_configured=True).approves(Decider("ou_x"), CHAT)
    assert not POLICY.approves(Decider("ou_x"), CHAT)
    assert not GatePolicy(admins=("ou_root",)).approves(Decider("ou_x"), "oc_empty")
    assert POLICY.approves(Decider("ou_x", approver=True), CHAT)
    assert POLICY.usual("oc_other") == ("ou_bob",)
