"""Coordination between replicas: pick the backend from the configuration.

Usage::

    coord = await open_coordination(settings_redis_url, prefix="larkops")
"""

from __future__ import annotations

from storage.coordination.interface import Coordination, CoordinationError, Lease
from storage.coordination.memory_backend import MemoryCoordination

__all__ = ["Coordination", "CoordinationError", "Lease", "MemoryCoordination", "open_coordination"]


async def open_coordination(redis_url: str | None, prefix: str) -> Coordination:
    """Redis when a URL is given (and reachable: otherwise `CoordinationError`), else memory."""
    if not redis_url:
        return MemoryCoordination()
    from storage.coordination.redis_backend import RedisCoordination

    return await RedisCoordination.connect(redis_url, prefix)
