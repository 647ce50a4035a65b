"""Built-in plugins: `http_check` (always) and `command` (when templates are configured)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plugins.builtin.command import CommandPlugin
from plugins.builtin.http_check import HttpCheckPlugin
from plugins.contract import Plugin

BUILTIN_NAMES = ("http_check", "command")


def builtin_plugins(settings: Mapping[str, Mapping[str, Any]]) -> list[Plugin]:
    """The built-in plugins, built from their settings (`plugins.settings.<name>`)."""
    plugins: list[Plugin] = [HttpCheckPlugin.from_settings(settings.get("http_check", {}))]
    command = settings.get("command", {})
    if command.get("templates"):
        plugins.append(CommandPlugin.from_settings(command))
    return plugins


__all__ = ["BUILTIN_NAMES", "CommandPlugin", "HttpCheckPlugin", "builtin_plugins"]
