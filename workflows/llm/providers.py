"""Choosing a model provider from configuration, and the small helpers its adapters share.

The SDKs are imported lazily, by the adapters' constructors: `import openai` and
`import anthropic` take hundreds of milliseconds and the bot must start fast (and the `rules`
provider needs neither).

Usage::

    model = build_model("openai", "deepseek-chat", openai_api_key=key,
                        openai_base_url="https://api.deepseek.com/v1")
    model = build_model("rules", "")          # None: runbooks and plugin results only
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from workflows.llm.model import ModelError

if TYPE_CHECKING:
    from workflows.llm.model import ChatModel

PROVIDERS = ("rules", "openai", "anthropic")
UNUSED_KEY = "unused"
"""The key sent to an OpenAI-compatible server that needs none (Ollama, a local vLLM)."""


def build_model(
    provider: str,
    model: str,
    *,
    openai_api_key: str = "",
    openai_base_url: str | None = None,
    anthropic_api_key: str = "",
    anthropic_base_url: str | None = None,
) -> ChatModel | None:
    """The configured chat model, or None for `rules`; ValueError when the settings cannot work.

    An OpenAI-compatible `openai_base_url` may run without a key (Ollama): `unused` is sent.
    """
    name = provider.strip().lower()
    if name == "rules":
        return None
    if name not in PROVIDERS:
        raise ValueError(f"unknown LLM provider {provider!r}: choose one of {', '.join(PROVIDERS)}")
    if not model.strip():
        raise ValueError(f"LLM_MODEL is empty: the {name} provider needs a model name")
    if name == "openai":
        base_url = (openai_base_url or "").strip() or None
        key = openai_api_key.strip()
        if not key:
            if base_url is None:
                raise ValueError(
                    "OPENAI_API_KEY is empty: the openai provider needs a key "
                    "(or OPENAI_BASE_URL for a compatible server that needs none)"
                )
            key = UNUSED_KEY
        from workflows.llm.openai_chat import OpenAIChat

        return OpenAIChat(key, model.strip(), base_url=base_url)
    key = anthropic_api_key.strip()
    if not key:
        raise ValueError("ANTHROPIC_API_KEY is empty: the anthropic provider needs a key")
    from workflows.llm.anthropic_chat import AnthropicChat

    base_url = (anthropic_base_url or "").strip() or None
    return AnthropicChat(key, model.strip(), base_url=base_url)


# ---- shared by the adapters ------------------------------------------------------------------


def parse_tool_arguments(raw: str) -> Mapping[str, Any] | None:
    """The arguments a model sent, or None when they are not a JSON object."""
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def dump_tool_arguments(arguments: Mapping[str, Any] | None, raw: str) -> str:
    """The JSON text to send back for a call: what the model sent, else the parsed arguments."""
    if raw:
        return raw
    return json.dumps(dict(arguments or {}), ensure_ascii=False)


def retryable_status(status: int) -> bool:
    """429, request timeouts and server errors (including Anthropic's 529 overloaded)."""
    return status in (408, 409, 429) or status >= 500


def api_message(body: object) -> str:
    """`error.message` (or `message`) from an API error body, when there is one."""
    if isinstance(body, Mapping):
        error = body.get("error", body)
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            return str(error["message"])
    return ""


def error_text(provider: str, model: str, what: str, detail: str, secret: str) -> str:
    """A short error message that never contains the API key."""
    detail = " ".join(detail.split())
    if len(detail) > 200:
        detail = detail[:197] + "..."
    text = f"{provider} {model}: {what}" + (f": {detail}" if detail else "")
    return text.replace(secret, "***") if len(secret) >= 4 else text


def transport_failure(exc: BaseException, timeout: float) -> str | None:
    """What went wrong when a raw httpx error escapes an SDK (mid-stream), else None.

    The SDKs use `httpx` or its fork `httpx2` depending on their version; both are recognised.
    """
    for name in ("httpx2", "httpx"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if isinstance(exc, module.TimeoutException):
            return f"no answer within {timeout:g}s"
        if isinstance(exc, module.TransportError):
            return f"connection failed ({type(exc).__name__})"
    return None


class SdkErrors:
    """Turns an official SDK's exceptions into `ModelError` (both SDKs name them alike:
    `APIStatusError`, `APITimeoutError`, `APIConnectionError`), never leaking the key."""

    def __init__(self, provider: str, model: str, key: str, sdk: Any) -> None:
        self.provider, self.model, self._key, self._sdk = provider, model, key, sdk

    def text(self, what: str, detail: str = "") -> str:
        return error_text(self.provider, self.model, what, detail, self._key)

    def unfinished(self, seen: bool) -> ModelError:
        """A stream that ended early: retryable when it was cut off mid-reply."""
        if seen:
            return ModelError(self.text("the stream ended before the reply did"), retryable=True)
        return ModelError(self.text("a stream without any event"), retryable=False)

    def error(self, exc: Exception, timeout: float) -> ModelError:
        sdk = self._sdk
        if isinstance(exc, ModelError):
            return exc
        if isinstance(exc, sdk.APIStatusError):
            status = int(exc.status_code)
            text = self.text(f"HTTP {status}", api_message(exc.body))
            return ModelError(text, retryable=retryable_status(status), status=status)
        if isinstance(exc, sdk.APITimeoutError):
            return ModelError(self.text(f"no answer within {timeout:g}s"), retryable=True)
        if isinstance(exc, sdk.APIConnectionError):
            return ModelError(self.text("connection failed"), retryable=True)
        failure = transport_failure(exc, timeout)
        if failure is not None:
            return ModelError(self.text(failure), retryable=True)
        # A body that is not the API's JSON (a proxy's page, garbage): retrying rarely helps.
        return ModelError(self.text(f"unusable response ({type(exc).__name__})"), retryable=False)
