"""The read-only Kubernetes plugins over workloads: pods and rollout status (plus their base).

All low risk and idempotent; see `plugins.builtin.kubernetes` for parameters and settings.
`plugins.builtin.kube_inspect` holds the per-pod ones (describe, logs) and events.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from plugins.builtin.kube_client import KubeClients, KubeError
from plugins.builtin.kube_format import PodState, fit, pod_state, rollout
from plugins.builtin.kube_params import DeploymentParams, KubeParams, PodsParams
from plugins.contract import PluginContext, PluginResult, PluginSpec

if TYPE_CHECKING:
    from kubernetes_asyncio.client import ApiClient, V1LabelSelector

LIST_LIMIT = 500
SHOWN_PODS = 25
TIMEOUT = 35.0  # two requests of at most REQUEST_TIMEOUT each


def diagnostic_spec(
    name: str, params: type[BaseModel], title: tuple[str, str], text: tuple[str, str]
) -> PluginSpec:
    """The spec of a read-only Kubernetes plugin."""
    return PluginSpec(
        name=name,
        category="diagnostic",
        risk="low",
        params=params,
        timeout=TIMEOUT,
        idempotent=True,
        supports_dry_run=False,
        title_zh=title[0],
        title_en=title[1],
        description_zh=text[0],
        description_en=text[1],
    )


class KubePlugin:
    """Shared by the Kubernetes plugins: the clients and the readable-failure wrapper."""

    spec: PluginSpec

    def __init__(self, clients: KubeClients) -> None:
        self.clients = clients

    async def guarded(
        self, params: KubeParams, what: str, work: Callable[[ApiClient], Awaitable[PluginResult]]
    ) -> PluginResult:
        """Run `work` on the target's client; a failure becomes ok=False with one sentence."""
        try:
            return await self.clients.guarded(params.target_name(), what, work)
        except KubeError as exc:
            return PluginResult(
                ok=False, summary=str(exc), code="kube_failed", values={"reason": str(exc)}
            )

    def _timeout(self) -> float:
        return self.clients.request_timeout


class PodsPlugin(KubePlugin):
    """`k8s_pods`: pods of a namespace (selector/deployment), healthy or why not."""

    def __init__(self, clients: KubeClients, params: type[PodsParams]) -> None:
        super().__init__(clients)
        self.spec = diagnostic_spec(
            "k8s_pods",
            params,
            ("Pod 列表", "List pods"),
            (
                "列出命名空间中的 Pod：阶段、就绪、重启次数、节点和存活时间",
                "Lists pods with phase, readiness, restarts, node and age",
            ),
        )

    async def run(self, ctx: PluginContext, params: BaseModel) -> PluginResult:
        """List the pods; ok only when every one is running and ready (or succeeded)."""
        assert isinstance(params, PodsParams)
        where = params.namespace
        what = (
            f"deployment {where}/{params.deployment}" if params.deployment else f"namespace {where}"
        )
        return await self.guarded(params, what, lambda api: self._pods(api, params))

    async def _pods(self, api: ApiClient, params: PodsParams) -> PluginResult:
        from kubernetes_asyncio.client import AppsV1Api, CoreV1Api

        selectors = [params.label_selector] if params.label_selector else []
        if params.deployment:
            deployment = await AppsV1Api(api).read_namespaced_deployment(
                params.deployment, params.namespace, _request_timeout=self._timeout()
            )
            selectors.append(selector_text(deployment.spec.selector))
        selector = ",".join(s for s in selectors if s)
        listed = await CoreV1Api(api).list_namespaced_pod(
            params.namespace,
            label_selector=selector,
            limit=LIST_LIMIT,
            _request_timeout=self._timeout(),
        )
        now = datetime.now(UTC)
        states = sorted(
            (pod_state(pod, now) for pod in listed.items),
            key=lambda s: (s.healthy, s.name),
        )
        scope = f"{params.namespace}" + (f" ({selector})" if selector else "")
        bad = [s for s in states if not s.healthy]
        data: dict[str, Any] = {
            "namespace": params.namespace,
            "selector": selector,
            "total": len(states),
            "unhealthy": [s.name for s in bad][:SHOWN_PODS],
            "pods": [s.row() for s in states[:SHOWN_PODS]],
        }
        values = {"scope": scope, "total": str(len(states)), "bad": str(len(bad))}
        if not states:
            return PluginResult(
                ok=False,
                summary=f"no pods found in {scope}",
                data=fit(data),
                code="pods_none",
                values=values,
            )
        if bad:
            named = "; ".join(_trouble(s) for s in bad[:3])
            more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
            summary = f"{len(bad)} of {len(states)} pods in {scope} unhealthy: {named}{more}"
            values["pods"] = named + (f" (+{len(bad) - 3})" if len(bad) > 3 else "")
        else:
            summary = f"all {len(states)} pods in {scope} are running and ready"
        table = [f"{'NAME':40} {'READY':6} {'STATUS':26} {'RESTARTS':8} {'AGE':6} NODE"]
        table += [
            f"{s.name:40} {s.ready}/{s.total:<4} {s.status:26} {s.restarts:<8} {s.age:6} {s.node}"
            for s in states
        ]
        return PluginResult(
            code="pods_unhealthy" if bad else "pods_ok",
            values=values,
            ok=not bad,
            summary=summary,
            data=fit(data),
            evidence=tuple(s.line() for s in states[:SHOWN_PODS]),
            output="\n".join(table),
        )


