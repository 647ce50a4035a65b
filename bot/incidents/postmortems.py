"""Postmortem drafts published as Feishu documents and linked on the incident card.

With `postmortems: {enabled: true}` every resolved incident gets one (each sweep looks for
incidents resolved in the last day without one; the first replica to claim it drafts it);
`/postmortem <id>` drafts it again, as a new document. The draft is the structured template of
`workflows.postmortem`, worded by `cards.postmortem`.

    postmortems = Postmortems(settings, db, api, presenter)
    url = await postmortems.publish(incident_id, by="ou_alice")
"""

from __future__ import annotations

from datetime import timedelta

from bot.config import Settings
from bot.incidents.presenter import LarkPresenter
from bot.lark.api import LarkApi, LarkApiError
from bot.logs import get_logger
from cards.postmortem import postmortem_blocks, postmortem_title
from storage import incidents, postmortems
from storage.database import Database
from storage.models import Diagnosis
from workflows.postmortem import draft

log = get_logger(__name__)
RECENT = timedelta(days=1)


class Postmortems:
    def __init__(
        self, settings: Settings, db: Database, api: LarkApi, presenter: LarkPresenter
    ) -> None:
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
        found = draft(
            incident,
            await incidents.timeline(self.db, incident_id, limit=500),
            await incidents.latest(self.db, Diagnosis, incident_id),
            await incidents.executions(self.db, incident_id),
        )
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
        return self.url(document)
