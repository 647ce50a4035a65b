"""Redis coordination: shared by every replica. Clocks come from the Redis server (`TIME`),
so replicas with skewed clocks still agree on buckets; each operation is one atomic script.

Every call is bounded by `PATIENCE` with `asyncio.timeout` here, not by the client's
`socket_timeout`: with a socket timeout redis-py sends each command under `asyncio.wait_for`,
and Python 3.11's `wait_for` returns normally when its caller is cancelled just as the send
completes (cpython gh-86296). The cancellation was lost: the scheduler's heartbeat went on
renewing after `stop()` cancelled it, and the leader waited for it for ever
(`test_two_schedulers_fire_each_run_once`, 1 run in 5 under load). A cancelled call now always
ends in `CancelledError` (tests/integration/test_coordination.py sweeps every moment)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from storage.coordination.interface import Coordination, CoordinationError, Lease

# KEYS[1] lease key, KEYS[2] fence counter; ARGV[1] token, ARGV[2] ttl ms
_ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
return 0
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
# KEYS[1] bucket; ARGV rate (tokens/s), burst, cost. Returns wait in microseconds (0 = granted).
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1]) or burst
local stamp = tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - stamp) * rate / 1000000)
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
else
  wait = math.ceil((cost - tokens) * 1000000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return wait
"""


PATIENCE = 5.0  # seconds a Redis call (connecting included) may take before it is an error
_T = TypeVar("_T")


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class RedisCoordination(Coordination):
    backend = "redis"

    def __init__(self, client: Redis, prefix: str, patience: float = PATIENCE) -> None:
        self._redis = client
        self._prefix = prefix
        self._patience = patience
        self._acquire_script = client.register_script(_ACQUIRE)
        self._renew_script = client.register_script(_RENEW)
        self._release_script = client.register_script(_RELEASE)
        self._take_script = client.register_script(_TAKE)

    @classmethod
    async def connect(
        cls, url: str, prefix: str, *, patience: float = PATIENCE
    ) -> RedisCoordination:
        # no socket_timeout (redis-py's default is 5 s): it would send under `wait_for`
        client = Redis.from_url(url, socket_timeout=None, socket_connect_timeout=patience)
        coordination = cls(client, prefix, patience)
        try:
            await coordination.ping()
        except CoordinationError:
            await client.aclose()
            raise
        return coordination

    def _key(self, kind: str, name: str) -> str:
        return f"{self._prefix}:{kind}:{name}"

    async def _bounded(self, call: Awaitable[_T], failure: str = "redis") -> _T:
        """`call` within the patience; a Redis failure or a timeout is `CoordinationError`."""
        try:
            async with asyncio.timeout(self._patience):
                return await call
        except TimeoutError as exc:
            raise CoordinationError(f"{failure}: no answer within {self._patience:g} s") from exc
        except (RedisError, OSError) as exc:
            raise CoordinationError(f"{failure}: {exc}") from exc

    async def _call(self, script: AsyncScript, keys: list[str], args: list[Any]) -> int:
        return int(await self._bounded(script(keys=keys, args=args)))

    async def first_seen(self, key: str, ttl: float) -> bool:
        key = self._key("seen", key)
        return bool(await self._bounded(self._redis.set(key, 1, nx=True, px=_ms(ttl))))

    async def seen(self, key: str) -> bool:
        return bool(await self._bounded(self._redis.exists(self._key("seen", key))))

    async def forget(self, key: str) -> None:
        await self._bounded(self._redis.delete(self._key("seen", key)))

    async def acquire(self, name: str, ttl: float) -> Lease | None:
        token = uuid.uuid4().hex
        keys = [self._key("lease", name), self._key("fence", name)]
        fence = await self._call(self._acquire_script, keys, [token, _ms(ttl)])
        return Lease(name=name, token=token, fence=fence, ttl=ttl) if fence else None

    async def renew(self, lease: Lease, ttl: float) -> bool:
        keys = [self._key("lease", lease.name)]
        return bool(await self._call(self._renew_script, keys, [lease.token, _ms(ttl)]))

    async def release(self, lease: Lease) -> bool:
        keys = [self._key("lease", lease.name)]
        return bool(await self._call(self._release_script, keys, [lease.token]))

    async def _take(self, bucket: str, rate: float, burst: int, cost: int) -> float:
        wait = await self._call(
            self._take_script, [self._key("bucket", bucket)], [rate, burst, cost]
        )
        return wait / 1_000_000

    async def ping(self) -> None:
        await self._bounded(self._redis.ping(), "redis is unreachable")

    async def close(self) -> None:
        await self._redis.aclose()
