"""Requests as Lark's HTTP event delivery sends them: the event AES-256-CBC encrypted with the
app's Encrypt Key (`{"encrypt": …}`) and signed in `X-Lark-Signature`."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from typing import Any

from Crypto.Cipher import AES


def sealed(event: dict[str, Any], encrypt_key: str) -> bytes:
    """The body Lark sends for `event` when the app has an Encrypt Key."""
    plain = json.dumps(event, ensure_ascii=False).encode()
    pad = 16 - len(plain) % 16
    iv = os.urandom(16)
    key = hashlib.sha256(encrypt_key.encode()).digest()
    cipher = AES.new(key, AES.MODE_CBC, iv).encrypt(plain + bytes([pad]) * pad)
    return json.dumps({"encrypt": base64.b64encode(iv + cipher).decode()}).encode()


def signed(
    body: bytes, encrypt_key: str, *, timestamp: int | None = None, nonce: str = "n0nce"
) -> dict[str, str]:
    """The headers of a signed request (`timestamp` now unless given)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hashlib.sha256((stamp + nonce + encrypt_key).encode() + body).hexdigest()
    return {
        "X-Lark-Request-Timestamp": stamp,
        "X-Lark-Request-Nonce": nonce,
        "X-Lark-Signature": digest,
        "Content-Type": "application/json",
    }
