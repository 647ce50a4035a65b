"""The outbound client against the emulator: retries, limits, tokens and idempotency."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from structlog.testing import capture_logs

from bot.lark.api import CHAT_RATE, LarkApi, LarkApiError, idempotency_key
from bot.lark.outbox import BACKGROUND_SHARE, Outbox
from bot.lark.patcher import CardPatcher
from bot.sandbox.emulator import LarkEmulator
from bot.sandbox.model import Chat
from bot.sandbox.server import serve_emulator
from cards.basics import markdown
from cards.markup import inline, mention
from storage.coordination import Coordination, MemoryCoordination
from tests.conftest import World
from tests.support.wait import wait_until

SEND = "/open-apis/im/v1/messages"


@pytest.fixture
async def lark() -> AsyncIterator[tuple[LarkEmulator, LarkApi]]:
    emulator = LarkEmulator()
    async with serve_emulator(emulator) as url:
        api = LarkApi(emulator.app_id, emulator.app_secret, url, MemoryCoordination())
        yield emulator, api


def _calls(emulator: LarkEmulator, path: str) -> list[int]:
    return [c.status for c in emulator.calls if c.path.startswith(path)]


async def test_token_is_fetched_once_and_reused(lark: tuple[LarkEmulator, LarkApi]) -> None:
    emulator, api = lark
    for n in range(3):
        await api.send_text("oc_ops", f"hello {n}", uuid=idempotency_key("t", str(n)))
    assert len(_calls(emulator, "/open-apis/auth/v3/tenant_access_token")) == 1
    texts = [m.text for m in emulator.transcript("oc_ops")]
    assert texts == ["hello 0", "hello 1", "hello 2"]


async def test_revoked_token_is_refreshed_at_once(lark: tuple[LarkEmulator, LarkApi]) -> None:
    emulator, api = lark
    await api.send_text("oc_ops", "before", uuid="u-before")
    emulator.revoke_tokens()
    await api.send_text("oc_ops", "after", uuid="u-after")
    assert len(_calls(emulator, "/open-apis/auth/v3/tenant_access_token")) == 2
    assert [m.text for m in emulator.transcript("oc_ops")] == ["before", "after"]


async def test_same_uuid_sends_once(lark: tuple[LarkEmulator, LarkApi]) -> None:
    emulator, api = lark
    first = await api.send_text("oc_ops", "only once", uuid="same-uuid")
    second = await api.send_text("oc_ops", "only once", uuid="same-uuid")
    assert first == second
    assert len(emulator.transcript("oc_ops")) == 1


async def test_server_errors_are_retried(lark: tuple[LarkEmulator, LarkApi]) -> None:
    emulator, api = lark
    emulator.fail_next(SEND, status=503, code=1, count=2)
    await api.send_text("oc_ops", "eventually", uuid="u-5xx")
    assert _calls(emulator, SEND) == [503, 503, 200]
    assert [m.text for m in emulator.transcript("oc_ops")] == ["eventually"]


async def test_rate_limit_answers_are_retried_after_the_reset(
    lark: tuple[LarkEmulator, LarkApi],
) -> None:
    emulator, api = lark
    emulator.fail_next(
        SEND, status=429, code=99991400, count=1, headers={"x-ogw-ratelimit-reset": "1"}
    )
    emulator.fail_next(SEND, status=400, code=230020, count=1)
    started = time.monotonic()
    await api.send_text("oc_ops", "patient", uuid="u-429")
    assert time.monotonic() - started >= 0.95  # waited for the advertised reset
    assert _calls(emulator, SEND) == [429, 400, 200]


async def test_hopeless_client_errors_are_not_retried(lark: tuple[LarkEmulator, LarkApi]) -> None:
    emulator, api = lark
    with pytest.raises(LarkApiError) as caught:
        await api.send_text("oc_nowhere", "lost", uuid="u-404")
    assert caught.value.code != 0
    assert len(_calls(emulator, SEND)) == 1
    emulator.fail_next(SEND, status=400, code=230001, count=1)
    with pytest.raises(LarkApiError, match="230001"):
        await api.send_text("oc_ops", "bad", uuid="u-400")
    assert len(_calls(emulator, SEND)) == 2


async def test_giving_up_after_the_attempt_budget(lark: tuple[LarkEmulator, LarkApi]) -> None:
    emulator, _ = lark
    api = LarkApi(
        emulator.app_id, emulator.app_secret, api_url(lark), MemoryCoordination(), max_attempts=3
    )
    emulator.fail_next(SEND, status=500, code=1, count=10)
    with pytest.raises(LarkApiError, match="HTTP 500"):
        await api.send_text("oc_ops", "never", uuid="u-never")
    assert _calls(emulator, SEND) == [500, 500, 500]


def api_url(lark: tuple[LarkEmulator, LarkApi]) -> str:
    return lark[1]._domain


class GrantLog:
    """When a coordination's chat bucket granted tokens, bracketed by the caller's clock: a grant
    happened after `start` and before `end` of the `take` call that returned 0."""

    def __init__(self) -> None:
        self.grants: list[tuple[float, float]] = []

    def watch(self, coordination: Coordination, bucket: str) -> Coordination:
        take = coordination.take

        async def recorded(name: str, rate: float, burst: int, cost: int = 1) -> float:
            start = time.monotonic()
            delay = await take(name, rate, burst, cost)
            if name == bucket and delay == 0:
                self.grants.append((start, time.monotonic()))
            return delay

        coordination.take = recorded  # type: ignore[method-assign]
        return coordination

    def span(self) -> float:
        """At least the time between the first and the last grant."""
        return max(end for _, end in self.grants) - min(start for start, _ in self.grants)


def _sent_once(emulator: LarkEmulator, texts: set[str]) -> None:
    shown = [m.text for m in emulator.transcript("oc_ops")]
    assert sorted(shown) == sorted(texts)  # every message once: none lost, none doubled


async def test_burst_to_one_chat_is_paced_by_the_chat_bucket() -> None:
    """12 messages at once into one chat leave at most CHAT_RATE a second: 12 grants of a
    one-token bucket take at least 11 intervals, whatever the machine's scheduling does."""
    emulator, grants = LarkEmulator(), GrantLog()
    async with serve_emulator(emulator) as url:
        coordination = grants.watch(MemoryCoordination(), "lark:chat:oc_ops")
        api = LarkApi(emulator.app_id, emulator.app_secret, url, coordination)
        await asyncio.gather(
            *(api.send_text("oc_ops", f"m{n}", uuid=f"burst-{n}") for n in range(12))
        )
    _sent_once(emulator, {f"m{n}" for n in range(12)})
    assert len(grants.grants) >= 12
    assert grants.span() >= 11 / CHAT_RATE


