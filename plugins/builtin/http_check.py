"""`http_check`: is an HTTP endpoint answering as expected? (diagnostic, low risk, read-only)

Parameters: `url` (http/https only, no credentials, no spaces or backslashes), `method`
(`GET`|`HEAD`), `expect_status` (default 200), `body_contains` (optional, GET only),
`timeout_s` (default 5, at most 60, for the whole request). Redirects are not followed (a 301
is reported as a 301, so no redirect can lead past the allow-list) and proxy variables from the
environment are ignored. What may be fetched is decided by `plugins.reach` (the fetch
allow-list, `LARKOPS_FETCH_ALLOW`) after the host name is resolved.

Result data: `status` (None when no answer), `latency_ms`, `tls_days_left` (https: days until
the server certificate expires), `error` when the request failed. ok when the status (and the
body, when asked) match.

Settings (`plugins.settings.http_check`): `ca_bundle`, a PEM file of extra CAs to trust (for
internal services) on top of the public ones.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Mapping
from typing import Any, Literal, Self

import certifi
import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from plugins.contract import PluginContext, PluginResult, PluginSpec
from plugins.reach import Reach, forbidden, refusal_text, resolve

BODY_LIMIT = 256 * 1024
SNIPPET_LIMIT = 2048
MAX_TIMEOUT = 60.0


class HttpCheckParams(BaseModel):
    """Parameters of `http_check`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(min_length=1, max_length=2048)
    method: Literal["GET", "HEAD"] = "GET"
    expect_status: int = Field(default=200, ge=100, le=599)
    body_contains: str | None = Field(default=None, min_length=1, max_length=1000)
    timeout_s: float = Field(default=5.0, gt=0, le=MAX_TIMEOUT)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 or ch == "\\" for ch in value):
            raise ValueError("URL must not contain spaces, control characters or backslashes")
        try:
            url = httpx.URL(value)
            port = url.port
        except (httpx.InvalidURL, ValueError):
            raise ValueError("URL cannot be parsed") from None
        if url.scheme not in ("http", "https"):
            raise ValueError("URL scheme must be http or https")
        if not url.host:
            raise ValueError("URL has no host")
        if url.userinfo:
            raise ValueError("credentials in URLs are not allowed")
        if port is not None and not 0 < port < 65536:
            raise ValueError("URL port is out of range")
        if forbidden(url.host):
            raise ValueError("link-local, multicast and unspecified addresses are not checked")
        return value

    @model_validator(mode="after")
    def _body_needs_get(self) -> Self:
        if self.body_contains is not None and self.method == "HEAD":
            raise ValueError("body_contains needs method GET")
        return self

    def policy_target(self) -> str:
        """Quotas count checks per URL."""
        return f"http_check:{self.url}"

    def policy_scope(self) -> dict[str, str]:
        """The URL and its host, for the policy's target fences."""
        return {"url": self.url, "host": httpx.URL(self.url).host}


