"""`cert_expiry`: how many days until a TLS server's certificate expires? (diagnostic, low risk)

Parameters: `host` (a plain RFC 1123 host name or a full IP address; link-local, multicast and
unspecified addresses are refused, also when a name resolves to one), `port` (1-65535, default
443), `warn_days` (default 14: ok=False when fewer days are left), `timeout_s` (default 5, at
most 30, for the lookup, the connection and the handshake together).

The certificate is verified as a client would (chain and host name): an untrusted, expired or
mismatched certificate is reported as ok=False with the verifier's reason. Nothing is sent
after the handshake.

Result data: `host`, `port`, `address`, `days_left`, `not_after` (ISO 8601, UTC), `subject`,
`issuer`, `names` (subject alternative names, at most 20), `tls_version`, and `error` when the
check could not be made.

Settings (`plugins.settings.cert_expiry`): `ca_bundle`, a PEM file of extra CAs to trust (for
internal services) on top of the system's.

Usage::

    plugin = CertExpiryPlugin.from_settings({})
    await execute(registry, "cert_expiry", PluginContext(), {"host": "example.com"})
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from plugins.contract import PluginContext, PluginResult, PluginSpec

MAX_TIMEOUT = 30.0
MAX_ADDRESSES = 8
MAX_NAMES = 20
CLOSE_GRACE_S = 1.0
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_NUMERIC_LABEL = re.compile(r"(?i)[0-9]+|0x[0-9a-f]*")
_NAME_KEYS = {"commonName": "CN", "organizationName": "O"}
FORBIDDEN_REASON = "link-local, multicast and unspecified addresses are not checked"


class Refused(Exception):
    """The check was not made, on purpose (the message says why)."""


def host_problem(value: str) -> str | None:
    """Why `value` is neither a full IP address nor a plain host name (None when it is one)."""
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return _hostname_problem(value)
    return FORBIDDEN_REASON if _forbidden(ip) else None


def _hostname_problem(value: str) -> str | None:
    if not value.isascii():
        return "host names must be ASCII (use the punycode xn-- form)"
    bare = value.removesuffix(".")
    if not bare or len(bare) > 253:
        return "host names are 1 to 253 characters"
    labels = bare.split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        return "host names are dot-separated labels of letters, digits and inner hyphens"
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        return "numeric host names are not allowed (write an IP address in full)"
    return None


class CertExpiryParams(BaseModel):
    """Parameters of `cert_expiry`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(min_length=1, max_length=254)
    port: int = Field(default=443, ge=1, le=65535)
    warn_days: int = Field(default=14, ge=0, le=3650)
    timeout_s: float = Field(default=5.0, gt=0, le=MAX_TIMEOUT)

    @field_validator("host")
    @classmethod
    def _plain_host(cls, value: str) -> str:
        problem = host_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    def policy_scope(self) -> dict[str, str]:
        """The run touches this host (fenced by `policy.targets.hosts`)."""
        return {"host": self.host}

    def policy_target(self) -> str:
        """Quotas count checks per host and port."""
        return f"cert_expiry:{self.host}:{self.port}"


