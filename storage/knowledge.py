"""Incident memory and runbooks as pgvector embeddings, queried by cosine distance.

Usage::

    async with db.session() as session:
        await remember(session, kind="incident", source_id="42", title="disk full on db-1",
                       content="...", embedding=vector, model="all-minilm-l6-v2")
        for item, distance in await nearest(session, query_vector, limit=3):
            ...
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import EMBEDDING_DIMENSIONS, Knowledge


def _check(embedding: Sequence[float]) -> list[float]:
    if len(embedding) != EMBEDDING_DIMENSIONS:
        raise ValueError(
            f"embedding has {len(embedding)} dimensions; the knowledge table holds "
            f"{EMBEDDING_DIMENSIONS}"
        )
    return [float(x) for x in embedding]


async def remember(
    session: AsyncSession,
    *,
    kind: str,
    source_id: str,
    title: str,
    content: str,
    embedding: Sequence[float],
    model: str,
    meta: dict[str, Any] | None = None,
) -> int:
    """Insert or replace the item (kind, source_id); returns its id."""
    insertion = insert(Knowledge).values(
        kind=kind,
        source_id=source_id,
        title=title,
        content=content,
        embedding=_check(embedding),
        embedding_model=model,
        meta=meta or {},
    )
    replaced = ("title", "content", "embedding", "embedding_model", "metadata")  # column names
    upsert = insertion.on_conflict_do_update(
        constraint="uq_knowledge_kind_source",
        set_={column: insertion.excluded[column] for column in replaced},
    ).returning(Knowledge.id)
    return int((await session.execute(upsert)).scalar_one())


async def nearest(
    session: AsyncSession,
    embedding: Sequence[float],
    *,
    limit: int = 5,
    kind: str | None = None,
) -> list[tuple[Knowledge, float]]:
    """The `limit` items closest to `embedding` (cosine distance, smallest first)."""
    distance = Knowledge.embedding.cosine_distance(_check(embedding)).label("distance")
    query = select(Knowledge, distance).order_by(distance).limit(limit)
    if kind is not None:
        query = query.where(Knowledge.kind == kind)
    rows = (await session.execute(query)).all()
    return [(row[0], float(row[1])) for row in rows]
