"""Property tests from the OpenAPI document (schemathesis): for every operation, generated
valid and invalid requests never get a 5xx, every answer matches the document (status, type,
body, headers), and no route answers without a key (`ignored_auth`).

The API is served over real HTTP by this test's own bot, with an incident and its gate in the
database; schemathesis runs as its own process against it. The server-sent event routes never
end by design and are covered by `test_api.py` instead.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from tests.api.conftest import Api
from tests.lark.test_incidents import card_with, fire, settings_for
from tests.support.health import health_service

CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "ignored_auth",
    )
)


async def test_every_operation_holds_to_its_document(make_api: Any, tmp_path: Path) -> None:
    async with health_service(tmp_path / "healthy-web") as url:
        settings = settings_for(
            tmp_path,
            api={"key_rate": 10_000, "key_burst": 10_000, "ip_rate": 10_000, "ip_burst": 10_000},
        )
        api: Api = await make_api(settings=settings, incidents=True)
        card = await fire(api.bot, url)
        await card_with(api.bot, card, "http_check", "批准")
        key = await api.key("ou_bob", "schemathesis")
        st = Path(sys.executable).parent / "st"
        process = await asyncio.create_subprocess_exec(
            str(st),
            "run",
            f"{api.url}/api/v1/openapi.json",
            "--header",
            f"Authorization: Bearer {key}",
            "--checks",
            CHECKS,
            "--exclude-path-regex",
            "^/(stream|chat)$",
            "--max-examples",
            "5",
            "--phases",
            "examples,coverage,fuzzing",
            "--seed",
            "19",
            "--workers",
            "1",
            "--request-timeout",
            "20",
            "--generation-database",
            "none",
            "--no-color",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1"},
            cwd=tmp_path,
        )
        output, _ = await process.communicate()
        text = output.decode(errors="replace")
        (tmp_path / "schemathesis.txt").write_text(text)
        assert process.returncode == 0, text[-12_000:]
