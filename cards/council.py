"""A council's diagnosis on a card: the merged causes with the models behind each, where they
disagree, and one fold-out (`collapsible_panel`, Card JSON 2.0) per model with its status,
latency, tokens, cost, answer or error.

Usage::

    elements = council_causes(view, say) + council_panels(view, say)
"""

from __future__ import annotations

import math
from typing import Any

from cards.basics import card, markdown, more, text
from cards.markup import fit, inline, prose
from cards.texts import Texts
from cards.views import CouncilHypothesis, CouncilSeatView, CouncilView, Hypothesis

MAX_CAUSES = 5
MAX_SEATS = 8  # fold-outs on one card: more models are counted, not drawn (200 elements, 30 KB)
STATUSES = ("pending", "running", "answered", "failed", "timed_out")


def _percent(value: float) -> int:
    return round(min(max(value, 0.0), 1.0) * 100) if math.isfinite(value) else 0


def _names(names: tuple[str, ...], say: Texts) -> str:
    return say("council.separator").join(inline(name, 32) for name in names)


def council_causes(view: CouncilView, say: Texts) -> list[dict[str, Any]]:
    """The merged view: agreement, each cause with its supporters, the disputed ones."""
    head = say(
        "council.heading",
        answered=view.answered,
        asked=view.asked,
        agreement=_percent(view.agreement),
    )
    lines = [f"**{head}**"]
    for cause in view.hypotheses[:MAX_CAUSES]:
        line = say(
            "council.cause",
            cause=inline(cause.cause, 200),
            confidence=_percent(cause.confidence),
            support=_names(cause.support, say),
        )
        if cause.against:
            line += say("council.against", against=_names(cause.against, say))
        lines.append(f"- {line}")
    disputed = [c for c in view.hypotheses[:MAX_CAUSES] if c.against]
    if view.answered > 1 and disputed:
        lines.append(say("council.disputed", count=len(disputed)))
    elif view.answered > 1 and view.hypotheses:
        lines.append(say("council.unanimous"))
    return [markdown("\n".join(lines))]


def council_panels(view: CouncilView, say: Texts) -> list[dict[str, Any]]:
    """One folded panel per model (the first `MAX_SEATS`; the rest counted)."""
    panels = [_panel(seat, say) for seat in view.members[:MAX_SEATS]]
    return panels + [markdown(line) for line in more(len(view.members), MAX_SEATS, say)]


def _panel(seat: CouncilSeatView, say: Texts) -> dict[str, Any]:
    status = seat.status if seat.status in STATUSES else "failed"
    title = say(
        "council.member.title",
        name=inline(seat.name, 32),
        model=inline(seat.model, 60),
        status=say(f"council.status.{status}"),
    )
    facts = say(
        "council.member.facts",
        seconds=f"{seat.latency_ms / 1000:.1f}",
        tokens_in=seat.tokens_in,
        tokens_out=seat.tokens_out,
        cost=f"{seat.cost_usd:.4f}",
    )
    lines = [facts]
    if seat.summary:
        lines.append(prose(seat.summary, 600, 6))
    lines += [
        "- "
        + say("council.member.cause", cause=inline(h.cause, 200), confidence=_percent(h.confidence))
        for h in seat.hypotheses[:MAX_CAUSES]
    ]
    if seat.error:
        lines.append(say("council.member.error", error=inline(seat.error, 200)))
    return {
        "tag": "collapsible_panel",
        "expanded": False,
        "header": {
            "title": text(title),
            "vertical_align": "center",
            "icon": {
                "tag": "standard_icon",
                "token": "down-small-ccm_outlined",
                "size": "16px 16px",
            },
            "icon_position": "right",
            "icon_expanded_angle": -180,
        },
        "border": {"color": "grey", "corner_radius": "5px"},
        "vertical_spacing": "8px",
        "padding": "8px 8px 8px 8px",
        "elements": [markdown("\n".join(lines))],
    }


def ask_card(
    question: str,
    members: list[str],
    view: CouncilView | None,
    say: Texts,
    *,
    seconds: float,
    summary: str = "",
) -> dict[str, Any]:
    """The card of an `/ask`: while the models think (`view` None), then their merged answer
    with a fold-out per model."""
    elements = [markdown(say("council.ask.question", question=inline(question, 300)))]
    if view is None:
        asking = say(
            "council.ask.asking", models=_names(tuple(members), say), seconds=round(seconds)
        )
        elements.append(markdown(asking))
        return fit(card(say("council.ask.title"), elements, template="wathet"))
    if summary:
        elements.append(markdown(prose(summary, 1000, 10)))
    if view.answered:
        elements += council_causes(view, say)
    else:
        elements.append(markdown(say("council.ask.none")))
    elements += council_panels(view, say)
    template = "blue" if view.answered else "grey"
    return fit(card(say("council.ask.title"), elements, template=template))


def council_view(data: object) -> CouncilView | None:
    """The view of a council's stored diagnosis (`details["council"]`), None when there is none
    or it is not one."""
    if not isinstance(data, dict):
        return None

    def number(value: object) -> float:
        try:
            return float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return 0.0

    def names(value: object) -> tuple[str, ...]:
        return tuple(str(v) for v in value) if isinstance(value, list) else ()

    def causes(value: object) -> tuple[Hypothesis, ...]:
        items = value if isinstance(value, list) else []
        return tuple(
            Hypothesis(str(h[0]), number(h[1]))
            for h in items
            if isinstance(h, list) and len(h) == 2
        )

    hypotheses = tuple(
        CouncilHypothesis(
            cause=str(h.get("cause", "")),
            confidence=number(h.get("confidence")),
            support=names(h.get("support")),
            against=names(h.get("against")),
        )
        for h in data.get("hypotheses") or []
        if isinstance(h, dict)
    )
    members = tuple(
        CouncilSeatView(
            name=str(m.get("name", "")),
            model=str(m.get("model", "")),
            status=str(m.get("status", "")),
            latency_ms=int(number(m.get("latency_ms"))),
            tokens_in=int(number(m.get("tokens_in"))),
            tokens_out=int(number(m.get("tokens_out"))),
            cost_usd=number(m.get("cost_usd")),
            summary=str(m.get("summary", "")),
            hypotheses=causes(m.get("hypotheses")),
            error=str(m.get("error", "")),
        )
        for m in data.get("members") or []
        if isinstance(m, dict)
    )
    return CouncilView(
        agreement=number(data.get("agreement")),
        answered=int(number(data.get("answered"))),
        asked=int(number(data.get("asked"))),
        hypotheses=hypotheses,
        members=members,
    )