async def test_two_replicas_share_the_chat_bucket(world: World) -> None:
    """Two replicas on one Redis pace one chat together: 12 messages sent half by each still
    take 11 intervals of the chat's rate (with a bucket each they would take 5)."""
    emulator, grants = LarkEmulator(), GrantLog()
    async with serve_emulator(emulator) as url:
        one = LarkApi(
            emulator.app_id,
            emulator.app_secret,
            url,
            grants.watch(await world.coordination(), "lark:chat:oc_ops"),
        )
        two = LarkApi(
            emulator.app_id,
            emulator.app_secret,
            url,
            grants.watch(await world.coordination(), "lark:chat:oc_ops"),
        )
        await asyncio.gather(
            *(
                api.send_text("oc_ops", f"r{n}", uuid=f"replica-{n}")
                for n, api in enumerate([one, two] * 6)
            )
        )
    _sent_once(emulator, {f"r{n}" for n in range(12)})
    assert len(grants.grants) >= 12
    assert grants.span() >= 11 / CHAT_RATE


async def test_reply_patch_and_delayed_update(lark: tuple[LarkEmulator, LarkApi]) -> None:
    emulator, api = lark
    asked = emulator.post_message("oc_ops", "ou_alice", "hi", mention_bot=False)
    reply_id = await api.reply(
        asked.message_id,
        "text",
        {"text": "in thread"},
        uuid="u-reply",
        chat_id="oc_ops",
        in_thread=True,
    )
    card_id = await api.send_card(
        "oc_ops", {"schema": "2.0", "body": {"elements": []}}, uuid="u-card"
    )
    await api.patch_card(
        card_id,
        {
            "schema": "2.0",
            "header": {"title": {"tag": "plain_text", "content": "patched"}},
            "body": {"elements": []},
        },
    )
    messages = {m.message_id: m for m in emulator.transcript("oc_ops")}
    assert messages[reply_id].parent_id == asked.message_id
    assert messages[card_id].card is not None
    assert messages[card_id].card["header"]["title"]["content"] == "patched"
    with pytest.raises(LarkApiError):
        await api.patch_card(reply_id, {"schema": "2.0"})  # a text message is no card
    with pytest.raises(LarkApiError):
        await api.update_card("c-not-a-token", {"schema": "2.0"})


