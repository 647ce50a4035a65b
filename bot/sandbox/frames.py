"""Pure-python codec for the long-connection protobuf frame (`pbbp2.Frame`, proto2).

Wire layout (field number, type)::

    Header { key = 1 string; value = 2 string }
    Frame  { SeqID = 1 uint64; LogID = 2 uint64; service = 3 int32; method = 4 int32;
             headers = 5 repeated Header; payload_encoding = 6 string; payload_type = 7 string;
             payload = 8 bytes; LogIDNew = 9 string }

The four required scalars are always written; optional fields only when set (not None), which
is exactly what the generated protobuf code does, so encodings are byte-identical. Decoding skips
unknown fields of every wire type.
"""

from __future__ import annotations

from dataclasses import dataclass, field

METHOD_CONTROL = 0
METHOD_DATA = 1

_VARINT = 0
_FIXED64 = 1
_LENGTH = 2
_GROUP_START = 3
_GROUP_END = 4
_FIXED32 = 5
_U64 = (1 << 64) - 1


class FrameError(ValueError):
    """The bytes are not a well-formed frame."""


@dataclass
class Header:
    """One key/value header of a frame."""

    key: str
    value: str


@dataclass
class Frame:
    """A long-connection frame; `method` 0 is control (ping/pong), 1 is data (event/ack)."""

    seq_id: int = 0
    log_id: int = 0
    service: int = 0
    method: int = 0
    headers: list[Header] = field(default_factory=list)
    payload_encoding: str | None = None
    payload_type: str | None = None
    payload: bytes | None = None
    log_id_new: str | None = None

    def header(self, key: str) -> str | None:
        """The value of the first header named `key`, or None."""
        for item in self.headers:
            if item.key == key:
                return item.value
        return None

    def encode(self) -> bytes:
        """Serialize exactly like the generated protobuf code (fields in number order)."""
        out = bytearray()
        _put_varint_field(out, 1, self.seq_id)
        _put_varint_field(out, 2, self.log_id)
        _put_varint_field(out, 3, self.service)
        _put_varint_field(out, 4, self.method)
        for item in self.headers:
            body = bytearray()
            _put_bytes_field(body, 1, item.key.encode())
            _put_bytes_field(body, 2, item.value.encode())
            _put_bytes_field(out, 5, bytes(body))
        if self.payload_encoding is not None:
            _put_bytes_field(out, 6, self.payload_encoding.encode())
        if self.payload_type is not None:
            _put_bytes_field(out, 7, self.payload_type.encode())
        if self.payload is not None:
            _put_bytes_field(out, 8, self.payload)
        if self.log_id_new is not None:
            _put_bytes_field(out, 9, self.log_id_new.encode())
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> Frame:
        """Parse a frame; unknown fields are skipped, malformed input raises FrameError."""
        frame = cls()
        for number, wire, value in _fields(data):
            if number in (1, 2, 3, 4) and wire == _VARINT:
                assert isinstance(value, int)
                if number == 1:
                    frame.seq_id = value
                elif number == 2:
                    frame.log_id = value
                elif number == 3:
                    frame.service = _int32(value)
                else:
                    frame.method = _int32(value)
            elif number == 5 and wire == _LENGTH:
                assert isinstance(value, bytes)
                frame.headers.append(_decode_header(value))
            elif number in (6, 7, 9) and wire == _LENGTH:
                assert isinstance(value, bytes)
                text = _text(value)
                if number == 6:
                    frame.payload_encoding = text
                elif number == 7:
                    frame.payload_type = text
                else:
                    frame.log_id_new = text
            elif number == 8 and wire == _LENGTH:
                assert isinstance(value, bytes)
                frame.payload = value
        return frame


def _decode_header(data: bytes) -> Header:
    header = Header("", "")
    for number, wire, value in _fields(data):
        if wire != _LENGTH:
            continue
        assert isinstance(value, bytes)
        if number == 1:
            header.key = _text(value)
        elif number == 2:
            header.value = _text(value)
    return header


def _text(value: bytes) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError as exc:
        raise FrameError("string field is not UTF-8") from exc


def _int32(value: int) -> int:
    value &= _U64
    return value - (1 << 64) if value >= 1 << 63 else value


def _put_varint(out: bytearray, value: int) -> None:
    value &= _U64
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _put_varint_field(out: bytearray, number: int, value: int) -> None:
    _put_varint(out, number << 3 | _VARINT)
    _put_varint(out, value)


def _put_bytes_field(out: bytearray, number: int, value: bytes) -> None:
    _put_varint(out, number << 3 | _LENGTH)
    _put_varint(out, len(value))
    out += value


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(data):
            raise FrameError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result & _U64, pos
        shift += 7
        if shift >= 70:
            raise FrameError("varint too long")


def _fields(data: bytes) -> list[tuple[int, int, int | bytes | None]]:
    """Top-level fields as (number, wire type, value); groups and fixed fields yield None."""
    fields: list[tuple[int, int, int | bytes | None]] = []
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise FrameError("field number 0")
        value, pos = _read_value(data, pos, number, wire)
        fields.append((number, wire, value))
    return fields


def _read_value(data: bytes, pos: int, number: int, wire: int) -> tuple[int | bytes | None, int]:
    if wire == _VARINT:
        return _read_varint(data, pos)
    if wire == _LENGTH:
        size, pos = _read_varint(data, pos)
        if pos + size > len(data):
            raise FrameError("truncated length-delimited field")
        return data[pos : pos + size], pos + size
    if wire in (_FIXED64, _FIXED32):
        size = 8 if wire == _FIXED64 else 4
        if pos + size > len(data):
            raise FrameError("truncated fixed-size field")
        return None, pos + size
    if wire == _GROUP_START:
        while True:
            if pos >= len(data):
                raise FrameError("unterminated group")
            key, pos = _read_varint(data, pos)
            inner_number, inner_wire = key >> 3, key & 7
            if inner_wire == _GROUP_END:
                if inner_number != number:
                    raise FrameError("mismatched group end")
                return None, pos
            _, pos = _read_value(data, pos, inner_number, inner_wire)
    raise FrameError(f"unsupported wire type {wire}")
