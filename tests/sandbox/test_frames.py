"""The pure-python frame codec is byte-compatible with lark_oapi's generated protobuf Frame."""

from __future__ import annotations

import pytest
from lark_oapi.ws.pb.pbbp2_pb2 import Frame as PbFrame

from bot.sandbox.frames import METHOD_CONTROL, METHOD_DATA, Frame, FrameError, Header


def _pb(frame: Frame) -> PbFrame:
    parsed = PbFrame()
    parsed.ParseFromString(frame.encode())
    return parsed


def test_encoded_frame_parses_in_sdk_and_reserializes_identically() -> None:
    frame = Frame(
        seq_id=7,
        log_id=2**63 + 5,
        service=-12,
        method=METHOD_DATA,
        headers=[Header("type", "event"), Header("message_id", "m1"), Header("键", "值")],
        payload="飞书 payload".encode(),
        log_id_new="log-1",
    )
    parsed = _pb(frame)
    assert (parsed.SeqID, parsed.LogID, parsed.service, parsed.method) == (7, 2**63 + 5, -12, 1)
    assert [(h.key, h.value) for h in parsed.headers] == [
        ("type", "event"),
        ("message_id", "m1"),
        ("键", "值"),
    ]
    assert parsed.payload == "飞书 payload".encode()
    assert parsed.LogIDNew == "log-1"
    assert not parsed.HasField("payload_type")
    assert parsed.SerializeToString() == frame.encode()


def test_sdk_frames_decode_and_reencode_byte_for_byte() -> None:
    pb = PbFrame()
    pb.SeqID, pb.LogID, pb.service, pb.method = 0, 0, 4321, METHOD_CONTROL
    header = pb.headers.add()
    header.key, header.value = "type", "ping"
    data = pb.SerializeToString()
    frame = Frame.decode(data)
    assert frame.header("type") == "ping"
    assert frame.payload is None
    assert frame.encode() == data

    pb.payload_encoding, pb.payload_type, pb.payload = "gzip", "json", b""
    data = pb.SerializeToString()
    frame = Frame.decode(data)
    assert (frame.payload_encoding, frame.payload_type, frame.payload) == ("gzip", "json", b"")
    assert frame.encode() == data


def test_unknown_fields_of_every_wire_type_are_skipped() -> None:
    known = Frame(seq_id=1, service=2, method=1, headers=[Header("a", "b")], payload=b"x")
    unknown = (
        bytes([10 << 3 | 0])
        + b"\x96\x01"  # varint
        + bytes([11 << 3 | 1])
        + b"12345678"  # fixed64
        + bytes([12 << 3 | 2, 3])
        + b"abc"  # length-delimited
        + bytes([13 << 3 | 5])
        + b"1234"  # fixed32
        + bytes([14 << 3 | 3])
        + bytes([1 << 3 | 0, 1])
        + bytes([14 << 3 | 4])  # group
        + b"\xa8\x1f\x01"  # varint field 501 (two-byte key)
    )
    data = unknown + known.encode() + unknown
    assert Frame.decode(data) == known
    assert PbFrame.FromString(data).payload == b"x"  # the SDK accepts the same bytes


@pytest.mark.parametrize("data", [b"\x08", b"\x42\x05ab", b"\x9b\x01", b"\x07"])
def test_malformed_input_raises_frame_error(data: bytes) -> None:
    with pytest.raises(FrameError):
        Frame.decode(data)
