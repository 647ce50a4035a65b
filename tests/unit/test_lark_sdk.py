"""Only the long-connection part of `lark_oapi` is loaded (not its ~140 MB of API modules), the
installed SDK untouched, and this test fails loudly when an SDK upgrade moves what that relies
on. Each check runs in a fresh interpreter, as the bot's process starts."""

from __future__ import annotations

import json
import subprocess
import sys

from bot.lark import sdk

PROBE = """
import json, sys
from bot.lark import sdk
client = sdk.ws_client()
api = sorted(m for m in sys.modules if m.startswith("lark_oapi.api"))
problem = sdk.client_problem(client)
stand_in = sys.modules.get("lark_oapi")
import lark_oapi  # afterwards, the whole real SDK for whoever asks
print(json.dumps({
    "api_modules": len(api), "problem": problem,
    "stand_in_left": stand_in is not None, "full_sdk": hasattr(lark_oapi, "Client"),
    "same_client": lark_oapi.ws.client is client, "level": str(sdk.log_level(client).WARNING),
}))
"""


def test_the_sdk_layout_is_what_the_light_import_relies_on() -> None:
    assert sdk.check_layout() is None


def test_only_the_long_connection_client_is_loaded_and_the_full_sdk_still_works() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["problem"] is None
    assert found["api_modules"] == 0  # none of the generated API modules (~140 MB)
    assert not found["stand_in_left"]  # the stand-ins are gone once the client is loaded
    assert found["full_sdk"]
    assert found["same_client"]
    assert "WARNING" in found["level"]
