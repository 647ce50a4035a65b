"""The Kubernetes remediations: rollout restart, scale, rollback (each with a server-side dry run).

Each patch is the one `kubectl` sends: `rollout restart` annotates the pod template with
`kubectl.kubernetes.io/restartedAt` (strategic merge patch), `scale` patches the deployment's
`scale` subresource, `rollout undo` replaces `spec.template` with the template of an older
ReplicaSet minus its `pod-template-hash` label (JSON patch). A dry run sends the same patch
with `dryRun=All`: the API server checks it (existence, permissions, admission) and persists
nothing. See `plugins.builtin.kubernetes` for parameters and settings.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from plugins.builtin.kube_client import FIELD_MANAGER, KubeClients, KubeError
from plugins.builtin.kube_format import REVISION, stamp
from plugins.builtin.kube_params import DeploymentParams, RollbackParams, ScaleParams
from plugins.builtin.kube_read import KubePlugin, selector_text
from plugins.contract import PluginContext, PluginResult, PluginSpec, Risk

if TYPE_CHECKING:
    from kubernetes_asyncio.client import ApiClient, V1Deployment, V1PodTemplateSpec

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
TEMPLATE_HASH = "pod-template-hash"
TIMEOUT = 50.0  # three requests of at most REQUEST_TIMEOUT each
DRY_NOTE = "the API server accepted it as a dry run (dryRun=All); nothing was changed"


def remediation_spec(
    name: str,
    risk: Risk,
    params: type[BaseModel],
    title: tuple[str, str],
    text: tuple[str, str],
) -> PluginSpec:
    """The spec of a Kubernetes remediation (dry run supported, not idempotent)."""
    return PluginSpec(
        name=name,
        category="remediation",
        risk=risk,
        params=params,
        timeout=TIMEOUT,
        idempotent=False,
        supports_dry_run=True,
        title_zh=title[0],
        title_en=title[1],
        description_zh=text[0],
        description_en=text[1],
    )


class _Remediation(KubePlugin):
    def _patch_options(self, dry_run: bool) -> dict[str, Any]:
        options: dict[str, Any] = {
            "field_manager": FIELD_MANAGER,
            "_request_timeout": self._timeout(),
        }
        if dry_run:
            options["dry_run"] = "All"
        return options

    async def _guard(
        self, params: DeploymentParams, work: Callable[[ApiClient], Awaitable[PluginResult]]
    ) -> PluginResult:
        return await self.guarded(
            params, f"deployment {params.namespace}/{params.deployment}", work
        )

    async def _unpaused(
        self, apps: Any, params: DeploymentParams, name: str, action: str
    ) -> V1Deployment:
        """The deployment as it is now; KubeError when its rollout is paused (as kubectl)."""
        deployment: V1Deployment = await apps.read_namespaced_deployment(
            params.deployment, params.namespace, _request_timeout=self._timeout()
        )
        _refuse_paused(deployment, name, action)
        return deployment


def _refuse_paused(deployment: V1Deployment, name: str, action: str) -> None:
    if deployment.spec and deployment.spec.paused:
        raise KubeError(f"{name} is paused; resume its rollout before {action}")


def _images(template: V1PodTemplateSpec | None) -> dict[str, str]:
    containers = template.spec.containers if template and template.spec else []
    return {c.name: c.image or "" for c in containers or []}


def _shown(images: dict[str, str]) -> str:
    return ", ".join(f"{name}={image}" for name, image in images.items()) or "no containers"


class RolloutRestartPlugin(_Remediation):
    """`k8s_rollout_restart`: replace a deployment's pods, as `kubectl rollout restart`."""

    def __init__(self, clients: KubeClients, params: type[DeploymentParams]) -> None:
        super().__init__(clients)
        self.spec = remediation_spec(
            "k8s_rollout_restart",
            "medium",
            params,
            ("滚动重启", "Rollout restart"),
            (
                "滚动重启 Deployment 的所有 Pod（同 kubectl rollout restart）",
                "Restarts a deployment's pods with a rolling update (kubectl rollout restart)",
            ),
        )

    async def run(self, ctx: PluginContext, params: BaseModel) -> PluginResult:
        """Annotate the pod template with the current time (dry run: only check the patch)."""
        assert isinstance(params, DeploymentParams)
        return await self._guard(params, lambda api: self._restart(api, params, ctx.dry_run))

    async def _restart(
        self, api: ApiClient, params: DeploymentParams, dry_run: bool
    ) -> PluginResult:
        from kubernetes_asyncio.client import AppsV1Api

        apps = AppsV1Api(api)
        name = f"deployment {params.namespace}/{params.deployment}"
        current = await self._unpaused(apps, params, name, "restarting it")
        now = stamp(datetime.now(UTC))
        patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}}
        patched = await apps.patch_namespaced_deployment(
            params.deployment, params.namespace, patch, **self._patch_options(dry_run)
        )
        shown = json.dumps(patch, separators=(",", ":"))
        before = current.metadata.generation if current.metadata else None
        after = patched.metadata.generation if patched.metadata else None
        data = {"patch": patch, "dry_run": dry_run, "generation": after, "restarted_at": now}
        values = {"name": f"{params.namespace}/{params.deployment}", "patch": shown}
        if dry_run:
            return PluginResult(
                code="kube_restart_dry",
                values=values,
                ok=True,
                summary=f"dry run: would patch {name} with {shown}; {DRY_NOTE}",
                data=data,
                evidence=(f"strategic merge patch: {shown}", DRY_NOTE),
                output=shown,
            )
        return PluginResult(
            code="kube_restarted",
            values=values,
            ok=True,
            summary=f"restarted {name}: pods are being replaced by a rolling update",
            data=data,
            evidence=(
                f"pod template annotated {RESTARTED_AT}={now}",
                f"generation {before} → {after}",
            ),
            output=shown,
        )


