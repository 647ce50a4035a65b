"""Incident memory on the real embedded Postgres: remember finished incidents, recall them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import insert, text, update

from storage.database import Database
from storage.knowledge import explain, similarity_query
from storage.models import (
    Alert,
    Diagnosis,
    Execution,
    Incident,
    IncidentEvent,
    Knowledge,
    Proposal,
)
from workflows.memory.embedding import HashingEmbedder
from workflows.memory.recall import IncidentMemory, Recollection

SECRETS = ("hunter2", "abcDEF0123456789tokenXYZ", "zzTopSecretBearer99", "s3cr3t-note-pass")


@dataclass
class Case:
    """One past incident and how it went."""

    title: str
    labels: dict[str, str]
    annotation: str
    diagnosis: str = ""
    hypothesis: str = ""
    fix: tuple[str, dict[str, Any]] | None = None
    fix_ok: bool = True
    verified: bool = True
    status: str = "resolved"
    by_hand: str | None = None
    reason: str | None = None
    service: str = ""
    extra: dict[str, str] = field(default_factory=dict)


CASES = {
    "disk": Case(
        "DiskFull on db-1",
        {"alertname": "DiskFull", "service": "db", "instance": "db-1:9100", "job": "node"},
        "/var/lib/postgresql on db-1 is 97% full",
        "old WAL segments and logs filled /var/lib/postgresql",
        "log rotation stopped; /var/log/postgresql grew to 40 GB",
        ("command", {"template": "clean_logs", "host": "db-1"}),
    ),
    "web": Case(
        "WebDown shop",
        {"alertname": "WebDown", "service": "web", "instance": "web-3:443"},
        "https://shop.example.com returns 502 Bad Gateway",
        "nginx upstream pool empty: the app containers are crash looping",
        "bad release of the web app",
        ("command", {"template": "restart_web", "service": "web"}),
    ),
    "pg": Case(
        "PostgresTooManyConnections on db-2",
        {"alertname": "PostgresTooManyConnections", "service": "db", "instance": "db-2:5432"},
        "498 of 500 connections used",
        "connection leak in the billing service",
        "billing opens a connection per request",
        ("kubernetes", {"action": "rollout_restart", "namespace": "prod", "name": "billing"}),
    ),
    "cert": Case(
        "CertExpiringSoon api.example.com",
        {"alertname": "CertExpiringSoon", "service": "ingress", "namespace": "edge"},
        "TLS certificate for api.example.com expires in 5 days",
        verified=False,
        by_hand="renewed the certificate with certbot and reloaded nginx",
    ),
    "redis": Case(
        "RedisMemoryHigh cache-1",
        {"alertname": "RedisMemoryHigh", "service": "cache", "instance": "cache-1:6379"},
        "redis memory 95% of maxmemory",
        "keys without TTL from the session store",
        "session keys never expire",
        ("command", {"template": "flush_expired", "host": "cache-1"}),
        fix_ok=False,
        verified=False,
        status="escalated",
        reason="the fix failed: flush_expired exited 1",
    ),
    "crash": Case(
        "KubePodCrashLooping payments",
        {"alertname": "KubePodCrashLooping", "namespace": "payments", "job": "kube-state"},
        "pod payments-api restarting 12 times in 10 minutes",
        "OOMKilled: the memory limit is 256Mi",
        "memory limit too low",
        ("kubernetes", {"action": "set_memory", "namespace": "payments", "limit": "512Mi"}),
    ),
    "kafka": Case(
        "订单消息积压 mq-1",
        {"alertname": "KafkaConsumerLag", "service": "orders", "instance": "mq-1:9092"},
        "kafka 消费者积压 12 万条，订单消息延迟",
        "消费者线程卡死",
        "订单消费者死锁",
        ("command", {"template": "restart_consumer", "service": "orders"}),
    ),
    "node": Case(
        "NodeNotReady node-4",
        {"alertname": "NodeNotReady", "instance": "node-4", "job": "kubelet"},
        "kubelet stopped posting node status",
        verified=False,
        by_hand="rebooted the node from the console",
    ),
    "latency": Case(
        "HighLatency api-gateway",
        {"alertname": "HighLatency", "service": "gateway", "instance": "gw-2:8080"},
        "p99 latency 3.2 s on api-gateway",
        "slow queries after the 14:00 deploy",
        "missing index on orders.created_at",
        ("kubernetes", {"action": "rollback", "namespace": "prod", "name": "gateway"}),
    ),
    "backup": Case(
        "BackupFailed db-3",
        {"alertname": "BackupFailed", "service": "backup", "instance": "db-3"},
        "nightly backup of db-3 failed: S3 upload 403 Forbidden",
        verified=False,
        by_hand="rotated the S3 credentials of the backup job",
    ),
    "login": Case(
        "LoginFailures on auth-1",
        {"alertname": "LoginFailures", "service": "auth", "instance": "auth-1", "token": "t0k"},
        "login failed for admin with password=hunter2; the probe sent "
        "Authorization: Bearer abcDEF0123456789tokenXYZ",
        "a probe with stale credentials (password=hunter2)",
        verified=False,
        by_hand="revoked the old Bearer zzTopSecretBearer99 and fixed the probe",
    ),
}


async def add_incident(db: Database, case: Case) -> int:
    """An incident as the workflow leaves it: alert, diagnosis, proposal, execution, events."""
    run_id = uuid.uuid4()
    finished = case.status in ("resolved", "escalated")
    async with db.session() as session:
        incident = Incident(
            run_id=run_id,
            fingerprint=uuid.uuid4().hex,
            status=case.status,
            severity="critical",
            title=case.title,
            service=case.labels.get("service") or case.service or None,
            labels={**case.labels, **case.extra},
            resolved_at=datetime.now(UTC) if case.status == "resolved" else None,
            resolved_by=("ou_ops" if case.by_hand else None) if finished else None,
            resolved_note=case.by_hand,
            escalation_reason=case.reason,
        )
        session.add(incident)
        await session.flush()
        found = incident.id
        session.add(
            Alert(
                incident_id=found,
                source="alertmanager",
                fingerprint=incident.fingerprint,
                title=case.title,
                labels=case.labels,
                annotations={"summary": case.annotation},
            )
        )
        if case.diagnosis:
            session.add(
                Diagnosis(
                    incident_id=found,
                    run_id=run_id,
                    provider="rules",
                    summary=case.diagnosis,
                    hypotheses=[[case.hypothesis, 0.8], ["something else", 0.1]],
                )
            )
        if case.fix is not None:
            plugin, params = case.fix
            session.add(
                Proposal(incident_id=found, run_id=run_id, plugin=plugin, params=params, risk="low")
            )
            session.add(
                Execution(
                    run_id=run_id,
                    incident_id=found,
                    step="execute",
                    plugin=plugin,
                    params=params,
                    status="succeeded" if case.fix_ok else "failed",
                    summary="done" if case.fix_ok else "exited 1",
                )
            )
        if case.verified:
            session.add(
                IncidentEvent(
                    incident_id=found, kind="workflow.verified", message="ok", data={"ok": True}
                )
            )
        if case.by_hand and finished:
            session.add(
                IncidentEvent(
                    incident_id=found,
                    kind="incident.resolved_by_hand",
                    actor="ou_ops",
                    message=case.by_hand,
                )
            )
    return found


@pytest.fixture
async def memory(migrated_db: Database) -> IncidentMemory:
    return IncidentMemory(migrated_db, HashingEmbedder())


async def seed(memory: IncidentMemory) -> dict[str, int]:
    ids = {name: await add_incident(memory.db, case) for name, case in CASES.items()}
    for incident_id in ids.values():
        assert await memory.remember_incident(incident_id) is not None
    return ids


async def test_a_new_disk_full_recalls_the_old_one_with_its_fix(memory: IncidentMemory) -> None:
    ids = await seed(memory)
    new = await add_incident(
        memory.db,
        Case(
            "DiskFull on db-7",
            {"alertname": "DiskFull", "service": "db", "instance": "db-7:9100", "job": "node"},
            "/var on db-7 is 96% full",
            status="diagnosing",
        ),
    )
    found = await memory.similar(new)
    assert found, "nothing recalled"
    first = found[0]
    assert first == Recollection(
        incident_id=ids["disk"],
        title="DiskFull on db-1",
        similarity=first.similarity,
        fix="command host=db-1 template=clean_logs",  # jsonb orders the keys
        outcome="verified",
        kind="incident",
        snippet=first.snippet,
    )
    assert 0.3 < first.similarity <= 1.0
    assert "clean_logs" in first.snippet
    assert "log rotation stopped" in first.snippet
    assert [seen.similarity for seen in found] == sorted(
        (seen.similarity for seen in found), reverse=True
    )
    assert all(seen.similarity >= 0.2 for seen in found)
    assert new not in {seen.incident_id for seen in found}
    # the new incident, once resolved and remembered, never recalls itself
    async with memory.db.session() as session:
        await session.execute(update(Incident).where(Incident.id == new).values(status="resolved"))
    assert await memory.remember_incident(new) is not None
    again = await memory.similar(new, limit=3)
    assert again[0].incident_id == ids["disk"]
    assert new not in {seen.incident_id for seen in again}
    by_text = await memory.similar("disk full on db-9", exclude_incident=ids["disk"])
    assert by_text[0].incident_id == new
    assert ids["disk"] not in {seen.incident_id for seen in by_text}


async def test_recall_by_text_in_chinese_and_english(memory: IncidentMemory) -> None:
    ids = await seed(memory)
    kafka = await memory.similar("订单消息积压 mq-3，消费者延迟")
    assert kafka[0].incident_id == ids["kafka"]
    assert kafka[0].fix == "command service=orders template=restart_consumer"
    pods = await memory.similar("payments pod OOMKilled, crash looping")
    assert pods[0].incident_id == ids["crash"]
    redis = await memory.similar("RedisMemoryHigh on cache-2")
    assert (redis[0].incident_id, redis[0].outcome, redis[0].fix) == (
        ids["redis"],
        "escalated",
        None,  # its fix failed: nothing to repeat
    )
    cert = await memory.similar("certificate for api.example.com expires soon", limit=1)
    assert (cert[0].incident_id, cert[0].outcome, cert[0].fix) == (ids["cert"], "resolved", None)
    assert "resolved by hand: renewed the certificate with certbot" in cert[0].snippet
    assert await memory.similar("quantum banana smoothie recipe") == []


async def test_notes_are_numbered_and_recalled(memory: IncidentMemory) -> None:
    ids = await seed(memory)
    first = await memory.add_note(ids["node"], "ou_alice", "重启前先 cordon 节点，drain 之后再重启")
    second = await memory.add_note(ids["node"], "ou_bob", "x" * 5000)
    async with memory.db.session() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT id, source_id, metadata, length(content) FROM knowledge "
                    "WHERE kind = 'note' ORDER BY id"
                )
            )
        ).all()
    assert [(r[0], r[1]) for r in rows] == [
        (first, f"{ids['node']}:1"),
        (second, f"{ids['node']}:2"),
    ]
    assert rows[0][2] == {"incident_id": ids["node"], "author": "ou_alice"}
    assert rows[1][3] == 2000
    found = await memory.similar("drain 节点后重启", limit=3)
    assert (found[0].kind, found[0].incident_id) == ("note", ids["node"])
    assert found[0].title == "NodeNotReady node-4"
    assert found[0].snippet.startswith("重启前先 cordon")
    with pytest.raises(LookupError):
        await memory.add_note(999_999, "ou_alice", "no such incident")
    with pytest.raises(ValueError, match="empty"):
        await memory.add_note(ids["node"], "ou_alice", "  \n ")


async def test_secrets_never_reach_the_knowledge_table(memory: IncidentMemory) -> None:
    ids = await seed(memory)
    await memory.add_note(ids["login"], "ou_alice", "the probe used token=s3cr3t-note-pass")
    async with memory.db.session() as session:
        stored = (
            await session.execute(
                text("SELECT title || content || metadata::text || source_id FROM knowledge")
            )
        ).scalars()
        dump = "\n".join(stored)
    assert "LoginFailures on auth-1" in dump
    assert "***" in dump
    for secret in SECRETS:
        assert secret not in dump
    found = await memory.similar("LoginFailures auth-1 password", limit=1)
    assert found[0].incident_id == ids["login"]
    assert all(secret not in found[0].snippet for secret in SECRETS)


async def test_only_finished_incidents_are_remembered(memory: IncidentMemory) -> None:
    open_one = await add_incident(
        memory.db, Case("DiskFull on db-5", {"alertname": "DiskFull"}, "full", status="diagnosing")
    )
    assert await memory.remember_incident(open_one) is None
    assert await memory.remember_incident(424242) is None
    assert await memory.similar(424242) == []
    async with memory.db.session() as session:
        assert await session.scalar(text("SELECT count(*) FROM knowledge")) == 0
    # remembering again refreshes the one row
    done = await add_incident(memory.db, CASES["web"])
    first = await memory.remember_incident(done)
    assert await memory.remember_incident(done) == first
    async with memory.db.session() as session:
        row = await session.get(Knowledge, first)
        assert row is not None
        assert row.embedding_model == "hashing-ngram-384-v1"
        assert row.meta["fix"] == "command service=web template=restart_web"
        assert row.meta["outcome"] == "verified"
        assert row.meta["resolved_at"]
        assert row.meta["title"] == "WebDown shop"
        assert "labels: alertname=WebDown service=web instance=web-3:443" in row.content


async def test_the_similarity_query_uses_the_hnsw_index(memory: IncidentMemory) -> None:
    """At ~2000 rows after ANALYZE the planner already prefers the index to a sort."""
    hashing = HashingEmbedder()
    services = ["db", "web", "cache", "queue", "auth", "billing", "search", "gateway"]
    alerts = ["DiskFull", "WebDown", "HighLatency", "TooManyConnections", "CertExpiring"]
    rows = [
        {
            "kind": "incident" if n % 4 else "note",
            "source_id": f"bulk-{n}",
            "title": f"{alerts[n % 5]} on {services[n % 8]}-{n}",
            "content": "",
            "embedding": hashing.embed_one(
                f"{alerts[n % 5]} on {services[n % 8]}-{n} 第{n}次 告警 {services[(n * 7) % 8]}"
            ),
            "embedding_model": hashing.name,
            "meta": {"incident_id": n},
        }
        for n in range(2000)
    ]
    async with memory.db.session() as session:
        await session.execute(insert(Knowledge), rows)
    async with memory.db.engine.connect() as conn:
        await conn.execute(text("ANALYZE knowledge"))
        await conn.commit()
    query = similarity_query(
        hashing.embed_one("DiskFull on db-7"),
        kinds=["incident", "note"],
        limit=5,
        where=[~Knowledge.meta.contains({"incident_id": 7})],
    )
    async with memory.db.session() as session:
        await session.execute(text("SET LOCAL hnsw.iterative_scan = strict_order"))
        plan = "\n".join(await explain(session, query))
    assert "Index Scan using ix_knowledge_embedding_hnsw" in plan, plan
    found = await memory.similar("DiskFull on db-7", limit=5, exclude_incident=7)
    assert len(found) == 5
    assert all(seen.title.startswith("DiskFull") for seen in found)
    assert 7 not in {seen.incident_id for seen in found}
