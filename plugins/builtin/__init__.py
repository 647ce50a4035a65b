"""Built-in plugins, built from their settings (`plugins.settings.<family>`).

Always: `http_check`, `tcp_check`, `dns_resolve` and the `host_*` checks of the machine the bot
runs on. When configured: `command` (argv templates), `pg_*` (Postgres targets), `redis_*`
(Redis targets), `prom_*` (Prometheus targets), `k8s_*` (a `kubernetes` section, or running
inside a cluster).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from plugins.builtin import host, kubernetes, net, postgres, prometheus, redis_checks
from plugins.builtin.command import CommandPlugin
from plugins.builtin.http_check import HttpCheckPlugin
from plugins.contract import Plugin
from plugins.reach import Reach

FAMILIES = ("http_check", "net", "host", "command", "postgres", "redis", "prometheus", "kubernetes")


def builtin_plugins(
    settings: Mapping[str, Mapping[str, Any]], reach: Reach | None = None
) -> list[Plugin]:
    """The built-in plugins, built from their settings (`plugins.settings.<family>`); those
    that connect where an alert says go only where `reach` allows."""
    plugins: list[Plugin] = [HttpCheckPlugin.from_settings(settings.get("http_check", {}), reach)]
    plugins += net.create_plugins(settings.get("net", {}), reach)
    plugins += host.create_plugins(settings.get("host", {}))
    command = settings.get("command", {})
    if command.get("templates"):
        plugins.append(CommandPlugin.from_settings(command))
    plugins += postgres.create_plugins(settings.get("postgres", {}))
    plugins += redis_checks.create_plugins(settings.get("redis", {}))
    plugins += prometheus.create_plugins(settings.get("prometheus", {}))
    if "kubernetes" in settings or os.environ.get("KUBERNETES_SERVICE_HOST"):
        plugins += kubernetes.create_plugins(settings.get("kubernetes") or {})
    return plugins


__all__ = ["FAMILIES", "CommandPlugin", "HttpCheckPlugin", "builtin_plugins"]
