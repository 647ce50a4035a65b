"""The console in headless Debian Chromium against a real `larkops run` in sandbox mode: sign in
with Feishu (the emulator's authorize page), watch an alert appear on the board without
reloading, approve its gate and see the Feishu card change in the sandbox, make a job from a
sentence (previewed first), and ask the agent.

Screenshots of the steps go to tests/artifacts/ (gitignored).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
import yaml
from playwright.sync_api import Browser, Page, expect

from tests.browser.test_sandbox_chat import ARTIFACTS, browser, wait_lark_connected
from tests.conftest import free_port
from tests.e2e.process import Bot
from tests.lark.test_incidents import settings_for
from tests.support.wait import wait_until_sync

__all__ = ["browser"]
TOKEN = "console-test-token"


@pytest.fixture(scope="module")
def console_bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    """`larkops run` in sandbox mode with a runbook whose diagnosis asks for approval."""
    where = tmp_path_factory.mktemp("console")
    config = settings_for(where)
    config.pop("approvers")
    (where / "larkops.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    env = {
        "LARKOPS_CONFIG": str(where / "larkops.yaml"),
        "LARKOPS_APPROVERS": "ou_bob,ou_carol",
        "LARKOPS_WEBHOOK_TOKEN": TOKEN,
        "LARKOPS_ALERT_CHAT_ID": "oc_ops",
    }
    bot = Bot(where / "home", free_port(), env=env).start()
    try:
        wait_lark_connected(bot)
        yield bot
    finally:
        bot.stop()


def shot(page: Page, name: str) -> None:
    page.screenshot(path=ARTIFACTS / f"console-{name}.png", full_page=True)


def sign_in_as_bob(page: Page, bot: Bot) -> None:
    """Open the console and sign in with Feishu as 李四 (ou_bob, an approver)."""
    page.goto(f"{bot.url}/console")
    page.locator("#signin").click()
    page.locator("a.user", has_text="李四").click()
    expect(page.locator(".me")).to_contain_text("李四")


def post_alert(bot: Bot, alert: dict[str, object]) -> None:
    posted = httpx.post(
        f"{bot.url}/webhooks/generic", json=alert, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert posted.status_code == 202


def card_texts(bot: Bot) -> list[str]:
    answer = httpx.get(f"{bot.url}/sandbox/api/chats/oc_ops/messages", timeout=5).json()
    return [json.dumps(m.get("card") or {}, ensure_ascii=False) for m in answer["messages"]]


def test_sign_in_watch_approve_schedule_and_ask(browser: Browser, console_bot: Bot) -> None:
    context = browser.new_context(viewport={"width": 1100, "height": 900}, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        sign_in_as_bob(page, console_bot)
        expect(page.locator("#live")).to_contain_text("实时", timeout=10_000)
        shot(page, "01-board")

        # an alert arrives: the board shows it without a reload
        alert = {
            "title": "WebDown",
            "severity": "critical",
            "labels": {"alertname": "WebDown", "service": "web"},
            "annotations": {"url": "http://127.0.0.1:9/health", "summary": "web is down"},
        }
        post_alert(console_bot, alert)
        row = page.locator("#board tbody tr", has_text="WebDown")
        expect(row).to_have_count(1, timeout=15_000)
        shot(page, "02-alert-on-board")

        # its gate, approved from the console, changes the Feishu card in the sandbox
        row.locator("a").click()
        approve = page.locator(".gate button.approve")
        expect(approve).to_be_visible(timeout=30_000)
        shot(page, "03-incident")
        before = card_texts(console_bot)
        assert not any("restart_web" in card for card in before)
        approve.click()
        wait_until_sync(
            lambda: any("restart_web" in card for card in card_texts(console_bot)),
            30,
            "the Feishu card proposing the fix",
        )
        expect(page.locator(".gate button.approve")).to_be_visible(timeout=30_000)  # next gate
        shot(page, "04-approved")

        # a job from a sentence: previewed, then created
        page.goto(f"{console_bot.url}/console/jobs")
        page.locator("#newjob input[name=text]").fill("每天早上9点检查服务器健康")
        page.locator("#newjob button").click()
        expect(page.locator("#preview li")).to_have_count(5, timeout=10_000)
        page.locator("#confirm").click()
        expect(page.locator("#jobs tr[data-job]")).to_have_count(1, timeout=10_000)
        shot(page, "05-job")

        # the agent (no model here: it says which commands help)
        page.goto(f"{console_bot.url}/console/chat?lang=en")
        page.locator("#ask input[name=question]").fill("which incidents are open?")
        page.locator("#ask button").click()
        expect(page.locator("#answer")).not_to_be_empty(timeout=15_000)
        shot(page, "06-chat")
    finally:
        shot(page, "final")
        context.close()
    assert not errors, f"browser errors: {errors}"


def test_a_change_made_while_the_page_was_offline_shows_once_it_is_back(
    browser: Browser, console_bot: Bot
) -> None:
    """The board is drawn while its live stream cannot be reached; an alert opens an incident
    meanwhile; when the stream comes back the board shows it, no reload, no later change."""
    context = browser.new_context(viewport={"width": 1100, "height": 900}, locale="zh-CN")
    page = context.new_page()
    stream = "**/api/v1/stream"
    try:
        page.route(stream, lambda route: route.abort())
        sign_in_as_bob(page, console_bot)
        expect(page.locator("#board")).to_be_visible()
        alert = {
            "title": "DiskAlmostFull",
            "severity": "warning",
            "labels": {"alertname": "DiskAlmostFull", "service": "db"},
        }
        post_alert(console_bot, alert)

        def opened() -> bool:
            answer = page.request.get(f"{console_bot.url}/api/v1/incidents?status=active")
            return "DiskAlmostFull" in answer.text()

        wait_until_sync(opened, 30, "the incident to be opened")
        row = page.locator("#board tbody tr", has_text="DiskAlmostFull")
        expect(row).to_have_count(0)  # drawn before it, and offline since
        page.unroute(stream)
        expect(page.locator("#live")).to_contain_text("实时", timeout=20_000)
        expect(row).to_have_count(1, timeout=10_000)
    finally:
        context.close()


def test_an_escalated_incident_stays_on_the_board_under_a_flood_of_newer_ones(
    browser: Browser, console_bot: Bot
) -> None:
    """An incident whose diagnosis is rejected from the console is escalated; then more than a
    board's worth (100) of newer incidents open at once. The board still lists it, first, as
    escalated, and its timeline reads in words, not codes."""
    context = browser.new_context(viewport={"width": 1100, "height": 900}, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        sign_in_as_bob(page, console_bot)
        alert = {
            "title": "ShopDown",
            "severity": "critical",
            "labels": {"alertname": "ShopDown", "service": "shop"},
            "annotations": {"url": "http://127.0.0.1:9/health", "summary": "shop is down"},
        }
        post_alert(console_bot, alert)
        row = page.locator("#board tbody tr", has_text="ShopDown")
        expect(row.first).to_be_visible(timeout=15_000)
        page.goto(f"{console_bot.url}/console/incidents/{row.first.get_attribute('data-id')}")
        reject = page.locator(".gate button.reject")
        expect(reject).to_be_visible(timeout=30_000)
        reject.click()
        expect(page.locator("h2 .status")).to_contain_text("已升级", timeout=30_000)
        timeline = page.locator("table").last
        expect(timeline).to_contain_text("拒绝了诊断", timeout=10_000)
        expect(timeline).not_to_contain_text("workflow.escalated")
        escalated = page.url.rsplit("/", 1)[1]

        flood = {
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": f"Flood{n}", "instance": f"node-{n}"},
                    "annotations": {"summary": f"flood {n}"},
                }
                for n in range(110)
            ]
        }
        posted = httpx.post(
            f"{console_bot.url}/webhooks/alertmanager",
            json=flood,
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert posted.status_code == 202

        def flooded() -> bool:
            answer = page.request.get(f"{console_bot.url}/api/v1/incidents?status=active&limit=500")
            return sum("Flood" in i["title"] for i in answer.json()["incidents"]) == 110

        wait_until_sync(flooded, 60, "the flood's incidents")
        page.goto(f"{console_bot.url}/console")
        first = page.locator("#board tbody tr").first
        expect(first).to_have_attribute("data-id", escalated, timeout=15_000)
        expect(first).to_contain_text("已升级")
    finally:
        context.close()
    assert not errors, f"browser errors: {errors}"
