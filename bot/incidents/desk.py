"""The incident desk: triage, workflow runs and the Lark presenter, wired together.

Alerts (from webhooks or alert bots in a chat) go through `receive`; a new incident gets its
card at once and its workflow starts; repeats update the card; a resolved alert ends a paused
workflow; a storm updates the chat's storm card. Clicks and commands use `decide`, `resolve`,
`escalate` and `diagnose`; they read incidents through `incident`, `listing`, `timeline` and
`card`, and refusals are `IncidentRefused` with an enumerated reason.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Sequence
from datetime import timedelta
from functools import partial
from typing import Any, Literal

from langgraph.checkpoint.base import BaseCheckpointSaver

from bot.config import Settings
from bot.incidents.postmortems import Postmortems
from bot.incidents.presenter import LarkPresenter, WorkflowPresenter
from bot.incidents.silencing import Silencing
from bot.lark.api import LarkApi
from bot.lark.patcher import CardPatcher
from bot.logs import get_logger
from bot.oncall.handoffs import Handoffs
from bot.oncall.pager import Pager
from bot.oncall.roster import Roster
from bot.oncall.war_room import WarRooms
from bot.roles import decider, gate_policy
from bot.timers import PRODUCTION, Timers
from storage import approvals, incidents, pages
from storage.coordination import Coordination
from storage.database import Database
from storage.models import Incident, IncidentEvent
from storage.statuses import may_acknowledge, may_move
from storage.tasks import cancel
from workflows import gates
from workflows.escalation import Cause
from workflows.follow_ups import FollowUps
from workflows.gates import Click, Verdict
from workflows.incident_graph import GraphDeps
from workflows.intake.alert import ParsedAlert
from workflows.llm.advisor import ModelAdvisor
from workflows.llm.summary import word_postmortem
from workflows.payloads import GateDecision
from workflows.ports import Advisor
from workflows.runs import RunManager
from workflows.triage import Delivery, Hooks, Triage, TriageOutcome, TriageSettings

log = get_logger(__name__)
Refusal = Literal["not_found", "closed", "escalated", "not_resolved"]


class IncidentRefused(Exception):
    """What a person asked of an incident cannot be done: no such incident, it is over
    (`status` says how), it is escalated already, or (a postmortem) it is not resolved yet."""

    def __init__(self, reason: Refusal, incident_id: int, status: str = "") -> None:
        super().__init__(f"incident #{incident_id}: {reason}")
        self.reason = reason
        self.incident_id = incident_id
        self.status = status


class IncidentDesk:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        coordination: Coordination,
        api: LarkApi,
        checkpointer: BaseCheckpointSaver[Any],
        advisor: Advisor,
        signing_key: bytes,
        timers: Timers = PRODUCTION,
    ) -> None:
        self.settings = settings
        self.timers = timers
        self.db = db
        self.patcher = CardPatcher(api, coordination)
        self.roster = Roster(settings, db, api)
        self.presenter = LarkPresenter(
            db, api, self.patcher, settings, signing_key, roster=self.roster
        )
        policy = gate_policy(settings)
        self.runs = RunManager(
            GraphDeps(db, advisor, WorkflowPresenter(self.presenter), policy),
            checkpointer,
            coordination,
            reclaim_after=timers.reclaim_after,
        )
        replica = f"{socket.gethostname()}:{os.getpid()}"
        self.pager = Pager(settings, db, api, self.presenter, self.roster, replica=replica)
        self.presenter.paging = self.pager.escalated
        self.handoffs = Handoffs(settings, db, api, self.roster)
        self.war_rooms = WarRooms(settings, db, api, self.presenter, self.roster)
        words = None
        if isinstance(advisor, ModelAdvisor):  # the model only words the summary
            words = partial(
                word_postmortem, advisor.guard, advisor.scrub, language=settings.language
            )
        self.postmortems = Postmortems(settings, db, api, self.presenter, words)
        self.silencing = Silencing(settings, db, signing_key)
        self._pager_loop: asyncio.Task[None] | None = None
        config = settings.incidents
        self.triage = Triage(
            db,
            TriageSettings(
                dedupe_window=timedelta(minutes=config.dedupe_window_minutes),
                storm_threshold=config.storm_threshold,
                storm_window=timedelta(seconds=config.storm_window_seconds),
                join_by_service=config.join_by_service,
            ),
            Hooks(
                on_new=self._opened,
                on_changed=self.presenter.show,
                on_resolved=self._resolved_by_alert,
                on_storm=self.presenter.storm,
                on_caught=self.presenter.caught,
            ),
        )
        # the inbox's deliveries: their cards and runs follow without holding up intake
        self.follow_ups = FollowUps(self.triage.notify, self.presenter.show)
        self._sweeper: asyncio.Task[None] | None = None
        if not settings.approvers and not settings.admins:
            log.warning(
                "incidents.no_approvers",
                hint="anyone in the chat may approve; set LARKOPS_APPROVERS",
            )

    async def start(self, changed: asyncio.Event | None = None) -> None:
        """Recover, then sweep (every `Timers.sweep_every` while work is in flight; with none,
        when `changed` says an incident opened or a gate changed)."""
        await self.runs.recover()
        if self.timers.sweep_every is not None:
            self._sweeper = asyncio.create_task(
                self.runs.sweep_forever(self.timers.sweep_every, changed)
            )
        on_call = self.pager.enabled or bool(self.roster.schedules)
        wanted = on_call or self.settings.postmortems.enabled or self.war_rooms.dissolving
        if self.timers.page_every is not None and wanted:
            self._pager_loop = asyncio.create_task(
                self.pager.run(self.timers.page_every, also=self._now_and_then)
            )

    async def stop(self) -> None:
        await cancel(self._sweeper, self._pager_loop)
        await self.follow_ups.drain()
        await self.pager.drain()
        await self.runs.drain()
        await self.patcher.drain()

    async def receive(
        self, alerts: Sequence[ParsedAlert], chat_id: str, *, delivery: str | None = None
    ) -> TriageOutcome:
        """Triage a delivery's alerts; `delivery` (its inbound event or message id) makes a
        replay after a crash count once."""
        return await self.triage.receive(alerts, chat_id, delivery=delivery)

    async def receive_batch(
        self, deliveries: Sequence[Delivery], *, wait: bool = True
    ) -> TriageOutcome:
        """Triage many deliveries in one transaction (the inbox claims a storm's webhook
        deliveries together), with the outcome of each in turn. `wait` False (the inbox):
        return once they are committed; new incidents' cards and runs, and the refreshes of
        the cards they folded into, follow in the background (`follow_ups`)."""
        outcome = await self.triage.receive_batch(deliveries, notify=wait)
        if not wait:
            self.follow_ups.add(outcome)
        return outcome

    async def _opened(self, incident_id: int) -> None:
        await self.pager.plan(incident_id)  # before the card: the card shows the plan
        await self.presenter.show(incident_id)
        self.pager.wake()
        incident = await incidents.get_incident(self.db, incident_id)
        if incident is not None and self.war_rooms.wanted(incident):
            room = await self.war_rooms.open(incident, by="system")
            if room.error:
                log.warning("warroom.failed", incident=incident_id, error=room.error)
        await self.diagnose(incident_id, requester=None)

    async def diagnose(self, incident_id: int, *, requester: str | None) -> bool:
        """Start the incident's workflow (storm incidents wait for this)."""
        incident = await incidents.get_incident(self.db, incident_id)
        if incident is None or incident.status not in incidents.WORKFLOW:
            return False
        if requester is not None:  # first: a run the sweep must start keeps its requester
            await incidents.request_run(self.db, incident_id, requester)
        if incident.storm:
            await incidents.update_incident(self.db, incident_id, storm=False)
        self.runs.start(incident_id, str(incident.run_id), requester=requester)
        return True

    async def decide(
        self,
        click: Click,
        roles: frozenset[str],
        user: str,
        chat_id: str | None,
        *,
        trace_id: str | None = None,
    ) -> Verdict:
        """A click on a gate's button (an incident's, a `/run` or scheduled fix's, a silence
        request's) or its decision through the REST API: the gates service decides it under
        the configured rules, for the clicker with their roles in the gate's chat."""
        policy = self.runs.deps.gates
        return await gates.decide(
            self.db, policy, click, decider(roles, user), chat_id, trace_id=trace_id
        )

    async def incident(self, incident_id: int) -> Incident:
        """The incident; `IncidentRefused` (`not_found`) when there is none."""
        incident = await incidents.get_incident(self.db, incident_id)
        if incident is None:
            raise IncidentRefused("not_found", incident_id)
        return incident

    async def listing(self, *, everything: bool) -> Sequence[Incident]:
        """The open incidents (`everything`: recent closed ones too), for `/incidents`."""
        return await incidents.list_incidents(self.db, active_only=not everything)

    async def escalated(self) -> list[Incident]:
        """The escalated incidents not yet resolved (at most 50, latest seen first): `/oncall`
        lists them until someone resolves them."""
        rows = await incidents.list_incidents(self.db, active_only=True, limit=50)
        return [row for row in rows if row.status == "escalated"]

    async def timeline(self, incident_id: int) -> Sequence[IncidentEvent]:
        return await incidents.timeline(self.db, incident_id)

    async def card(self, incident_id: int) -> dict[str, Any] | None:
        """The incident's card as it stands now (its buttons included); None when there is
        no such incident."""
        incident = await incidents.get_incident(self.db, incident_id)
        return await self.presenter.render(incident) if incident is not None else None

    async def postmortem(self, incident_id: int, *, by: str) -> str:
        """Draft a resolved incident's postmortem (again) by hand (`/postmortem`); its URL.
        `IncidentRefused` when there is no such incident or it is not resolved."""
        incident = await self.incident(incident_id)
        if incident.status != "resolved":
            raise IncidentRefused("not_resolved", incident_id, incident.status)
        return await self.postmortems.publish(incident.id, by=by)

    async def on_call(self) -> None:
        """One round of on-call timers: due paging steps, shift changes to announce,
        postmortems to draft."""
        await self.pager.sweep()
        await self._now_and_then()

    async def _now_and_then(self) -> None:
        """The slower on-call timers (the pager's loop runs them every `ALSO_EVERY`)."""
        await self.handoffs.sweep()
        await self.postmortems.sweep()
        await self.war_rooms.dissolve_old()

    async def acknowledge(self, incident_id: int, who: str, *, trace_id: str | None = None) -> str:
        """`who` is on it (/ack, the card's Ack button, the REST API): the first acknowledgement
        stays, its paging stops, the card says who. Returns who acknowledged first;
        `IncidentRefused` when there is no such incident or it is over."""
        incident = await incidents.get_incident(self.db, incident_id)
        if incident is None:
            raise IncidentRefused("not_found", incident_id)
        if not may_acknowledge(incident.status):
            raise IncidentRefused("closed", incident_id, incident.status)
        first = await incidents.acknowledge(self.db, incident_id, who)
        if first == who:
            await incidents.record_event(
                self.db, incident_id, "incident.acknowledged", actor=who, trace_id=trace_id
            )
            await self.pager.stop(incident_id, who)
            await self.presenter.show(incident_id)
        return first

    async def _resolved_by_alert(self, incident_id: int) -> None:
        await self._end_paused(incident_id, {"decision": "resolved", "by": ["alert"]})
        await self.presenter.show(incident_id)
        await self.runs.deps.advisor.remember(incident_id)

    async def _end_paused(self, incident_id: int, decision: GateDecision) -> None:
        await pages.cancel(self.db, incident_id)  # nobody needs paging for it any more
        for gate in await approvals.cancel_open(self.db, incident_id):
            await self.runs.resume(str(gate.run_id), gate.interrupt_id, decision, wait=False)

    async def resolve(self, incident_id: int, who: str, note: str) -> None:
        """An approver resolves by hand (/resolve, the REST API): a paused workflow ends;
        `IncidentRefused` when there is no such incident or it is over."""
        changed = await incidents.set_status(
            self.db,
            incident_id,
            "resolved",
            by="approver",
            resolved_by=who,
            resolved_note=note[:500] or None,
        )
        if not changed:
            incident = await incidents.get_incident(self.db, incident_id)
            if incident is None:
                raise IncidentRefused("not_found", incident_id)
            raise IncidentRefused("closed", incident_id, incident.status)
        await incidents.record_event(
            self.db, incident_id, "incident.resolved_by_hand", actor=who, message=note
        )
        await self._end_paused(incident_id, {"decision": "resolved", "by": [who]})
        await self.presenter.show(incident_id)
        await self.runs.deps.advisor.remember(incident_id)

    async def escalate(self, incident_id: int, who: str) -> None:
        """An approver escalates by hand (/escalate, the REST API): a paused workflow ends
        escalated, else the incident is; `IncidentRefused` when there is no such incident, it
        is escalated already, or it is over."""
        incident = await incidents.get_incident(self.db, incident_id)
        if incident is None:
            raise IncidentRefused("not_found", incident_id)
        if incident.status == "escalated":
            raise IncidentRefused("escalated", incident_id, incident.status)
        if not may_move(incident.status, "escalated", "approver"):
            raise IncidentRefused("closed", incident_id, incident.status)
        await incidents.record_event(self.db, incident_id, "incident.escalated_by_hand", actor=who)
        paused = await approvals.cancel_open(self.db, incident_id)
        if paused:
            for gate in paused:
                await self.runs.resume(
                    str(gate.run_id),
                    gate.interrupt_id,
                    {"decision": "escalate", "by": [who]},
                    wait=False,
                )
            return
        cause = Cause("by_hand", {"by": who})
        reason = cause.sentence()
        await incidents.set_status(
            self.db,
            incident_id,
            "escalated",
            by="approver",
            escalation_reason=reason,
            escalation=cause.as_json(),
        )
        await self.presenter.show(incident_id)
        await self.presenter.escalate(incident_id, reason)
        await self.runs.deps.advisor.remember(incident_id)
