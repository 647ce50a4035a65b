"""Secret redaction, at the bottom layer because every layer needs it.

Logs (bot), prompts (workflows), plugin output (plugins) and audit rows (storage) all pass text
through one `Redactor` before it leaves the process or is persisted.

Usage::

    redactor = Redactor(known=["s3cr3t"])
    redactor.text("token=s3cr3t password: hunter2")  # 'token=*** password: ***'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"

# key=value / key: value pairs whose key names a secret
_PAIR = re.compile(
    r"(?i)\b((?:[a-z0-9_-]*?)(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key"
    r"|private[_-]?key|authorization|credential)s?)"
    r"(\s*[:=]\s*|\"\s*:\s*\")"
    r"(?:(bearer|basic)\s+)?"
    r"([^\s\"',;&]+)"
)
# user:password@ in URLs
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/\s@]*):([^@\s/]+)@")
# well-known token shapes
_TOKEN_SHAPES = re.compile(
    r"\b(?:sk-(?:ant-)?[A-Za-z0-9_-]{16,}"  # OpenAI / Anthropic keys
    r"|gh[pousr]_[A-Za-z0-9]{20,}"  # GitHub tokens
    r"|xox[abpr]-[A-Za-z0-9-]{10,}"  # Slack tokens
    r"|AKIA[0-9A-Z]{16}"  # AWS access key ids
    r"|lko_[a-z0-9]{8}_[a-z0-9]{32}"  # larkops REST API keys (storage.api_keys)
    r"|eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"  # JWTs
    r"|(?:t|u)-[A-Za-z0-9_.-]{30,})"  # Lark tenant/user access tokens
)
_SECRET_KEY = re.compile(
    r"(?i)(password|passwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key"
    r"|authorization|credential|cookie)"
)


class Redactor:
    """Masks known secret values and anything shaped like a credential."""

    def __init__(self, known: Iterable[str] = ()) -> None:
        self._known: list[str] = []
        self.add(known)

    def add(self, secrets: Iterable[str]) -> None:
        """Register more exact secret values (short values are ignored: too many false hits)."""
        merged = set(self._known) | {s for s in secrets if len(s) >= 6}
        self._known = sorted(merged, key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self._known:
            if secret in value:
                value = value.replace(secret, MASK)
        value = _URL_PASSWORD.sub(rf"\1:{MASK}@", value)
        value = _PAIR.sub(_mask_pair, value)
        return _TOKEN_SHAPES.sub(MASK, value)

    def data(self, value: Any) -> Any:
        """Redact nested data: values under secret-looking keys are masked whole."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {
                key: (MASK if _is_secret_key(key) and value[key] else self.data(value[key]))
                for key in value
            }
        if isinstance(value, list | tuple):
            return [self.data(item) for item in value]
        return value


def _is_secret_key(key: object) -> bool:
    return isinstance(key, str) and _SECRET_KEY.search(key) is not None


def _mask_pair(match: re.Match[str]) -> str:
    scheme = f"{match.group(3)} " if match.group(3) else ""
    return f"{match.group(1)}{match.group(2)}{scheme}{MASK}"