async def test_a_burst_above_the_app_limit_arrives_whole_and_in_order() -> None:
    """72 replies asked for at once into 18 chats (above Lark's 50 messages/s per app): all
    arrive, once, each chat's in the order they were asked for."""
    chats = [Chat(f"oc_room{n}", f"room {n}") for n in range(18)]
    emulator = LarkEmulator(chats=chats)
    async with serve_emulator(emulator) as url:
        api = LarkApi(emulator.app_id, emulator.app_secret, url, MemoryCoordination())
        await asyncio.gather(
            *(
                api.send_text(chat.chat_id, f"{chat.chat_id} #{n}", uuid=f"{chat.chat_id}-{n}")
                for n in range(4)
                for chat in chats
            )
        )
        assert api.outbox.backlog == 0
    for chat in chats:
        shown = [m.text for m in emulator.transcript(chat.chat_id)]
        assert shown == [f"{chat.chat_id} #{n}" for n in range(4)]


async def test_refused_for_the_apps_rate_messages_are_retried_in_order_not_lost() -> None:
    """Lark refusing the app for its rate (99991400: six refusals injected, and a limit of 10
    calls/s under the bot's 45/s pacing): every message still arrives, each chat's in order."""
    chats = [Chat(f"oc_room{n}", f"room {n}") for n in range(6)]
    emulator = LarkEmulator(chats=chats, app_rate_limit=10)
    emulator.fail_next(SEND, status=429, code=99991400, count=6)
    async with serve_emulator(emulator) as url:
        api = LarkApi(emulator.app_id, emulator.app_secret, url, MemoryCoordination())
        await asyncio.gather(
            *(
                api.send_text(chat.chat_id, f"{chat.chat_id} #{n}", uuid=f"{chat.chat_id}-{n}")
                for n in range(4)
                for chat in chats
            )
        )
    assert _calls(emulator, SEND).count(429) >= 6
    for chat in chats:
        shown = [m.text for m in emulator.transcript(chat.chat_id)]
        assert shown == [f"{chat.chat_id} #{n}" for n in range(4)]


def _count_card(count: int) -> dict[str, Any]:
    title = {"tag": "plain_text", "content": f"x{count}"}
    return {"schema": "2.0", "header": {"title": title}, "body": {"elements": []}}


