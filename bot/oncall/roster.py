"""Who is on call: the configured schedules with their groups looked up in Lark and the
overrides made in the chat, fed to the rotation arithmetic (`workflows.oncall.rotation`).

    roster = Roster(settings, db, api)
    watch = await roster.now("primary")                 # Watch(people=("ou_bob",), ...)
    people = await roster.people(["oncall:primary", "ou_lead"])
    called = await roster.called_on("oc_ops", "critical")  # whom an escalation calls on
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

from bot.config import Settings
from bot.logs import get_logger
from cards.views import SwapView
from storage import rotas
from storage.database import Database
from workflows.oncall.rotation import Rota, Standing, Watch, expand, next_handoff, on_call, standing

log = get_logger(__name__)
LOOKUP_SECONDS = 2.0
MAX_SHIFTS = 60  # hand-offs looked through for someone's next shift


class Members(Protocol):
    """Lark's member lists (`bot.lark.api.LarkApi` is one)."""

    async def chat_members(self, chat_id: str) -> frozenset[str]: ...

    async def department_members(self, department_id: str) -> frozenset[str]: ...


# why a swap's answer changes nothing: not the person asked, the offered shift is over (or its
# schedule gone), or no schedule is configured at all
SwapRefusal = Literal["only_other", "expired", "no_schedules"]


class Roster:
    def __init__(self, settings: Settings, db: Database, directory: Members) -> None:
        self.settings = settings
        self.db = db
        self.directory = directory
        self.zone = ZoneInfo(settings.timezone)

    @property
    def schedules(self) -> dict[str, Rota]:
        return self.settings.oncall.schedules

    async def override(self, name: str, person: str, until: datetime, *, by: str) -> None:
        """`person` covers the schedule `name` from now until `until` (/oncall override)."""
        now = datetime.now(UTC)
        await rotas.add_override(self.db, name, person, now, until, by=by, reason="override")

    async def answer_swap(self, swap: SwapView, by: str, *, accept: bool) -> SwapRefusal | None:
        """The answer to a swap offer (the card's Accept / Decline): only the person asked may
        give it, and only before the offered shift is over. Accepted, two overrides make the
        swap: each takes the other's shift."""
        if by != swap.other:
            return "only_other"
        if not self.schedules:
            return "no_schedules"
        if datetime.now(UTC) >= swap.mine[1] or swap.schedule not in self.schedules:
            return "expired"
        if accept:
            reason = f"swap with {swap.asker}"
            await rotas.add_override(
                self.db, swap.schedule, swap.other, *swap.mine, by=by, reason=reason
            )
            await rotas.add_override(
                self.db, swap.schedule, swap.asker, *swap.theirs, by=by, reason=reason
            )
        return None

    async def _group(self, entry: str) -> frozenset[str]:
        """The members of a `chat:` or `dept:` entry (nobody when Lark does not say: the
        lookup is logged, the schedule goes on with the people it has)."""
        kind, key = entry.split(":", 1)
        try:
            async with asyncio.timeout(LOOKUP_SECONDS):
                if kind == "chat":
                    return await self.directory.chat_members(key)
                return await self.directory.department_members(key)
        except Exception as exc:
            log.warning("oncall.lookup_failed", entry=entry, error=str(exc)[:300])
            return frozenset()

    async def members(self, rota: Rota) -> list[tuple[str, ...]]:
        """Each layer's people in rotation order."""
        entries = {u for layer in rota.layers for u in layer.users if ":" in u}
        found = {entry: await self._group(entry) for entry in sorted(entries)}
        return [expand(layer.users, found) for layer in rota.layers]

    async def overrides(self, name: str, rota: Rota) -> list[Standing]:
        """The configuration's overrides, then the chat's, oldest first (the newest wins)."""
        made = await rotas.overrides(self.db, name)
        return [
            *standing(rota, self.zone),
            *(Standing(r.user_id, r.starts_at, r.ends_at) for r in made),
        ]

    async def now(self, name: str, at: datetime | None = None) -> Watch:
        rota = self.schedules[name]
        moment = at or datetime.now(UTC)
        return on_call(
            rota, await self.members(rota), await self.overrides(name, rota), moment, self.zone
        )

    async def next(self, name: str, at: datetime | None = None) -> tuple[datetime, Watch] | None:
        rota = self.schedules[name]
        moment = at or datetime.now(UTC)
        return next_handoff(
            rota, await self.members(rota), await self.overrides(name, rota), moment, self.zone
        )

    async def next_shift(
        self, name: str, person: str, at: datetime | None = None
    ) -> tuple[datetime, datetime] | None:
        """The next stretch after `at` during which `person` is on call (None: none ahead
        within the arithmetic's look-ahead)."""
        rota = self.schedules[name]
        members, standing = await self.members(rota), await self.overrides(name, rota)
        moment = at or datetime.now(UTC)
        for _ in range(MAX_SHIFTS):
            ahead = next_handoff(rota, members, standing, moment, self.zone)
            if ahead is None:
                return None
            moment, watch = ahead
            if person in watch.people:
                after = next_handoff(rota, members, standing, moment, self.zone)
                return (moment, after[0]) if after else None
        return None

    async def people(self, targets: Sequence[str], at: datetime | None = None) -> tuple[str, ...]:
        """The open_ids a level's `notify` names now, each once."""
        found: list[str] = []
        for target in targets:
            if target.startswith("oncall:"):
                name = target.removeprefix("oncall:")
                group = (await self.now(name, at)).people if name in self.schedules else ()
            elif target.startswith(("chat:", "dept:")):
                group = tuple(sorted(await self._group(target)))
            else:
                group = (target,)
            found += [person for person in group if person not in found]
        return tuple(found)

    def answers_for(self, schedule: str, chat_id: str, severity: str) -> bool:
        """Whether schedule `schedule` is paged for incidents of `chat_id` at `severity` (a
        level of their escalation policy names `oncall:<schedule>`)."""
        config = self.settings.escalation
        name = config.policy_for(chat_id, severity) if config.policies else None
        levels = config.policies[name] if name is not None else ()
        return any(schedule in level.schedules() for level in levels)

    async def called_on(
        self, chat_id: str, severity: str, at: datetime | None = None
    ) -> tuple[str, ...] | None:
        """Who an escalated incident of `chat_id` at `severity` calls on now: the first level
        of its escalation policy (whoever the rotation has on call), else, without a policy
        for it, whoever is on call in each schedule. None when no on-call is configured at
        all (the chat's approvers are called on); () when nobody is on call now."""
        config = self.settings.escalation
        name = config.policy_for(chat_id, severity) if config.policies else None
        if name is not None:
            return await self.people(config.policies[name][0].notify, at)
        if not self.schedules:
            return None
        return await self.people([f"oncall:{schedule}" for schedule in self.schedules], at)

    async def on_call_anywhere(self) -> tuple[str, ...]:
        """Everybody on call now in some schedule."""
        return await self.people([f"oncall:{name}" for name in self.schedules])
