"""The REST side through the real lark_oapi client (httpx for raw error shapes)."""

from __future__ import annotations

import asyncio
import json

import httpx
import lark_oapi as lark
import pytest
from lark_oapi.api.im.v1 import (
    CreateMessageRequest,
    CreateMessageRequestBody,
    CreateMessageResponse,
    PatchMessageRequest,
    PatchMessageRequestBody,
    ReplyMessageRequest,
    ReplyMessageRequestBody,
)
from lark_oapi.core.exception import ObtainAccessTokenException

from bot.sandbox import LarkEmulator
from tests.sandbox.sdk import forget_token, rest_client

TOKEN_PATH = "/open-apis/auth/v3/tenant_access_token/internal"


def create(
    rest: lark.Client,
    chat_id: str = "oc_ops",
    text: str = "hello",
    *,
    msg_type: str = "text",
    content: str | None = None,
    uuid: str | None = None,
    id_type: str = "chat_id",
) -> CreateMessageResponse:
    builder = (
        CreateMessageRequestBody.builder()
        .receive_id(chat_id)
        .msg_type(msg_type)
        .content(content or json.dumps({"text": text}, ensure_ascii=False))
    )
    if uuid:
        builder = builder.uuid(uuid)
    request = (
        CreateMessageRequest.builder()
        .receive_id_type(id_type)
        .request_body(builder.build())
        .build()
    )
    response: CreateMessageResponse = rest.im.v1.message.create(request)
    return response


def patch(rest: lark.Client, message_id: str, content: str) -> lark.BaseResponse:
    body = PatchMessageRequestBody.builder().content(content).build()
    request = PatchMessageRequest.builder().message_id(message_id).request_body(body).build()
    response: lark.BaseResponse = rest.im.v1.message.patch(request)
    return response


async def test_token_issuance_and_send(emu: LarkEmulator, base_url: str, rest: lark.Client) -> None:
    async with httpx.AsyncClient(base_url=base_url) as http:
        answer = await http.post(
            TOKEN_PATH, json={"app_id": emu.app_id, "app_secret": emu.app_secret}
        )
    body = answer.json()
    assert answer.status_code == 200
    assert (body["code"], body["msg"], body["expire"]) == (0, "ok", 7200)
    assert body["tenant_access_token"].startswith("t-")

    response = await asyncio.to_thread(create, rest, text="部署完成")

    assert response.success()
    data = response.data
    assert data.message_id.startswith("om_")
    assert data.chat_id == "oc_ops"
    assert (data.sender.id, data.sender.id_type, data.sender.sender_type) == (
        emu.app_id,
        "app_id",
        "app",
    )
    assert (data.msg_type, data.deleted, data.updated) == ("text", False, False)
    assert json.loads(data.body.content) == {"text": "部署完成"}
    [message] = emu.transcript("oc_ops")
    assert (message.sender_type, message.text) == ("bot", "部署完成")
    sent = [c for c in emu.calls if c.path == "/open-apis/im/v1/messages"]
    assert [(c.method, c.status, c.code, c.query) for c in sent] == [
        ("POST", 200, 0, {"receive_id_type": "chat_id"})
    ]
    token_calls = [c for c in emu.calls if c.path == TOKEN_PATH]
    assert all(c.body["app_secret"] == "***" for c in token_calls)


async def test_wrong_secret(emu: LarkEmulator, base_url: str) -> None:
    wrong = rest_client(base_url, emu.app_id, "nope")
    with pytest.raises(ObtainAccessTokenException) as caught:
        await asyncio.to_thread(create, wrong)
    assert caught.value.code == 10014
    async with httpx.AsyncClient(base_url=base_url) as http:
        answer = await http.post(TOKEN_PATH, json={"app_id": emu.app_id, "app_secret": "nope"})
    assert (answer.status_code, answer.json()) == (
        400,
        {"code": 10014, "msg": "app secret invalid"},
    )


async def test_revoked_and_missing_tokens(
    emu: LarkEmulator, base_url: str, rest: lark.Client
) -> None:
    assert (await asyncio.to_thread(create, rest)).success()
    emu.revoke_tokens()

    revoked = await asyncio.to_thread(create, rest)
    assert (revoked.code, revoked.raw.status_code) == (99991663, 400)

    forget_token(emu.app_id)  # what a bot does on 99991663: fetch a fresh token
    assert (await asyncio.to_thread(create, rest)).success()
    async with httpx.AsyncClient(base_url=base_url) as http:
        missing = await http.get("/open-apis/bot/v3/info")
        garbage = await http.get(
            "/open-apis/bot/v3/info", headers={"Authorization": "Bearer t-garbage"}
        )
    assert (missing.status_code, missing.json()["code"]) == (400, 99991661)
    assert (garbage.status_code, garbage.json()["code"]) == (400, 99991663)