async def test_a_new_incidents_card_goes_before_the_queued_refreshes_of_repeats() -> None:
    """30 incident cards wait to be refreshed (their alerts repeat) while the app's turn is
    held; a new incident's card asked for after them is sent before any of them, and every
    refreshed card ends showing its latest count."""
    chats = [Chat(f"oc_room{n}", f"room {n}") for n in range(31)]
    emulator = LarkEmulator(chats=chats)
    coordination, held = MemoryCoordination(), asyncio.Event()
    holding = False
    take = coordination.take

    async def gated(name: str, rate: float, burst: int, cost: int = 1) -> float:
        if holding and name.startswith("lark:app:"):
            await held.wait()  # the app's turn is held until the test lets it go
        return await take(name, rate, burst, cost)

    coordination.take = gated  # type: ignore[method-assign]
    async with serve_emulator(emulator) as url:
        api = LarkApi(emulator.app_id, emulator.app_secret, url, coordination)
        patcher = CardPatcher(api, coordination)
        cards = [
            await api.send_card(chat.chat_id, _count_card(1), uuid=f"card-{chat.chat_id}")
            for chat in chats[:30]
        ]
        holding = True
        counts = dict.fromkeys(cards, 1)

        def repeat(card_id: str) -> None:
            counts[card_id] += 1
            seen = counts[card_id]

            async def render() -> dict[str, Any]:
                return _count_card(seen)

            patcher.update(card_id, render)

        for card_id in cards:
            repeat(card_id)
        # one refresh holds the app's turn, the 29 others wait behind it
        await wait_until(lambda: api.outbox.waiting == (0, 29), what="29 refreshes waiting")
        new = asyncio.create_task(api.send_card(chats[30].chat_id, _count_card(1), uuid="card-new"))
        await wait_until(lambda: api.outbox.waiting == (1, 29), what="the new card waiting")
        for card_id in cards:  # more repeats while they wait: their cards must catch up
            repeat(card_id)
            repeat(card_id)
        held.set()
        new_id = await new
        await patcher.drain(patience=30.0)
    calls = [c for c in emulator.calls if c.path.startswith(SEND) and c.status == 200]
    after_hold = calls[30:]  # the 30 first cards were sent before the hold
    assert after_hold[0].method == "PATCH"  # the refresh that held the turn
    assert after_hold[1].method == "POST"  # then the new incident's card, before the others
    assert after_hold[1].body["uuid"] == "card-new"
    assert [c.method for c in after_hold[2:]].count("POST") == 0
    messages = {m.message_id: m for m in emulator.transcript(chats[30].chat_id)}
    assert new_id in messages
    for chat, card_id in zip(chats[:30], cards, strict=True):
        shown = {m.message_id: m for m in emulator.transcript(chat.chat_id)}[card_id].card
        assert shown is not None
        assert shown["header"]["title"]["content"] == f"x{counts[card_id]}" == "x4"


