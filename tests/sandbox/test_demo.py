"""The sandbox demo's parts on their own: its settings (people, the fix, the runbook) load like
any configuration and give way to configured ones; the health check follows the marker file;
the chat history survives a new emulator (a restart) with its ids, cards and order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from bot.config import load_settings
from bot.sandbox import LarkEmulator
from bot.sandbox.demo import ALERT_NAME, RUNBOOK, SANDBOX_USERS, TEMPLATE, DemoService
from bot.sandbox.history import ChatHistory
from plugins import discover
from plugins.builtin.command import CommandPlugin
from plugins.contract import AlertContext
from plugins.runbooks import RunbookBook


def test_the_demo_settings_load_and_give_the_people_their_roles(tmp_path: Path) -> None:
    demo = DemoService(tmp_path, 8080)
    settings = demo.settings(load_settings(home=tmp_path))
    assert settings.approvers == ["ou_bob"]
    assert settings.admins == ["ou_carol"]
    assert settings.alert_senders == ["ou_alertbot"]
    assert demo.roles["ou_bob"] == "审批人"
    command = CommandPlugin.from_settings(settings.plugins["settings"]["command"])
    assert TEMPLATE in command.templates
    registry = discover(settings.plugins)
    book = RunbookBook.from_config(settings.runbooks, registry)
    alert = AlertContext(ALERT_NAME, "critical", {"alertname": ALERT_NAME}, {}, None)
    found = book.match(alert)
    assert found is not None
    assert found.name == RUNBOOK


def test_configured_people_and_runbooks_win(tmp_path: Path) -> None:
    demo = DemoService(tmp_path, 8080)
    mine = {"name": RUNBOOK, "match": {"alertname": "X"}}
    settings = demo.settings(load_settings(home=tmp_path, approvers="ou_x", runbooks=[mine]))
    assert settings.approvers == ["ou_x"]
    assert settings.admins == []
    assert demo.roles == {}
    assert settings.runbooks == [mine]


async def test_the_health_check_follows_the_marker_and_survives_a_restart(tmp_path: Path) -> None:
    demo = DemoService(tmp_path, 8080)
    app = Starlette(routes=demo.routes(LarkEmulator(users=SANDBOX_USERS)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http:
        assert (await http.get("/sandbox/demo/healthz")).status_code == 200
        demo.marker.unlink()
        assert (await http.get("/sandbox/demo/healthz")).status_code == 503
        assert (await http.get("/sandbox/api/demo")).json()["healthy"] is False
    again = DemoService(tmp_path, 8080)  # a restart keeps the broken state
    assert not again.healthy


async def test_chat_history_comes_back_after_a_restart(tmp_path: Path) -> None:
    first = LarkEmulator(users=SANDBOX_USERS)
    said = first.post_message("oc_ops", "ou_alice", "/help", mention_bot=True)
    card: dict[str, Any] = {"schema": "2.0", "body": {"elements": [{"tag": "hr"}]}}
    shown = first.post_card("oc_ops", "ou_alertbot", card)
    ChatHistory(first, tmp_path).save()
    await first.aclose()

    second = LarkEmulator(users=SANDBOX_USERS)
    assert ChatHistory(second, tmp_path).load() == 2
    kept = second.transcript("oc_ops")
    assert [m.message_id for m in kept] == [said.message_id, shown.message_id]
    assert kept[1].card == card
    assert second.store.next_seq() > shown.seq  # new messages come after the kept ones
    await second.aclose()


def test_an_unreadable_history_starts_empty(tmp_path: Path) -> None:
    (tmp_path / "sandbox").mkdir()
    (tmp_path / "sandbox" / "chats.json").write_text("{not json", encoding="utf-8")
    assert ChatHistory(LarkEmulator(), tmp_path).load() == 0
