"""Value types of the emulator: people, chats, the long-connection client config and results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ChatType = Literal["group", "p2p"]
SenderType = Literal["user", "bot"]


@dataclass(frozen=True)
class User:
    """A tenant member (or the bot itself); union_id/user_id derive from the open_id suffix."""

    open_id: str
    name: str
    union_id: str = ""
    user_id: str = ""
    departments: tuple[str, ...] = ()  # open_department_ids (the contact API's department_ids)

    def __post_init__(self) -> None:
        suffix = self.open_id.removeprefix("ou_")
        if not self.union_id:
            object.__setattr__(self, "union_id", f"on_{suffix}")
        if not self.user_id:
            object.__setattr__(self, "user_id", suffix)

    def ids(self) -> dict[str, str]:
        """The {union_id, user_id, open_id} triple Lark puts in events."""
        return {"union_id": self.union_id, "user_id": self.user_id, "open_id": self.open_id}


@dataclass(frozen=True)
class Chat:
    """A chat the bot is a member of; p2p chats name their one human `peer`. A group's
    `members` (open_ids) are every tenant user unless given."""

    chat_id: str
    name: str
    chat_type: ChatType = "group"
    peer: str = ""
    members: tuple[str, ...] | None = None
    urgent_allowed: bool = True  # the group lets every member send urgent notices (加急)


DEFAULT_USERS: tuple[User, ...] = (
    User("ou_alice", "张三"),
    User("ou_bob", "李四"),
    User("ou_carol", "王五"),
)
DEFAULT_CHATS: tuple[Chat, ...] = (
    Chat("oc_ops", "运维值班群"),
    Chat("oc_dev", "研发群"),
)


def p2p_chat(user: User) -> Chat:
    """The bot's one-to-one chat with `user` (chat_id `oc_p2p_<suffix>`)."""
    return Chat(f"oc_p2p_{user.user_id}", user.name, "p2p", user.open_id)


@dataclass(frozen=True)
class ClientConfig:
    """What the endpoint response and every pong tell the SDK (seconds).

    Defaults are sandbox-friendly (Lark itself sends 120/30/120); tests use interval 1, nonce 0.
    """

    reconnect_count: int = -1
    reconnect_interval: int = 3
    reconnect_nonce: int = 1
    ping_interval: int = 30

    def to_json(self) -> dict[str, int]:
        """The wire form (`ReconnectCount`, ... as the SDK's ClientConfig expects)."""
        return {
            "ReconnectCount": self.reconnect_count,
            "ReconnectInterval": self.reconnect_interval,
            "ReconnectNonce": self.reconnect_nonce,
            "PingInterval": self.ping_interval,
        }


@dataclass
class AckRecord:
    """One ack received for one delivery of an event."""

    event_id: str
    delivery_id: str
    connection_id: str
    code: int
    biz_rt_ms: int | None
    latency_ms: float
    late: bool
    at: float


@dataclass
class DeliveryResult:
    """How an event fared: deliveries made, the deciding ack code and the handler's response.

    `ack_code` is 200 when acked, 500 when the last ack reported a handler error, None when no
    ack arrived at all; `response` is the decoded JSON the handler returned (ack `data`).
    """

    event_id: str
    message_id: str
    deliveries: int
    ack_code: int | None
    acked: bool
    response: Any = None
    latency_ms: float | None = None
    acks: list[AckRecord] = field(default_factory=list)
    connections: list[str] = field(default_factory=list)  # the connection of each delivery


@dataclass
class ClickResult:
    """The outcome of a card click: the callback's toast and card (both optional); a card real
    Feishu would refuse is not shown (`card` None) and `refused` says why (`cardcheck`)."""

    toast: dict[str, Any] | None
    card: dict[str, Any] | None
    latency_ms: float | None
    raw: Any
    delivery: DeliveryResult
    refused: str = ""
