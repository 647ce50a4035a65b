"""The guard around every model call: budgets, the shared rate limit, retries, and the record.

Before a call: the incident's and the day's token budgets (summed from `llm_turns`, so they hold
across replicas and restarts) and the shared token bucket (`Coordination.take`, so replicas
share one rate). The call: retried with exponential backoff (tenacity) while the error is
retryable (429, 5xx, timeouts) and the wall-clock deadline allows. After: one `llm_turns` row
per attempt (prompt size, tokens, latency, cost estimate, tool calls, error) and metrics.
Anything that stops the call is `ModelUnavailable`, with a reason a card can show; callers fall
back to the `rules` result — the incident flow never waits on a dead or over-budget model.

Configuration (YAML `llm:`)::

    llm:
      max_steps: 6              # tool-calling rounds per diagnosis
      incident_tokens: 60000    # per incident, all calls together
      conversation_tokens: 40000  # per chat conversation (thread), all questions together
      daily_tokens: 2000000     # per day (UTC), all incidents and chats together
      wall_seconds: 90          # per diagnosis, retries and tools included
      request_timeout: 30       # per model request
      retries: 3
      rate_per_minute: 60       # model requests per minute, shared by all replicas
      price_per_mtok_in: 0.15   # USD per million tokens, for the cost estimate
      price_per_mtok_out: 0.60
      redact_labels: [customer_email]
      redact_patterns: ["1[3-9]\\d{9}"]
      council:                  # two or more: every diagnosis asks them all (workflows.llm.council)
        - {name: gpt, provider: openai, model: gpt-4o-mini}
        - {name: claude, provider: anthropic, model: claude-3-5-haiku-latest}
        - {name: qwen, provider: openai, model: qwen2.5:7b, base_url: "http://127.0.0.1:11434/v1"}
      council_seconds: 60       # a council's deadline: a slow or dead model is left out after it

Usage::

    guard = ModelGuard(model, db, coordination, LlmConfig())
    reply = await guard.complete(messages, tools=tools, purpose="diagnosis", incident_id=7,
                                 deadline=time.monotonic() + 60)
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal, NotRequired, TypedDict

from prometheus_client import Counter, Histogram
from pydantic import BaseModel, ConfigDict, Field, model_validator
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from storage import llm_turns, tracing
from storage.coordination import Coordination
from storage.database import Database
from storage.models import LlmTurn
from storage.redaction import Redactor
from workflows.llm.model import (
    ChatModel,
    Message,
    ModelError,
    Reply,
    StreamEvent,
    TextDelta,
    ToolSpec,
)

LLM_CALLS = Counter(
    "larkops_llm_calls_total",
    "Model calls by provider, purpose and outcome",
    ["provider", "purpose", "outcome"],
)
LLM_TOKENS = Counter(
    "larkops_llm_tokens_total", "Model tokens by provider and direction", ["provider", "direction"]
)
LLM_COST = Counter("larkops_llm_cost_usd_total", "Estimated model cost in USD", ["provider"])
_TRACE_REDACTOR = Redactor()  # prompts and outputs in traces (only when enabled): redacted


def _content(messages: Sequence[Message]) -> str:
    """The prompt for a trace, only when recording content is enabled."""
    if not tracing.record_content():
        return ""
    return "\n\n".join(f"[{m.role}] {m.content}" for m in messages)


LLM_LATENCY = Histogram(
    "larkops_llm_latency_seconds",
    "Model call latency",
    ["provider"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64),
)


# calls not made: budget_incident, budget_model, budget_day, budget_conversation, rate, deadline
LLM_REFUSALS = Counter(
    "larkops_llm_refusals_total",
    "Model calls refused before they were made, by provider and reason",
    ["provider", "reason"],
)

DAY_REFRESH = 10.0  # seconds between sums of the day's tokens


class CouncilMember(BaseModel):
    """One model of the council. Its key is the provider's (`OPENAI_API_KEY`,
    `ANTHROPIC_API_KEY`) unless `api_key_env` names another variable; its address is `base_url`,
    else the provider's (`OPENAI_BASE_URL`, `ANTHROPIC_BASE_URL`, else the official API), and a
    member with its own `base_url` has its own rate limit. `incident_tokens` is its own budget per
    incident (the incident's budget holds for all models together)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,31}$")
    provider: Literal["openai", "anthropic"]
    model: str = Field(min_length=1, max_length=200)
    base_url: str | None = None
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]{0,63}$")
    incident_tokens: int = Field(default=20_000, ge=1000)
    price_per_mtok_in: float | None = Field(default=None, ge=0)
    price_per_mtok_out: float | None = Field(default=None, ge=0)


