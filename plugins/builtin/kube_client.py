"""Kubernetes API clients per configured cluster: loaded on first use, cached, errors made readable.

`kubernetes_asyncio` is imported only when a plugin first runs (importing it costs most of a
second), the configuration of a target is read then too, and one `ApiClient` per target (and
event loop) is kept. A kubeconfig is never written back (`persist_config=False`); credentials
that expire (exec plugins, OIDC, token files) are re-read at most once a minute.

Every failure becomes a `KubeError` whose message is one readable English sentence: "deployment
prod/web not found", "the Kubernetes API of target 'main' rejected the credentials (401
Unauthorized)", "cannot reach the Kubernetes API of target 'main' …". Messages never carry the
token or kubeconfig contents.

Usage::

    clients = KubeClients(targets)
    result = await clients.guarded("main", "deployment prod/web", lambda api: work(api))
    await clients.aclose()
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from plugins.builtin.targets import Targets

if TYPE_CHECKING:
    from kubernetes_asyncio.client import ApiClient, Configuration

T = TypeVar("T")

REQUEST_TIMEOUT = 15.0
REFRESH_INTERVAL = 60.0
USER_AGENT = "larkops-kubernetes"
FIELD_MANAGER = "larkops"


class KubeError(Exception):
    """A failure explained in one sentence (safe to show: no token, no kubeconfig content)."""


@dataclass
class _Client:
    loop: asyncio.AbstractEventLoop
    api: ApiClient


class KubeClients:
    """The API clients of the configured clusters, shared by all Kubernetes plugins."""

    def __init__(self, targets: Targets, *, request_timeout: float = REQUEST_TIMEOUT) -> None:
        self.targets = targets
        self.request_timeout = request_timeout
        self._clients: dict[str, _Client] = {}
        self._locks: dict[tuple[int, str], asyncio.Lock] = {}

    async def client(self, target: str) -> ApiClient:
        """The cached ApiClient of `target`, loading its configuration on first use."""
        loop = asyncio.get_running_loop()
        cached = self._clients.get(target)
        if cached is not None and cached.loop is loop:
            return cached.api
        lock = self._locks.setdefault((id(loop), target), asyncio.Lock())
        async with lock:
            cached = self._clients.get(target)
            if cached is None or cached.loop is not loop:
                cached = _Client(loop, await self._load(target))
                self._clients[target] = cached
            return cached.api

    async def guarded(self, target: str, what: str, work: Callable[[ApiClient], Awaitable[T]]) -> T:
        """Run `work` with the target's client; any failure becomes a readable `KubeError`."""
        from aiohttp import ClientConnectorCertificateError, ClientConnectorError, ClientError
        from kubernetes_asyncio.client.exceptions import ApiException
        from kubernetes_asyncio.config import ConfigException

        api = await self.client(target)
        host = api.configuration.host
        try:
            return await work(api)
        except KubeError as exc:
            message = str(exc)
        except ApiException as exc:
            message = api_error(exc.status, exc.body, exc.reason, what, target)
        except ClientConnectorCertificateError:
            message = f"TLS verification of the Kubernetes API of target {target!r} ({host}) failed"
        except ClientConnectorError as exc:
            reason = exc.os_error.strerror or "connection failed"
            message = f"cannot reach the Kubernetes API of target {target!r} ({host}): {reason}"
        except TimeoutError:
            message = f"the Kubernetes API of target {target!r} ({host}) did not answer in time"
        except ClientError as exc:
            message = f"request to the Kubernetes API of target {target!r} failed: {exc}"
        except ConfigException as exc:  # refreshing expired credentials failed
            detail = str(exc).split("{", 1)[0].strip()[:200]
            message = f"cannot refresh the credentials of target {target!r}: {detail}"
        raise KubeError(self._scrub(target, message)) from None

    async def aclose(self) -> None:
        """Close the clients created on the running loop (others are dropped)."""
        loop = asyncio.get_running_loop()
        clients, self._clients = self._clients, {}
        for cached in clients.values():
            if cached.loop is loop:
                await cached.api.close()

    async def _load(self, target: str) -> ApiClient:
        from kubernetes_asyncio.client import ApiClient, Configuration
        from kubernetes_asyncio.config import ConfigException

        try:
            settings = self.targets.get(target)
        except KeyError:
            raise KubeError(f"unknown Kubernetes target {target!r}") from None
        configuration = Configuration()
        try:
            if settings.get("in_cluster") or (
                not settings and os.environ.get("KUBERNETES_SERVICE_HOST")
            ):
                _load_in_cluster(configuration)
            else:
                await _load_kubeconfig(configuration, settings)
        except KubeError as exc:
            raise KubeError(
                f"cannot load the Kubernetes configuration of {target!r}: {exc}"
            ) from None
        except (ConfigException, OSError) as exc:
            # the loader names kubeconfig entries by their repr (tokens included): cut it off
            detail = str(exc).split("{", 1)[0].strip()[:200] or type(exc).__name__
            raise KubeError(
                f"cannot load the Kubernetes configuration of {target!r}: {detail}"
            ) from None
        except Exception as exc:  # YAML and shape errors would quote the file: the kind only
            raise KubeError(
                f"cannot load the Kubernetes configuration of {target!r}: "
                f"malformed kubeconfig ({type(exc).__name__})"
            ) from None
        if not (configuration.host or "").startswith(("https://", "http://")):
            raise KubeError(
                f"cannot load the Kubernetes configuration of {target!r}: "
                "its cluster names no API server address"
            )
        api = ApiClient(configuration)
        api.user_agent = USER_AGENT
        return api

    def _scrub(self, target: str, message: str) -> str:
        cached = self._clients.get(target)
        if cached is None:
            return message
        for value in cached.api.configuration.api_key.values():
            for secret in (str(value), str(value).removeprefix("Bearer ")):
                if len(secret) >= 4:
                    message = message.replace(secret, "***")
        return message


