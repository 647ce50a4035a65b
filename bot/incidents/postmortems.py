"""Postmortem drafts published as Feishu documents and linked on the incident card.

With `postmortems: {enabled: true}` every resolved incident gets one (each sweep looks for
incidents resolved in the last day without one; the first replica to claim it drafts it);
`/postmortem <id>` drafts it again, as a new document. The draft is the structured template of
`workflows.postmortem`, worded by `cards.postmortem`; with a model configured, the model words
its opening summary from the facts (`workflows.llm.summary.word_postmortem`), nothing else.

    postmortems = Postmortems(settings, db, api, presenter)
    url = await postmortems.publish(incident_id, by="ou_alice")
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

from bot.config import Settings
from bot.incidents.presenter import LarkPresenter
from bot.lark.api import LarkApi, LarkApiError, idempotency_key
from bot.logs import get_logger
from cards.postmortem import (
    action_text,
    postmortem_blocks,
    postmortem_title,
    tasks_card,
    tasks_value,
)
from cards.views import PostmortemView, TasksView
from storage import incidents, postmortems
from storage.database import Database
from storage.models import Diagnosis, Incident
from workflows.postmortem import draft, facts_of

Words = Callable[[Mapping[str, Any]], Awaitable[str | None]]

log = get_logger(__name__)
RECENT = timedelta(days=1)


class Postmortems:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        api: LarkApi,
        presenter: LarkPresenter,
        words: Words | None = None,
    ) -> None:
        self.words = words  # a model's wording of the summary (None: the template alone)
        self.settings = settings
        self.config = settings.postmortems
        self.db = db
        self.api = api
        self.presenter = presenter

    def url(self, document_id: str) -> str:
        return self.config.url.format(document_id=document_id)

    async def sweep(self) -> int:
        """Draft the postmortems of incidents resolved lately that have none; how many."""
        if not self.config.enabled:
            return 0
        made = 0
        for incident_id in await postmortems.waiting(self.db, RECENT):
            if not await postmortems.claim(self.db, incident_id, by="system"):
                continue
            try:
                await self.publish(incident_id, by="system")
                made += 1
            except LarkApiError as exc:  # the row stays without a document: /postmortem redoes it
                log.warning("postmortem.refused", incident=incident_id, msg=exc.msg[:200])
        return made

    async def publish(self, incident_id: int, *, by: str) -> str:
        """Draft the incident's postmortem as a new document; its URL."""
        incident = await incidents.get_incident(self.db, incident_id)
        if incident is None:
            raise LookupError(incident_id)
        await postmortems.claim(self.db, incident_id, by=by)
        found = await self._draft(incident)
        if self.words is not None:
            found = replace(found, worded=await self.words(facts_of(found)) or "")
        say, zone = self.presenter.say, self.presenter.zone
        document = await self.api.create_document(
            postmortem_title(found, say), folder_token=self.config.folder_token
        )
        await self.api.add_blocks(document, postmortem_blocks(found, say, zone))
        await postmortems.published(self.db, incident_id, document)
        await incidents.record_event(
            self.db, incident_id, "postmortem.drafted", actor=by, data={"document_id": document}
        )
        await self.presenter.show(incident_id)
        await self._offer_tasks(incident, found)
        return self.url(document)

    async def _draft(self, incident: Incident) -> PostmortemView:
        return draft(
            incident,
            await incidents.timeline(self.db, incident.id, limit=500),
            await incidents.latest(self.db, Diagnosis, incident.id),
            await incidents.executions(self.db, incident.id),
        )

    def tasks_view(self, incident: Incident, found: PostmortemView) -> TasksView:
        """The action items and their owner: who acknowledged it, else who resolved it."""
        owner = next(
            (
                p
                for p in (incident.acknowledged_by, incident.resolved_by)
                if p and p.startswith("ou_")
            ),
            None,
        )
        return TasksView(incident.id, incident.title, found.actions, owner)

    async def _offer_tasks(self, incident: Incident, found: PostmortemView) -> None:
        """The card offering the action items as tasks, in the alert chat (once)."""
        row = await postmortems.of_incident(self.db, incident.id)
        if not found.actions or not incident.chat_id or row is None or row.tasks_by is not None:
            return
        view = self.tasks_view(incident, found)
        card = tasks_card(view, self.presenter.say, tasks_value(incident.id, self.presenter.key))
        key = idempotency_key("postmortem-tasks", str(incident.id))
        await self.api.send_card(incident.chat_id, card, uuid=key)

    async def make_tasks(self, incident_id: int, *, by: str) -> TasksView | None:
        """The action items as Feishu tasks, confirmed by `by` (None: confirmed before)."""
        incident = await incidents.get_incident(self.db, incident_id)
        if incident is None or not await postmortems.claim_tasks(self.db, incident_id, by=by):
            return None
        found = await self._draft(incident)
        view, say = self.tasks_view(incident, found), self.presenter.say
        about, guids = postmortem_title(found, say), []
        try:  # the same client token again gets the same task: a retry makes no duplicates
            for number, (code, subject) in enumerate(view.actions, 1):
                guid = await self.api.create_task(
                    action_text(code, subject, say),
                    about,
                    [view.owner] if view.owner else [],
                    uuid=idempotency_key("postmortem-task", str(incident_id), str(number)),
                )
                guids.append(guid)
        except LarkApiError:
            await postmortems.release_tasks(self.db, incident_id)  # an approver may try again
            raise
        await postmortems.tasks_made(self.db, incident_id, guids)
        await incidents.record_event(
            self.db, incident_id, "postmortem.tasks", actor=by, data={"tasks": guids}
        )
        return TasksView(incident.id, incident.title, view.actions, view.owner, by, len(guids))
