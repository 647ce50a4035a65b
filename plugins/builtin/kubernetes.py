"""Kubernetes plugins (official async client `kubernetes_asyncio`): five checks, three remediations.

Diagnostics (risk low, read-only):

- `k8s_pods` — `namespace`, optional `label_selector`, optional `deployment` (its selector is
  used). Lists pods with status, ready x/y, restarts, node, age; ok=False when a pod is not
  Running/Succeeded, not ready, or crash-looping (the summary names it), or none is found.
- `k8s_pod_describe` — `namespace`, `pod`. Status, conditions, container states with the last
  termination reason and exit code, and the pod's recent events (`output` reads like
  `kubectl describe`). ok when the pod is healthy.
- `k8s_pod_logs` — `namespace`, `pod`, optional `container`, `tail_lines` (default 100, at
  most 1000), `previous` (the crashed instance), optional `contains` (keep only lines with this
  substring). The newest lines go to `output`.
- `k8s_events` — `namespace`, optional `name` (involved object), `include_normal` (default
  false: Warning events only), `limit` (default 20). ok when no Warning event is found.
- `k8s_rollout_status` — `namespace`, `deployment`. Desired/updated/ready/available replicas,
  generation vs observed generation, conditions, images; ok when the rollout is complete.

Remediations (all support dry runs: the same patch is sent with `dryRun=All`):

- `k8s_rollout_restart` (medium) — `namespace`, `deployment`. Sets the pod template annotation
  `kubectl.kubernetes.io/restartedAt` to now, exactly like `kubectl rollout restart`.
- `k8s_scale` (medium; high when `replicas` is 0) — `namespace`, `deployment`, `replicas`,
  fenced by the `scale_min`/`scale_max` settings; 0 is refused unless `scale_min` is 0.
- `k8s_rollback` (high) — `namespace`, `deployment`, optional `to_revision`. Finds the
  deployment's ReplicaSets, takes the previous (or the given) revision and puts its pod
  template back (minus `pod-template-hash`), like `kubectl rollout undo`.

Every plugin also takes `target`, the name of a configured cluster. Names are checked against
the Kubernetes rules before anything is sent (`plugins.builtin.kube_params`); API failures
(404, 403, 401, unreachable) come back as ok=False with one readable sentence.

Settings (`plugins.settings.kubernetes`)::

    kubernetes:
      targets:                                   # optional; see plugins.builtin.targets
        prod: {kubeconfig: /etc/larkops/kube/prod.yaml, context: prod-admin}
        local: {in_cluster: true}                # the pod's service account
      default: prod                              # else the only target, else "default"
      scale_min: 1                               # default 1; 0 allows scaling to zero
      scale_max: 20                              # default 20

Without `targets` there is one target, `default`: the in-cluster service account when
`KUBERNETES_SERVICE_HOST` is set, else the default kubeconfig (`$KUBECONFIG`, `~/.kube/config`).
Configuration is read on the first run, not at start-up, and `kubernetes_asyncio` is imported
only then; tokens and kubeconfig contents never appear in results.

Usage::

    for plugin in create_plugins(config.plugins.settings.get("kubernetes", {})):
        registry.register(plugin)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plugins.builtin.kube_client import KubeClients
from plugins.builtin.kube_inspect import EventsPlugin, PodDescribePlugin, PodLogsPlugin
from plugins.builtin.kube_params import (
    DeploymentParams,
    EventsParams,
    PodLogsParams,
    PodParams,
    PodsParams,
    RollbackParams,
    ScaleParams,
    bind,
)
from plugins.builtin.kube_read import PodsPlugin, RolloutStatusPlugin
from plugins.builtin.kube_write import RollbackPlugin, RolloutRestartPlugin, ScalePlugin
from plugins.builtin.targets import Targets, parse_targets
from plugins.contract import Plugin

SETTINGS = frozenset({"targets", "default", "scale_min", "scale_max"})
TARGET_FIELDS: dict[str, type | tuple[type, ...]] = {
    "kubeconfig": str,
    "context": str,
    "in_cluster": bool,
}
SCALE_LIMIT = 1000

PLUGIN_NAMES = (
    "k8s_pods",
    "k8s_pod_describe",
    "k8s_pod_logs",
    "k8s_events",
    "k8s_rollout_status",
    "k8s_rollout_restart",
    "k8s_scale",
    "k8s_rollback",
)


def create_plugins(settings: Mapping[str, Any]) -> list[Plugin]:
    """The eight Kubernetes plugins, sharing one client cache; ValueError for bad settings.

    `settings` is `plugins.settings.kubernetes` (an empty mapping: the implicit `default`).
    """
    if not isinstance(settings, Mapping):
        raise ValueError("kubernetes: settings must be a mapping")
    unknown = set(settings) - SETTINGS
    if unknown:
        raise ValueError(f"kubernetes: unknown settings {', '.join(sorted(map(str, unknown)))}")
    targets = load_targets(settings)
    scale_min = _bound(settings, "scale_min", 1)
    scale_max = _bound(settings, "scale_max", 20)
    if scale_max < 1 or scale_min > scale_max:
        raise ValueError("kubernetes: need 0 <= scale_min <= scale_max and scale_max >= 1")
    clients = KubeClients(targets)
    scale = bind(ScaleParams, targets, scale_min=scale_min, scale_max=scale_max)
    return [
        PodsPlugin(clients, bind(PodsParams, targets)),
        PodDescribePlugin(clients, bind(PodParams, targets)),
        PodLogsPlugin(clients, bind(PodLogsParams, targets)),
        EventsPlugin(clients, bind(EventsParams, targets)),
        RolloutStatusPlugin(clients, bind(DeploymentParams, targets)),
        RolloutRestartPlugin(clients, bind(DeploymentParams, targets)),
        ScalePlugin(clients, scale),
        RollbackPlugin(clients, bind(RollbackParams, targets)),
    ]


def load_targets(settings: Mapping[str, Any]) -> Targets:
    """The configured clusters, or the implicit `default` (in-cluster / default kubeconfig)."""
    targets = parse_targets("kubernetes", settings, fields=TARGET_FIELDS)
    for name, entry in targets.entries.items():
        if entry.get("in_cluster") and (entry.get("kubeconfig") or entry.get("context")):
            raise ValueError(
                f"kubernetes: target {name!r}: in_cluster excludes kubeconfig and context"
            )
        for key in ("kubeconfig", "context"):
            if key in entry and not entry[key]:
                raise ValueError(f"kubernetes: target {name!r}: {key} must not be empty")
    if targets.entries:
        return targets
    if targets.default != "default":
        raise ValueError(f"kubernetes: default target {targets.default!r} is not configured")
    return Targets(plugin="kubernetes", entries={"default": {}}, default="default")


def _bound(settings: Mapping[str, Any], key: str, default: int) -> int:
    value = settings.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= SCALE_LIMIT:
        raise ValueError(f"kubernetes: {key} must be a whole number from 0 to {SCALE_LIMIT}")
    return value


__all__ = ["PLUGIN_NAMES", "KubeClients", "create_plugins", "load_targets"]