class CertExpiryPlugin:
    """Connects over TLS and reports how many days the server's certificate has left."""

    spec = PluginSpec(
        name="cert_expiry",
        category="diagnostic",
        risk="low",
        params=CertExpiryParams,
        timeout=MAX_TIMEOUT + 1,  # its own deadline (timeout_s) fires first
        idempotent=True,
        supports_dry_run=False,
        title_zh="证书有效期检查",
        title_en="Certificate expiry",
        description_zh="通过 TLS 连接主机端口，报告服务器证书还有多少天过期",
        description_en="Connects over TLS; reports the days until the server certificate expires",
    )

    def __init__(self, ca_bundle: str | None = None) -> None:
        self._tls = ssl.create_default_context()
        if ca_bundle:
            self._tls.load_verify_locations(cafile=ca_bundle)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> CertExpiryPlugin:
        """Build from `plugins.settings.cert_expiry` (only `ca_bundle` is known)."""
        unknown = set(settings) - {"ca_bundle"}
        if unknown:
            raise ValueError(f"cert_expiry: unknown settings {', '.join(sorted(unknown))}")
        bundle = settings.get("ca_bundle")
        if bundle is not None and not isinstance(bundle, str):
            raise ValueError("cert_expiry: ca_bundle must be a file path")
        return cls(ca_bundle=bundle)

    async def run(self, ctx: PluginContext, params: BaseModel) -> PluginResult:
        """Resolve once, refuse forbidden addresses, handshake with the first that answers."""
        if not isinstance(params, CertExpiryParams):
            raise TypeError("cert_expiry expects CertExpiryParams")
        target = f"{params.host}:{params.port}"
        try:
            async with asyncio.timeout(params.timeout_s):
                address, cert, version = await self._handshake(params)
        except TimeoutError:
            return _failure(params, f"timed out after {params.timeout_s:g}s")
        except ssl.SSLCertVerificationError as exc:
            reason = exc.verify_message or exc.reason or "verification failed"
            return _failure(params, f"certificate not trusted: {reason}")
        except socket.gaierror as exc:
            return _failure(params, f"cannot resolve {params.host}: {exc.strerror or exc}")
        except Refused as exc:
            return _failure(params, str(exc))
        except OSError as exc:  # ssl.SSLError included
            return _failure(params, f"{type(exc).__name__}: {exc}")
        not_after = datetime.fromtimestamp(ssl.cert_time_to_seconds(cert["notAfter"]), UTC)
        days_left = int((not_after.timestamp() - time.time()) // 86400)
        ok = days_left >= params.warn_days
        summary = f"{target}: certificate expires in {days_left} days ({not_after:%Y-%m-%d})"
        if not ok:
            summary += f", fewer than the {params.warn_days} days warned about"
        subject, issuer = _name(cert, "subject"), _name(cert, "issuer")
        return PluginResult(
            ok=ok,
            summary=summary,
            data={
                "host": params.host,
                "port": params.port,
                "address": address,
                "days_left": days_left,
                "not_after": not_after.isoformat(),
                "subject": subject,
                "issuer": issuer,
                "names": _alt_names(cert),
                "tls_version": version,
            },
            evidence=(
                f"TLS {version} handshake with {address} port {params.port}",
                f"certificate {subject!r} issued by {issuer!r}",
                f"valid until {not_after.isoformat()} ({days_left} days left)",
            ),
        )

    async def _handshake(self, params: CertExpiryParams) -> tuple[str, dict[str, Any], str]:
        """(address, verified peer certificate, TLS version) from the first address that answers."""
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(params.host, params.port, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))[:MAX_ADDRESSES]
        blocked = next((a for a in addresses if _forbidden(ipaddress.ip_address(a))), None)
        if blocked:
            raise Refused(f"refused: {params.host} resolves to {blocked}")
        error: OSError = OSError(f"{params.host} has no addresses")
        for address in addresses:
            try:
                _, writer = await asyncio.open_connection(
                    address, params.port, ssl=self._tls, server_hostname=params.host
                )
            except ssl.SSLError:
                raise  # the server answered: its certificate is the finding
            except OSError as exc:
                error = exc
                continue
            try:
                cert = writer.get_extra_info("peercert")
                tls = writer.get_extra_info("ssl_object")
                version = tls.version() if isinstance(tls, ssl.SSLObject) else None
            finally:
                writer.close()
                with contextlib.suppress(OSError, TimeoutError):
                    await asyncio.wait_for(writer.wait_closed(), CLOSE_GRACE_S)
            if not isinstance(cert, dict) or not isinstance(cert.get("notAfter"), str):
                raise ssl.SSLError("the server sent no certificate")
            return address, cert, str(version or "unknown")
        raise error


def _forbidden(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Link-local (cloud metadata at 169.254.169.254), multicast or unspecified."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_link_local or ip.is_multicast or ip.is_unspecified


def _name(cert: Mapping[str, Any], field: str) -> str:
    """`CN=example.com, O=Example` from the nested tuples `getpeercert()` returns."""
    return ", ".join(
        f"{_NAME_KEYS[key]}={value}"
        for rdn in cert.get(field, ())
        for key, value in rdn
        if key in _NAME_KEYS
    )


def _alt_names(cert: Mapping[str, Any]) -> list[str]:
    return [f"{kind}:{value}" for kind, value in cert.get("subjectAltName", ())][:MAX_NAMES]


def _failure(params: CertExpiryParams, reason: str) -> PluginResult:
    target = f"{params.host}:{params.port}"
    return PluginResult(
        ok=False,
        summary=f"{target}: {reason}",
        data={"host": params.host, "port": params.port, "days_left": None, "error": reason},
        evidence=(f"{target} → no certificate checked: {reason}",),
    )
