"""The sandbox web chat end to end: a real `larkops run` (no LARK_APP_ID, so it serves the Lark
emulator and /sandbox itself and connects to it over the real long connection), driven through
headless Chromium.

Chromium is required: without it the tests fail (never skip) saying how to install it.
Screenshots of every step go to tests/artifacts/ (gitignored).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tests.e2e.process import Bot
from tests.support.wait import wait_until_sync

try:
    from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - reported by the `browser` fixture
    sync_playwright = None  # type: ignore[assignment]

CHROMIUM = os.environ.get("LARKOPS_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
BOT_MESSAGE = '[data-testid="message"][data-sender-type="bot"]'
USER_MESSAGE = '[data-testid="message"][data-sender-type="user"]'
# The emulator's fixed sandbox app (LarkEmulator defaults), used to push cards as the bot.
SANDBOX_APP = {"app_id": "cli_sandbox", "app_secret": "sandbox-secret"}


def wait_lark_connected(bot: Bot, timeout: float = 60) -> None:
    """Poll /readyz until the bot's long connection to the (emulated) Lark is up."""
    process = bot.process
    assert process is not None
    last = [""]

    def connected() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"larkops exited {process.returncode}:\n{bot.log()}")
        try:
            response = httpx.get(f"{bot.url}/readyz", timeout=2)
            last[0] = response.text
            return bool(response.json().get("lark") == "connected")
        except (httpx.HTTPError, ValueError):
            return False

    try:
        wait_until_sync(connected, timeout, "the long connection to Lark")
    except AssertionError as exc:
        if process.poll() is not None:
            raise
        raise AssertionError(f"{exc} (last /readyz: {last[0]}):\n{bot.log()}") from None


@pytest.fixture(scope="module")
def sandbox_bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    """`larkops run` in sandbox mode, its Lark connection up."""
    bot = Bot(tmp_path_factory.mktemp("browser") / "home", free_port()).start()
    try:
        wait_lark_connected(bot)
        yield bot
    finally:
        bot.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium (never a downloaded browser: `playwright install` is not used)."""
    if sync_playwright is None:
        pytest.fail(
            "the playwright package is missing: run `.venv/bin/pip install -e '.[dev]'` "
            "(do NOT run `playwright install`; the tests use Debian's chromium)",
            pytrace=False,
        )
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium is required at {CHROMIUM}: install it with "
            "`apt-get update && apt-get install -y chromium` (or set LARKOPS_TEST_CHROMIUM)",
            pytrace=False,
        )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, sandbox_bot: Bot, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh page on /sandbox; page errors fail the test, a failure leaves a screenshot."""
    context = browser.new_context(viewport={"width": 1100, "height": 900}, locale="zh-CN")
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    opened.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    opened.goto(f"{sandbox_bot.url}/sandbox")
    expect(opened.locator("body")).to_have_attribute("data-ready", "true")
    yield opened
    name = request.node.name
    opened.screenshot(path=ARTIFACTS / f"{name}-final.png", full_page=True)
    context.close()
    assert not errors, f"browser errors: {errors}"


def shot(page: Page, name: str) -> None:
    page.screenshot(path=ARTIFACTS / f"sandbox-{name}.png", full_page=True)


def send(page: Page, text: str) -> None:
    page.get_by_test_id("message-input").fill(text)
    page.get_by_test_id("send-button").click()
    expect(page.locator(USER_MESSAGE).filter(has_text=text).last).to_be_visible()


def card_message(page: Page, message_id: str) -> Locator:
    """The message by id (re-resolved: a card update replaces the element)."""
    return page.locator(f'[data-testid="message"][data-message-id="{message_id}"]')


