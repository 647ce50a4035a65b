"""What several replicas must share: dedupe windows, leases (locks) and rate limits.

Two backends implement `Coordination`: Redis (`REDIS_URL`, for any number of replicas) and
memory (one process). Both pass the same contract suite in `tests/integration`.

Usage::

    if await coord.first_seen("alert:" + fingerprint, ttl=300):
        ...                                     # not a repeat inside the window
    lease = await coord.acquire("scheduler-leader", ttl=15)
    if lease is not None:                       # we lead; renew before ttl runs out
        await coord.renew(lease, ttl=15)
    await coord.throttle("chat:" + chat_id, rate=5, burst=5)   # waits until a token is free
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

WAIT_STEP, WAIT_STEP_MAX = 0.05, 0.4  # seconds between asks of `acquire_wait`


class CoordinationError(RuntimeError):
    """The coordination backend is unreachable or misbehaving."""


@dataclass(frozen=True)
class Lease:
    """A held lock. `fence` grows with every acquisition of the same name: a writer that
    stores it can refuse work from an older holder that lost the lease without noticing."""

    name: str
    token: str
    fence: int
    ttl: float


class Coordination(ABC):
    """Shared state between replicas. All durations are in seconds."""

    backend: str

    @abstractmethod
    async def first_seen(self, key: str, ttl: float) -> bool:
        """True for the first call with `key` inside `ttl`; False for repeats in the window."""

    @abstractmethod
    async def seen(self, key: str) -> bool:
        """True while `key` is inside a window opened by `first_seen` (changes nothing)."""

    @abstractmethod
    async def forget(self, key: str) -> None:
        """End a dedupe window early."""

    @abstractmethod
    async def acquire(self, name: str, ttl: float) -> Lease | None:
        """Take the lease `name` for `ttl` if nobody holds it; None when it is held."""

    @abstractmethod
    async def renew(self, lease: Lease, ttl: float) -> bool:
        """Extend a lease we still hold; False when it expired or passed to someone else."""

    @abstractmethod
    async def release(self, lease: Lease) -> bool:
        """Give a lease back; False when it was no longer ours (nothing is changed then)."""

    async def take(self, bucket: str, rate: float, burst: int, cost: int = 1) -> float:
        """Token bucket: take `cost` tokens now and return 0.0, or take nothing and return
        the seconds until they will be available. `rate` tokens/second, at most `burst`."""
        if rate <= 0 or burst <= 0 or cost <= 0:
            raise ValueError("rate, burst and cost must be positive")
        if cost > burst:
            raise ValueError(f"cost {cost} can never fit a bucket of {burst}")
        return await self._take(bucket, rate, burst, cost)

    @abstractmethod
    async def _take(self, bucket: str, rate: float, burst: int, cost: int) -> float: ...

    @abstractmethod
    async def ping(self) -> None:
        """Raise `CoordinationError` when the backend cannot be reached."""

    @abstractmethod
    async def close(self) -> None: ...

    async def acquire_wait(self, name: str, ttl: float, patience: float) -> Lease | None:
        """`acquire`, retrying for up to `patience` seconds: at once after 50 ms, then less
        and less often (at most every `WAIT_STEP_MAX` s). A run's lease is held for a whole
        step, seconds in a storm; asking 20 times a second cost a few % of the bot's CPU."""
        deadline = time.monotonic() + patience
        step = WAIT_STEP
        while True:
            lease = await self.acquire(name, ttl)
            if lease is not None or time.monotonic() >= deadline:
                return lease
            await asyncio.sleep(min(step, max(0.0, deadline - time.monotonic())))
            step = min(WAIT_STEP_MAX, step * 2)

    async def throttle(self, bucket: str, rate: float, burst: int, cost: int = 1) -> float:
        """Wait until the bucket grants `cost` tokens; returns the seconds waited."""
        waited = 0.0
        while (delay := await self.take(bucket, rate, burst, cost)) > 0:
            await asyncio.sleep(delay)
            waited += delay
        return waited
