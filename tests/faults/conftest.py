"""The fault suite's stage: the Lark emulator (seeded), the services under repair, and the
configuration `larkops run` gets (see `tests.support.cluster`). Each test starts its own bot
process(es) and stops them at the end, also when it fails."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.sandbox.emulator import LarkEmulator
from bot.sandbox.model import ClientConfig
from bot.sandbox.server import serve_emulator
from tests.support.cluster import (
    Replica,
    replica_env,
)
from tests.support.repair import Services, bot_config, services, write_config

SEED = 9


@dataclass
class Stage:
    emulator: LarkEmulator
    lark_url: str
    board: Services
    tmp: Path

    def replica(self, name: str, config: dict[str, Any] | None = None, **env: str) -> Replica:
        path = write_config(self.board.state, config or bot_config(self.board.state))
        return Replica(
            name, self.tmp / name, replica_env(self.emulator, self.lark_url, path, **env)
        )


@pytest.fixture
async def stage(tmp_path: Path) -> AsyncIterator[Stage]:
    state = tmp_path / "state"
    state.mkdir()
    emulator = LarkEmulator(
        seed=SEED, client_config=ClientConfig(reconnect_interval=1, reconnect_nonce=0)
    )
    async with services(state) as board, serve_emulator(emulator) as url:
        yield Stage(emulator, url, board, tmp_path)