def test_help_then_ping_card_refresh(page: Page, sandbox_bot: Bot) -> None:
    shot(page, "01-loaded")
    expect(page.get_by_test_id("chat-select")).to_have_value("oc_ops")

    send(page, "/help")
    help_reply = page.locator(BOT_MESSAGE).filter(has_text="/ping").filter(has_text="/whoami")
    expect(help_reply).to_have_count(1, timeout=15_000)
    shot(page, "02-help")

    send(page, "/ping")
    pong = page.locator(BOT_MESSAGE).filter(
        has=page.get_by_test_id("card-header").filter(has_text="🏓 pong")
    )
    expect(pong).to_have_count(1, timeout=15_000)
    message_id = pong.get_attribute("data-message-id")
    assert message_id
    card = card_message(page, message_id)
    expect(card.get_by_test_id("card-header")).to_have_attribute("data-template", "green")
    expect(card.get_by_test_id("card-body")).to_contain_text("Lark")
    # <at id=…> in the card shows as the person's name, as Lark renders it
    expect(card.get_by_test_id("card-body")).to_contain_text(re.compile(r"由 @张三 于 .+ 测量"))
    shot(page, "03-ping-card")

    first_version = card.get_attribute("data-updated-at")
    card.get_by_test_id("card-button").filter(has_text="重新测量").click()
    toast = page.get_by_test_id("toast").filter(has_text="已重新测量")
    expect(toast).to_have_attribute("data-type", "success", timeout=10_000)
    shot(page, "04-toast")

    # the callback's card re-renders the message, then the delayed update (card/update with the
    # action token) adds the Lark round trip; it must stay (not be overwritten by an older card)
    expect(card).not_to_have_attribute("data-updated-at", first_version or "", timeout=10_000)
    expect(card.get_by_test_id("card-body")).to_contain_text("Lark", timeout=10_000)
    # the toast came with the click's answer, so the callback's card was already stored: once
    # the stored card has the Lark figure, the delayed update came last and nothing older is
    # left to land; the page then shows that last version
    final = wait_until_sync(
        lambda: _stored_with_lark(sandbox_bot, message_id), 10, "the stored delayed update"
    )
    expect(card).to_have_attribute("data-updated-at", str(final["updated_at"]), timeout=10_000)
    expect(card.get_by_test_id("card-body")).to_contain_text("Lark")
    expect(card.get_by_test_id("card-button")).to_have_text("重新测量")
    shot(page, "05-card-updated")


def _stored_with_lark(bot: Bot, message_id: str) -> dict[str, Any] | None:
    """The emulator's stored message `message_id` once its card shows the Lark round trip."""
    answer = httpx.get(f"{bot.url}/sandbox/api/chats/oc_ops/messages", timeout=5).json()
    for message in answer["messages"]:
        if message["message_id"] == message_id and "Lark" in json.dumps(
            message["card"], ensure_ascii=False
        ):
            return dict(message)
    return None


def _bot_api(bot: Bot) -> httpx.Client:
    """An httpx client authenticated as the sandbox app (to post messages as the bot)."""
    token = httpx.post(
        f"{bot.url}/open-apis/auth/v3/tenant_access_token/internal", json=SANDBOX_APP
    ).json()["tenant_access_token"]
    return httpx.Client(base_url=bot.url, headers={"Authorization": f"Bearer {token}"})


def _post_as_bot(api: httpx.Client, chat_id: str, msg_type: str, content: dict[str, Any]) -> str:
    response = api.post(
        "/open-apis/im/v1/messages",
        params={"receive_id_type": "chat_id"},
        json={
            "receive_id": chat_id,
            "msg_type": msg_type,
            "content": json.dumps(content, ensure_ascii=False),
        },
    )
    body = response.json()
    assert body["code"] == 0, body
    return str(body["data"]["message_id"])