async def test_bot_info(emu: LarkEmulator, rest: lark.Client) -> None:
    request = (
        lark.BaseRequest.builder()
        .http_method(lark.HttpMethod.GET)
        .uri("/open-apis/bot/v3/info")
        .token_types({lark.AccessTokenType.TENANT})
        .build()
    )
    response = await asyncio.to_thread(rest.request, request)
    assert response.code == 0
    body = json.loads(response.raw.content)
    assert body["bot"] == {
        "activate_status": 2,
        "app_name": "larkops",
        "avatar_url": "",
        "ip_white_list": [],
        "open_id": emu.bot.open_id,
    }


async def test_uuid_makes_send_idempotent(emu: LarkEmulator, rest: lark.Client) -> None:
    first = await asyncio.to_thread(create, rest, text="once", uuid="u-123")
    again = await asyncio.to_thread(create, rest, text="twice?", uuid="u-123")
    other = await asyncio.to_thread(create, rest, text="other", uuid="u-456")

    assert first.success()
    assert again.success()
    assert other.success()
    assert again.data.message_id == first.data.message_id != other.data.message_id
    assert json.loads(again.data.body.content) == {"text": "once"}
    assert [m.text for m in emu.transcript("oc_ops")] == ["once", "other"]
    [duplicate] = emu.duplicates
    assert (duplicate.uuid, duplicate.message_id) == ("u-123", first.data.message_id)


async def test_reply_in_thread_and_open_id_receiver(emu: LarkEmulator, rest: lark.Client) -> None:
    user_message = emu.post_message("oc_dev", "ou_alice", "/help")
    body = (
        ReplyMessageRequestBody.builder()
        .msg_type("post")
        .content(
            json.dumps({"zh_cn": {"title": "帮助", "content": [[{"tag": "text", "text": "用法"}]]}})
        )
        .reply_in_thread(True)
        .build()
    )
    request = (
        ReplyMessageRequest.builder().message_id(user_message.message_id).request_body(body).build()
    )
    reply = await asyncio.to_thread(rest.im.v1.message.reply, request)
    direct = await asyncio.to_thread(create, rest, "ou_bob", "私聊", id_type="open_id")
    missing_parent = (
        ReplyMessageRequest.builder().message_id("om_missing").request_body(body).build()
    )
    gone = await asyncio.to_thread(rest.im.v1.message.reply, missing_parent)

    assert reply.success()
    assert reply.data.parent_id == reply.data.root_id == user_message.message_id
    assert reply.data.thread_id.startswith("omt_")
    assert reply.data.chat_id == "oc_dev"
    stored = emu.transcript("oc_dev")
    assert [m.text for m in stored] == ["@larkops /help", "帮助\n用法"]
    assert stored[0].thread_id == stored[1].thread_id
    bot_reply = await emu.wait_for_bot_message("oc_dev", lambda m: m.parent_id != "", timeout=1)
    assert bot_reply.message_id == reply.data.message_id
    assert direct.success()
    assert direct.data.chat_id == "oc_p2p_bob"
    assert (gone.code, gone.raw.status_code) == (230011, 400)


async def test_patch_card_and_refuse_non_card(emu: LarkEmulator, rest: lark.Client) -> None:
    card = {"schema": "2.0", "body": {"elements": [{"tag": "markdown", "content": "v1"}]}}
    new = {"schema": "2.0", "body": {"elements": [{"tag": "markdown", "content": "v2"}]}}
    sent = await asyncio.to_thread(create, rest, msg_type="interactive", content=json.dumps(card))
    text = await asyncio.to_thread(create, rest, text="plain")

    waiter = asyncio.create_task(
        emu.wait_for_bot_message("oc_ops", lambda m: m.card == new, timeout=2)
    )
    patched = await asyncio.to_thread(patch, rest, sent.data.message_id, json.dumps(new))
    refused = await asyncio.to_thread(patch, rest, text.data.message_id, json.dumps(new))
    broken = await asyncio.to_thread(patch, rest, sent.data.message_id, "{not json")

    assert patched.success()
    assert (await waiter).message_id == sent.data.message_id
    assert (refused.code, refused.raw.status_code) == (230001, 400)  # a text is no card
    alerting = emu.post_card("oc_ops", "ou_alice", card)  # another sender's card
    others = await asyncio.to_thread(patch, rest, alerting.message_id, json.dumps(new))
    assert (others.code, others.msg) == (230012, "Bot is NOT the sender of the message.")
    assert (broken.code, broken.raw.status_code) == (230001, 400)
    message = emu.store.get(sent.data.message_id)
    assert message is not None
    assert message.card_history == [card, new]


