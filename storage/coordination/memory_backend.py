"""In-process coordination: correct for one process, shared with nobody (like aiogram's
MemoryStorage). Used when no `REDIS_URL` is configured."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict

from storage.coordination.interface import Coordination, Lease


class MemoryCoordination(Coordination):
    backend = "memory"

    def __init__(self) -> None:
        self._windows: dict[str, float] = {}
        self._leases: dict[str, tuple[str, float]] = {}
        self._fences: defaultdict[str, int] = defaultdict(int)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._guard = asyncio.Lock()

    @staticmethod
    def _now() -> float:
        return time.monotonic()

    async def first_seen(self, key: str, ttl: float) -> bool:
        async with self._guard:
            now = self._now()
            if self._windows.get(key, 0.0) > now:
                return False
            self._windows[key] = now + ttl
            if len(self._windows) > 10_000:
                self._windows = {k: v for k, v in self._windows.items() if v > now}
            return True

    async def seen(self, key: str) -> bool:
        async with self._guard:
            return self._windows.get(key, 0.0) > self._now()

    async def forget(self, key: str) -> None:
        async with self._guard:
            self._windows.pop(key, None)

    async def acquire(self, name: str, ttl: float) -> Lease | None:
        async with self._guard:
            now = self._now()
            held = self._leases.get(name)
            if held is not None and held[1] > now:
                return None
            token = uuid.uuid4().hex
            self._fences[name] += 1
            self._leases[name] = (token, now + ttl)
            return Lease(name=name, token=token, fence=self._fences[name], ttl=ttl)

    async def renew(self, lease: Lease, ttl: float) -> bool:
        async with self._guard:
            now = self._now()
            held = self._leases.get(lease.name)
            if held is None or held[0] != lease.token or held[1] <= now:
                return False
            self._leases[lease.name] = (lease.token, now + ttl)
            return True

    async def release(self, lease: Lease) -> bool:
        async with self._guard:
            held = self._leases.get(lease.name)
            if held is None or held[0] != lease.token or held[1] <= self._now():
                return False
            del self._leases[lease.name]
            return True

    async def _take(self, bucket: str, rate: float, burst: int, cost: int) -> float:
        async with self._guard:
            now = self._now()
            tokens, stamp = self._buckets.get(bucket, (float(burst), now))
            tokens = min(float(burst), tokens + (now - stamp) * rate)
            if tokens >= cost:
                self._buckets[bucket] = (tokens - cost, now)
                return 0.0
            self._buckets[bucket] = (tokens, now)
            return (cost - tokens) / rate

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None