async def test_a_storms_cards_take_turns_and_a_card_someone_waits_for_goes_at_once(
    lark: tuple[LarkEmulator, LarkApi], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Thirty cards refreshing at once share the refresh budget (each asks its bucket for a
    thirtieth of it, not one a second); a card whose turn is far off (here five minutes) goes
    out as soon as someone waits for it (a gate shown during the storm), at the one-a-second
    pace, with its newest content."""
    monkeypatch.setattr("bot.lark.patcher.REFRESH_BUDGET", 0.1)  # turns 300 s apart
    emulator, api = lark
    coordination = MemoryCoordination()
    asked: dict[str, list[float]] = {}
    take = coordination.take

    async def noted(name: str, rate: float, burst: int, cost: int = 1) -> float:
        if name.startswith("card:"):
            asked.setdefault(name.removeprefix("card:"), []).append(rate)
        return await take(name, rate, burst, cost)

    coordination.take = noted  # type: ignore[method-assign]
    patcher = CardPatcher(api, coordination)
    cards = [await api.send_card("oc_ops", _count_card(0), uuid=f"storm-{n}") for n in range(30)]
    for card_id in cards:  # each card's first refresh: its bucket is full, it goes at once
        patcher.update(card_id, _rendered(_count_card(1)))
    await wait_until(lambda: all(len(asked.get(c, [])) == 1 for c in cards), what="turns")
    for card_id in cards:  # repeats right after: each waits for its turn
        patcher.update(card_id, _rendered(_count_card(2)))
    await wait_until(lambda: all(len(asked[c]) == 2 for c in cards), what="second turns")
    assert {rates[1] for rates in asked.values()} == {0.1 / 30}
    async with asyncio.timeout(60):  # far sooner than the turn, five minutes off
        assert await patcher.update_now(cards[7], _rendered(_count_card(3)))
        assert asked[cards[7]][-1] == 1.0
        shown = {m.message_id: m.card for m in emulator.transcript("oc_ops")}
        assert _title(shown[cards[7]]) == "x3"
        assert {_title(shown[c]) for c in cards if c != cards[7]} == {"x1"}  # still waiting
        waited = [patcher.update_now(c, _rendered(_count_card(4))) for c in cards]
        assert all(await asyncio.gather(*waited))
    shown = {m.message_id: m.card for m in emulator.transcript("oc_ops")}
    assert {_title(shown[c]) for c in cards} == {"x4"}


def _title(card: dict[str, Any] | None) -> str:
    assert card is not None
    return str(card["header"]["title"]["content"])


def _rendered(card: dict[str, Any]) -> Callable[[], Awaitable[dict[str, Any]]]:
    async def render() -> dict[str, Any]:
        return card

    return render


async def test_refreshes_still_get_a_share_of_the_apps_turns_and_a_cancelled_wait_frees_it() -> (
    None
):
    """Under a steady queue of sends a waiting refresh is not starved: it gets one turn in
    BACKGROUND_SHARE; a call cancelled while it waits leaves the queue without a trace."""
    outbox, order, held, holding = Outbox(), list[str](), asyncio.Event(), asyncio.Event()

    async def call(name: str, background: bool = False) -> None:
        async def take() -> float:
            if name == "holder":
                holding.set()
                await held.wait()
            order.append(name)
            return 0.0

        await outbox.grant(take, background=background)

    holder = asyncio.create_task(call("holder"))
    await holding.wait()
    refresh = asyncio.create_task(call("refresh", background=True))
    sends = [asyncio.create_task(call(f"send{n}")) for n in range(BACKGROUND_SHARE + 2)]
    cancelled = asyncio.create_task(call("cancelled"))
    await wait_until(lambda: outbox.waiting == (BACKGROUND_SHARE + 3, 1), what="the queue")
    cancelled.cancel()
    await wait_until(lambda: outbox.waiting == (BACKGROUND_SHARE + 2, 1), what="the cancel")
    held.set()
    await asyncio.gather(holder, refresh, *sends)
    first = [f"send{n}" for n in range(BACKGROUND_SHARE - 1)]
    rest = [f"send{n}" for n in range(BACKGROUND_SHARE - 1, BACKGROUND_SHARE + 2)]
    assert order == ["holder", *first, "refresh", *rest]
    assert outbox.waiting == (0, 0)

    async def at_once() -> float:
        return 0.0

    async with asyncio.timeout(10):  # the turn is free again: granted without waiting
        assert await outbox.grant(at_once) == 0.0


async def test_a_card_mentioning_strangers_still_reaches_the_chat(
    lark: tuple[LarkEmulator, LarkApi],
) -> None:
    """Feishu refuses a whole card that mentions an id which is no user of the tenant (230099 /
    100290, naming the id): the card goes again with each stranger as a word; other refusals
    stand and a text message's `<at>` is left as it is."""
    emulator, api = lark

    def card(content: str) -> dict[str, Any]:
        return {"schema": "2.0", "body": {"elements": [{"tag": "markdown", "content": content}]}}

    people = "<at id=ou_bob></at> <at id=ou_lead></at> <at id=ou_gone></at>"
    message_id = await api.send_card("oc_ops", card(f"on call: {people}"), uuid="strangers")
    [sent] = emulator.transcript("oc_ops")
    assert sent.card == card("on call: <at id=ou_bob></at> ou_lead ou_gone")
    await api.patch_card(message_id, card("acked by <at id=ou_left></at>"))
    assert sent.card == card("acked by ou_left")
    refused = [c.code for c in emulator.calls if c.path == "/open-apis/im/v1/messages"]
    assert refused == [230099, 230099, 0]


async def test_a_card_feishu_refuses_still_reaches_the_chat_as_its_words(
    lark: tuple[LarkEmulator, LarkApi],
) -> None:
    """A card Feishu refuses for what it holds (here 230099 / 11310: more than 200 elements;
    230025: over 30 KB) is sent as text with the card's words, under the same uuid, and a
    warning names Lark's code and sub-code; a refused update raises (the card stays)."""
    emulator, api = lark
    header = {"title": {"tag": "plain_text", "content": "#7 DiskFull on web-3"}}
    lines = [{"tag": "markdown", "content": f"check {n}: /var 97%"} for n in range(201)]
    crowded = {"schema": "2.0", "header": header, "body": {"elements": lines}}
    huge = {**crowded, "body": {"elements": [{"tag": "markdown", "content": "磁盘" * 20_000}]}}
    with capture_logs() as logs:
        first = await api.send_card("oc_ops", crowded, uuid="crowded")
        again = await api.send_card("oc_ops", crowded, uuid="crowded")  # a retry: still one
        reply = await api.reply(first, "interactive", huge, uuid="huge", chat_id="oc_ops")
    sent = emulator.transcript("oc_ops")
    assert [m.msg_type for m in sent] == ["text", "text"]
    assert first == again == sent[0].message_id
    assert sent[0].text.startswith("#7 DiskFull on web-3\ncheck 0: /var 97%")
    assert (reply, sent[1].parent_id) == (sent[1].message_id, first)
    assert sent[1].text.startswith("#7 DiskFull on web-3\n磁盘磁盘")
    warned = [(e["code"], e["sub_code"]) for e in logs if e["event"] == "lark.card_refused"]
    assert warned == [(230099, 11310), (230025, 0)]  # the retry was answered by its uuid
    card_message = await api.send_card("oc_ops", {**crowded, "body": {"elements": []}}, uuid="ok")
    with pytest.raises(LarkApiError, match="ErrCode: 11310"):
        await api.patch_card(card_message, crowded)


async def test_a_refused_card_said_as_text_notifies_only_whom_the_bot_named(
    lark: tuple[LarkEmulator, LarkApi],
) -> None:
    """The text a refused card becomes is a text message, where `<at …>` notifies: the bot's
    own mentions stay mentions, the alert's words (escaped in the card) stay words."""
    emulator, api = lark
    alert = inline('<at id=all></at><at user_id="ou_alice"></at> [FIRING] a&b', 200)
    content = f"{mention('ou_bob')} {alert}"
    crowded = {"schema": "2.0", "body": {"elements": [markdown(content)] * 201}}
    await api.send_card("oc_ops", crowded, uuid="crowded")
    [sent] = emulator.transcript("oc_ops")
    assert sent.msg_type == "text"
    assert set(sent.notified) == {"ou_bob"}
    assert '＜at id=all>＜/at>＜at user_id="ou_alice">＜/at> [FIRING] a&b' in sent.text


async def test_a_stop_sends_the_refreshes_asked_for_while_it_drains() -> None:
    """At a stop the patcher sends what is queued; a refresh that drawing one card asks for
    (a war room's copy of its incident's card) is sent too, and nothing of the patcher is
    left running once `drain` returns."""
    chats = [Chat("oc_ops", "ops"), Chat("oc_room", "war room")]
    emulator = LarkEmulator(chats=chats)
    async with serve_emulator(emulator) as url:
        api = LarkApi(emulator.app_id, emulator.app_secret, url, MemoryCoordination())
        patcher = CardPatcher(api, MemoryCoordination())
        incident = await api.send_card("oc_ops", _count_card(1), uuid="card-incident")
        room = await api.send_card("oc_room", _count_card(1), uuid="card-room")

        async def copy() -> dict[str, Any]:
            return _count_card(2)

        async def drawn() -> dict[str, Any]:
            patcher.update(room, copy)  # drawn with the incident's card, as the presenter does
            return _count_card(2)

        patcher.update(incident, drawn)
        await patcher.drain(patience=30.0)
        running = [task for task in asyncio.all_tasks() if "_flush" in repr(task.get_coro())]
        await api.close()
    assert running == []
    for chat, card_id in (("oc_ops", incident), ("oc_room", room)):
        shown = {m.message_id: m for m in emulator.transcript(chat)}[card_id].card
        assert shown is not None
        assert shown["header"]["title"]["content"] == "x2"
