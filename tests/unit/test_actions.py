"""Signed button values: what we signed comes back intact; anything else is refused."""

from __future__ import annotations

import json

import pytest

from cards.actions import ActionPayload, ActionRejected, pack, unpack

KEY = b"s" * 32


class Approve(ActionPayload, action="test.approve"):
    run_id: str
    gate: str


def test_round_trip_and_action_field() -> None:
    value = pack(Approve(run_id="r1", gate="diagnosis"), KEY)
    assert value["action"] == "test.approve"
    assert unpack(value, KEY) == Approve(run_id="r1", gate="diagnosis")
    assert unpack(json.dumps(value), KEY) == Approve(run_id="r1", gate="diagnosis")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"gate": "proposal"}, "signature"),
        ({"sig": "0" * 32}, "signature"),
        ({"action": "test.other"}, "signature"),
    ],
)
def test_altered_values_are_refused(change: dict[str, str], reason: str) -> None:
    value = {**pack(Approve(run_id="r1", gate="diagnosis"), KEY), **change}
    with pytest.raises(ActionRejected, match=reason):
        unpack(value, KEY)


def test_other_key_missing_signature_and_junk_are_refused() -> None:
    value = pack(Approve(run_id="r1", gate="g"), KEY)
    with pytest.raises(ActionRejected, match="signature"):
        unpack(value, b"other-key")
    unsigned = {k: v for k, v in value.items() if k != "sig"}
    with pytest.raises(ActionRejected, match="signature"):
        unpack(unsigned, KEY)
    for junk in ("approve", 42, None, [value], "{not json"):
        with pytest.raises(ActionRejected):
            unpack(junk, KEY)


def test_old_version_is_refused() -> None:
    import cards.actions as actions

    value = pack(Approve(run_id="r1", gate="g"), KEY)
    fields = {k: v for k, v in value.items() if k != "sig"}
    fields["v"] = 0
    fields["sig"] = actions._signature(fields, KEY)
    with pytest.raises(ActionRejected, match="older version"):
        unpack(fields, KEY)
