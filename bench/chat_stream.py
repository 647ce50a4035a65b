"""Streamed answers: from the model's first token to the first card showing text (goal: p99
< 300 ms).

The bench process plays Lark (the emulator) and the model (the scripted OpenAI-compatible fake
from `tests.support.fake_llm`, streaming a piece every `--pace` seconds); `larkops run` is the
bot, with its embedded Postgres. Questions are asked `--concurrency` at a time, each in its own
chat; every answer starts with its question's tag, so a stream and its card are matched.
For each answer: the time the fake sent the first text event, and the time the emulator stored
the first version of the answer card that shows text. Also: patches per answer and the most
updates of one message within any second (Lark allows 5). Prints figures; asserts nothing.

    .venv/bin/python bench/chat_stream.py [--questions 120] [--concurrency 4] [--pace 0.02]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the fake model lives with the tests

from figures import figure  # noqa: E402

from bench.lark_latency import free_port, pct  # noqa: E402
from bot.lark.events import card_text  # noqa: E402
from bot.sandbox.emulator import LarkEmulator  # noqa: E402
from bot.sandbox.model import Chat  # noqa: E402
from bot.sandbox.record import Message  # noqa: E402
from bot.sandbox.server import serve_emulator  # noqa: E402
from tests.support.fake_llm import FakeLLM, FakeTurn, fake_llm  # noqa: E402

LARKOPS = str(Path(sys.executable).parent / "larkops")
TAG = re.compile(r"Q\d{4}")
FILLER = "检查结果：所有服务运行正常，最近一小时没有新的告警，磁盘和内存使用率都在阈值以内。"


def answer_cards(emulator: LarkEmulator, chat: str) -> list[Message]:
    return [
        m
        for m in emulator.transcript(chat)
        if m.sender_type == "bot" and m.msg_type == "interactive"
    ]


def finished(message: Message) -> bool:
    shown = card_text(message.card)
    return "依据" in shown or "没有使用工具" in shown


async def ask(emulator: LarkEmulator, chat: str, n: int, patience: float = 30.0) -> Message:
    """Ask one question in `chat`; its finished answer card (whichever tag it carries)."""
    before = len(answer_cards(emulator, chat))
    await emulator.send_message(chat, "ou_alice", f"Q{n:04d} 现在系统健康吗？")
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        cards = answer_cards(emulator, chat)
        if len(cards) > before and finished(cards[-1]):
            return cards[-1]
        await asyncio.sleep(0.02)
    raise SystemExit(f"no finished answer for Q{n:04d}")


def first_visible(card: Message, tag: str) -> float | None:
    for moment, version in zip(card.card_times, card.card_history, strict=True):
        if tag in card_text(version):
            return moment
    return None


def busiest_second(card: Message) -> int:
    times = card.card_times[1:]  # the first version is the message itself, not an update
    return max((sum(1 for t in times if start <= t < start + 1.0) for start in times), default=0)


async def main(questions: int, concurrency: int, pace: float) -> None:
    chats = [Chat(f"oc_stream_{n:03d}", f"stream {n}") for n in range(concurrency)]
    emulator = LarkEmulator(chats=chats)
    home = Path(tempfile.mkdtemp(prefix="larkops-bench-stream-"))
    config = home / "larkops.yaml"
    config.write_text("llm:\n  rate_per_minute: 100000\n  daily_tokens: 100000000\n")
    async with serve_emulator(emulator) as url, fake_llm() as fake:
        env = {
            "PATH": os.environ["PATH"],
            "LARKOPS_HOME": str(home / "home"),
            "LARKOPS_CONFIG": str(config),
            "LARKOPS_HTTP_PORT": str(free_port()),
            "LARKOPS_LOG_FORMAT": "json",
            "LARKOPS_LOG_LEVEL": "warning",
            "LARK_APP_ID": emulator.app_id,
            "LARK_APP_SECRET": emulator.app_secret,
            "LARK_DOMAIN": url,
            "LLM_PROVIDER": "openai",
            "LLM_MODEL": "gpt-bench",
            "OPENAI_API_KEY": "sk-bench-0123456789",
            "OPENAI_BASE_URL": f"{fake.base_url}/v1",
        }
        log = (home / "bot.log").open("wb")
        bot = subprocess.Popen([LARKOPS, "run"], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            while emulator.connections == 0:
                if bot.poll() is not None:
                    raise SystemExit(f"larkops exited: {(home / 'bot.log').read_text()}")
                await asyncio.sleep(0.05)
            await measure(emulator, fake, chats, questions, pace)
        finally:
            bot.send_signal(signal.SIGTERM)
            bot.wait(30)
            log.close()
    shutil.rmtree(home, ignore_errors=True)


async def measure(
    emulator: LarkEmulator, fake: FakeLLM, chats: list[Chat], questions: int, pace: float
) -> None:
    cards: dict[str, Message] = {}

    async def lane(index: int) -> None:
        for n in range(index, questions, len(chats)):
            cards[f"Q{n:04d}"] = await ask(emulator, chats[index].chat_id, n)

    fake.script(*(FakeTurn(text=f"Q{n:04d} " + FILLER, pace=pace) for n in range(questions)))
    # the fake answers in arrival order, so tags can land on other questions: match by tag
    began = time.monotonic()
    await asyncio.gather(*(lane(i) for i in range(len(chats))))
    elapsed = time.monotonic() - began
    sent = {}
    for moment, event in fake.first_text:
        found = TAG.search(event)
        if found:
            sent[found.group()] = moment
    delays, patches, busiest = [], [], []
    for card in cards.values():
        text = card_text(card.card)
        tag = TAG.search(text)
        if tag is None or tag.group() not in sent:
            continue
        shown = first_visible(card, tag.group())
        if shown is not None:
            delays.append((shown - sent[tag.group()]) * 1000)
        patches.append(len(card.card_history) - 1)
        busiest.append(busiest_second(card))
    print(f"chat answers streamed: {len(delays)} of {questions} matched, {elapsed:.1f} s")
    print(
        "first visible text after the model's first token: "
        f"median {statistics.median(delays):.1f} ms, p99 {pct(delays, 0.99):.1f} ms, "
        f"max {max(delays):.1f} ms (goal p99 < 300 ms)"
    )
    p99 = pct(delays, 0.99)
    figure(8, "streamed answer: first visible text p99", p99, "ms", "< 300", p99 < 300)
    print(
        f"card updates per answer: median {statistics.median(patches):.0f}; most updates of one "
        f"card within a second: {max(busiest)} (Lark allows 5)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=120)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--pace", type=float, default=0.02)
    args = parser.parse_args()
    asyncio.run(main(args.questions, args.concurrency, args.pace))
