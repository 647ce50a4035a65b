"""Typed, signed, versioned button payloads (the `value` a card button sends back).

Every payload class names its `action`; `pack` adds the version and an HMAC-SHA256 signature
over the canonical JSON of all other fields; `unpack` checks both before any handler sees the
value. A forged, altered, stale-version or unknown payload raises `ActionRejected` with a reason.

Usage::

    class Refresh(ActionPayload, action="ping.refresh"):
        chat_id: str

    value = pack(Refresh(chat_id="oc_1"), key)      # put in the button's callback value
    payload = unpack(value, key)                    # -> Refresh(chat_id="oc_1")
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

VERSION = 1
_REGISTRY: dict[str, type[ActionPayload]] = {}


Rejection = Literal["not_json", "bad_signature", "old_version", "unknown_action", "bad_fields"]
FORGED: frozenset[Rejection] = frozenset({"not_json", "bad_signature"})


class ActionRejected(ValueError):
    """The button value is not one we signed (or no longer understand); `reason` says which."""

    def __init__(self, reason: Rejection, detail: str) -> None:
        super().__init__(detail)
        self.reason: Rejection = reason

    @property
    def forged(self) -> bool:
        """Not a value we signed (as opposed to one we no longer understand)."""
        return self.reason in FORGED


class ActionPayload(BaseModel):
    """Base of every button payload; subclasses pass `action="name"` in the class line."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    action: ClassVar[str] = ""

    def __init_subclass__(cls, action: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not action:
            return
        if action in _REGISTRY and _REGISTRY[action] is not cls:
            raise TypeError(f"button action {action!r} is already defined")
        cls.action = action
        _REGISTRY[action] = cls


def _signature(fields: dict[str, Any], key: bytes) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()[:32]


def pack(payload: ActionPayload, key: bytes) -> dict[str, Any]:
    """The JSON object to put in a button's callback value."""
    fields = {"action": payload.action, "v": VERSION, **payload.model_dump(mode="json")}
    return {**fields, "sig": _signature(fields, key)}


def unpack(value: object, key: bytes) -> ActionPayload:
    """Verify and decode a button value; raises `ActionRejected`."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ActionRejected("not_json", "button value is not a JSON object") from None
    if not isinstance(value, dict):
        raise ActionRejected("not_json", "button value is not a JSON object")
    fields = dict(value)
    signature = fields.pop("sig", None)
    if not isinstance(signature, str) or not hmac.compare_digest(
        signature, _signature(fields, key)
    ):
        raise ActionRejected("bad_signature", "button signature does not match")
    if fields.pop("v", None) != VERSION:
        raise ActionRejected("old_version", "button is from an older version of the bot")
    name = fields.pop("action", None)
    model = _REGISTRY.get(name) if isinstance(name, str) else None
    if model is None:
        raise ActionRejected("unknown_action", f"unknown button action {name!r}")
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        detail = f"button fields are invalid: {exc.errors()[0]['msg']}"
        raise ActionRejected("bad_fields", detail) from None
