"""Lark's refusals as exceptions (`bot.lark.api` raises them; `bot.lark.api` re-exports them)."""

from __future__ import annotations


class LarkApiError(RuntimeError):
    """Lark refused the call; `code` and `msg` are Lark's."""

    def __init__(self, endpoint: str, status: int, code: int, msg: str) -> None:
        super().__init__(f"{endpoint}: HTTP {status}, code {code}: {msg}")
        self.endpoint, self.status, self.code, self.msg = endpoint, status, code, msg


class LarkRetryable(LarkApiError):
    """A transient refusal (5xx, rate limit); `retry_after` in seconds when Lark said."""

    def __init__(self, endpoint: str, status: int, code: int, msg: str, retry_after: float | None):
        super().__init__(endpoint, status, code, msg)
        self.retry_after = retry_after
