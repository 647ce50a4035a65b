"""pgvector similarity on the real server: the nearest rows come back, nearest first."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import text

from storage.database import Database
from storage.knowledge import nearest, remember
from storage.models import EMBEDDING_DIMENSIONS


def unit(*weights: float) -> list[float]:
    """A vector whose first components are `weights` (normalised), the rest zero."""
    vector = [*weights, *([0.0] * (EMBEDDING_DIMENSIONS - len(weights)))]
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector]


async def _seed(db: Database) -> None:
    async with db.session() as session:
        await remember(
            session,
            kind="incident",
            source_id="disk",
            title="disk full",
            content="/var is full",
            embedding=unit(1, 0, 0),
            model="test",
        )
        await remember(
            session,
            kind="incident",
            source_id="disk2",
            title="disk almost full",
            content="/var at 95%",
            embedding=unit(0.9, 0.1, 0),
            model="test",
        )
        await remember(
            session,
            kind="incident",
            source_id="cpu",
            title="cpu hot",
            content="load 40",
            embedding=unit(0, 1, 0),
            model="test",
        )
        await remember(
            session,
            kind="runbook",
            source_id="rb-disk",
            title="clean disk",
            content="rotate logs",
            embedding=unit(0.95, 0, 0.05),
            model="test",
        )


async def test_nearest_returns_closest_first(migrated_db: Database) -> None:
    await _seed(migrated_db)
    async with migrated_db.session() as session:
        found = await nearest(session, unit(1, 0.05, 0), limit=3)
    titles = [item.title for item, _ in found]
    assert titles == ["disk full", "disk almost full", "clean disk"]
    distances = [distance for _, distance in found]
    assert distances == sorted(distances)
    assert distances[0] < 0.01


async def test_nearest_filters_by_kind_and_upsert_replaces(migrated_db: Database) -> None:
    await _seed(migrated_db)
    async with migrated_db.session() as session:
        # the cpu incident is re-learned as a disk problem: same (kind, source_id), new content
        await remember(
            session,
            kind="incident",
            source_id="cpu",
            title="cpu was disk",
            content="iowait",
            embedding=unit(1, 0, 0),
            model="test",
        )
    async with migrated_db.session() as session:
        incidents = await nearest(session, unit(0, 1, 0), limit=10, kind="incident")
        count = await session.scalar(text("SELECT count(*) FROM knowledge"))
    assert count == 4
    assert {item.kind for item, _ in incidents} == {"incident"}
    assert "cpu hot" not in [item.title for item, _ in incidents]


async def test_wrong_dimensions_are_refused(migrated_db: Database) -> None:
    async with migrated_db.session() as session:
        with pytest.raises(ValueError, match="dimensions"):
            await nearest(session, [1.0, 0.0])


async def test_similarity_query_can_use_the_hnsw_index(migrated_db: Database) -> None:
    await _seed(migrated_db)
    vector = "[" + ",".join(str(x) for x in unit(1, 0, 0)) + "]"
    async with migrated_db.session() as session:
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        plan = await session.execute(
            text(
                "EXPLAIN SELECT id FROM knowledge ORDER BY embedding <=> CAST(:v AS vector) LIMIT 3"
            ),
            {"v": vector},
        )
        lines = "\n".join(row[0] for row in plan)
    assert "ix_knowledge_embedding_hnsw" in lines