class ScalePlugin(_Remediation):
    """`k8s_scale`: set a deployment's replica count, inside the configured bounds."""

    def __init__(self, clients: KubeClients, params: type[ScaleParams]) -> None:
        super().__init__(clients)
        self.spec = remediation_spec(
            "k8s_scale",
            "medium",
            params,
            ("扩缩容", "Scale"),
            (
                "调整 Deployment 的副本数（受配置的上下限约束）",
                "Sets a deployment's replica count (within the configured bounds)",
            ),
        )

    async def run(self, ctx: PluginContext, params: BaseModel) -> PluginResult:
        """Patch the scale subresource (dry run: only check the patch)."""
        assert isinstance(params, ScaleParams)
        return await self._guard(params, lambda api: self._scale(api, params, ctx.dry_run))

    async def _scale(self, api: ApiClient, params: ScaleParams, dry_run: bool) -> PluginResult:
        from kubernetes_asyncio.client import AppsV1Api

        apps = AppsV1Api(api)
        name = f"deployment {params.namespace}/{params.deployment}"
        scale = await apps.read_namespaced_deployment_scale(
            params.deployment, params.namespace, _request_timeout=self._timeout()
        )
        current = scale.spec.replicas if scale.spec and scale.spec.replicas is not None else 0
        data: dict[str, Any] = {"from": current, "to": params.replicas, "dry_run": dry_run}
        values = {
            "name": f"{params.namespace}/{params.deployment}",
            "from": str(current),
            "to": str(params.replicas),
        }
        if current == params.replicas:
            return PluginResult(
                code="kube_scale_same",
                values=values,
                ok=True,
                summary=f"{name} already has {current} replicas; nothing changed",
                data={**data, "changed": False},
            )
        patch = {"spec": {"replicas": params.replicas}}
        shown = json.dumps(patch, separators=(",", ":"))
        await apps.patch_namespaced_deployment_scale(
            params.deployment, params.namespace, patch, **self._patch_options(dry_run)
        )
        data.update(patch=patch, changed=not dry_run)
        move = f"from {current} to {params.replicas} replicas"
        if dry_run:
            return PluginResult(
                code="kube_scale_dry",
                values=values,
                ok=True,
                summary=f"dry run: would scale {name} {move} (patch {shown}); {DRY_NOTE}",
                data=data,
                evidence=(f"scale subresource patch: {shown}", DRY_NOTE),
                output=shown,
            )
        return PluginResult(
            code="kube_scaled",
            values=values,
            ok=True,
            summary=f"scaled {name} {move}",
            data=data,
            evidence=(f"replicas {current} → {params.replicas}",),
            output=shown,
        )


