"""What follows a gate's verdict, whoever clicked where (a card button, the REST API, the
console): the run goes on once the gate is decided, and the chat's card shows each approval.

`workflows.gates.decide` decides; this only carries the decision out, the same way for every
interface, so a gate decided in the console changes the Feishu card as a click would.

    verdict = await gates.decide(db, policy, click, decider, chat_id)
    if verdict.gate is not None and verdict.refusal is None:
        await carry_out(services, verdict.gate, verdict.closed, "approve", "ou_bob")
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.logs import get_logger
from cards.operations import action_card
from cards.texts import texts
from storage.models import Approval
from workflows.payloads import gate_decision

if TYPE_CHECKING:
    from bot.context import Services

log = get_logger(__name__)


async def resume(services: Services, gate: Approval, decision: str, user: str) -> None:
    """A decided gate: its run (an incident's workflow or an action's) goes on."""
    if gate.incident_id is not None:
        await services.desk.runs.resume(
            str(gate.run_id), gate.interrupt_id, gate_decision(decision, [user])
        )
        return
    await services.operations.decided(gate, decision, user)


async def show_partial(services: Services, gate: Approval) -> None:
    """A gate with approvals still missing: the card in the chat shows the ones so far."""
    if gate.incident_id is not None:
        await services.desk.presenter.show(gate.incident_id)
        return
    operations = services.operations
    action = await operations.by_run(gate.run_id)
    if action is None or not action.card_message_id:
        return
    view = await operations.view(action.id)
    if view is None:
        return
    settings = services.settings
    card = action_card(
        view,
        texts(settings.language),
        ZoneInfo(settings.timezone),
        **operations.buttons(gate),
    )
    try:
        await services.api.patch_card(action.card_message_id, card)
    except Exception as exc:  # the row is the truth; the next change redraws the card
        log.warning("decision.patch_failed", action=action.id, error=str(exc)[:200])


async def carry_out(
    services: Services, gate: Approval, closed: bool, decision: str, user: str
) -> None:
    """After an accepted click from outside the card itself (the REST API, the console)."""
    if closed:
        await resume(services, gate, decision, user)
    else:
        await show_partial(services, gate)
