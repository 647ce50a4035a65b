"""Incident memory and runbooks as pgvector embeddings, queried by cosine distance.

Usage::

    async with db.session() as session:
        await remember(session, kind="incident", source_id="42", title="disk full on db-1",
                       content="...", embedding=vector, model="all-minilm-l6-v2")
        for item, distance in await nearest(session, query_vector, limit=3):
            ...
        found = await nearest_among(session, query_vector, kinds=["incident", "note"], limit=5)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Executable, Select, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import defer
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

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


async def nearest_among(
    session: AsyncSession,
    embedding: Sequence[float],
    *,
    kinds: Sequence[str],
    limit: int = 5,
    where: Sequence[ColumnElement[bool]] = (),
    ef_search: int = 64,
) -> list[tuple[Knowledge, float]]:
    """The `limit` items of `kinds` (and matching `where`) closest to `embedding`, smallest
    cosine distance first, found through the HNSW index.

    For this transaction the index search keeps `ef_search` candidates (at least `limit`;
    pgvector's default is 40) and scans on when filters drop some (`hnsw.iterative_scan =
    strict_order`), so a filter never starves the answer and the order stays exact. The
    items' `embedding` is not loaded (deferred): read it inside the session if you need it.
    """
    await session.execute(
        select(
            func.set_config("hnsw.ef_search", str(max(ef_search, limit)), True),
            func.set_config("hnsw.iterative_scan", "strict_order", True),
        )
    )
    query = similarity_query(embedding, kinds=kinds, limit=limit, where=where)
    rows = (await session.execute(query)).all()
    return [(row[0], float(row[1])) for row in rows]


def similarity_query(
    embedding: Sequence[float],
    *,
    kinds: Sequence[str],
    limit: int,
    where: Sequence[ColumnElement[bool]] = (),
) -> Select[Knowledge, float]:
    """The statement `nearest_among` runs (for EXPLAIN): `ORDER BY embedding <=> :v LIMIT n`,
    the form the HNSW index serves."""
    distance = Knowledge.embedding.cosine_distance(_check(embedding)).label("distance")
    return (
        select(Knowledge, distance)
        .options(defer(Knowledge.embedding))
        .where(Knowledge.kind.in_(list(kinds)), *where)
        .order_by(distance)
        .limit(limit)
    )


class _Explain(Executable, ClauseElement):
    inherit_cache = False

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement


@compiles(_Explain)
def _compile_explain(element: _Explain, compiler: SQLCompiler, **kw: Any) -> str:
    return "EXPLAIN " + compiler.process(element.statement, **kw)


async def explain(session: AsyncSession, statement: ClauseElement) -> list[str]:
    """The plan Postgres picks for `statement` (with its parameters), line by line."""
    return [str(line) for line in (await session.execute(_Explain(statement))).scalars()]
