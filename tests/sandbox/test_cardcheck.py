"""The emulator refuses what real Feishu refuses in a card (230099 with the sub-code), on send,
reply, patch and delayed update, and stores nothing; the bot's own cards mention only people.
Each refused card below is one a sender really writes (a mention by name or e-mail, an LLM
answer full of tables, the 1.0 `action` row, "gray" for grey…), answered with Feishu's code."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bot.lark.api import LarkApiError
from bot.sandbox.cardcheck import card_problem
from bot.sandbox.emulator import LarkEmulator
from bot.sandbox.server import serve_emulator
from cards.markup import mention


def card(*elements: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"schema": "2.0", "body": {"elements": list(elements)}, **extra}


class Raw:
    """The open API called plainly (the bot's client would resend a card without a stranger's
    mention, `bot.lark.strangers`): what Feishu answers is what the test sees."""

    def __init__(self, http: httpx.AsyncClient, token: str) -> None:
        self.http, self.headers = http, {"Authorization": f"Bearer {token}"}

    async def _call(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = await self.http.request(method, path, json=body, headers=self.headers)
        data: dict[str, Any] = answer.json()
        if data.get("code"):
            raise LarkApiError(path, answer.status_code, data["code"], data.get("msg", ""))
        return data

    async def send(self, chat_id: str, msg_type: str, content: dict[str, Any], *, uuid: str) -> str:
        body = {"receive_id": chat_id, "msg_type": msg_type, "uuid": uuid}
        body["content"] = json.dumps(content, ensure_ascii=False)
        data = await self._call("POST", "/open-apis/im/v1/messages?receive_id_type=chat_id", body)
        return str(data["data"]["message_id"])

    async def send_card(self, chat_id: str, card: dict[str, Any], *, uuid: str) -> str:
        return await self.send(chat_id, "interactive", card, uuid=uuid)

    async def patch_card(self, message_id: str, card: dict[str, Any]) -> None:
        content = json.dumps(card, ensure_ascii=False)
        await self._call("PATCH", f"/open-apis/im/v1/messages/{message_id}", {"content": content})


@pytest.fixture
async def lark() -> AsyncIterator[tuple[LarkEmulator, Raw]]:
    emulator = LarkEmulator()
    async with serve_emulator(emulator) as url, httpx.AsyncClient(base_url=url) as http:
        secret = {"app_id": emulator.app_id, "app_secret": emulator.app_secret}
        path = "/open-apis/auth/v3/tenant_access_token/internal"
        token = (await http.post(path, json=secret)).json()["tenant_access_token"]
        yield emulator, Raw(http, token)


SUBMIT = {
    "tag": "button",
    "name": "send",
    "text": {"tag": "plain_text", "content": "send"},
    "form_action_type": "submit",
    "behaviors": [{"type": "callback", "value": {"k": "v"}}],
}
FIELD = {"tag": "input", "name": "why"}
FORM = {
    "tag": "form",
    "name": "f",
    "elements": [{"tag": "markdown", "content": "x"}, FIELD, SUBMIT],
}
INVALID = "230099.*Failed to create card content, ext=ErrCode: {}"
TABLE = "| host | load |\n|---|---:|\n| db-1 | 0.9 |"
HEADER = INVALID.format(200621) + ".*header."
CONFIG = INVALID.format(200621) + ".*config."
PLAIN = {"tag": "plain_text", "content": "t"}
TAG = {"tag": "text_tag", "text": {"tag": "plain_text", "content": "P0"}, "color": "red"}
NOT_A_USER = INVALID.format(100290) + ".*invalid user resource.*ErrorValue: {}"


TABLE_TAG = {"tag": "table", "rows": []}


def nested(levels: int) -> dict[str, Any]:
    """Collapsible panels `levels` deep around a line of text."""
    inner: dict[str, Any] = {"tag": "markdown", "content": "deep"}
    for _ in range(levels):
        inner = {"tag": "collapsible_panel", "elements": [inner]}
    return inner


def columns(**column: Any) -> dict[str, Any]:
    """A column set of one column with these properties."""
    return {"tag": "column_set", "columns": [{"tag": "column", "elements": [], **column}]}


def md(content: str) -> dict[str, Any]:
    return {"tag": "markdown", "content": content}


def button(name: str) -> dict[str, Any]:
    text = {"tag": "plain_text", "content": name}
    return {"tag": "button", "name": name, "text": text, "behaviors": [{"type": "callback"}]}


@pytest.mark.parametrize(
    ("bad", "answer"),
    [
        (card({"tag": "markdown", "content": "by <at id=system></at>"}), INVALID.format(100290)),
        (
            card({"tag": "markdown", "content": 'by <at user_id="alert"></at>'}),
            INVALID.format(100290),
        ),
        (
            card({"tag": "note", "elements": [{"tag": "plain_text", "content": "x"}]}),
            INVALID.format(200861) + ".*unsupported tag note",
        ),
        (card({"tag": "action", "actions": []}), INVALID.format(200861)),
        (
            {"schema": "2.0", "elements": [{"tag": "markdown", "content": "x"}]},
            INVALID.format(200621),
        ),
        (card(i18n_elements={"zh_cn": []}), INVALID.format(200621)),
        (
            {"schema": "2.0", "body": {"elements": [], "text_size": "normal"}},
            INVALID.format(200621),
        ),
        (
            card({"tag": "column_set", "columns": [{"tag": "column", "elements": [FORM]}]}),
            INVALID.format(200621),
        ),
        (card({**FORM, "elements": [FORM]}), INVALID.format(200621)),
        (
            card({"tag": "markdown", "content": "x" * 31_000}),
            "230025.*The length of the message content reaches its limit",
        ),
        # forms: named, their fields named, submitted by a button, nothing a form cannot hold
        (card({**FORM, "name": ""}), INVALID.format(200621) + ".*form.name"),
        (card({**FORM, "elements": [{"tag": "input"}, SUBMIT]}), INVALID.format(200621)),
        (card({**FORM, "elements": [FIELD]}), INVALID.format(200621) + ".*form_action_type"),
        (
            card({**FORM, "elements": [FIELD, SUBMIT | {"form_action_type": "send"}]}),
            INVALID.format(200621) + ".*form_action_type send",
        ),
        (
            card({**FORM, "elements": [FIELD, SUBMIT, {"tag": "table", "rows": []}]}),
            INVALID.format(200621) + ".*table in form",
        ),
        # a table in a column; containers more than five deep
        (
            card({"tag": "column_set", "columns": [{"tag": "column", "elements": [TABLE_TAG]}]}),
            INVALID.format(200621) + ".*table in column_set",
        ),
        (card(nested(6)), INVALID.format(11310) + ".*nesting exceeds the limit"),
        # values a component does not have
        (card(md("x") | {"text_size": "huge"}), INVALID.format(200621) + ".*text_size huge"),
        (card(columns(width="50%")), INVALID.format(200621) + ".*width 50%"),
        (card(columns(width="weighted", weight=8)), INVALID.format(200621) + ".*weight 8"),
        (card(columns(width="700px")), INVALID.format(200621)),
        (
            card({"tag": "column_set", "flex_mode": "grid", "columns": []}),
            INVALID.format(200621) + ".*flex_mode grid",
        ),
        (card(md("x"), header={"template": "red"}), INVALID.format(200621) + ".*header.title"),
        # interactions a button does not have
        (
            card(button("a") | {"behaviors": [{"type": "submit", "value": {}}]}),
            INVALID.format(200621) + ".*behaviors.type submit",
        ),
        (
            card(button("a") | {"behaviors": [{"type": "callback", "value": ["approve"]}]}),
            INVALID.format(200621) + ".*behaviors.value",
        ),
        (
            card(button("a") | {"behaviors": [{"type": "open_url", "url": "https://x"}]}),
            INVALID.format(200621) + ".*behaviors.default_url",
        ),
        # languages cards do not have
        (
            card(md("x") | {"i18n_content": {"zh_cn": "x", "english": "x"}}),
            INVALID.format(200621) + ".*i18n_content.english",
        ),
        (card(md("x"), config={"locales": ["zh_cn", "en"]}), INVALID.format(200621)),
        # mentions of what is not a person of the tenant
        (card(md("oncall: <at id=ou_ghost></at>")), NOT_A_USER.format("ou_ghost")),
        (card(md("<at email=alice@corp.example></at>")), NOT_A_USER.format("alice@corp.example")),
        (card(md("<at ids=ou_bob,ou_gone></at>")), NOT_A_USER.format("ou_gone")),
        (card(md('<at user_id="张三"></at>')), NOT_A_USER.format("张三")),
        (card({"tag": "person", "user_id": "lead@corp.example"}), INVALID.format(100290)),
        (
            card({"tag": "person_list", "persons": [{"id": "ou_bob"}, {"id": "oncall"}]}),
            NOT_A_USER.format("oncall"),
        ),
        # limits
        (card(*[md("x")] * 201), INVALID.format(11310) + ".*element exceeds the limit"),
        (
            card(md("\n\n".join([TABLE] * 6))),
            INVALID.format(11310) + ".*card table number over limit",
        ),
        (
            card(md("\n\n".join([TABLE] * 3)), *[{"tag": "table", "rows": []}] * 3),
            INVALID.format(11310) + ".*card table number over limit",
        ),
        (card(button("ack"), button("ack")), INVALID.format(11310) + r".*name\(ack\) duplicate"),
        (card({"tag": "img", "alt": md("x")}), INVALID.format(11310) + ".*must contain img_key"),
        (
            card({"tag": "img", "img_key": "https://grafana.example/panel.png"}),
            INVALID.format(200570) + ".*invalid image keys",
        ),
        # schema 2.0 rules
        (card(md("x"), config={"update_multi": False}), INVALID.format(300302)),
        (card(md("x"), config={"wide_screen_mode": True}), INVALID.format(200621)),
        (card(md("x"), config={"width_mode": "wide"}), CONFIG + "width_mode wide"),
        (card(md("x"), config={"streaming_mode": "on"}), CONFIG + "streaming_mode"),
        (card(md("x"), config={"summary": "告警"}), CONFIG + "summary"),
        (card(md("x"), header={"title": md("t"), "template": "gray"}), INVALID.format(200621)),
        (card(md("x"), header={"title": md("t"), "color": "red"}), INVALID.format(200621)),
        (card(md("x"), header={"title": PLAIN, "subtitle": "t"}), HEADER + "subtitle"),
        (card(md("x"), header={"title": {"tag": "plain_text"}}), HEADER + "title"),
        (card(md("x"), header={"title": PLAIN, "text_tag_list": PLAIN}), HEADER + "text_tag_list"),
        (
            card(
                md("x"), header={"title": PLAIN, "text_tag_list": [{"tag": "tag", "text": PLAIN}]}
            ),
            HEADER + r"text_tag_list\[0\].tag",
        ),
        (
            card(md("x"), header={"title": PLAIN, "text_tag_list": [TAG | {"text": md("P0")}]}),
            HEADER,
        ),
        (
            card(md("x"), header={"title": PLAIN, "text_tag_list": [TAG | {"color": "pink"}]}),
            HEADER + r"text_tag_list\[0\].color pink",
        ),
        (card(button("a") | {"type": "warning"}), INVALID.format(200621) + ".*type warning"),
        (card(button("a") | {"width": "100%"}), INVALID.format(200621) + ".*width 100%"),
        (
            card(
                {"tag": "column_set", "columns": [{"tag": "column", "elements": [{"tag": "note"}]}]}
            ),
            INVALID.format(200861)
            + r".*ErrPath: ROOT -> body -> elements -> \[0\]\(tag: column_set\) -> columns -> "
            + r"\[0\]\(tag: column\) -> elements -> \[0\]\(tag: note\); ErrMsg: cards of schema V2",
        ),
    ],
)
async def test_cards_feishu_refuses_are_refused(
    lark: tuple[LarkEmulator, Raw], bad: dict[str, Any], answer: str
) -> None:
    emulator, api = lark
    with pytest.raises(LarkApiError, match=answer):
        await api.send_card("oc_ops", bad, uuid=f"bad-{len(str(bad))}-{hash(answer)}")
    assert emulator.transcript("oc_ops") == []
    good = await api.send_card(
        "oc_ops",
        card({"tag": "markdown", "content": "<at id=ou_bob></at> <at id=all></at>"}),
        uuid="ok",
    )
    with pytest.raises(LarkApiError, match=answer):
        await api.patch_card(good, bad)
    [kept] = emulator.transcript("oc_ops")
    assert kept.card is not None
    assert "ou_bob" in kept.card["body"]["elements"][0]["content"]


def test_a_form_at_the_root_is_accepted() -> None:
    assert card_problem(card(FORM, {"tag": "markdown", "content": "<at id=ou_bob></at>"})) is None


def test_only_open_ids_become_mentions() -> None:
    assert mention("ou_bob") == "<at id=ou_bob></at>"
    for actor in ("system", "alert", "scheduler", "all", "dept:od-1"):
        assert "<at" not in mention(actor), actor


async def test_what_feishu_accepts_is_accepted(lark: tuple[LarkEmulator, Raw]) -> None:
    """A user_id mention of a tenant member, five tables, tables shown inside a code block,
    200 elements (the most a card has) and a real image key all go through."""
    emulator, api = lark
    fenced = "```\n" + "\n\n".join([TABLE] * 6) + "\n```"
    accepted = [
        card(md("<at id=bob></at> <at user_id=ou_alice></at> <at id=all></at>")),
        card(md("\n\n".join([TABLE] * 5)), md(fenced)),
        card(*[md("x")] * 200),
        card({"tag": "img", "img_key": "img_v3_02ab_x"}, button("a"), button("b")),
        card(button("a") | {"type": "primary_filled", "size": "small", "width": "120px"}),
        card({"tag": "person", "user_id": "ou_carol"}),
        card(nested(5), columns(width="weighted", weight=5), columns(width="600px")),
        card(md("x") | {"text_size": "brand"}, config={"style": {"text_size": {"brand": {}}}}),
        card(FORM, {"tag": "column_set", "flex_mode": "bisect", "columns": []}),
        card(md("x") | {"i18n_content": {"en_us": "x"}}, config={"locales": ["zh_cn", "en_us"]}),
        card(button("a") | {"behaviors": [{"type": "open_url", "default_url": "https://x"}]}),
        card(md("x"), header={"title": PLAIN, "subtitle": PLAIN, "text_tag_list": [TAG] * 4}),
        card(md("x"), config={"width_mode": "fill", "streaming_mode": False, "summary": PLAIN}),
        card(
            md("x"),
            config={"style": {"color": {"cus-red": {"light_mode": "rgba(255,0,0,1)"}}}},
            header={"title": PLAIN, "text_tag_list": [TAG | {"color": "cus-red"}]},
        ),
    ]
    chats = ("oc_ops", "oc_dev", "oc_p2p_alice", "oc_p2p_bob")  # under the per-chat rate limit
    for index, good in enumerate(accepted):
        await api.send_card(chats[index % len(chats)], good, uuid=f"good-{index}")
    assert sum(len(emulator.transcript(chat)) for chat in chats) == len(accepted)


async def test_text_and_post_over_their_size_are_refused(
    lark: tuple[LarkEmulator, Raw],
) -> None:
    """Feishu takes 150 KB of text and 30 KB of post (im-v1 message create, 230025)."""
    emulator, api = lark
    await api.send("oc_ops", "text", {"text": "y" * 100_000}, uuid="long-text")
    too_long = "230025.*The length of the message content reaches its limit"
    with pytest.raises(LarkApiError, match=too_long):
        await api.send("oc_ops", "text", {"text": "y" * 160_000}, uuid="longer-text")
    post = {"zh_cn": {"title": "t", "content": [[{"tag": "text", "text": "y" * 40_000}]]}}
    with pytest.raises(LarkApiError, match=too_long):
        await api.send("oc_ops", "post", post, uuid="long-post")
    assert len(emulator.transcript("oc_ops")) == 1
