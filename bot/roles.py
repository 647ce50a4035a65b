"""Who may do what: roles per chat and global, from open_ids and Lark department/group membership.

Roles, lowest first: `viewer` ⊂ `operator` ⊂ `approver` ⊂ `admin`; each may do everything the
ones below it may (a command declaring `roles=("operator",)` admits approvers and admins).
`member` stays an alias that every role holds (older checks name it).

Where grants come from (they add up; a person's role in a chat is the highest that applies):

- `LARKOPS_ADMINS` → admin in every chat; `LARKOPS_APPROVERS` → approver in every chat;
- `incidents.approvers_by_chat[<chat>]` → approver in that chat;
- YAML `roles.global.<role>` → that role in every chat; `roles.chats.<chat_id>.<role>` → that
  role in that chat only;
- the default, which everybody in a chat gets: `roles.chats.<chat_id>.default`, else
  `roles.default` (`viewer` when not set; `none` grants nothing). Without a `roles:` section at
  all everybody is an `operator` in every chat, which is how larkops behaved before roles: anyone
  may read, acknowledge, run diagnostics and schedule jobs, and approvers are named by
  `LARKOPS_APPROVERS` / `approvers_by_chat`.

A member of a grant is an open_id (`ou_…`), `dept:<open_department_id>` (people whose Lark
contact record lists that department: direct members, not sub-departments) or `chat:<chat_id>`
(the members of that Lark group). Membership is looked up through the Lark API (contact and chat
member endpoints, cached ten minutes by `LarkApi`); a lookup that fails or takes longer than
two seconds is logged and grants nothing (fail closed); the handler still runs with what the
other grants give. Changing roles is configuration only: no command grants a role.

    roles:
      default: viewer              # everybody in a chat the bot serves (none | viewer | operator)
      global:
        admin: [ou_lead]
        approver: ["dept:od-4e6ac6b1c0"]
        operator: ["chat:oc_oncall"]
      chats:
        oc_ops: {default: operator, approver: [ou_bob]}

What each command and button needs (the least role; higher roles may too):

    anybody   /roles (so that someone refused can see why)
    viewer    /help /whoami /ping (and its refresh button) /incidents /incident /silences
              /plugins /plugin /runbooks /policy /jobs /job <id> /similar /report /status;
              questions to the chat agent (answered from the bot's own data only)
    operator  /ack; /run (a diagnostic runs at once, a fix goes to the policy and its
              approvers); /schedule and schedule sentences; /job pause|resume|run|delete and
              the schedule card buttons (the job's creator or an admin); Confirm / Cancel of
              the chat agent's suggestions; the agent's diagnostics and change cards
    approver  /resolve /escalate /diagnose /silence /note; a diagnosis the agent suggested
    admin     nothing more: admins approve everywhere and may change anyone's jobs

Approval buttons (Approve / Reject on incident and `/run` gates, the report's suggestions) are
let through by the dispatcher and decided by their handlers, as before: the gate's own list (the
policy may name people who hold no other role), admins, and — when the gate names the chat's
usual approvers — anyone holding the approver role here (`workflows.gates.GatePolicy`).

HTTP: there are no admin endpoints to guard. `/healthz`, `/readyz` and `/metrics` stay open
(probes and scrapers), `/webhooks/<source>` needs its bearer token (`bot.incidents.webhooks`),
and the sandbox's routes exist only when no Lark credentials are configured (local use).

Usage::

    control = AccessControl(settings, api)           # api: anything with the two lookups
    found = await control.resolve("ou_1", "oc_ops")
    found.role, found.roles, found.grants            # "operator", {...}, (Grant(...), ...)
    admits(found.roles, frozenset({"operator"}))     # True
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Literal, Protocol

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from workflows.approvers import Decider, GatePolicy

if TYPE_CHECKING:
    from bot.config import Settings
    from cards.texts import Texts


Role = Literal["viewer", "operator", "approver", "admin"]
DefaultRole = Literal["none", "viewer", "operator"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "approver", "admin")  # lowest first
RANK: dict[str, int] = {"member": 1, "viewer": 1, "operator": 2, "approver": 3, "admin": 4}
EVERYONE = "*"  # a grant's member meaning everybody; as a needed role, no role needed at all
BUILTIN = "built-in default"  # the source of the default without a `roles:` section
LOOKUP_SECONDS = 2.0  # one membership lookup; a card click must be answered within 3 s
LEGACY_DEFAULT: Role = "operator"  # everybody's role when there is no `roles:` section

_ID = r"[A-Za-z0-9_-]{1,64}"
_MEMBER = re.compile(rf"(ou_{_ID}|dept:{_ID}|chat:oc_{_ID})")


def _member(value: str) -> str:
    if not _MEMBER.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a member: use an open_id (ou_…), dept:<open_department_id> "
            "or chat:<chat_id>"
        )
    return value


Member = Annotated[str, AfterValidator(_member)]


class Grants(BaseModel):
    """Role → members, for every chat (`roles.global`) or one chat (`roles.chats.<id>`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    admin: tuple[Member, ...] = ()
    approver: tuple[Member, ...] = ()
    operator: tuple[Member, ...] = ()
    viewer: tuple[Member, ...] = ()

    def entries(self) -> Iterator[tuple[Role, str]]:
        """(role, member) pairs, highest role first."""
        for role in reversed(ROLES):
            for member in getattr(self, role):
                yield role, member


class ChatGrants(Grants):
    """One chat's grants, and optionally its own default (else the section's)."""

    default: DefaultRole | None = None


class RoleConfig(BaseModel):
    """The YAML `roles:` section (see the module docstring)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, serialize_by_alias=True
    )

    default: DefaultRole = "viewer"
    everywhere: Grants = Field(default_factory=Grants, alias="global")
    chats: dict[str, ChatGrants] = Field(default_factory=dict)


@dataclass(frozen=True)
class Grant:
    """One configured grant: `member` ("ou_…", "dept:…", "chat:…" or "*" for everybody) holds
    `role` in `chat_id` (None: every chat), as configured at `source`."""

    role: Role
    member: str
    source: str
    chat_id: str | None = None


@dataclass(frozen=True)
class Access:
    """A person's grants in one chat and what they add up to."""

    open_id: str
    chat_id: str
    grants: tuple[Grant, ...] = ()
    failed: tuple[str, ...] = ()  # members whose lookup failed (granted nothing)

    @property
    def role(self) -> Role | None:
        """The highest role granted, None when nothing is."""
        if not self.grants:
            return None
        return max((grant.role for grant in self.grants), key=lambda role: RANK[role])

    @property
    def roles(self) -> frozenset[str]:
        return held(self.role)


class Directory(Protocol):
    """Lark membership lookups (`bot.lark.api.LarkApi` is one)."""

    async def user_departments(self, open_id: str) -> frozenset[str]: ...

    async def chat_members(self, chat_id: str) -> frozenset[str]: ...


def held(role: str | None) -> frozenset[str]:
    """The role names someone with `role` holds: it, every lower role, and `member`."""
    if role is None or role not in RANK:
        return frozenset()
    return frozenset({name for name, rank in RANK.items() if rank <= RANK[role]})


def top_role(holding: Collection[str]) -> Role | None:
    """The highest hierarchy role in `holding`, None when it has none."""
    ranked = [role for role in ROLES if role in holding]
    return ranked[-1] if ranked else None


def admits(holding: Collection[str], needed: Collection[str]) -> bool:
    """Whether someone holding `holding` may do what needs one of `needed`, the hierarchy
    applied (nothing declared means viewer). A name outside the hierarchy must be held."""
    wanted = needed or ("viewer",)
    if EVERYONE in wanted:
        return True
    top = max((RANK.get(name, 0) for name in holding), default=0)
    return any(name in holding or (name in RANK and top >= RANK[name]) for name in wanted)


def refusal(say: Texts, role: Role) -> str:
    """What a person is told when they need `role` (or higher) for what they asked."""
    return say("denied.role", roles=say(f"role.{role}")) + say("denied.see_roles")


def gate_policy(settings: Settings) -> GatePolicy:
    """The approval rules of this configuration: the only place settings become them
    (`workflows.gates` decides every click with them)."""
    return GatePolicy(
        ttl=timedelta(minutes=settings.approval_ttl_minutes),
        approvers=tuple(settings.approvers),
        requester_may_approve=settings.requester_may_approve,
        by_chat={chat: tuple(ids) for chat, ids in settings.incidents.approvers_by_chat.items()},
        admins=tuple(settings.admins),
        roles_configured=settings.roles is not None,
    )


def decider(holding: Collection[str], user: str) -> Decider:
    """The person `user` holding `holding` here, as a gate sees them."""
    return Decider(user, admin=admits(holding, ("admin",)), approver=admits(holding, ("approver",)))


@dataclass
class _Lookups:
    """Membership answers for one resolution (each asked at most once)."""

    directory: Directory | None
    departments: frozenset[str] | None = None
    members: dict[str, frozenset[str]] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)