async def test_recalled_and_two_week_old_cards_are_not_updated(
    emu: LarkEmulator, rest: lark.Client
) -> None:
    """Feishu updates a card only while it is not recalled (230011) and within 14 days of its
    sending (230031); a recalled message reads as deleted and takes no reply either."""
    card = {"schema": "2.0", "body": {"elements": [{"tag": "markdown", "content": "v1"}]}}
    new = json.dumps(
        {"schema": "2.0", "body": {"elements": [{"tag": "markdown", "content": "v2"}]}}
    )
    kept, old, gone = [
        await asyncio.to_thread(create, rest, msg_type="interactive", content=json.dumps(card))
        for _ in range(3)
    ]
    aged = emu.store.get(old.data.message_id)
    assert aged is not None
    aged.created_at -= 14 * 24 * 3600 * 1000 + 60_000  # sent 14 days and a minute ago
    emu.recall(gone.data.message_id)
    body = ReplyMessageRequestBody.builder().msg_type("text").content('{"text": "x"}').build()
    reply = ReplyMessageRequest.builder().message_id(gone.data.message_id).request_body(body)

    updated = await asyncio.to_thread(patch, rest, kept.data.message_id, new)
    too_old = await asyncio.to_thread(patch, rest, old.data.message_id, new)
    recalled = await asyncio.to_thread(patch, rest, gone.data.message_id, new)
    answered = await asyncio.to_thread(rest.im.v1.message.reply, reply.build())

    assert updated.success()
    assert (too_old.code, too_old.msg) == (
        230031,
        "Message can only be modified within 14 days after sending.",
    )
    assert (recalled.code, recalled.msg) == (230011, "The message is recalled.")
    assert (answered.code, answered.raw.status_code) == (230011, 400)
    assert [m.card for m in emu.transcript("oc_ops")][1:] == [card, card]
    shown = emu.store.get(gone.data.message_id)
    assert shown is not None
    assert shown.to_lark(*emu.identity)["deleted"] is True


async def test_per_chat_rate_limit(emu: LarkEmulator, rest: lark.Client) -> None:
    def burst() -> list[int]:
        return [create(rest, text=f"#{i}").code for i in range(6)]

    codes = await asyncio.to_thread(burst)
    other = await asyncio.to_thread(create, rest, "oc_dev")
    unknown = await asyncio.to_thread(create, rest, "oc_nowhere")

    assert codes == [0, 0, 0, 0, 0, 230020]
    assert other.success()
    assert (unknown.code, unknown.raw.status_code) == (230002, 400)
    assert len(emu.transcript("oc_ops")) == 5


async def test_fail_next_5xx_and_429(emu: LarkEmulator, rest: lark.Client) -> None:
    emu.fail_next("/open-apis/im/v1/messages", status=503, code=99991400, count=1)
    emu.fail_next("/open-apis/im/v1/messages", status=429, code=99991400, count=1)

    unavailable = await asyncio.to_thread(create, rest)
    limited = await asyncio.to_thread(create, rest)
    fine = await asyncio.to_thread(create, rest)

    assert (unavailable.raw.status_code, unavailable.code) == (503, 99991400)
    assert (limited.raw.status_code, limited.code) == (429, 99991400)
    assert limited.raw.headers["x-ogw-ratelimit-reset"] == "1"
    assert limited.raw.headers["x-ogw-ratelimit-limit"] == "50"
    assert fine.success()
    assert [m.text for m in emu.transcript("oc_ops")] == ["hello"]


