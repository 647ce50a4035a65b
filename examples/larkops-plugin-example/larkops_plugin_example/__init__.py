"""An example third-party larkops plugin package: `cert_expiry`.

The `larkops.plugins` entry point `cert_expiry` names `create_plugin`; the registry calls it
once at start-up with `plugins.settings.cert_expiry` and registers the plugin it returns.

Usage::

    plugin = create_plugin({"ca_bundle": "/etc/ssl/internal-ca.pem"})
    plugin.spec.name                 # 'cert_expiry'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from larkops_plugin_example.cert_expiry import CertExpiryParams, CertExpiryPlugin


def create_plugin(settings: Mapping[str, Any]) -> CertExpiryPlugin:
    """The entry point's factory: one `cert_expiry` plugin built from its settings."""
    return CertExpiryPlugin.from_settings(settings)


__all__ = ["CertExpiryParams", "CertExpiryPlugin", "create_plugin"]