class HttpCheckPlugin:
    """Checks one HTTP(S) endpoint: status, optional body text, latency, TLS expiry."""

    spec = PluginSpec(
        name="http_check",
        category="diagnostic",
        risk="low",
        params=HttpCheckParams,
        timeout=MAX_TIMEOUT + 1,  # its own deadline (timeout_s) fires first
        idempotent=True,
        supports_dry_run=False,
        title_zh="HTTP 检查",
        title_en="HTTP check",
        description_zh="请求一个 HTTP(S) 地址，检查状态码、响应内容、延迟和证书有效期",
        description_en="Requests an HTTP(S) URL; checks status, body text, latency and TLS expiry",
    )

    def __init__(self, ca_bundle: str | None = None, reach: Reach | None = None) -> None:
        self.reach = reach or Reach()
        self._tls = ssl.create_default_context(cafile=certifi.where())
        if ca_bundle:
            self._tls.load_verify_locations(cafile=ca_bundle)

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any], reach: Reach | None = None
    ) -> HttpCheckPlugin:
        """Build from `plugins.settings.http_check` (only `ca_bundle` is known)."""
        unknown = set(settings) - {"ca_bundle"}
        if unknown:
            raise ValueError(f"http_check: unknown settings {', '.join(sorted(unknown))}")
        bundle = settings.get("ca_bundle")
        if bundle is not None and not isinstance(bundle, str):
            raise ValueError("http_check: ca_bundle must be a file path")
        return cls(ca_bundle=bundle, reach=reach)

    async def run(self, ctx: PluginContext, params: BaseModel) -> PluginResult:
        """Request the URL once; never follows redirects."""
        assert isinstance(params, HttpCheckParams)
        target = f"{params.method} {params.url}"
        started = time.perf_counter()
        url = httpx.URL(params.url)
        addresses = await resolve(url.host, url.port or (443 if url.scheme == "https" else 80))
        refused = self.reach.refusal(params.url, addresses)
        if refused:
            return _failure(target, started, refusal_text(refused, url.host, addresses))
        try:
            status, body, tls_days = await self._request(params)
        except TimeoutError:
            return _failure(target, started, f"timed out after {params.timeout_s:g}s")
        except httpx.HTTPError as exc:
            return _failure(target, started, _describe(exc))
        latency_ms = round((time.perf_counter() - started) * 1000, 1)
        data: dict[str, Any] = {"status": status, "latency_ms": latency_ms}
        if params.url.lower().startswith("https:"):
            data["tls_days_left"] = tls_days
        problems = []
        if status != params.expect_status:
            problems.append(f"status {status}, expected {params.expect_status}")
        if params.body_contains is not None and params.body_contains not in body:
            problems.append(f"body does not contain {params.body_contains!r}")
        evidence = [f"{target} → {status} in {latency_ms:g} ms"]
        if tls_days is not None:
            evidence.append(f"TLS certificate expires in {tls_days} days")
        evidence.extend(problems)
        summary = f"{target}: " + ("; ".join(problems) if problems else f"{status} as expected")
        code, values = "http_ok", {"target": target, "status": str(status)}
        if status != params.expect_status:
            code, values = "http_status", {**values, "expected": str(params.expect_status)}
        elif problems:
            code, values = "http_body", {**values, "text": str(params.body_contains)}
        return PluginResult(
            code=code,
            values=values,
            ok=not problems,
            summary=summary,
            data=data,
            evidence=tuple(evidence),
            output=body[:SNIPPET_LIMIT],
        )

    async def _request(self, params: HttpCheckParams) -> tuple[int, str, int | None]:
        timeout = httpx.Timeout(params.timeout_s)
        async with (
            httpx.AsyncClient(
                timeout=timeout, follow_redirects=False, trust_env=False, verify=self._tls
            ) as client,
            asyncio.timeout(params.timeout_s),
        ):
            headers = {"User-Agent": "larkops-http-check"}
            async with client.stream(params.method, params.url, headers=headers) as response:
                tls_days = _tls_days_left(response)
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size >= BODY_LIMIT:
                        break
                encoding = response.encoding or "utf-8"
                body = b"".join(chunks)[:BODY_LIMIT].decode(encoding, errors="replace")
                return response.status_code, body, tls_days


def _tls_days_left(response: httpx.Response) -> int | None:
    stream = response.extensions.get("network_stream")
    if stream is None:
        return None
    tls = stream.get_extra_info("ssl_object")
    if tls is None:
        return None
    cert = tls.getpeercert()
    not_after = cert.get("notAfter") if cert else None
    if not isinstance(not_after, str):
        return None
    return int((ssl.cert_time_to_seconds(not_after) - time.time()) // 86400)


def _failure(target: str, started: float, reason: str) -> PluginResult:
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    return PluginResult(
        ok=False,
        code="http_no_answer",
        values={"target": target, "reason": reason},
        summary=f"{target}: {reason}",
        data={"status": None, "latency_ms": latency_ms, "error": reason},
        evidence=(f"{target} → no answer: {reason}",),
    )


def _describe(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        detail = str(exc) or "refused"
        return f"connection failed: {detail}"
    return f"{type(exc).__name__}: {exc}"