HOSTILE = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
GALLERY_CARD: dict[str, Any] = {
    "schema": "2.0",
    "header": {
        "title": {"tag": "plain_text", "content": "画廊 " + HOSTILE},
        "subtitle": {"tag": "plain_text", "content": "副标题"},
        "template": "red",
    },
    "body": {
        "elements": [
            {"tag": "markdown", "content": "**加粗** 和 `code`\n- 第一项\n- 第二项 " + HOSTILE},
            {"tag": "hr"},
            {
                "tag": "column_set",
                "columns": [
                    {"tag": "column", "elements": [{"tag": "markdown", "content": "左列"}]},
                    {"tag": "column", "elements": [{"tag": "plain_text", "content": "右列"}]},
                ],
            },
            {"tag": "img", "img_key": "img_v2_x", "alt": {"tag": "plain_text", "content": "图"}},
            {"tag": "mystery_widget", "content": "?"},
            {"tag": "markdown", "content": "小字说明", "text_size": "notation"},
            {
                "tag": "form",
                "name": "f",
                "elements": [
                    {"tag": "input", "name": "reason", "placeholder": {"content": "原因"}},
                    {
                        "tag": "button",
                        "name": "go",
                        "text": {"tag": "plain_text", "content": "提交"},
                        "form_action_type": "submit",
                        "behaviors": [{"type": "callback", "value": {"action": "unsigned"}}],
                    },
                ],
            },
        ]
    },
}


def test_cards_render_safely(page: Page, sandbox_bot: Bot) -> None:
    page.get_by_test_id("chat-select").select_option("oc_dev")
    expect(page.get_by_test_id("chat-title")).to_contain_text("研发群")
    with _bot_api(sandbox_bot) as api:
        text_id = _post_as_bot(api, "oc_dev", "text", {"text": "第一行\n" + HOSTILE})
        card_id = _post_as_bot(api, "oc_dev", "interactive", GALLERY_CARD)

    text = card_message(page, text_id).get_by_test_id("message-text")
    expect(text).to_have_text("第一行\n" + HOSTILE)
    card = card_message(page, card_id)
    expect(card.get_by_test_id("card-header")).to_have_attribute("data-template", "red")
    expect(card.get_by_test_id("card-title")).to_have_text("画廊 " + HOSTILE)
    markdown = card.get_by_test_id("markdown").first
    expect(markdown.locator("strong")).to_have_text("加粗")
    expect(markdown.locator("code")).to_have_text("code")
    expect(markdown.locator("li")).to_have_count(2)
    expect(markdown.locator("li").last).to_have_text("第二项 " + HOSTILE)
    expect(card.locator(".column")).to_have_count(2)
    expect(card.get_by_test_id("unknown")).to_have_text("[mystery_widget]")
    expect(card.locator(".notation")).to_have_text("小字说明")
    expect(card.get_by_test_id("card-img")).to_be_visible()
    shot(page, "06-gallery")

    # a form submit posts the inputs as form_value; the bot rejects the unsigned value
    card.get_by_test_id("card-input").fill("磁盘满了")
    with page.expect_request(re.compile(r"/sandbox/api/messages/.+/actions")) as posted:
        card.get_by_test_id("card-button").filter(has_text="提交").click()
    assert posted.value.post_data_json == {
        "operator": "ou_alice",
        "value": {"action": "unsigned"},
        "name": "go",
        "form_value": {"reason": "磁盘满了"},
    }
    expect(page.get_by_test_id("toast").last).to_have_attribute("data-type", "error")
    shot(page, "07-form-rejected")

    assert page.locator('[data-testid="message-list"] img').count() == 0
    assert page.locator('[data-testid="message-list"] script').count() == 0
    assert page.evaluate("window.__xss") is None


def _incident_card(page: Page, number: int) -> Locator:
    """The incident card whose title is `#number DemoServiceDown` (the original, not a copy)."""
    return page.locator(BOT_MESSAGE).filter(
        has=page.get_by_test_id("card-title").filter(
            has_text=re.compile(rf"^#{number} DemoServiceDown$")
        )
    )


