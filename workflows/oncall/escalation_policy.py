"""Escalation policies: the YAML `escalation:` section and which steps an incident's paging has.

A policy is an ordered list of levels; level n fires `after` the incident opened unless someone
acknowledged it first, notifies its `notify` targets (`oncall:<schedule>`: whoever is on call
then; an open_id; `chat:<chat_id>` / `dept:<id>`: the members of a group or department) and
tries its `via` channels in order until one reaches them (`workflows.oncall.paging`). After the
last level, `repeat` more rounds of it follow, `repeat_every` apart, until someone acknowledges.

Which policy: `chats.<chat_id>`, else `severities.<severity>`, else `default` ("none" in either
map: no paging for those incidents).

    escalation:
      policies:
        default:
          - {after: 0m, notify: ["oncall:primary"], via: [chat]}
          - {after: 1m, notify: ["oncall:primary"], via: [urgent_app]}
          - {after: 3m, notify: [ou_lead], via: [urgent_app, direct]}
      severities: {info: none}
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from workflows.oncall.spans import span

Channel = Literal["chat", "direct", "urgent_app", "urgent_sms", "urgent_phone"]
URGENT: frozenset[Channel] = frozenset({"urgent_app", "urgent_sms", "urgent_phone"})
NONE = "none"  # as a policy name in `chats` / `severities`: do not page
_ID = r"[A-Za-z0-9_-]{1,64}"
_TARGET = re.compile(rf"(oncall:[A-Za-z0-9_.-]{{1,64}}|ou_{_ID}|chat:oc_{_ID}|dept:{_ID})")


def _target(value: str) -> str:
    if not _TARGET.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a target: use oncall:<schedule>, an open_id (ou_…), "
            "chat:<chat_id> or dept:<open_department_id>"
        )
    return value


Target = Annotated[str, AfterValidator(_target)]


class Level(BaseModel):
    """One level of a policy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    after: str = "0m"
    notify: tuple[Target, ...] = Field(min_length=1, max_length=50)
    via: tuple[Channel, ...] = Field(default=("chat",), min_length=1)

    @field_validator("after")
    @classmethod
    def _after(cls, value: str) -> str:
        if span(value, zero=True) > timedelta(days=1):
            raise ValueError("a level waits at most a day")
        return value

    @property
    def delay(self) -> timedelta:
        return span(self.after, zero=True)

    def schedules(self) -> set[str]:
        return {t.removeprefix("oncall:") for t in self.notify if t.startswith("oncall:")}


@dataclass(frozen=True)
class Step:
    """One timer of an incident's paging: its `number` (1, 2, …), the policy `level` it fires
    (1-based; a repeat fires the last level again) and its delay after the incident opened."""

    number: int
    level: int
    delay: timedelta


class EscalationConfig(BaseModel):
    """The YAML `escalation:` section (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    policies: dict[str, tuple[Level, ...]] = Field(default_factory=dict)
    chats: dict[str, str] = Field(default_factory=dict)
    severities: dict[str, str] = Field(default_factory=dict)
    repeat: int = Field(default=0, ge=0, le=20)
    repeat_every: str = "5m"
    # incidents at or above this severity get a war room when they open (None: on request)
    war_room_at: Literal["critical", "warning", "info"] | None = None
    # days after its incident was resolved that a war room is dissolved (None: kept)
    war_room_days: int | None = Field(default=None, ge=1, le=365)

    @field_validator("repeat_every")
    @classmethod
    def _every(cls, value: str) -> str:
        span(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> EscalationConfig:
        for name, levels in self.policies.items():
            if not levels:
                raise ValueError(f"policy {name!r} has no levels")
            delays = [level.delay for level in levels]
            if delays != sorted(delays):
                raise ValueError(f"policy {name!r}: levels must be in the order they fire")
        for chosen in (*self.chats.values(), *self.severities.values()):
            if chosen != NONE and chosen not in self.policies:
                raise ValueError(f"no escalation policy named {chosen!r}")
        return self

    def policy_for(self, chat_id: str, severity: str) -> str | None:
        """The name of the policy paging for an incident in `chat_id` at `severity` (None:
        no paging)."""
        name = self.chats.get(chat_id) or self.severities.get(severity)
        if name is None:
            name = "default" if "default" in self.policies else NONE
        return None if name == NONE else name

    def steps(self, name: str) -> list[Step]:
        """The timers of policy `name`: one per level, then the repeats of the last."""
        levels = self.policies.get(name, ())
        found = [Step(n, n, level.delay) for n, level in enumerate(levels, 1)]
        if found:
            last, every = found[-1], span(self.repeat_every)
            found += [
                Step(last.number + k, last.level, last.delay + k * every)
                for k in range(1, self.repeat + 1)
            ]
        return found

    def level(self, name: str, number: int) -> Level | None:
        """Level `number` (1-based) of policy `name`, None when the configuration lost it."""
        levels = self.policies.get(name, ())
        return levels[number - 1] if 0 < number <= len(levels) else None

    def schedules(self) -> set[str]:
        """Every schedule some level pages (`oncall:<name>`)."""
        return {s for levels in self.policies.values() for lv in levels for s in lv.schedules()}