class RollbackPlugin(_Remediation):
    """`k8s_rollback`: put back an older revision's pod template, as `kubectl rollout undo`."""

    def __init__(self, clients: KubeClients, params: type[RollbackParams]) -> None:
        super().__init__(clients)
        self.spec = remediation_spec(
            "k8s_rollback",
            "high",
            params,
            ("回滚发布", "Roll back"),
            (
                "把 Deployment 回滚到上一个（或指定的）版本（同 kubectl rollout undo）",
                "Rolls a deployment back to the previous or a given revision (rollout undo)",
            ),
        )

    async def run(self, ctx: PluginContext, params: BaseModel) -> PluginResult:
        """Replace spec.template with the chosen revision's (dry run: only check the patch)."""
        assert isinstance(params, RollbackParams)
        return await self._guard(params, lambda api: self._rollback(api, params, ctx.dry_run))

    async def _rollback(
        self, api: ApiClient, params: RollbackParams, dry_run: bool
    ) -> PluginResult:
        from kubernetes_asyncio.client import AppsV1Api

        apps = AppsV1Api(api)
        name = f"deployment {params.namespace}/{params.deployment}"
        deployment = await self._unpaused(apps, params, name, "rolling it back")
        listed = await apps.list_namespaced_replica_set(
            params.namespace,
            label_selector=selector_text(deployment.spec.selector),
            _request_timeout=self._timeout(),
        )
        uid = deployment.metadata.uid if deployment.metadata else None
        revisions: dict[int, Any] = {}
        for rs in listed.items:
            meta = rs.metadata
            owners = (meta.owner_references if meta else None) or []
            if not any(o.uid == uid and o.controller for o in owners):
                continue
            revision = ((meta.annotations if meta else None) or {}).get(REVISION, "")
            if revision.isdigit():
                revisions[int(revision)] = rs
        annotations = (deployment.metadata.annotations if deployment.metadata else None) or {}
        raw_current = annotations.get(REVISION, "")
        current = int(raw_current) if raw_current.isdigit() else max(revisions, default=0)
        known = ", ".join(str(r) for r in sorted(revisions)) or "none"
        if params.to_revision is not None:
            wanted = params.to_revision
            if wanted not in revisions:
                raise KubeError(f"revision {wanted} of {name} not found (known: {known})")
        else:
            older = [r for r in revisions if r < current]
            if not older:
                raise KubeError(f"{name} has no previous revision to roll back to (known: {known})")
            wanted = max(older)
        template = api.sanitize_for_serialization(revisions[wanted].spec.template)
        labels = template.get("metadata", {}).get("labels", {})
        labels.pop(TEMPLATE_HASH, None)
        before = _images(deployment.spec.template)
        after = _images(revisions[wanted].spec.template)
        data: dict[str, Any] = {
            "from_revision": current,
            "to_revision": wanted,
            "from_images": before,
            "to_images": after,
            "dry_run": dry_run,
        }
        values = {
            "name": f"{params.namespace}/{params.deployment}",
            "from": str(current),
            "to": str(wanted),
            "before": _shown(before),
            "after": _shown(after),
        }
        if template == api.sanitize_for_serialization(deployment.spec.template):
            return PluginResult(
                code="kube_rollback_same",
                values=values,
                ok=True,
                summary=f"{name} already runs the template of revision {wanted}; nothing changed",
                data={**data, "changed": False},
            )
        patch = [{"op": "replace", "path": "/spec/template", "value": template}]
        await apps.patch_namespaced_deployment(
            params.deployment, params.namespace, patch, **self._patch_options(dry_run)
        )
        move = f"from revision {current} ({_shown(before)}) to revision {wanted} ({_shown(after)})"
        output = json.dumps(patch, indent=2, sort_keys=True)
        data.update(changed=not dry_run, patch_paths=["/spec/template"])
        if dry_run:
            return PluginResult(
                code="kube_rollback_dry",
                values=values,
                ok=True,
                summary=f"dry run: would roll back {name} {move}; {DRY_NOTE}",
                data=data,
                evidence=(f"JSON patch: replace /spec/template with revision {wanted}", DRY_NOTE),
                output=output,
            )
        return PluginResult(
            code="kube_rolled_back",
            values=values,
            ok=True,
            summary=f"rolled back {name} {move}",
            data=data,
            evidence=(f"images {_shown(before)} → {_shown(after)}",),
            output=output,
        )
