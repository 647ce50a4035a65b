"""What the reading of a time expression gives when it will not guess: a question to ask."""

from __future__ import annotations

from dataclasses import dataclass, field

from workflows.schedule.spec import Spec


@dataclass(frozen=True)
class Clarify:
    """A question is needed: `topic` names it (see `wording.question`), `reason` is vague |
    ambiguous | unsupported | impossible | passed | conflict | no_time | unreadable, `values`
    fill the question in."""

    topic: str
    reason: str
    values: dict[str, str] = field(default_factory=dict)
    options: tuple[Spec, ...] = ()
    """What the answer may be, when we can list it (the card shows them as buttons)."""


Reading = Spec | Clarify