class LlmConfig(BaseModel):
    """The `llm:` section of the configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_steps: int = Field(default=6, ge=1, le=20)
    incident_tokens: int = Field(default=60_000, ge=1000)
    conversation_tokens: int = Field(default=40_000, ge=1000)
    daily_tokens: int = Field(default=2_000_000, ge=1000)
    wall_seconds: float = Field(default=90.0, gt=0, le=600)
    request_timeout: float = Field(default=30.0, gt=0, le=300)
    retries: int = Field(default=3, ge=1, le=10)
    rate_per_minute: float = Field(default=60.0, gt=0)
    price_per_mtok_in: float = Field(default=0.0, ge=0)
    price_per_mtok_out: float = Field(default=0.0, ge=0)
    max_output_tokens: int = Field(default=1500, ge=100, le=16_000)
    redact_labels: tuple[str, ...] = ()
    redact_patterns: tuple[str, ...] = ()
    embeddings: str = Field(default="hashing", pattern="^(hashing|openai)$")
    embedding_model: str = "text-embedding-3-small"
    council: tuple[CouncilMember, ...] = ()
    council_seconds: float = Field(default=60.0, gt=0, le=600)

    @model_validator(mode="after")
    def _council_names(self) -> LlmConfig:
        names = [member.name for member in self.council]
        if len(set(names)) != len(names):
            raise ValueError("council: two members have the same name")
        if len(names) == 1:
            raise ValueError("council: a council needs at least two models")
        return self


# why a call was not made (each counted in `larkops_llm_refusals_total`)
Refusal = Literal[
    "budget_conversation", "budget_incident", "budget_model", "budget_day", "deadline", "rate"
]
Unavailability = Refusal | Literal["error"]  # "error": the model failed
BUDGETS: tuple[Refusal, ...] = (
    "budget_conversation",
    "budget_incident",
    "budget_model",
    "budget_day",
)


class ModelUnavailable(RuntimeError):
    """The model cannot be used for this call: down, rate-limited for too long, over budget.
    `code` says which; the message (English, with the figures) is for logs and the trace."""

    def __init__(self, reason: str, *, code: Unavailability) -> None:
        super().__init__(reason)
        self.code: Unavailability = code

    @property
    def over_budget(self) -> bool:
        return self.code in BUDGETS


class CallRecord(TypedDict):
    """One model call as it is recorded (`llm_turns`) and traced."""

    incident_id: int | None
    run_id: str | None
    conversation_id: str | None
    purpose: str
    prompt_chars: int
    prompt: str  # for the trace only (redacted there), never stored
    attempt: NotRequired[int]


class ModelGuard:
    def __init__(
        self,
        model: ChatModel,
        db: Database,
        coordination: Coordination,
        config: LlmConfig,
        *,
        model_tokens: int | None = None,
        rate_key: str | None = None,
    ) -> None:
        self.model = model
        self.db = db
        self.coordination = coordination
        self.config = config
        self.model_tokens = model_tokens  # this model's own budget per incident (a council's)
        # the shared token bucket: one per provider, unless the model is served elsewhere
        self.rate_key = rate_key or f"llm:{model.provider}"
        self._day: tuple[datetime, int] | None = None  # (day, tokens used) as last summed
        self._day_at = 0.0

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        purpose: str,
        incident_id: int | None = None,
        run_id: str | None = None,
        conversation_id: str | None = None,
        deadline: float,
    ) -> Reply:
        """One guarded call; ModelUnavailable when it cannot (or should not) be made."""
        await self._check_budgets(incident_id)
        await self._wait_for_rate(deadline)
        prompt_chars = sum(len(m.content) for m in messages)
        attempts = AsyncRetrying(
            retry=retry_if_exception(lambda e: isinstance(e, ModelError) and e.retryable),
            stop=stop_after_attempt(self.config.retries),
            wait=wait_exponential_jitter(multiplier=0.5, max=8.0),
            reraise=False,
        )
        record: CallRecord = {
            "incident_id": incident_id,
            "run_id": run_id,
            "conversation_id": conversation_id,
            "purpose": purpose,
            "prompt_chars": prompt_chars,
            "prompt": _content(messages),
        }
        try:
            async for attempt in attempts:
                with attempt:
                    record["attempt"] = attempt.retry_state.attempt_number
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise self._refused("the time for this diagnosis ran out", "deadline")
                    timeout = min(self.config.request_timeout, left)
                    started = time.monotonic()
                    try:
                        reply = await self.model.complete(
                            messages,
                            tools=tools,
                            max_tokens=self.config.max_output_tokens,
                            request_timeout=timeout,
                        )
                    except ModelError as exc:
                        await self._record(record, started, None, error=str(exc)[:300])
                        raise
                    await self._record(record, started, reply)
                    return reply
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise ModelUnavailable(f"the model failed: {last}", code="error") from None
        except ModelError as exc:  # not retryable
            raise ModelUnavailable(f"the model refused the request: {exc}", code="error") from None
        raise ModelUnavailable("the model gave no answer", code="error")

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        purpose: str,
        conversation_id: str | None = None,
        deadline: float,
    ) -> AsyncIterator[StreamEvent]:
        """One guarded, streamed call: TextDelta events, then one Done. Budgets (the day's and
        the conversation's) and the rate limit hold as for `complete`; a failure is retried
        (with backoff) only while no text has been shown, since shown text cannot be unsaid.
        Raises ModelUnavailable."""
        await self._check_budgets(None)
        if conversation_id is not None:
            used = await self.conversation_usage(conversation_id)
            if used >= self.config.conversation_tokens:
                raise self._refused(
                    f"this conversation's token budget is used up ({used} of "
                    f"{self.config.conversation_tokens})",
                    "budget_conversation",
                )
        await self._wait_for_rate(deadline)
        record: CallRecord = {
            "incident_id": None,
            "run_id": None,
            "conversation_id": conversation_id,
            "purpose": purpose,
            "prompt_chars": sum(len(m.content) for m in messages),
            "prompt": _content(messages),
        }
        for attempt in range(1, self.config.retries + 1):
            record["attempt"] = attempt
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._refused("the time for this answer ran out", "deadline")
            started, shown = time.monotonic(), False
            try:
                async for event in self.model.stream(
                    messages,
                    tools=tools,
                    max_tokens=self.config.max_output_tokens,
                    request_timeout=min(self.config.request_timeout, left),
                ):
                    if isinstance(event, TextDelta):
                        shown = True
                    else:
                        await self._record(record, started, event.reply)
                    yield event
                return
            except ModelError as exc:
                await self._record(record, started, None, error=str(exc)[:300])
                if not exc.retryable or shown or attempt == self.config.retries:
                    raise ModelUnavailable(f"the model failed: {exc}", code="error") from None
            pause = min(8.0, 0.5 * 2 ** (attempt - 1)) * (0.5 + random.random())  # noqa: S311
            if time.monotonic() + pause > deadline:
                raise self._refused("the time for this answer ran out", "deadline")
            await asyncio.sleep(pause)
        raise ModelUnavailable("the model gave no answer", code="error")

    async def conversation_usage(self, conversation_id: str) -> int:
        """Tokens a conversation has used, from `llm_turns`."""
        return await llm_turns.conversation_tokens(self.db, conversation_id)

    async def usage(self, incident_id: int | None) -> tuple[int, int]:
        """Tokens used by the incident (0 without one) and today (UTC), from `llm_turns`.

        The day's total is summed at most every `DAY_REFRESH` seconds (it covers every replica's
        calls, so it is a query, but summing a busy day on every call costs milliseconds); this
        process's own calls are added in between."""
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        fresh = (
            self._day is not None
            and self._day[0] == today
            and time.monotonic() - self._day_at < DAY_REFRESH
        )
        if fresh and incident_id is None:
            assert self._day is not None
            return 0, self._day[1]
        mine, day = await llm_turns.incident_and_day_tokens(
            self.db, incident_id, None if fresh else today
        )
        if day is not None:
            self._day, self._day_at = (today, day), time.monotonic()
        assert self._day is not None
        return mine, self._day[1]

    async def model_usage(self, incident_id: int) -> int:
        """Tokens this model (provider and name) has used for the incident, from `llm_turns`."""
        return await llm_turns.model_tokens(
            self.db, incident_id, self.model.provider, self.model.model
        )

    async def _check_budgets(self, incident_id: int | None) -> None:
        incident_used, day_used = await self.usage(incident_id)
        if incident_id is not None and incident_used >= self.config.incident_tokens:
            raise self._refused(
                f"the incident's token budget is used up ({incident_used} of "
                f"{self.config.incident_tokens})",
                "budget_incident",
            )
        if incident_id is not None and self.model_tokens is not None:
            used = await self.model_usage(incident_id)
            if used >= self.model_tokens:
                raise self._refused(
                    f"this model's token budget for the incident is used up ({used} of "
                    f"{self.model_tokens})",
                    "budget_model",
                )
        if day_used >= self.config.daily_tokens:
            raise self._refused(
                f"today's token budget is used up ({day_used} of {self.config.daily_tokens})",
                "budget_day",
            )

    def _refused(self, reason: str, code: Refusal) -> ModelUnavailable:
        """The error for a call not made (counted by reason)."""
        LLM_REFUSALS.labels(self.model.provider, code).inc()
        return ModelUnavailable(reason, code=code)

    async def _wait_for_rate(self, deadline: float) -> None:
        rate = self.config.rate_per_minute / 60.0
        burst = max(1, int(self.config.rate_per_minute // 6))
        while True:
            wait = await self.coordination.take(self.rate_key, rate, burst)
            if wait <= 0:
                return
            if time.monotonic() + wait > deadline:
                raise self._refused("the shared model rate limit is exhausted", "rate")
            await asyncio.sleep(wait)

    def _trace(
        self,
        record: CallRecord,
        elapsed: float,
        reply: Reply | None,
        used_in: int,
        used_out: int,
        cost: float,
        error: str,
    ) -> None:
        """The call as a span of the current trace: model, tokens, cost, latency, attempt; the
        prompt and the output only when explicitly enabled, and redacted."""
        attributes: dict[str, str | int | float | bool | None] = {
            "llm.provider": self.model.provider,
            "llm.model": self.model.model,
            "llm.purpose": str(record["purpose"]),
            "llm.attempt": int(record.get("attempt", 1)),
            "llm.tokens_in": used_in,
            "llm.tokens_out": used_out,
            "llm.cost_usd": round(cost, 6),
            "llm.latency_ms": round(elapsed * 1000),
            "llm.prompt_chars": int(record["prompt_chars"]),
        }
        if tracing.record_content():
            attributes["llm.prompt"] = _TRACE_REDACTOR.text(str(record.get("prompt", "")))[:8000]
            attributes["llm.output"] = _TRACE_REDACTOR.text(reply.text if reply else "")[:8000]
        tracing.finished_span("llm.call", elapsed, attributes, failed=error)

    async def _record(
        self, record: CallRecord, started: float, reply: Reply | None, *, error: str = ""
    ) -> None:
        elapsed = time.monotonic() - started
        provider = self.model.provider
        LLM_LATENCY.labels(provider).observe(elapsed)
        LLM_CALLS.labels(provider, record["purpose"], "error" if reply is None else "ok").inc()
        used_in = reply.usage.input_tokens if reply else 0
        used_out = reply.usage.output_tokens if reply else 0
        cost = (
            used_in * self.config.price_per_mtok_in + used_out * self.config.price_per_mtok_out
        ) / 1_000_000
        if self._day is not None:
            self._day = (self._day[0], self._day[1] + used_in + used_out)
        LLM_TOKENS.labels(provider, "in").inc(used_in)
        LLM_TOKENS.labels(provider, "out").inc(used_out)
        LLM_COST.labels(provider).inc(cost)
        self._trace(record, elapsed, reply, used_in, used_out, cost, error)
        calls = [{"id": c.id, "name": c.name} for c in reply.tool_calls] if reply else []
        row = LlmTurn(
            incident_id=record["incident_id"],
            run_id=uuid.UUID(record["run_id"]) if record["run_id"] else None,
            conversation_id=record["conversation_id"],
            purpose=record["purpose"],
            provider=provider,
            model=self.model.model,
            prompt_chars=record["prompt_chars"],
            prompt_tokens=used_in,
            completion_tokens=used_out,
            latency_ms=round(elapsed * 1000),
            cost_usd=Decimal(f"{cost:.6f}"),
            tool_calls=calls,
            response={"stop": reply.stop_reason, "chars": len(reply.text)} if reply else {},
            error=error or None,
        )
        await llm_turns.record(self.db, row)