def _load_in_cluster(configuration: Configuration) -> None:
    from kubernetes_asyncio.config.incluster_config import (
        SERVICE_CERT_FILENAME,
        SERVICE_TOKEN_FILENAME,
        InClusterConfigLoader,
    )

    loader = InClusterConfigLoader(SERVICE_TOKEN_FILENAME, SERVICE_CERT_FILENAME)
    loader.load_and_set(configuration)  # installs its own token-file refresh hook


def kubeconfig_path(settings: Any) -> str:
    """The target's kubeconfig, else `$KUBECONFIG`, else `~/.kube/config`; KubeError if none."""
    raw = settings.get("kubeconfig")
    path = str(Path(raw).expanduser()) if raw else os.environ.get("KUBECONFIG")
    path = path or str(Path.home() / ".kube" / "config")
    files = [p for p in path.split(os.pathsep) if p]
    if not any(Path(p).expanduser().is_file() for p in files):
        raise KubeError(f"kubeconfig {path} does not exist")
    return path


async def _load_kubeconfig(configuration: Configuration, settings: Any) -> None:
    from kubernetes_asyncio.config import load_kube_config

    loader = await load_kube_config(
        config_file=kubeconfig_path(settings),
        context=settings.get("context") or None,
        client_configuration=configuration,
        persist_config=False,
    )
    refreshed = time.monotonic()

    async def refresh(config: Configuration) -> None:
        nonlocal refreshed
        if time.monotonic() - refreshed >= REFRESH_INTERVAL:
            refreshed = time.monotonic()
            await loader.load_and_set(config)

    configuration.refresh_api_key_hook = refresh


def api_error(status: int, body: Any, reason: str | None, what: str, target: str) -> str:
    """One sentence for an API error answer (its Kubernetes `Status` message when it has one)."""
    detail = status_message(body)
    if status == 404:
        return f"{what} not found"
    if status == 401:
        return (
            f"the Kubernetes API of target {target!r} rejected the credentials "
            "(401 Unauthorized); check the token of its kubeconfig or service account"
        )
    if status == 403:
        return f"not allowed to access {what}: {detail or '403 Forbidden'}"
    if status == 409:
        return f"conflict on {what}: {detail or '409 Conflict'}"
    if status in (400, 422):
        return f"the Kubernetes API refused the request on {what}: {detail or status}"
    reason = reason or "error"
    suffix = f": {detail}" if detail else ""
    return f"Kubernetes API error {status} ({reason}) on {what}{suffix}"


def status_message(body: Any) -> str:
    """The `message` of a Kubernetes `Status` body (bytes or text), capped; '' when none."""
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    if not isinstance(body, str) or not body:
        return ""
    try:
        parsed = json.loads(body)
    except ValueError:
        return ""
    message = parsed.get("message") if isinstance(parsed, dict) else None
    return str(message)[:300] if message else ""
