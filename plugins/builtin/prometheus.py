"""`prom_query` and `prom_range`: ask a configured Prometheus (diagnostic, low risk, read-only).

Prometheus servers are named in the settings, never taken from parameters (see
`plugins.builtin.targets`); a run picks one with `target` (else the default)::

    plugins:
      settings:
        prometheus:
          targets:
            main: {url: "http://prometheus:9090"}
            edge: {url: "https://prom.edge.internal/", bearer_token: "...", ca_bundle: /etc/ca.pem}
          default: main

`prom_query` (`query`, at most 2000 characters, no control characters; `time`, RFC 3339 or
relative like `-5m`; `expect_nonempty`) returns the result type and up to 50 series with their
labels and value. `prom_range` (`query`, `minutes` back, default 30, at most 1440; `step_s`,
default 60, at most 11000 points) returns, for up to 20 series, min/max/last/avg and the number
of points. An API error is ok=False with Prometheus's own message; an empty result is ok=False
only when `expect_nonempty` is true. Proxy variables are ignored, redirects are not followed and
bearer tokens never appear in a result (even when a server echoes them back).
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Self

import certifi
import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from plugins.builtin.targets import Targets, parse_targets, with_targets
from plugins.contract import Plugin, PluginContext, PluginResult, PluginSpec

MAX_QUERY = 2000
MAX_TIMEOUT = 30.0
MAX_POINTS = 11000
QUERY_SERIES = 50
RANGE_SERIES = 20
RESPONSE_LIMIT = 8 * 1024 * 1024
DATA_BUDGET = 7 * 1024
FIELDS: Mapping[str, type] = {"url": str, "bearer_token": str, "ca_bundle": str}
_RELATIVE = re.compile(r"-(\d{1,6})([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class _PromParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    plugin: ClassVar[str] = "prometheus"
    bound_targets: ClassVar[Targets | None] = None

    target: str | None = Field(default=None, min_length=1, max_length=48)
    query: str = Field(min_length=1, max_length=MAX_QUERY)
    expect_nonempty: bool = False
    timeout_s: float = Field(default=10.0, gt=0, le=MAX_TIMEOUT)

    @field_validator("query")
    @classmethod
    def _printable(cls, value: str) -> str:
        if any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in value):
            raise ValueError("query must not contain control characters")
        if not value.strip():
            raise ValueError("query is empty")
        return value

    def target_name(self) -> str:
        """The configured target this run uses."""
        targets = self.bound_targets
        return self.target or (targets.default if targets else "default")

    def policy_scope(self) -> dict[str, str]:
        """The Prometheus server this run asks."""
        name = self.target_name()
        targets = self.bound_targets
        url = str(targets.get(name)["url"]) if targets and name in targets.entries else ""
        return {"target": name, "url": url}

    def policy_target(self) -> str:
        """Quotas count queries per server."""
        return f"{self.plugin}:{self.target_name()}"


class PromQueryParams(_PromParams):
    """Parameters of `prom_query`."""

    plugin: ClassVar[str] = "prom_query"

    time: str | None = Field(default=None, min_length=2, max_length=40)

    @field_validator("time")
    @classmethod
    def _instant(cls, value: str | None) -> str | None:
        if value is not None:
            evaluation_time(value, now=0.0)
        return value


class PromRangeParams(_PromParams):
    """Parameters of `prom_range`."""

    plugin: ClassVar[str] = "prom_range"

    minutes: int = Field(default=30, ge=1, le=1440)
    step_s: int = Field(default=60, ge=1, le=86400)

    @model_validator(mode="after")
    def _few_points(self) -> Self:
        points = self.minutes * 60 // self.step_s + 1
        if points > MAX_POINTS:
            raise ValueError(f"{points} points per series; at most {MAX_POINTS} (raise step_s)")
        return self


def evaluation_time(value: str, now: float) -> float:
    """Unix time of `-5m`-style offsets (from `now`) or an RFC 3339 timestamp; ValueError."""
    relative = _RELATIVE.fullmatch(value)
    if relative:
        return now - int(relative.group(1)) * _UNIT_SECONDS[relative.group(2)]
    if len(value) < 19 or value[10] not in "Tt":
        raise ValueError("time must be RFC 3339 (2024-05-01T10:00:00Z) or relative like -5m")
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise ValueError("time is not a valid RFC 3339 timestamp") from None
    if moment.tzinfo is None:
        raise ValueError("time needs a UTC offset or Z")
    return moment.timestamp()


@dataclass(frozen=True)
class _Answer:
    data: Mapping[str, Any] | None
    error: str | None
    warnings: tuple[str, ...] = ()


class PrometheusClient:
    """HTTP API access to the configured targets (TLS contexts built once)."""

    def __init__(self, targets: Targets) -> None:
        self.targets = targets
        self._tls: dict[str, ssl.SSLContext] = {}
        for name, entry in targets.entries.items():
            context = ssl.create_default_context(cafile=certifi.where())
            if entry.get("ca_bundle"):
                try:
                    context.load_verify_locations(cafile=entry["ca_bundle"])
                except (OSError, ssl.SSLError) as exc:
                    raise ValueError(f"prometheus: target {name!r}: ca_bundle: {exc}") from None
            self._tls[name] = context
        self.secrets = tuple(
            str(e["bearer_token"]) for e in targets.entries.values() if e.get("bearer_token")
        )

    async def get(self, name: str, path: str, form: Mapping[str, str], timeout_s: float) -> _Answer:
        """GET `path` of target `name`; an `_Answer` with the `data` member or an error."""
        entry = self.targets.get(name)
        url = str(entry["url"]).rstrip("/") + path
        headers = {"Accept": "application/json", "User-Agent": "larkops-prometheus"}
        if entry.get("bearer_token"):
            headers["Authorization"] = f"Bearer {entry['bearer_token']}"
        try:
            async with (
                httpx.AsyncClient(
                    timeout=httpx.Timeout(timeout_s),
                    trust_env=False,
                    follow_redirects=False,
                    verify=self._tls[name],
                ) as client,
                asyncio.timeout(timeout_s + 1),
                client.stream("GET", url, params=dict(form), headers=headers) as response,
            ):
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > RESPONSE_LIMIT:
                        return _Answer(None, "the response is larger than 8 MiB; narrow the query")
        except (TimeoutError, httpx.TimeoutException):
            return _Answer(None, f"no answer from {entry['url']} within {timeout_s:g}s")
        except httpx.ConnectError as exc:
            return _Answer(None, f"cannot connect to {entry['url']}: {_reason(exc)}")
        except httpx.HTTPError as exc:
            return _Answer(None, f"request to {entry['url']} failed: {type(exc).__name__}: {exc}")
        return _parse(response.status_code, bytes(body))


def _reason(exc: httpx.ConnectError) -> str:
    """The OS-level cause (httpx says only "All connection attempts failed")."""
    cause: BaseException | None = exc
    for _ in range(6):
        if cause is None:
            break
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused (is Prometheus running there?)"
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
        cause = cause.__cause__ or cause.__context__
    return str(exc) or "connection failed"


def _parse(status: int, body: bytes) -> _Answer:
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        snippet = body[:200].decode(errors="replace").strip() or "empty body"
        return _Answer(None, f"HTTP {status}, not a Prometheus API answer: {snippet}")
    warnings = tuple(str(w)[:300] for w in payload.get("warnings") or [])[:5]
    if payload.get("status") != "success":
        kind = payload.get("errorType") or f"HTTP {status}"
        return _Answer(None, f"{kind}: {payload.get('error') or 'unknown error'}", warnings)
    data = payload.get("data")
    if not isinstance(data, dict):
        return _Answer(None, f"HTTP {status}: the answer has no data")
    return _Answer(data, None, warnings)


class PromQueryPlugin:
    """Instant PromQL query against a configured Prometheus."""

    def __init__(self, client: PrometheusClient) -> None:
        self.client = client
        params = with_targets(PromQueryParams, client.targets)
        params.bound_targets = client.targets
        self.spec = _spec("prom_query", params, "Prometheus 查询", "Prometheus query")

    async def run(self, ctx: PluginContext, params: BaseModel) -> PluginResult:
        """One /api/v1/query call."""
        assert isinstance(params, PromQueryParams)
        name = params.target_name()
        form = {"query": params.query, "timeout": f"{params.timeout_s:g}"}
        if params.time is not None:
            form["time"] = f"{evaluation_time(params.time, time.time()):.3f}"
        answer = await self.client.get(name, "/api/v1/query", form, params.timeout_s)
        label = f"{name}: {_short(params.query)}"
        values: dict[str, str] = {"target": name, "query": _cut(params.query)}
        if answer.data is None:
            return _scrub(_api_failure(label, answer, values), self.client.secrets)
        kind = str(answer.data.get("resultType"))
        raw = answer.data.get("result")
        rows: list[dict[str, Any]]
        if kind in ("scalar", "string") and isinstance(raw, list) and len(raw) == 2:
            rows = [{"labels": {}, "value": _number(raw[1]), "timestamp": raw[0]}]
        elif isinstance(raw, list):
            rows = [_instant_row(s) if kind == "vector" else _range_row(s) for s in raw]
        else:
            rows = []
        empty = not rows
        shown = rows[:QUERY_SERIES]
        evidence = [_row_line(r) for r in shown[:10]] + [f"warning: {w}" for w in answer.warnings]
        summary = f"{label} → {kind} with {len(rows)} series"
        if shown:
            summary += f"; {_row_line(shown[0])}"
        ok = not (empty and params.expect_nonempty)
        if not ok:
            summary += " (expected a non-empty result)"
        data = {
            "target": name,
            "result_type": kind,
            "series_count": len(rows),
            "series": _fit(shown),
            "warnings": list(answer.warnings),
        }
        output = "\n".join(_row_line(r) for r in shown)
        values |= {"kind": kind, "count": str(len(rows))}
        if shown:
            values["first"] = _row_line(shown[0])
        result = PluginResult(
            ok=ok,
            summary=summary,
            data=data,
            evidence=tuple(evidence),
            output=output,
            code="prom_series" if rows else ("prom_empty" if ok else "prom_empty_expected"),
            values=values,
        )
        return _scrub(result, self.client.secrets)


class PromRangePlugin:
    """Range PromQL query: per series min/max/last/avg over the last minutes."""

    def __init__(self, client: PrometheusClient) -> None:
        self.client = client
        params = with_targets(PromRangeParams, client.targets)
        params.bound_targets = client.targets
        self.spec = _spec("prom_range", params, "Prometheus 区间查询", "Prometheus range query")

    async def run(self, ctx: PluginContext, params: BaseModel) -> PluginResult:
        """One /api/v1/query_range call ending now."""
        assert isinstance(params, PromRangeParams)
        name = params.target_name()
        end = time.time()
        form = {
            "query": params.query,
            "start": f"{end - params.minutes * 60:.3f}",
            "end": f"{end:.3f}",
            "step": str(params.step_s),
            "timeout": f"{params.timeout_s:g}",
        }
        answer = await self.client.get(name, "/api/v1/query_range", form, params.timeout_s)
        label = f"{name}: {_short(params.query)} over {params.minutes}m"
        values: dict[str, str] = {
            "target": name,
            "query": _cut(params.query),
            "minutes": str(params.minutes),
        }
        if answer.data is None:
            return _scrub(_api_failure(label, answer, values), self.client.secrets)
        raw = answer.data.get("result")
        rows = [_range_row(s) for s in raw] if isinstance(raw, list) else []
        shown = rows[:RANGE_SERIES]
        points = sum(int(r["points"]) for r in rows)
        summary = f"{label} → {len(rows)} series, {points} points"
        if shown:
            summary += f"; {_row_line(shown[0])}"
        ok = not (not rows and params.expect_nonempty)
        if not ok:
            summary += " (expected a non-empty result)"
        evidence = [_row_line(r) for r in shown[:10]] + [f"warning: {w}" for w in answer.warnings]
        data = {
            "target": name,
            "minutes": params.minutes,
            "step_s": params.step_s,
            "series_count": len(rows),
            "series": _fit(shown),
            "warnings": list(answer.warnings),
        }
        output = "\n".join(_row_line(r) for r in shown)
        values |= {"count": str(len(rows)), "points": str(points)}
        if shown:
            values["first"] = _row_line(shown[0])
        code = "prom_range_series" if rows else "prom_range_empty"
        result = PluginResult(
            ok=ok,
            summary=summary,
            data=data,
            evidence=tuple(evidence),
            output=output,
            code=code if ok else "prom_range_empty_expected",
            values=values,
        )
        return _scrub(result, self.client.secrets)


def create_plugins(settings: Mapping[str, Any]) -> list[Plugin]:
    """`prom_query` and `prom_range` when targets are configured (`plugins.settings.prometheus`)."""
    unknown = set(settings) - {"targets", "default"}
    if unknown:
        raise ValueError(f"prometheus: unknown settings {', '.join(sorted(map(str, unknown)))}")
    targets = parse_targets("prometheus", settings, fields=FIELDS, required=frozenset({"url"}))
    if not targets.entries:
        return []
    for name, entry in targets.entries.items():
        problem = _url_problem(str(entry["url"]))
        if problem:
            raise ValueError(f"prometheus: target {name!r}: url {problem}")
    client = PrometheusClient(targets)
    return [PromQueryPlugin(client), PromRangePlugin(client)]


def _url_problem(raw: str) -> str | None:
    try:
        url = httpx.URL(raw)
    except (httpx.InvalidURL, ValueError):
        return "cannot be parsed"
    if url.scheme not in ("http", "https") or not url.host:
        return "must be http(s)://host[:port][/path]"
    if url.userinfo:
        return "must not carry credentials (use bearer_token)"
    if url.query or url.fragment:
        return "must not have a query or fragment"
    return None


def _spec(name: str, params: type[BaseModel], title_zh: str, title_en: str) -> PluginSpec:
    return PluginSpec(
        name=name,
        category="diagnostic",
        risk="low",
        params=params,
        timeout=MAX_TIMEOUT + 2,  # its own deadline (timeout_s) fires first
        idempotent=True,
        supports_dry_run=False,
        title_zh=title_zh,
        title_en=title_en,
        description_zh=f"在已配置的 Prometheus 上执行 PromQL（{title_zh}）",
        description_en=f"Runs PromQL on a configured Prometheus ({title_en.lower()})",
    )


def _instant_row(series: Any) -> dict[str, Any]:
    series = series if isinstance(series, dict) else {}
    value = series.get("value") or [None, None]
    return {
        "labels": _labels(series.get("metric")),
        "value": _number(value[1]),
        "timestamp": value[0],
    }


def _range_row(series: Any) -> dict[str, Any]:
    series = series if isinstance(series, dict) else {}
    values = [
        _number(v[1]) for v in series.get("values") or [] if isinstance(v, list) and len(v) == 2
    ]
    finite = [v for v in values if isinstance(v, float)]
    return {
        "labels": _labels(series.get("metric")),
        "points": len(values),
        "min": min(finite) if finite else None,
        "max": max(finite) if finite else None,
        "avg": round(sum(finite) / len(finite), 6) if finite else None,
        "last": values[-1] if values else None,
    }


def _labels(metric: Any) -> dict[str, str]:
    if not isinstance(metric, dict):
        return {}
    return {str(k)[:100]: str(v)[:200] for k, v in list(metric.items())[:20]}


def _number(raw: Any) -> float | str | None:
    """Sample values arrive as strings; NaN and ±Inf stay strings (JSON has no such numbers)."""
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None if raw is None else str(raw)[:200]
    return value if math.isfinite(value) else str(raw)


def _row_line(row: Mapping[str, Any]) -> str:
    labels = dict(row["labels"])
    metric = labels.pop("__name__", "")
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    name = f"{metric}{{{inner}}}" if inner or not metric else metric
    if "points" in row:
        return (
            f"{name}: last {row['last']}, min {row['min']}, max {row['max']}, "
            f"avg {row['avg']} ({row['points']} points)"
        )
    return f"{name} = {row['value']}"


def _short(query: str) -> str:
    return repr(_cut(query))


def _cut(query: str) -> str:
    return query if len(query) <= 120 else query[:119] + "…"


def _api_failure(label: str, answer: _Answer, values: Mapping[str, str]) -> PluginResult:
    reason = answer.error or "unknown error"
    return PluginResult(
        code="prom_failed",
        values={**values, "reason": reason},
        ok=False,
        summary=f"{label} failed: {reason}",
        data={"error": reason, "warnings": list(answer.warnings)},
        evidence=(f"Prometheus answered: {reason}"[:1000],),
    )


def _fit(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """As many rows as fit the data budget (the registry drops data larger than its cap)."""
    kept = list(rows)
    while kept and len(json.dumps(kept, default=str)) > DATA_BUDGET:
        kept.pop()
    return kept


def _scrub(result: PluginResult, secrets: tuple[str, ...]) -> PluginResult:
    """Replace every configured bearer token, wherever a server may have echoed it."""
    if not secrets:
        return result

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            for secret in secrets:
                value = value.replace(secret, "***")
            return value
        if isinstance(value, Mapping):
            return {clean(str(k)): clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    return PluginResult(
        ok=result.ok,
        summary=clean(result.summary),
        data=clean(result.data),
        evidence=tuple(clean(list(result.evidence))),
        output=clean(result.output),
        code=result.code,
        values=clean(result.values),
    )
