"""Cards of the chat agent: the streamed answer, and the confirmation of a change it suggests.

The answer is model text: it is shown neutralised (no mention, link or tag can start in it).
While it streams, a status line says what the agent is doing; when it is done, the tools it
used are listed as the evidence, and a degraded answer says why.

Usage::

    answer_card(AnswerView(text="…", tools=("list_incidents",), done=True), say)
    suggestion_card(SuggestionView(kind="job", target=3, ...), say, zone=zone, confirm_value=...)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from cards.basics import button, card, markdown
from cards.incident import reported
from cards.markup import clock, code, fit, inline, mention, prose
from cards.texts import Texts

MAX_ANSWER = 6000
MAX_EVIDENCE = 12


@dataclass(frozen=True)
class Evidence:
    tool: str
    summary: str
    ok: bool = True
    # a plugin's summary as {"code", "values"}: worded in the reader's language; without one,
    # the summary is the tool's own words (shown as code)
    finding: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AnswerView:
    text: str = ""
    status: str = ""  # the tool being used while streaming
    done: bool = False
    evidence: tuple[Evidence, ...] = ()
    note: str = ""  # a degraded or interrupted answer: why


def answer_card(view: AnswerView, say: Texts) -> dict[str, Any]:
    body = prose(view.text, MAX_ANSWER, lines=80) if view.text.strip() else ""
    elements: list[dict[str, Any]] = []
    if body:
        elements.append(markdown(body))
    if not view.done:
        status = say("chat.using_tool", tool=inline(view.status, 60)) if view.status else ""
        elements.append(markdown(status or say("chat.thinking"), size="notation"))
    if view.note:
        elements.append(markdown(inline(view.note, 400), size="notation"))
    if view.done:
        lines = [say("chat.evidence")] if view.evidence else [say("chat.no_tools")]
        for item in view.evidence[:MAX_EVIDENCE]:
            mark = "✅" if item.ok else "⚠️"
            text = reported(item.finding, item.summary, say)
            line = say("chat.evidence_line", mark=mark, tool=code(item.tool, 60), text=text)
            lines.append(f"- {line}")
        if len(view.evidence) > MAX_EVIDENCE:
            lines.append(f"- … +{len(view.evidence) - MAX_EVIDENCE}")
        elements.append(markdown("\n".join(lines), size="notation"))
    template = "orange" if view.note else "blue"
    return fit(card(say("chat.title"), elements, template=template))


@dataclass(frozen=True)
class SuggestionView:
    """A change the agent suggested: `kind` job (with `change`) or diagnose."""

    kind: str
    target: int
    label: str  # the job's task or the incident's title
    asked_by: str
    change: str = ""
    outcome: str = ""  # empty while open; then the done/cancelled/failed/expired line
    expires_at: datetime | None = None  # while open: when its buttons stop working


def suggestion_card(
    view: SuggestionView,
    say: Texts,
    *,
    zone: ZoneInfo,
    confirm_value: dict[str, Any] | None = None,
    cancel_value: dict[str, Any] | None = None,
) -> dict[str, Any]:
    if view.kind == "job":
        what = say(
            "chat.confirm.job",
            id=view.target,
            task=inline(view.label, 80),
            change=say(f"chat.change.{view.change}"),
        )
    else:
        what = say("chat.confirm.diagnose", id=view.target, title=inline(view.label, 80))
    elements = [
        markdown(f"**{what}**"),
        markdown(say("chat.confirm.asked_by", who=mention(view.asked_by))),
    ]
    if view.outcome:
        elements.append(markdown(view.outcome))
    else:
        note = say("chat.confirm.note")
        if view.expires_at is not None:
            until = clock(view.expires_at, zone, "%Y-%m-%d %H:%M")
            note += "\n" + say("chat.confirm.until", time=until)
        elements.append(markdown(note, size="notation"))
        if confirm_value is not None and cancel_value is not None:
            elements.append(
                {
                    "tag": "column_set",
                    "columns": [
                        {
                            "tag": "column",
                            "elements": [
                                button(say("chat.confirm.ok"), confirm_value, kind="primary")
                            ],
                        },
                        {
                            "tag": "column",
                            "elements": [button(say("chat.confirm.cancel"), cancel_value)],
                        },
                    ],
                }
            )
    template = "green" if view.outcome.startswith("✅") else "orange"
    return fit(card(say("chat.confirm.title"), elements, template=template))
