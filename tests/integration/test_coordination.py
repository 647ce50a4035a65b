"""One contract, two backends: memory and the real Redis behave the same way."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from storage.coordination import Coordination, CoordinationError, Lease, open_coordination
from tests.support.cancellation import cancel_at_every_turn, ready
from tests.support.wait import wait_until


@pytest.fixture(params=["memory", "redis"])
async def coord(request: pytest.FixtureRequest) -> AsyncIterator[Coordination]:
    if request.param == "memory":
        backend = await open_coordination(None, "unused")
        yield backend
        await backend.close()
        return
    url: str = request.getfixturevalue("redis_url")
    prefix = f"larkops-test-{uuid.uuid4().hex[:8]}"
    backend = await open_coordination(url, prefix)
    assert backend.backend == "redis"
    yield backend
    await backend.close()
    client = aioredis.Redis.from_url(url)
    async for key in client.scan_iter(match=f"{prefix}:*"):
        await client.delete(key)
    await client.aclose()


async def unseen(coord: Coordination, key: str) -> bool:
    return not await coord.seen(key)


async def test_first_seen_only_once_inside_window(coord: Coordination) -> None:
    assert await coord.first_seen("alert:a", ttl=0.3) is True
    assert await coord.first_seen("alert:a", ttl=0.3) is False
    assert await coord.first_seen("alert:b", ttl=0.3) is True
    # False changes nothing, so asking again and again shows the moment the window ends
    await wait_until(
        lambda: coord.first_seen("alert:a", ttl=0.3), what="the window of alert:a to end"
    )


async def test_forget_ends_window(coord: Coordination) -> None:
    assert await coord.first_seen("k", ttl=30) is True
    await coord.forget("k")
    assert await coord.first_seen("k", ttl=30) is True


async def test_seen_checks_without_opening_a_window(coord: Coordination) -> None:
    assert await coord.seen("w") is False
    assert await coord.seen("w") is False
    assert await coord.first_seen("w", ttl=0.2) is True
    assert await coord.seen("w") is True
    await wait_until(lambda: unseen(coord, "w"), what="the window of w to end")


async def test_concurrent_first_seen_has_one_winner(coord: Coordination) -> None:
    results = await asyncio.gather(*(coord.first_seen("storm", ttl=30) for _ in range(20)))
    assert results.count(True) == 1


async def test_lease_is_exclusive_until_released(coord: Coordination) -> None:
    lease = await coord.acquire("leader", ttl=30)
    assert lease is not None
    assert await coord.acquire("leader", ttl=30) is None
    assert await coord.release(lease) is True
    again = await coord.acquire("leader", ttl=30)
    assert again is not None
    assert again.fence > lease.fence


async def test_concurrent_acquire_has_one_winner(coord: Coordination) -> None:
    leases = await asyncio.gather(*(coord.acquire("job:7", ttl=30) for _ in range(20)))
    assert sum(lease is not None for lease in leases) == 1


async def test_expired_lease_passes_on_and_old_holder_cannot_renew_or_release(
    coord: Coordination,
) -> None:
    old = await coord.acquire("leader", ttl=0.2)
    assert old is not None
    new = await wait_until(
        lambda: coord.acquire("leader", ttl=30), what="the unrenewed lease to expire"
    )
    assert new.fence > old.fence
    assert await coord.renew(old, ttl=30) is False
    assert await coord.release(old) is False
    # the new holder is untouched by the old one's attempts
    assert await coord.acquire("leader", ttl=30) is None
    assert await coord.renew(new, ttl=30) is True


async def test_renew_keeps_lease_alive(coord: Coordination) -> None:
    lease = await coord.acquire("leader", ttl=0.5)
    assert lease is not None
    # a lease taken after it with the same time to live and never renewed: once it has
    # expired, so would have the first one, had it not been renewed
    witness = await coord.acquire("witness", ttl=0.5)
    assert witness is not None

    async def renewed_until_the_witness_expired() -> Lease | None:
        assert await coord.renew(lease, ttl=0.5) is True
        return await coord.acquire("witness", ttl=0.5)

    for _ in range(2):  # two lifetimes of the witness
        await wait_until(renewed_until_the_witness_expired, what="the witness lease to expire")
        assert await coord.acquire("leader", ttl=0.5) is None


async def test_acquire_wait_gets_lease_when_released(
    coord: Coordination, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = await coord.acquire("lock", ttl=30)
    assert held is not None
    tries: list[Lease | None] = []
    acquire = coord.acquire

    async def recorded(name: str, ttl: float) -> Lease | None:
        tries.append(await acquire(name, ttl))
        return tries[-1]

    monkeypatch.setattr(coord, "acquire", recorded)
    waiter = asyncio.create_task(coord.acquire_wait("lock", ttl=30, patience=5))
    await wait_until(lambda: len(tries) >= 2, what="the waiter to ask twice for the held lock")
    assert not waiter.done()
    assert await coord.release(held) is True
    assert await waiter is not None
    assert tries[:2] == [None, None]
    assert await coord.acquire_wait("lock", ttl=30, patience=0.1) is None


async def test_token_bucket_allows_burst_then_asks_to_wait(coord: Coordination) -> None:
    grants = [await coord.take("chat:oc_1", rate=10, burst=5) for _ in range(5)]
    assert grants == [0.0] * 5
    wait = await coord.take("chat:oc_1", rate=10, burst=5)
    assert 0 < wait <= 0.1 + 1e-6
    # another bucket is independent
    assert await coord.take("chat:oc_2", rate=10, burst=5) == 0.0
    # the time asked for must pass: that it is enough is what is tested
    await asyncio.sleep(wait + 0.02)
    assert await coord.take("chat:oc_1", rate=10, burst=5) == 0.0


async def test_token_bucket_refills_no_higher_than_burst(coord: Coordination) -> None:
    """Idle long enough for six tokens, a bucket of three holds three: a take of three passes,
    the next take of three must wait (for 0.6 s less the time between the two calls, so only a
    0.6 s stall between them could hide the cap)."""
    assert await coord.take("app", rate=5, burst=3, cost=3) == 0.0
    await asyncio.sleep(1.2)  # time to refill 6 tokens without the cap (the behaviour tested)
    assert await coord.take("app", rate=5, burst=3, cost=3) == 0.0
    assert await coord.take("app", rate=5, burst=3, cost=3) > 0


async def test_throttle_paces_calls_to_the_rate(coord: Coordination) -> None:
    """Five calls at 2/s with a burst of 2: the first two pass at once, the other three wait
    for their tokens, so the calls take 1.5 s at least (unpaced they take milliseconds; no
    machine is slow enough to take that long by itself, so this is the pacing, not the load)."""
    started = time.monotonic()
    waited = [await coord.throttle("paced", rate=2, burst=2) for _ in range(5)]
    took = time.monotonic() - started
    assert waited[:2] == [0.0, 0.0]
    assert took >= 3 / 2 - 0.01


async def test_invalid_bucket_arguments_are_refused(coord: Coordination) -> None:
    with pytest.raises(ValueError, match="positive"):
        await coord.take("b", rate=0, burst=5)
    with pytest.raises(ValueError, match="never fit"):
        await coord.take("b", rate=1, burst=2, cost=3)


async def test_redis_state_is_shared_between_replicas(redis_url: str) -> None:
    prefix = f"larkops-test-{uuid.uuid4().hex[:8]}"
    one = await open_coordination(redis_url, prefix)
    two = await open_coordination(redis_url, prefix)
    try:
        assert await one.first_seen("fp", ttl=30) is True
        assert await two.first_seen("fp", ttl=30) is False
        lease = await one.acquire("scheduler", ttl=30)
        assert lease is not None
        assert await two.acquire("scheduler", ttl=30) is None
        assert await two.release(lease) is True  # a lease is its token, wherever it is used
        for _ in range(5):
            assert await one.take("chat", rate=1, burst=5) == 0.0
        assert await two.take("chat", rate=1, burst=5) > 0
    finally:
        await one.close()
        await two.close()


async def test_unreachable_redis_is_a_clear_error() -> None:
    with pytest.raises(CoordinationError, match="unreachable"):
        await open_coordination("redis://127.0.0.1:1/0", "x")


async def test_a_cancelled_call_always_ends_cancelled(coord: Coordination) -> None:
    """A task cancelled during a coordination call ends in `CancelledError`, whatever moment
    the cancellation arrives: before the command is sent, as its send completes, while the
    answer is awaited. The call is cancelled after 0, 1, 2, … turns of the event loop until it
    has finished before the cancellation; three sweeps. With redis-py's socket timeout, Python
    3.11's `wait_for` returned normally when the cancellation came as the send completed: the
    scheduler's heartbeat renewed on after `stop()`, and the leader waited for it for ever."""
    lease = await coord.acquire("leader", ttl=30)
    assert lease is not None
    for _ in range(3):
        sweep = await cancel_at_every_turn(lambda: ready(coord.renew(lease, ttl=30)))
        assert sweep.lost == []  # turns at which the cancellation was lost
        assert sweep.result is True
    assert await coord.renew(lease, ttl=30) is True  # and the backend still works


async def test_a_silent_redis_is_an_error_within_the_patience() -> None:
    """A Redis that accepts the connection and never answers (a frozen process, a black-holed
    network) is a `CoordinationError` after the patience, not a wait for ever."""
    from storage.coordination.redis_backend import RedisCoordination

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # reads the commands, answers none until the client hangs up
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        started = time.monotonic()
        with pytest.raises(CoordinationError, match=r"unreachable: no answer within 0\.5 s"):
            await RedisCoordination.connect(f"redis://127.0.0.1:{port}/0", "x", patience=0.5)
        assert time.monotonic() - started < 5
    finally:
        server.close()
        await server.wait_closed()
