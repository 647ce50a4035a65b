"""A protocol-faithful Lark/Feishu emulator (REST, long-connection WebSocket, control API).

The real `lark_oapi` SDK talks to it unchanged; nothing here imports lark_oapi.
"""

from bot.sandbox.emulator import LarkEmulator
from bot.sandbox.model import Chat, ClickResult, ClientConfig, DeliveryResult, User
from bot.sandbox.record import Message
from bot.sandbox.server import serve_emulator

__all__ = [
    "Chat",
    "ClickResult",
    "ClientConfig",
    "DeliveryResult",
    "LarkEmulator",
    "Message",
    "User",
    "serve_emulator",
]
