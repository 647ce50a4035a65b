"""The long-connection side: WebSocket sessions, ping/pong and at-least-once event delivery.

Like Lark, every event (message or card action) goes to ONE live connection chosen at random
(`random.Random(seed)`: a seeded emulator picks the same sequence of connection indexes every
run) as data frame(s) of type "event" (split into `fragment_size` pieces). It is redelivered,
again to a randomly chosen live connection, when no code-200 ack arrives within `ack_deadline`
or the ack reports code 500, up to `max_deliveries` deliveries in total; `redelivery_delays`
spaces the redeliveries (the n-th redelivery waits the n-th delay, the last one repeating; none:
at once). Events emitted while no connection is up wait until one connects.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import random
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from bot.sandbox.frames import METHOD_CONTROL, METHOD_DATA, Frame, FrameError, Header
from bot.sandbox.model import AckRecord, ClientConfig, DeliveryResult

log = logging.getLogger(__name__)

WS_PATH = "/ws"
TICKET_TTL = 300.0


class GatewaySettings(Protocol):
    """The knobs the gateway reads live (so tests can change them between events)."""

    client_config: ClientConfig
    ack_deadline: float
    max_deliveries: int
    redelivery_delays: tuple[float, ...]
    fragment_size: int
    acks: list[AckRecord]


@dataclass
class Connection:
    """One connected SDK client."""

    conn_id: str
    service_id: int
    websocket: WebSocket
    peer: str = ""  # the client's "host:port", to tell which process holds the connection
    connected_at: float = field(default_factory=time.time)
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    deliveries: int = 0
    pings: int = 0


@dataclass
class _Ack:
    code: int
    biz_rt_ms: int | None
    response: Any
    record: AckRecord


@dataclass
class _Attempt:
    event_id: str
    conn_id: str
    sent_at: float
    deadline_at: float
    done: asyncio.Future[_Ack]
    success: asyncio.Future[_Ack]


class Gateway:
    """Accepts SDK WebSockets and delivers events to them."""

    def __init__(self, settings: GatewaySettings, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.rng = rng or random.Random()  # noqa: S311 - picks a connection, not a secret
        self.connections: dict[str, Connection] = {}
        self.history: dict[str, Connection] = {}  # every connection ever made, by id
        self.pings = 0
        self.frames_sent = 0
        self._tickets: dict[str, tuple[int, float]] = {}
        self._attempts: dict[str, _Attempt] = {}
        self._connected = asyncio.Event()
        self._waiting = 0
        self._seq = 0

    @property
    def waiting(self) -> int:
        """Events currently waiting for a connection to come up."""
        return self._waiting

    def open_ticket(self) -> tuple[str, int]:
        """A (device_id, service_id) pair the next WebSocket handshake must present."""
        now = time.monotonic()
        self._tickets = {k: v for k, v in self._tickets.items() if v[1] > now}
        device_id = secrets.token_hex(12)
        service_id = 1000 + secrets.randbelow(9000)
        self._tickets[device_id] = (service_id, now + TICKET_TTL)
        return device_id, service_id

    async def serve(self, websocket: WebSocket) -> None:
        """Run one WebSocket session (the `/ws` route)."""
        device_id = websocket.query_params.get("device_id", "")
        ticket = self._tickets.pop(device_id, None)
        if ticket is None or str(ticket[0]) != websocket.query_params.get("service_id"):
            await websocket.close(code=1008)
            return
        await websocket.accept()
        client = websocket.client
        peer = f"{client.host}:{client.port}" if client is not None else ""
        conn = Connection(device_id, ticket[0], websocket, peer)
        self.connections[device_id] = conn
        self.history[device_id] = conn
        self._connected.set()
        log.info("sandbox ws connected %s", device_id)
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                data = message.get("bytes")
                if data:
                    await self._on_frame(conn, data)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            self._forget(device_id)
            log.info("sandbox ws disconnected %s", device_id)

    def _forget(self, conn_id: str) -> None:
        self.connections.pop(conn_id, None)
        if not self.connections:
            self._connected.clear()

    async def drop_connections(self) -> int:
        """Close every socket (the SDK reconnects by itself); returns how many were closed."""
        dropped = list(self.connections.values())
        for conn in dropped:
            self._forget(conn.conn_id)
        for conn in dropped:
            with contextlib.suppress(Exception):
                if conn.websocket.application_state == WebSocketState.CONNECTED:
                    await conn.websocket.close(code=1001)
        return len(dropped)

    async def _on_frame(self, conn: Connection, data: bytes) -> None:
        try:
            frame = Frame.decode(data)
        except FrameError:
            log.warning("sandbox ws: undecodable frame from %s", conn.conn_id)
            return
        kind = frame.header("type")
        if frame.method == METHOD_CONTROL and kind == "ping":
            conn.pings += 1
            self.pings += 1
            pong = Frame(
                service=frame.service,
                method=METHOD_CONTROL,
                headers=[Header("type", "pong")],
                payload=json.dumps(self.settings.client_config.to_json()).encode(),
            )
            await self._send(conn, [pong])
        elif frame.method == METHOD_DATA:
            self._on_ack(conn, frame)

    def _on_ack(self, conn: Connection, frame: Frame) -> None:
        attempt = self._attempts.get(frame.header("message_id") or "")
        if attempt is None:
            return
        try:
            body = json.loads(frame.payload or b"{}")
            code = int(body.get("code", 0))
            response = _decode_data(body.get("data"))
        except (ValueError, TypeError, AttributeError):
            code, response = 0, None
        biz_rt = frame.header("biz_rt")
        now = time.monotonic()
        record = AckRecord(
            event_id=attempt.event_id,
            delivery_id=frame.header("message_id") or "",
            connection_id=conn.conn_id,
            code=code,
            biz_rt_ms=int(biz_rt) if biz_rt and biz_rt.isdigit() else None,
            latency_ms=round((now - attempt.sent_at) * 1000, 2),
            late=now > attempt.deadline_at,
            at=time.time(),
        )
        self.settings.acks.append(record)
        ack = _Ack(code, record.biz_rt_ms, response, record)
        if not attempt.done.done():
            attempt.done.set_result(ack)
        if code == 200 and not attempt.success.done():
            attempt.success.set_result(ack)

    async def deliver(self, payload: bytes, event_id: str, message_id: str = "") -> DeliveryResult:
        """Deliver one event until a code-200 ack or `max_deliveries` deliveries."""
        loop = asyncio.get_running_loop()
        success: asyncio.Future[_Ack] = loop.create_future()
        result = DeliveryResult(event_id, message_id, 0, None, False)
        delivery_ids: list[str] = []
        try:
            while result.deliveries < self.settings.max_deliveries and not success.done():
                if result.deliveries:
                    await self._pause_before_redelivery(result.deliveries, success)
                    if success.done():  # a late ack of an earlier delivery arrived meanwhile
                        break
                conn = await self._pick()
                delivery_id = secrets.token_hex(16)
                now = time.monotonic()
                deadline = self.settings.ack_deadline
                attempt = _Attempt(
                    event_id, conn.conn_id, now, now + deadline, loop.create_future(), success
                )
                self._attempts[delivery_id] = attempt
                delivery_ids.append(delivery_id)
                try:
                    await self._send(conn, self._frames(conn, payload, delivery_id))
                except Exception:  # the socket went away under us: not a delivery
                    self._forget(conn.conn_id)
                    continue
                result.deliveries += 1
                result.connections.append(conn.conn_id)
                conn.deliveries += 1
                await asyncio.wait(
                    {attempt.done, success}, timeout=deadline, return_when=asyncio.FIRST_COMPLETED
                )
                result.ack_code = attempt.done.result().code if attempt.done.done() else None
        finally:
            if success.done():
                ack = success.result()
                result.acked, result.ack_code = True, ack.code
                result.response, result.latency_ms = ack.response, ack.record.latency_ms
            else:
                success.cancel()
            loop.call_later(self.settings.ack_deadline * 2, self._drop_attempts, delivery_ids)
        result.acks = [a for a in self.settings.acks if a.event_id == event_id]
        return result

    async def _pause_before_redelivery(self, made: int, success: asyncio.Future[_Ack]) -> None:
        delays = self.settings.redelivery_delays
        if delays:
            delay = delays[min(made, len(delays)) - 1]
            await asyncio.wait({success}, timeout=max(0.0, delay))

    def _drop_attempts(self, delivery_ids: list[str]) -> None:
        for delivery_id in delivery_ids:
            self._attempts.pop(delivery_id, None)

    async def _pick(self) -> Connection:
        self._waiting += 1
        try:
            while True:
                await self._connected.wait()
                live = list(self.connections.values())
                if live:
                    return self.rng.choice(live)
                self._connected.clear()
        finally:
            self._waiting -= 1

    def _frames(self, conn: Connection, payload: bytes, delivery_id: str) -> list[Frame]:
        size = max(1, self.settings.fragment_size)
        chunks = [payload[i : i + size] for i in range(0, len(payload), size)] or [b""]
        trace_id = secrets.token_hex(16)
        frames = []
        for seq, chunk in enumerate(chunks):
            self._seq += 1
            headers = [
                Header("type", "event"),
                Header("message_id", delivery_id),
                Header("trace_id", trace_id),
                Header("sum", str(len(chunks))),
                Header("seq", str(seq)),
            ]
            frames.append(Frame(self._seq, 0, conn.service_id, METHOD_DATA, headers, payload=chunk))
        return frames

    async def _send(self, conn: Connection, frames: list[Frame]) -> None:
        async with conn.send_lock:
            for frame in frames:
                await conn.websocket.send_bytes(frame.encode())
                self.frames_sent += 1


def _decode_data(data: object) -> Any:
    """The handler's result from an ack's base64 `data` (JSON when it parses)."""
    if not isinstance(data, str) or not data:
        return None
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return data
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")
