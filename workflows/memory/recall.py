"""Incident memory: finished incidents and operators' notes, recalled by similarity.

A finished incident (resolved or escalated) is remembered as a short document — what broke,
what the diagnosis found, what fixed it, how it ended — redacted, embedded and upserted into the
`knowledge` table (kind `incident`, one row per incident). Operators add notes (kind `note`).
A new incident, or any text, then recalls the closest ones through the HNSW index, with their
fix and outcome.

Usage::

    memory = IncidentMemory(db, build_embedder("hashing"))
    await memory.remember_incident(41)                     # when incident 41 is resolved
    await memory.add_note(41, "ou_alice", "logrotate was disabled on db-1 by the last deploy")
    for seen in await memory.similar(42):                  # the new incident 42
        print(seen.incident_id, f"{seen.similarity:.2f}", seen.fix, seen.outcome)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storage import incidents, memories
from storage.database import Database
from storage.incidents import FINAL
from storage.knowledge import nearest_among, remember
from storage.models import Knowledge
from workflows.memory.document import ENDINGS, Story, clip, describe, lesson, redact
from workflows.memory.embedding import Embedder

KINDS = ("incident", "note")
NOTE_LIMIT = 2000  # characters of a note kept
SNIPPET = 200  # characters of a recollection's snippet

# what is remembered: how incidents ended, fixed or handed to people (an escalated incident is
# remembered again when it is resolved)
REMEMBERED = (*FINAL, "escalated")


@dataclass(frozen=True)
class Recollection:
    """One remembered incident or note, as close to the query as `similarity` (0..1)."""

    incident_id: int | None
    title: str
    similarity: float
    fix: str | None
    outcome: str | None
    kind: str
    snippet: str


class IncidentMemory:
    """Remembers finished incidents and notes; recalls the ones like a new incident or a text."""

    def __init__(self, db: Database, embedder: Embedder, *, ef_search: int = 64) -> None:
        self.db = db
        self.embedder = embedder
        self.ef_search = ef_search

    async def remember_incident(self, incident_id: int) -> int | None:
        """Store (or refresh) the memory of a finished incident; returns its knowledge id, or
        None when the incident does not exist or is not finished (resolved or escalated)."""
        rows = await memories.story_rows(self.db, incident_id, statuses=REMEMBERED, endings=ENDINGS)
        if rows is None:
            return None
        story = Story(
            incident=rows.incident,
            alert=rows.alert,
            diagnosis=rows.diagnosis,
            proposal=rows.proposal,
            execution=rows.execution,
            events=rows.events,
        )
        document, essence = story.document(), story.essence()
        [vector] = await self.embedder.embed([essence])
        meta = {
            "incident_id": incident_id,
            "title": story.title,
            "fix": story.fix(),
            "outcome": story.outcome(),
            "resolved_at": (
                story.incident.resolved_at.isoformat() if story.incident.resolved_at else None
            ),
        }
        async with self.db.session() as session:
            return await remember(
                session,
                kind="incident",
                source_id=str(incident_id),
                title=story.title,
                content=document,
                embedding=vector,
                model=self.embedder.name,
                meta=meta,
            )

    async def add_note(
        self, incident_id: int, author: str, text: str, *, trace_id: str | None = None
    ) -> int:
        """Keep an operator's note about an incident (redacted, at most 2000 characters) and
        put it on the incident's timeline (`memory.note`); returns its knowledge id. Raises
        LookupError when the incident does not exist and ValueError when the note is empty."""
        note = redact(text.strip())[:NOTE_LIMIT]
        if not note:
            raise ValueError("an empty note")
        incident = await incidents.get_incident(self.db, incident_id)
        if incident is None:
            raise LookupError(f"incident {incident_id} does not exist")
        title = clip(redact(incident.title), 300)
        service = incident.service or ""
        [vector] = await self.embedder.embed([f"{title}\n{redact(service)}\n{note}"])
        kept = await memories.remember_note(
            self.db,
            incident_id,
            title=title,
            content=note,
            embedding=vector,
            model=self.embedder.name,
            meta={"incident_id": incident_id, "author": author},
        )
        await incidents.record_event(
            self.db,
            incident_id,
            "memory.note",
            actor=author,
            message=text[:300],
            trace_id=trace_id,
        )
        return kept

    async def similar(
        self,
        query: int | str,
        limit: int = 5,
        exclude_incident: int | None = None,
        min_similarity: float = 0.2,
    ) -> list[Recollection]:
        """The remembered incidents and notes closest to an incident (by id: its title, service,
        labels and alert text, even while it is open; itself excluded) or to a text."""
        excluded = set() if exclude_incident is None else {exclude_incident}
        if isinstance(query, int):
            pair = await memories.with_latest_alert(self.db, query)
            if pair is None:
                return []
            text = "\n".join(describe(*pair))
            excluded.add(query)
        else:
            text = redact(query)  # an embedding service is outside the process
        [vector] = await self.embedder.embed([text])
        where = [~Knowledge.meta.contains({"incident_id": found}) for found in excluded]
        async with self.db.session() as session:
            rows = await nearest_among(
                session, vector, kinds=KINDS, limit=limit, where=where, ef_search=self.ef_search
            )
        found = [_recollection(item, distance) for item, distance in rows]
        return [seen for seen in found if seen.similarity >= min_similarity]


def _recollection(item: Knowledge, distance: float) -> Recollection:
    meta: dict[str, Any] = item.meta or {}
    raw_id = meta.get("incident_id")
    snippet = clip(item.content, SNIPPET) if item.kind == "note" else lesson(item.content, SNIPPET)
    return Recollection(
        incident_id=raw_id if isinstance(raw_id, int) else None,
        title=item.title,
        similarity=min(1.0, max(0.0, 1.0 - distance)),
        fix=meta.get("fix"),
        outcome=meta.get("outcome"),
        kind=item.kind,
        snippet=snippet,
    )
