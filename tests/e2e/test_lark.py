"""`larkops sandbox` alone, and `larkops run` configured like a real Lark app pointed at it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tests.e2e.process import LARKOPS, Bot, base_env
from tests.support.wait import wait_until_sync


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / "sandbox.log").open("wb")
    process = subprocess.Popen(
        [LARKOPS, "sandbox", "--port", str(port)],
        env=base_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_sync(lambda: _get(f"{url}/sandbox/api/state") is not None, 30, "the sandbox")
        yield url
    finally:
        process.terminate()
        assert process.wait(15) == 0
        log.close()
        assert (
            "point a bot at it: LARK_APP_ID=cli_sandbox" in (tmp_path / "sandbox.log").read_text()
        )


def _get(url: str) -> Any:
    try:
        response = httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


def _lark_state(bot: Bot) -> str:
    body = _get(f"{bot.url}/readyz") or {}
    return str(body.get("lark", ""))


def test_bot_with_credentials_talks_to_a_separate_sandbox(sandbox: str, tmp_path: Path) -> None:
    env = {
        "LARK_APP_ID": "cli_sandbox",
        "LARK_APP_SECRET": "sandbox-secret",
        "LARK_DOMAIN": sandbox,
    }
    bot = Bot(tmp_path / "home", free_port(), env=env).start()
    try:
        wait_until_sync(lambda: _lark_state(bot) == "connected", 30, "the long connection")
        # configured for a real app: the bot does not serve a sandbox of its own
        assert httpx.get(f"{bot.url}/sandbox").status_code == 404
        sent = httpx.post(
            f"{sandbox}/sandbox/api/chats/oc_ops/messages",
            json={"sender": "ou_bob", "text": "@larkops /whoami"},
        )
        assert sent.status_code == 200

        def reply() -> Any:
            messages = (_get(f"{sandbox}/sandbox/api/chats/oc_ops/messages") or {})["messages"]
            bot_texts = [m["text"] for m in messages if m["sender"]["type"] == "bot"]
            return next((t for t in bot_texts if "ou_bob" in t), None)

        assert "ou_bob" in wait_until_sync(reply, 30, "the bot's reply")
        # a real app with no fetch allow-list: one clear warning at start-up
        assert bot.log().count("fetch.no_allow_list") == 1
        assert "LARKOPS_FETCH_ALLOW is not set" in bot.log()
    finally:
        assert bot.stop() == 0


def test_a_message_sent_once_lark_is_connected_is_answered_though_start_up_goes_on(
    sandbox: str, tmp_path: Path
) -> None:
    """The long connection opens before the bot's desks are built (issue 22): what is sent as
    soon as it is up waits in the inbox and is answered once they are."""
    env = {
        "LARK_APP_ID": "cli_sandbox",
        "LARK_APP_SECRET": "sandbox-secret",
        "LARK_DOMAIN": sandbox,
    }
    bot = Bot(tmp_path / "home", free_port(), env=env).start(wait_ready=False)
    try:

        def connected() -> bool:
            try:  # /readyz says where Lark is while it still answers 503 "starting"
                body = httpx.get(f"{bot.url}/readyz", timeout=5).json()
            except httpx.HTTPError:
                return False
            return bool(body.get("lark") == "connected")

        wait_until_sync(connected, 60, "the long connection")
        sent = httpx.post(
            f"{sandbox}/sandbox/api/chats/oc_ops/messages",
            json={"sender": "ou_carol", "text": "@larkops /whoami"},
        )
        assert sent.status_code == 200

        def reply() -> Any:
            messages = (_get(f"{sandbox}/sandbox/api/chats/oc_ops/messages") or {})["messages"]
            bot_texts = [m["text"] for m in messages if m["sender"]["type"] == "bot"]
            return next((t for t in bot_texts if "ou_carol" in t), None)

        assert "ou_carol" in wait_until_sync(reply, 60, "the bot's reply")
        assert bot.wait_ready().status_code == 200
    finally:
        assert bot.stop() == 0


def test_wrong_credentials_are_reported_not_fatal(sandbox: str, tmp_path: Path) -> None:
    env = {"LARK_APP_ID": "cli_sandbox", "LARK_APP_SECRET": "wrong-secret", "LARK_DOMAIN": sandbox}
    bot = Bot(tmp_path / "home", free_port(), env=env).start()
    try:
        state = wait_until_sync(
            lambda: _lark_state(bot).startswith("error") and _lark_state(bot), 30, "the refusal"
        )
        assert "10014" in state
        assert "wrong-secret" not in bot.log()
        # the rest of the bot keeps serving
        assert httpx.get(f"{bot.url}/readyz").status_code == 200
    finally:
        assert bot.stop() == 0


def test_run_without_credentials_serves_its_own_sandbox(tmp_path: Path) -> None:
    bot = Bot(tmp_path / "home", free_port()).start()
    try:
        wait_until_sync(lambda: _lark_state(bot) == "connected", 30, "the sandbox connection")
        page = httpx.get(f"{bot.url}/sandbox")
        assert page.status_code == 200
        assert "larkops" in page.text
        assert "lark.sandbox" in bot.log()
    finally:
        assert bot.stop() == 0