async def test_per_app_rate_limit(emu: LarkEmulator, base_url: str) -> None:
    emu.guard.app_rate_limit = 3
    async with httpx.AsyncClient(base_url=base_url) as http:
        token = (
            await http.post(TOKEN_PATH, json={"app_id": emu.app_id, "app_secret": emu.app_secret})
        ).json()["tenant_access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        answers = [await http.get("/open-apis/bot/v3/info", headers=auth) for _ in range(3)]
        await asyncio.sleep(1.05)  # the 1 s rate-limit window must pass: the behaviour under test
        after = await http.get("/open-apis/bot/v3/info", headers=auth)
        unknown = await http.get("/open-apis/im/v1/chats", headers=auth)

    assert [a.status_code for a in answers] == [200, 200, 429]
    limited = answers[-1]
    assert limited.json()["code"] == 99991400
    assert limited.headers["x-ogw-ratelimit-limit"] == "3"
    assert limited.headers["x-ogw-ratelimit-reset"] == "1"
    assert after.status_code == 200
    assert (unknown.status_code, unknown.json()["code"]) == (404, 404)


async def test_wait_for_bot_message_times_out(emu: LarkEmulator, rest: lark.Client) -> None:
    await asyncio.to_thread(create, rest, "oc_dev", "first")
    first = await emu.wait_for_bot_message("oc_dev", timeout=0.5)
    assert first.text == "first"
    with pytest.raises(TimeoutError):
        await emu.wait_for_bot_message("oc_dev", after=first.seq, timeout=0.1)


async def test_a_card_sent_unshared_is_never_patched(emu: LarkEmulator, rest: lark.Client) -> None:
    """PATCH updates shared cards only: `update_multi` true before and after (a 2.0 card is
    shared unless it says otherwise); anything else is a parameter error and the card stays."""
    private = {
        "config": {"update_multi": False},
        "elements": [{"tag": "markdown", "content": "v1"}],
    }
    unsaid = {"elements": [{"tag": "markdown", "content": "v1"}]}  # a 1.0 card: exclusive
    shared = {"config": {"update_multi": True}, "elements": [{"tag": "markdown", "content": "v2"}]}
    v2 = {"schema": "2.0", "body": {"elements": [{"tag": "markdown", "content": "v2"}]}}
    first, second, third = [
        await asyncio.to_thread(create, rest, msg_type="interactive", content=json.dumps(card))
        for card in (private, unsaid, shared)
    ]

    refused = [
        await asyncio.to_thread(patch, rest, first.data.message_id, json.dumps(shared)),
        await asyncio.to_thread(patch, rest, second.data.message_id, json.dumps(v2)),
        await asyncio.to_thread(patch, rest, third.data.message_id, json.dumps(unsaid)),
    ]
    accepted = await asyncio.to_thread(patch, rest, third.data.message_id, json.dumps(v2))

    assert [(r.code, r.raw.status_code) for r in refused] == [(230001, 400)] * 3
    assert all("update_multi" in r.msg for r in refused)
    assert accepted.success()
    assert [m.card for m in emu.transcript("oc_ops")][-3:] == [private, unsaid, v2]


@pytest.mark.parametrize(
    ("msg_type", "content", "wrong"),
    [
        ("text", {"txt": "hello"}, "content.text"),
        ("text", {"text": ["hello"]}, "content.text"),
        ("post", {}, "content"),
        ("post", {"post": {"zh_cn": {"content": [[]]}}}, "content.post"),  # the webhook shape
        ("post", {"zh_cn": {"title": "t", "content": [{"tag": "text"}]}}, "zh_cn.content"),
        ("post", {"zh_cn": {"content": [[{"tag": "markdown", "text": "x"}]]}}, "tag markdown"),
        ("post", {"zh_cn": {"content": [[{"tag": "a", "text": "x"}]]}}, "a.href"),
        ("post", {"en_us": {"content": [[{"tag": "at", "user_name": "Bob"}]]}}, "at.user_id"),
        ("post", {"zh_cn": {"title": 7, "content": [[{"tag": "text", "text": "x"}]]}}, "title"),
    ],
)
async def test_text_and_post_of_the_wrong_shape_are_refused(
    emu: LarkEmulator, rest: lark.Client, msg_type: str, content: dict[str, object], wrong: str
) -> None:
    """Content that is no text or post ("发送消息内容结构") is a parameter error naming what
    is wrong, and nothing is sent."""
    sent = await asyncio.to_thread(
        create, rest, msg_type=msg_type, content=json.dumps(content, ensure_ascii=False)
    )

    assert (sent.code, sent.raw.status_code) == (230001, 400)
    assert wrong in sent.msg
    assert emu.transcript("oc_ops") == []


async def test_a_text_mentions_only_people_and_everyone(
    emu: LarkEmulator, rest: lark.Client
) -> None:
    """`<at user_id=…>` notifies a person of the tenant (by open_id, user_id or union_id) or
    everyone (`all`); a chat id or any other word in the tag notifies nobody."""
    bob = emu.user("ou_bob")
    text = (
        f'<at user_id="{bob.open_id}">Bob</at> <at user_id="{bob.user_id}"></at> '
        f'<at user_id="{bob.union_id}"></at> <at user_id="oc_ops"></at> <at user_id="boss"></at> '
        '<at user_id="all"></at>'
    )
    post = {
        "zh_cn": {
            "title": "t",
            "content": [
                [
                    {"tag": "at", "user_id": "oc_ops"},
                    {"tag": "md", "text": '<at user_id="all"></at>'},
                ]
            ],
        }
    }

    said = await asyncio.to_thread(create, rest, text=text)
    posted = await asyncio.to_thread(create, rest, msg_type="post", content=json.dumps(post))

    assert said.success()
    assert posted.success()
    first, second = emu.transcript("oc_ops")
    assert first.notified == [bob.open_id, bob.user_id, bob.union_id, "all"]
    assert second.notified == ["all"]
