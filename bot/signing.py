"""The key that signs card button values.

`LARKOPS_SIGNING_KEY` when set; otherwise derived from the Lark app secret (every replica of
one app has it, so a button sent by one replica verifies on another); in the sandbox, with no
secret, a random key kept in `$LARKOPS_HOME/signing.key`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from bot.config import Settings


def signing_key(settings: Settings) -> bytes:
    configured = settings.signing_key.get_secret_value()
    if configured:
        return hashlib.sha256(configured.encode()).digest()
    app_secret = settings.lark_app_secret.get_secret_value()
    if app_secret:
        return hmac.new(app_secret.encode(), b"larkops/card-actions", hashlib.sha256).digest()
    return _local_key(settings.home)


def _local_key(home: Path) -> bytes:
    path = home / "signing.key"
    try:
        key = bytes.fromhex(path.read_text(encoding="utf-8").strip())
        if len(key) == 32:
            return key
    except (OSError, ValueError):
        pass
    home.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(key.hex())
    return key