def _trouble(state: PodState) -> str:
    text = f"{state.name} {state.problem}"
    if state.restarts:
        last = f", last: {state.last_termination}" if state.last_termination else ""
        text += f" ({state.restarts} restarts{last})"
    return text


def selector_text(selector: V1LabelSelector | None) -> str:
    """A deployment's `spec.selector` as a label selector string."""
    if selector is None:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.match_labels or {}).items())]
    for expr in selector.match_expressions or []:
        op = expr.operator
        if op in ("In", "NotIn"):
            parts.append(f"{expr.key} {op.lower()} ({','.join(expr.values or [])})")
        elif op == "Exists":
            parts.append(expr.key)
        elif op == "DoesNotExist":
            parts.append(f"!{expr.key}")
    return ",".join(parts)


class RolloutStatusPlugin(KubePlugin):
    """`k8s_rollout_status`: is the deployment's rollout complete?"""

    def __init__(self, clients: KubeClients, params: type[DeploymentParams]) -> None:
        super().__init__(clients)
        self.spec = diagnostic_spec(
            "k8s_rollout_status",
            params,
            ("发布状态", "Rollout status"),
            (
                "查看 Deployment 的发布进度：期望/已更新/就绪/可用副本数和条件",
                "Shows a deployment's rollout: desired/updated/ready/available replicas",
            ),
        )

    async def run(self, ctx: PluginContext, params: BaseModel) -> PluginResult:
        """Read the deployment; ok when the rollout is complete."""
        assert isinstance(params, DeploymentParams)
        what = f"deployment {params.namespace}/{params.deployment}"
        return await self.guarded(params, what, lambda api: self._status(api, params))

    async def _status(self, api: ApiClient, params: DeploymentParams) -> PluginResult:
        from kubernetes_asyncio.client import AppsV1Api

        deployment = await AppsV1Api(api).read_namespaced_deployment(
            params.deployment, params.namespace, _request_timeout=self._timeout()
        )
        state = rollout(deployment)
        data = state.data
        name = f"deployment {params.namespace}/{params.deployment}"
        evidence = [
            f"replicas: {data['desired']} desired, {data['updated']} updated, "
            f"{data['ready']} ready, {data['available']} available",
            f"generation {data['generation']}, observed {data['observed_generation']}",
            "images: " + ", ".join(f"{k}={v}" for k, v in data["images"].items()),
        ]
        if data["revision"]:
            evidence.append(f"revision {data['revision']}")
        if data["paused"]:
            evidence.append("the rollout is paused")
        evidence += [
            f"condition {c['type']}={c['status']} {c['reason']}".rstrip()
            for c in data["conditions"]
        ]
        first, second = state.counts
        return PluginResult(
            code=state.code,
            values={
                "name": f"{params.namespace}/{params.deployment}",
                "first": str(first),
                "second": str(second),
            },
            ok=state.complete,
            summary=f"{name}: {state.message}",
            data=fit({**data, "complete": state.complete, "failed": state.failed}),
            evidence=tuple(evidence),
            output="\n".join(evidence),
        )