class AccessControl:
    """Turns the configuration into grants and a person's grants into roles."""

    def __init__(self, settings: Settings, directory: Directory | None) -> None:
        self.settings = settings
        self.directory = directory

    @property
    def configured(self) -> bool:
        """Whether a `roles:` section exists (else everybody is an operator)."""
        return self.settings.roles is not None

    def grants(self, chat_id: str) -> tuple[Grant, ...]:
        """Every grant that applies in `chat_id`: global ones, then the chat's, then the
        default."""
        settings, config = self.settings, self.settings.roles
        found = [Grant("admin", person, "LARKOPS_ADMINS") for person in settings.admins]
        found += [Grant("approver", person, "LARKOPS_APPROVERS") for person in settings.approvers]
        if config is not None:
            found += [Grant(r, m, "roles.global") for r, m in config.everywhere.entries()]
        by_chat = settings.incidents.approvers_by_chat.get(chat_id, [])
        found += [
            Grant("approver", person, "incidents.approvers_by_chat", chat_id) for person in by_chat
        ]
        if config is None:
            return (*found, Grant(LEGACY_DEFAULT, EVERYONE, BUILTIN))
        chat = config.chats.get(chat_id)
        if chat is not None:
            source = f"roles.chats.{chat_id}"
            found += [Grant(r, m, source, chat_id) for r, m in chat.entries()]
        if chat is not None and chat.default is not None:
            default, source, where = chat.default, f"roles.chats.{chat_id}.default", chat_id
        else:
            default, source, where = config.default, "roles.default", None
        if default != "none":
            found.append(Grant(default, EVERYONE, source, where))
        return tuple(found)

    async def resolve(self, open_id: str, chat_id: str, *, lookups: bool = True) -> Access:
        """The grants `open_id` holds in `chat_id`. With `lookups` False (bots) department and
        group members are not looked up (and match nobody)."""
        asked = _Lookups(self.directory if lookups else None)
        mine = [g for g in self.grants(chat_id) if await self._matches(g.member, open_id, asked)]
        return Access(open_id, chat_id, tuple(mine), tuple(asked.failed))

    async def _matches(self, member: str, open_id: str, asked: _Lookups) -> bool:
        if member in (EVERYONE, open_id):
            return True
        if member.startswith("dept:"):
            if asked.departments is None:
                asked.departments = await self._lookup(asked, member, "departments", open_id)
            return member.removeprefix("dept:") in asked.departments
        if member.startswith("chat:"):
            group = member.removeprefix("chat:")
            if group not in asked.members:
                asked.members[group] = await self._lookup(asked, member, "members", group)
            return open_id in asked.members[group]
        return False

    async def _lookup(self, asked: _Lookups, member: str, kind: str, key: str) -> frozenset[str]:
        directory = asked.directory
        if directory is None:
            return frozenset()
        import asyncio  # here: `bot.config` imports this module; the light CLI paths run no loop

        try:
            async with asyncio.timeout(LOOKUP_SECONDS):
                if kind == "departments":
                    return await directory.user_departments(key)
                return await directory.chat_members(key)
        except Exception as exc:  # fail closed: the grant is not given, the handler still runs
            # the logger is imported here: `bot.config` imports this module, and the CLI's
            # `config check`, `schedule parse` and `apikey` start faster without structlog
            from bot.logs import get_logger

            get_logger(__name__).warning(
                "roles.lookup_failed", member=member, key=key, error=str(exc)[:300]
            )
            asked.failed.append(member)
            return frozenset()