def test_the_readme_demo_end_to_end_and_after_a_restart(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The README's demo, as written: break the demo service, the alert bot's alert becomes an
    incident, 李四 approves the diagnosis and the fix, the fix really repairs the service and the
    card says 已恢复 — in under a minute. Then a restart keeps the chats, and /incident shows a
    pending gate's buttons again."""
    bot = Bot(tmp_path_factory.mktemp("demo") / "home", free_port()).start()
    context = browser.new_context(viewport={"width": 1100, "height": 1400}, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        wait_lark_connected(bot)
        # JSON logs (the test's LARKOPS_LOG_FORMAT), and the URL still on a plain line of its own
        assert f"larkops sandbox: {bot.url}/sandbox" in bot.log().splitlines()
        page.goto(f"{bot.url}/sandbox")
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        expect(page.get_by_test_id("demo-state")).to_have_text("正常")
        users = page.get_by_test_id("user-select")
        expect(users.locator("option[value=ou_bob]")).to_have_text("李四（审批人）")
        expect(users.locator("option[value=ou_carol]")).to_have_text("王五（管理员）")
        expect(users.locator("option[value=ou_alertbot]")).to_have_count(0)  # it only alerts
        shot(page, "demo-01-ready")

        began = time.monotonic()
        page.get_by_test_id("demo-break").click()  # step 2
        expect(page.get_by_test_id("demo-state")).to_have_text("故障")
        alert = page.locator('[data-testid="message"][data-sender-type="bot"]').filter(
            has_text="[FIRING:1] DemoServiceDown"
        )
        expect(alert).to_have_count(1, timeout=15_000)
        card = _incident_card(page, 1)  # step 3: the diagnosis and its gate
        expect(card.get_by_test_id("card-body")).to_contain_text("确认诊断", timeout=30_000)
        expect(card.get_by_test_id("card-body")).to_contain_text("503")
        shot(page, "demo-02-diagnosis")

        users.select_option("ou_bob")  # step 4: 李四 approves the diagnosis
        card.get_by_test_id("card-button").filter(has_text="批准").click()
        expect(card.get_by_test_id("card-body")).to_contain_text("执行修复", timeout=30_000)
        expect(card.get_by_test_id("card-body")).to_contain_text("repair_demo")
        shot(page, "demo-03-fix-proposed")

        card.get_by_test_id("card-button").filter(has_text="批准").click()  # step 5: the fix
        expect(card.get_by_test_id("card-body")).to_contain_text("已恢复", timeout=60_000)
        expect(card.get_by_test_id("card-header")).to_have_attribute("data-template", "green")
        took = time.monotonic() - began
        assert took < 60, f"alert → 已恢复 took {took:.1f} s"
        expect(page.get_by_test_id("demo-state")).to_have_text("正常", timeout=10_000)
        assert httpx.get(f"{bot.url}/sandbox/demo/healthz").status_code == 200  # really repaired
        shot(page, "demo-04-resolved")
        print(f"README demo: alert → 已恢复 in {took:.1f} s")

        page.get_by_test_id("demo-break").click()  # a second incident, left at its gate
        expect(_incident_card(page, 2).get_by_test_id("card-body")).to_contain_text(
            "确认诊断", timeout=30_000
        )

        bot.stop()  # step 6: a restart keeps the chats
        bot.start()
        wait_lark_connected(bot)
        page.reload()
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        expect(_incident_card(page, 1).get_by_test_id("card-body")).to_contain_text("已恢复")
        expect(_incident_card(page, 2).get_by_test_id("card-body")).to_contain_text("确认诊断")
        expect(page.get_by_test_id("demo-state")).to_have_text("故障")
        shot(page, "demo-05-after-restart")

        users.select_option("ou_bob")
        send(page, "/incident 2")  # the pending gate again, with its buttons
        expect(_incident_card(page, 2)).to_have_count(2, timeout=15_000)
        copy = _incident_card(page, 2).last
        copy.get_by_test_id("card-button").filter(has_text="批准").click()
        toast = page.get_by_test_id("toast").filter(has_text="已批准")
        expect(toast.last).to_have_attribute("data-type", "success", timeout=10_000)
        original = _incident_card(page, 2).first
        expect(original.get_by_test_id("card-body")).to_contain_text("执行修复", timeout=30_000)
        shot(page, "demo-06-gate-again")
        assert not errors, f"browser errors: {errors}"
    finally:
        context.close()
        bot.stop()
