"""The `/status` card (pure: a `StatusView` in, Card JSON 2.0 out).

`StatusView` is also what the chat agent's `system_health` tool reads (as `as_json()`), so the
card and the agent report the same health.

Usage::

    card = status_card(view, texts("en"))
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from cards.basics import card, markdown, more
from cards.markup import inline
from cards.report import span
from cards.texts import Texts

OLD_PENDING = 60.0  # seconds: an inbox row waiting longer makes the card orange
SHOWN = 5  # escalated incidents named on the card (the rest are counted)


@dataclass(frozen=True)
class StatusView:
    lark: str  # connected | connecting | starting | error: …
    inbox_pending: int
    inbox_oldest_seconds: float
    database: str  # ok, or why not
    coordination_backend: str  # redis | memory
    coordination: str  # ok, or why not
    scheduler: str  # here | elsewhere | off
    scheduler_holder: str  # the leading replica when known ("" otherwise)
    jobs_loaded: int
    model_provider: str  # rules when no model is configured
    tokens_today: int | None
    daily_budget: int | None
    incidents_active: int
    gates_waiting: int
    replica: str
    version: str
    uptime_seconds: float
    send_backlog: int = 0  # messages this replica waits to send (Lark's rate limits)
    incidents_escalated: int = 0  # of `incidents_active`: escalated, a person must act now
    # the escalated ones, (#id, title), latest seen first: named on the card before the rest
    escalated: tuple[tuple[int, str], ...] = ()

    @property
    def healthy(self) -> bool:
        return (
            self.lark == "connected"
            and self.database == "ok"
            and self.coordination == "ok"
            and self.inbox_oldest_seconds < OLD_PENDING
        )

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _state(value: str, say: Texts) -> str:
    return say("status.ok") if value == "ok" else say("status.unreachable", reason=inline(value))


def _lark(value: str, say: Texts) -> str:
    if value in ("connected", "connecting", "starting"):
        return say(f"status.lark.{value}")
    return say("status.unreachable", reason=inline(value.removeprefix("error: ")))


def _scheduler(view: StatusView, say: Texts) -> str:
    if view.scheduler == "here":
        return say("status.scheduler.here", jobs=view.jobs_loaded)
    if view.scheduler == "elsewhere":
        holder = inline(view.scheduler_holder, 80) if view.scheduler_holder else "?"
        return say("status.scheduler.elsewhere", holder=holder)
    return say("status.scheduler.off")


def _model(view: StatusView, say: Texts) -> str:
    if view.tokens_today is None or view.daily_budget is None:
        return say("status.model.rules")
    key = "status.model" if view.tokens_today < view.daily_budget else "status.model.exhausted"
    return say(
        key,
        provider=inline(view.model_provider, 40),
        used=f"{view.tokens_today:,}",
        budget=f"{view.daily_budget:,}",
    )


def status_card(view: StatusView, say: Texts) -> dict[str, Any]:
    """Connection, queue, dependencies, scheduler, model, incidents, and which replica answered."""
    lines = [
        say("status.lark", state=_lark(view.lark, say)),
        say(
            "status.inbox",
            pending=view.inbox_pending,
            age=span(view.inbox_oldest_seconds, say) if view.inbox_pending else "-",
        ),
        say("status.sends", waiting=view.send_backlog),
        say("status.database", state=_state(view.database, say)),
        say(
            "status.coordination",
            backend=inline(view.coordination_backend, 20),
            state=_state(view.coordination, say),
        ),
        _scheduler(view, say),
        _model(view, say),
        say(
            "status.incidents",
            active=view.incidents_active,
            escalated=view.incidents_escalated,
            gates=view.gates_waiting,
        ),
        *(
            say("status.escalated_row", id=number, title=inline(title, 80))
            for number, title in view.escalated[:SHOWN]
        ),
        *more(max(view.incidents_escalated, len(view.escalated)), SHOWN, say),
    ]
    footer = say(
        "status.replica",
        replica=inline(view.replica, 80),
        version=inline(view.version, 40),
        uptime=span(view.uptime_seconds, say),
    )
    healthy = view.healthy
    return card(
        say("status.title") if healthy else say("status.title_degraded"),
        [markdown("\n".join(f"- {line}" for line in lines)), markdown(footer, size="notation")],
        template="green" if healthy else ("red" if view.lark.startswith("error") else "orange"),
    )
