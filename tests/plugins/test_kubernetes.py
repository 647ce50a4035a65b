"""Kubernetes plugins: the real `kubernetes_asyncio` client against a fake API server over HTTP.

Every plugin runs through `plugins.execution.execute`, the way the bot runs it; assertions are
about what a user would notice (the summary, what was patched, what was refused) and about what
reached the server (the fake records every request).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from plugins.builtin.kubernetes import PLUGIN_NAMES, create_plugins
from plugins.contract import PluginContext, PluginResult, validate_params
from plugins.execution import execute
from plugins.registry import PluginRegistry
from tests.conftest import free_port
from tests.support.kubeapi import REVISION, FakeKube
from tests.support.language import worded

NS = "prod"
IMAGE_1 = "registry.example.com/web:1.0"
IMAGE_2 = "registry.example.com/web:2.0"


@pytest.fixture
async def kube() -> AsyncIterator[FakeKube]:
    async with FakeKube() as fake:
        fake.add_deployment(NS, "web", image=IMAGE_1)
        yield fake


class Cluster:
    """A registry of the eight plugins pointed at the fake through a kubeconfig file."""

    def __init__(self, kube: FakeKube, tmp_path: Path) -> None:
        self.kube = kube
        self.tmp_path = tmp_path
        self._plugins: list[Any] = []

    def registry(
        self, settings: Mapping[str, Any] | None = None, **kubeconfig: Any
    ) -> PluginRegistry:
        path = self.kube.write_kubeconfig(
            self.tmp_path / f"config-{len(self._plugins)}", **kubeconfig
        )
        return self.from_settings(
            {"targets": {"test": {"kubeconfig": str(path)}}, **(settings or {})}
        )

    def from_settings(self, settings: Mapping[str, Any]) -> PluginRegistry:
        plugins = create_plugins(settings)
        self._plugins.extend(plugins)
        registry = PluginRegistry()
        for plugin in plugins:
            registry.register(plugin)
        return registry

    def clients(self) -> Any:
        return self._plugins[-1].clients

    async def close(self) -> None:
        for plugin in self._plugins:
            await plugin.clients.aclose()


@pytest.fixture
async def cluster(kube: FakeKube, tmp_path: Path) -> AsyncIterator[Cluster]:
    made = Cluster(kube, tmp_path)
    yield made
    await made.close()


@pytest.fixture
def registry(cluster: Cluster) -> PluginRegistry:
    return cluster.registry()


async def run(
    registry: PluginRegistry, plugin: str, /, dry_run: bool = False, **params: Any
) -> PluginResult:
    result = await execute(registry, plugin, PluginContext(dry_run=dry_run), params)
    worded(result)  # every result, refusals included, reads in Chinese without English
    return result


def everything(result: PluginResult) -> str:
    """All text a user could see in a result."""
    return json.dumps(
        [
            result.summary,
            result.output,
            list(result.evidence),
            dict(result.data),
            dict(result.values),
        ],
        ensure_ascii=False,
        default=str,
    )


# -- diagnostics -----------------------------------------------------------------------------


async def test_pods_of_a_healthy_deployment(registry: PluginRegistry, kube: FakeKube) -> None:
    result = await run(registry, "k8s_pods", namespace=NS, deployment="web")
    assert result.ok, result.summary
    assert result.summary == "all 3 pods in prod (app=web) are running and ready"
    assert worded(result) == "`prod (app=web)` 中的 3 个 Pod 都在运行且就绪"
    assert result.data["total"] == 3
    assert {row["ready"] for row in result.data["pods"]} == {"1/1"}
    pod_list = [r for r in kube.requests if r.path == "/api/v1/namespaces/prod/pods"]
    assert pod_list[0].query["labelSelector"] == "app=web"


async def test_pods_summary_names_the_crashing_pod(
    registry: PluginRegistry, kube: FakeKube
) -> None:
    crashing = kube.pods_of(NS, "web")[1]
    kube.crashloop(NS, crashing, reason="OOMKilled", exit_code=137, restarts=7)
    result = await run(registry, "k8s_pods", namespace=NS, label_selector="app=web")
    assert not result.ok
    assert result.summary.startswith("1 of 3 pods in prod (app=web) unhealthy: ")
    assert f"{crashing} CrashLoopBackOff (7 restarts, last: OOMKilled, exit 137)" in result.summary
    assert result.data["unhealthy"] == [crashing]
    assert result.evidence[0].startswith(f"{crashing} CrashLoopBackOff, ready 0/1")
    assert "CrashLoopBackOff" in result.output


async def test_pods_label_selector_grammar_reaches_the_server(
    registry: PluginRegistry, kube: FakeKube
) -> None:
    selector = "app in (web, api),tier!=cache,!canary"
    result = await run(registry, "k8s_pods", namespace=NS, label_selector=selector)
    assert result.ok, result.summary
    assert result.data["total"] == 3
    assert kube.requests[-1].query["labelSelector"] == "app in (web,api),tier!=cache,!canary"


async def test_many_pods_keep_their_data(registry: PluginRegistry, kube: FakeKube) -> None:
    kube.add_deployment(NS, "batch-worker-with-a-rather-long-name", image="w:1", replicas=120)
    result = await run(registry, "k8s_pods", namespace=NS)
    assert result.ok
    assert result.data["total"] == 123
    assert 0 < len(result.data["pods"]) <= 25
    assert len(result.evidence) == 21  # 20 lines and a note that more were dropped


async def test_pods_none_found(registry: PluginRegistry) -> None:
    result = await run(registry, "k8s_pods", namespace="staging")
    assert not result.ok
    assert result.summary == "no pods found in staging"


async def test_describe_shows_last_termination_and_events(
    registry: PluginRegistry, kube: FakeKube
) -> None:
    pod = kube.pods_of(NS, "web")[0]
    kube.crashloop(NS, pod, reason="Error", exit_code=2, restarts=4)
    result = await run(registry, "k8s_pod_describe", namespace=NS, pod=pod)
    assert not result.ok
    assert result.summary == (
        f"pod prod/{pod} is unhealthy: CrashLoopBackOff; container app last terminated Error "
        "(exit code 2), 4 restarts"
    )
    assert "Last:      Terminated: Error, exit code 2" in result.output
    assert "Warning BackOff Pod/" in result.output
    assert result.data["containers"][0]["last_exit_code"] == 2
    assert "Ready              False  ContainersNotReady" in result.output
    events = [r for r in kube.requests if r.path.endswith("/events")]
    assert events[0].query["fieldSelector"] == f"involvedObject.name={pod},involvedObject.kind=Pod"


async def test_describe_healthy_pod(registry: PluginRegistry, kube: FakeKube) -> None:
    pod = kube.pods_of(NS, "web")[0]
    result = await run(registry, "k8s_pod_describe", namespace=NS, pod=pod)
    assert result.ok
    assert result.summary == f"pod prod/{pod} is healthy"
    assert "Events:     <none>" in result.output


async def test_logs_tail_filter_and_raw_json_lines(
    registry: PluginRegistry, kube: FakeKube
) -> None:
    pod = kube.pods_of(NS, "web")[0]
    lines = [f"line {i}" for i in range(50)] + ['{"level": "error", "msg": "db down"}']
    kube.logs[NS, pod, "app", False] = "\n".join(lines) + "\n"
    result = await run(registry, "k8s_pod_logs", namespace=NS, pod=pod, tail_lines=3)
    assert result.ok, result.summary
    assert result.summary == f"last 3 log lines of pod prod/{pod}"
    assert result.output == 'line 48\nline 49\n{"level": "error", "msg": "db down"}'
    assert kube.requests[-1].query["tailLines"] == "3"

    filtered = await run(
        registry, "k8s_pod_logs", namespace=NS, pod=pod, tail_lines=20, contains="line 4"
    )
    assert filtered.summary == (f"10 of the last 20 log lines of pod prod/{pod} contain 'line 4'")
    assert filtered.output.splitlines()[0] == "line 40"

    quiet = kube.pods_of(NS, "web")[1]
    empty = await run(registry, "k8s_pod_logs", namespace=NS, pod=quiet)
    assert empty.ok
    assert empty.summary == f"the log of pod prod/{quiet} is empty"


async def test_logs_previous_and_container_errors_are_readable(
    registry: PluginRegistry, kube: FakeKube
) -> None:
    pod = kube.pods_of(NS, "web")[0]
    kube.logs[NS, pod, "app", True] = "panic: out of memory\n"
    previous = await run(registry, "k8s_pod_logs", namespace=NS, pod=pod, previous=True)
    assert previous.ok
    assert previous.summary.endswith("(previous instance)")
    assert previous.output == "panic: out of memory"
    assert kube.requests[-1].query["previous"] in ("true", "True")

    wrong = await run(registry, "k8s_pod_logs", namespace=NS, pod=pod, container="sidecar")
    assert not wrong.ok
    assert wrong.summary == (
        f"cannot read the log of pod prod/{pod}: container sidecar is not valid for pod {pod}"
    )
    missing = await run(registry, "k8s_pod_logs", namespace=NS, pod="web-gone")
    assert missing.summary == "pod prod/web-gone not found"


async def test_logs_of_a_two_container_pod_need_a_container(
    registry: PluginRegistry, kube: FakeKube
) -> None:
    kube.add_deployment(NS, "api", image="api:1", replicas=1, containers=2)
    pod = kube.pods_of(NS, "api")[0]
    result = await run(registry, "k8s_pod_logs", namespace=NS, pod=pod)
    assert not result.ok
    assert "a container name must be specified" in result.summary
    assert "choose one of: [app sidecar]" in result.summary


async def test_events_are_warnings_only_by_default(
    registry: PluginRegistry, kube: FakeKube
) -> None:
    kube.add_event(NS, "Pod", "web-x", "Pulled", "Successfully pulled image", type_="Normal")
    quiet = await run(registry, "k8s_events", namespace=NS)
    assert quiet.ok
    assert quiet.summary == "no warning events in prod"
    assert kube.requests[-1].query["fieldSelector"] == "type=Warning"

    kube.add_event(NS, "Pod", "web-x", "FailedScheduling", "0/3 nodes are available", 3)
    kube.add_event(NS, "Pod", "web-y", "BackOff", "Back-off restarting failed container", 9)
    loud = await run(registry, "k8s_events", namespace=NS, name="web-x")
    assert not loud.ok
    assert loud.summary == "1 warning event in prod for web-x: FailedScheduling ×3"
    assert worded(loud) == "`prod/web-x` 中有 1 个告警事件：`FailedScheduling ×3`"
    assert kube.requests[-1].query["fieldSelector"] == "type=Warning,involvedObject.name=web-x"

    everything_ = await run(registry, "k8s_events", namespace=NS, include_normal=True)
    assert everything_.data["total"] == 3
    assert any("Pulled" in line for line in everything_.evidence)


async def test_rollout_status(registry: PluginRegistry, kube: FakeKube) -> None:
    result = await run(registry, "k8s_rollout_status", namespace=NS, deployment="web")
    assert result.ok
    assert result.summary == "deployment prod/web: successfully rolled out"
    assert worded(result) == "Deployment `prod/web` 发布完成"
    assert result.data["images"] == {"app": IMAGE_1}
    assert result.data["revision"] == "1"
    assert "replicas: 3 desired, 3 updated, 3 ready, 3 available" in result.evidence


async def test_not_found_is_one_readable_sentence(registry: PluginRegistry) -> None:
    status = await run(registry, "k8s_rollout_status", namespace=NS, deployment="nope")
    assert not status.ok
    assert status.summary == "deployment prod/nope not found"
    pod = await run(registry, "k8s_pod_describe", namespace=NS, pod="nope-123")
    assert pod.summary == "pod prod/nope-123 not found"
    pods = await run(registry, "k8s_pods", namespace=NS, deployment="nope")
    assert pods.summary == "deployment prod/nope not found"


# -- remediations ----------------------------------------------------------------------------


async def test_rollout_restart_patches_restarted_at(
    registry: PluginRegistry, kube: FakeKube
) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    result = await run(registry, "k8s_rollout_restart", namespace=NS, deployment="web")
    assert result.ok, result.summary
    assert (
        result.summary
        == "restarted deployment prod/web: pods are being replaced by a rolling update"
    )
    [patch] = kube.mutations
    assert patch.method == "PATCH"
    assert patch.path == "/apis/apps/v1/namespaces/prod/deployments/web"
    assert patch.content_type == "application/strategic-merge-patch+json"
    assert patch.query == {"fieldManager": "larkops"}
    annotations = patch.body["spec"]["template"]["metadata"]["annotations"]
    assert list(patch.body) == ["spec"]
    assert list(annotations) == ["kubectl.kubernetes.io/restartedAt"]
    stamp = datetime.strptime(
        annotations["kubectl.kubernetes.io/restartedAt"], "%Y-%m-%dT%H:%M:%SZ"
    )
    assert abs((stamp.replace(tzinfo=UTC) - before).total_seconds()) < 5

    deployment = kube.deployments[NS, "web"]
    assert deployment["metadata"]["generation"] == 2
    status = await run(registry, "k8s_rollout_status", namespace=NS, deployment="web")
    assert not status.ok
    assert status.summary.endswith(
        "waiting for the new generation to be observed by the controller"
    )
    kube.settle(NS, "web")
    status = await run(registry, "k8s_rollout_status", namespace=NS, deployment="web")
    assert status.ok
    assert status.data["revision"] == "2"


async def test_restart_dry_run_changes_nothing(registry: PluginRegistry, kube: FakeKube) -> None:
    before = json.dumps(kube.deployments[NS, "web"], sort_keys=True)
    result = await run(
        registry, "k8s_rollout_restart", dry_run=True, namespace=NS, deployment="web"
    )
    assert result.ok, result.summary
    assert result.summary.startswith(
        'dry run: would patch deployment prod/web with {"spec":{"template":{"metadata":'
        '{"annotations":{"kubectl.kubernetes.io/restartedAt":"'
    )
    assert "nothing was changed" in result.summary
    assert kube.mutations == []
    [write] = kube.writes
    assert write.query == {"dryRun": "All", "fieldManager": "larkops"}
    assert json.dumps(kube.deployments[NS, "web"], sort_keys=True) == before


async def test_restart_refuses_a_paused_deployment(
    registry: PluginRegistry, kube: FakeKube
) -> None:
    kube.deployments[NS, "web"]["spec"]["paused"] = True
    result = await run(registry, "k8s_rollout_restart", namespace=NS, deployment="web")
    assert not result.ok
    assert (
        result.summary == "deployment prod/web is paused; resume its rollout before restarting it"
    )
    assert kube.writes == []


async def test_scale_within_bounds(registry: PluginRegistry, kube: FakeKube) -> None:
    result = await run(registry, "k8s_scale", namespace=NS, deployment="web", replicas=5)
    assert result.ok, result.summary
    assert result.summary == "scaled deployment prod/web from 3 to 5 replicas"
    assert worded(result) == "已把 `prod/web` 从 3 个副本调整为 5 个"
    [patch] = kube.mutations
    assert patch.path == "/apis/apps/v1/namespaces/prod/deployments/web/scale"
    assert patch.body == {"spec": {"replicas": 5}}
    assert kube.deployments[NS, "web"]["spec"]["replicas"] == 5

    same = await run(registry, "k8s_scale", namespace=NS, deployment="web", replicas=5)
    assert same.summary == "deployment prod/web already has 5 replicas; nothing changed"
    assert len(kube.mutations) == 1


async def test_scale_dry_run(registry: PluginRegistry, kube: FakeKube) -> None:
    result = await run(
        registry, "k8s_scale", dry_run=True, namespace=NS, deployment="web", replicas=4
    )
    assert result.ok
    assert result.summary.startswith(
        "dry run: would scale deployment prod/web from 3 to 4 replicas "
        '(patch {"spec":{"replicas":4}})'
    )
    assert kube.mutations == []
    assert kube.writes[0].query["dryRun"] == "All"
    assert kube.deployments[NS, "web"]["spec"]["replicas"] == 3


async def test_scale_bounds_are_enforced_before_any_request(
    cluster: Cluster, kube: FakeKube
) -> None:
    registry = cluster.registry({"scale_max": 6})
    above = await run(registry, "k8s_scale", namespace=NS, deployment="web", replicas=7)
    assert not above.ok
    assert above.summary == (
        "invalid parameters: replicas must be between 1 and 6 "
        "(scale_min/scale_max in the kubernetes plugin settings)"
    )
    zero = await run(registry, "k8s_scale", namespace=NS, deployment="web", replicas=0)
    assert zero.summary.startswith("invalid parameters: scaling to 0 replicas is refused")
    assert kube.requests == []

    spec = registry.get("k8s_scale")
    assert spec is not None
    model = validate_params(spec.spec, {"namespace": NS, "deployment": "web", "replicas": 6})
    assert model.policy_risk() == "medium"  # type: ignore[attr-defined]

    allowing = cluster.registry({"scale_min": 0})
    plugin = allowing.get("k8s_scale")
    assert plugin is not None
    zero_model = validate_params(plugin.spec, {"namespace": NS, "deployment": "web", "replicas": 0})
    assert zero_model.policy_risk() == "high"  # type: ignore[attr-defined]
    scaled = await run(allowing, "k8s_scale", namespace=NS, deployment="web", replicas=0)
    assert scaled.ok
    assert kube.deployments[NS, "web"]["spec"]["replicas"] == 0


async def test_rollback_restores_the_previous_image(
    registry: PluginRegistry, kube: FakeKube
) -> None:
    kube.deploy(NS, "web", IMAGE_2)
    result = await run(registry, "k8s_rollback", namespace=NS, deployment="web")
    assert result.ok, result.summary
    assert result.summary == (
        f"rolled back deployment prod/web from revision 2 (app={IMAGE_2}) "
        f"to revision 1 (app={IMAGE_1})"
    )
    [patch] = kube.mutations
    assert patch.content_type == "application/json-patch+json"
    [op] = patch.body
    assert (op["op"], op["path"]) == ("replace", "/spec/template")
    assert op["value"]["spec"]["containers"][0]["image"] == IMAGE_1
    assert op["value"]["metadata"]["labels"] == {"app": "web"}  # no pod-template-hash

    kube.settle(NS, "web")
    status = await run(registry, "k8s_rollout_status", namespace=NS, deployment="web")
    assert status.ok
    assert status.data["images"] == {"app": IMAGE_1}
    assert status.data["revision"] == "3"  # the old ReplicaSet comes back as a new revision
    pods = await run(registry, "k8s_pods", namespace=NS, deployment="web")
    assert pods.ok
    assert pods.data["total"] == 3


async def test_rollback_to_a_revision_and_its_refusals(
    registry: PluginRegistry, kube: FakeKube
) -> None:
    first = await run(registry, "k8s_rollback", namespace=NS, deployment="web")
    assert not first.ok
    assert (
        first.summary == "deployment prod/web has no previous revision to roll back to (known: 1)"
    )

    kube.deploy(NS, "web", IMAGE_2)
    kube.deploy(NS, "web", "registry.example.com/web:3.0")
    unknown = await run(registry, "k8s_rollback", namespace=NS, deployment="web", to_revision=7)
    assert unknown.summary == "revision 7 of deployment prod/web not found (known: 1, 2, 3)"
    same = await run(registry, "k8s_rollback", namespace=NS, deployment="web", to_revision=3)
    assert (
        same.summary
        == "deployment prod/web already runs the template of revision 3; nothing changed"
    )
    assert kube.writes == []

    back = await run(registry, "k8s_rollback", namespace=NS, deployment="web", to_revision=1)
    assert back.ok
    assert back.data["to_images"] == {"app": IMAGE_1}
    assert (
        kube.deployments[NS, "web"]["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE_1
    )


async def test_rollback_dry_run_changes_nothing(registry: PluginRegistry, kube: FakeKube) -> None:
    kube.deploy(NS, "web", IMAGE_2)
    before = json.dumps(kube.deployments[NS, "web"], sort_keys=True)
    result = await run(registry, "k8s_rollback", dry_run=True, namespace=NS, deployment="web")
    assert result.ok, result.summary
    assert result.summary.startswith("dry run: would roll back deployment prod/web from revision 2")
    assert '"path": "/spec/template"' in result.output
    assert kube.mutations == []
    assert [w.query.get("dryRun") for w in kube.writes] == ["All"]
    assert json.dumps(kube.deployments[NS, "web"], sort_keys=True) == before
    assert kube.deployments[NS, "web"]["metadata"]["annotations"][REVISION] == "2"


async def test_missing_deployment_is_not_patched(registry: PluginRegistry, kube: FakeKube) -> None:
    extras: list[tuple[str, dict[str, Any]]] = [
        ("k8s_rollout_restart", {}),
        ("k8s_scale", {"replicas": 2}),
        ("k8s_rollback", {}),
    ]
    for name, extra in extras:
        result = await run(registry, name, namespace=NS, deployment="gone", **extra)
        assert result.summary == "deployment prod/gone not found", name
    assert kube.writes == []


# -- credentials and connections -------------------------------------------------------------


async def test_read_only_token_is_forbidden_to_patch(cluster: Cluster, kube: FakeKube) -> None:
    kube.users["viewer-token-5a4b3c2d1e"] = ("system:serviceaccount:ops:viewer", False)
    registry = cluster.registry(token="viewer-token-5a4b3c2d1e")
    result = await run(registry, "k8s_rollout_restart", namespace=NS, deployment="web")
    assert not result.ok
    assert result.summary == (
        'not allowed to access deployment prod/web: deployments.apps "web" is forbidden: User '
        '"system:serviceaccount:ops:viewer" cannot patch resource "deployments" in API group '
        '"apps" in the namespace "prod"'
    )
    assert kube.mutations == []


@pytest.mark.parametrize("token", ["wrongtoken-9f8e7d6c5b4a", None])
async def test_bad_or_missing_token_is_reported_without_leaking_it(
    cluster: Cluster, kube: FakeKube, token: str | None
) -> None:
    registry = cluster.registry(token=token)
    for name in (*PLUGIN_NAMES[:1], "k8s_rollout_restart"):
        result = await run(registry, name, namespace=NS, deployment="web")
        assert not result.ok
        assert result.summary == (
            "the Kubernetes API of target 'test' rejected the credentials (401 Unauthorized); "
            "check the token of its kubeconfig or service account"
        )
        assert "wrongtoken" not in everything(result)
        assert kube.token not in everything(result)
    assert all(not r.authorized for r in kube.requests)
    assert kube.mutations == []


async def test_unreachable_server_and_missing_kubeconfig(
    cluster: Cluster, kube: FakeKube, tmp_path: Path
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    registry = cluster.registry(server=closed)
    result = await run(registry, "k8s_rollout_status", namespace=NS, deployment="web")
    assert not result.ok
    assert result.summary.startswith(
        f"cannot reach the Kubernetes API of target 'test' ({closed}): "
    )
    assert kube.token not in everything(result)

    missing = tmp_path / "nowhere" / "config"
    lonely = cluster.from_settings({"targets": {"test": {"kubeconfig": str(missing)}}})
    result = await run(lonely, "k8s_pods", namespace=NS)
    assert result.summary == (
        f"cannot load the Kubernetes configuration of 'test': kubeconfig {missing} does not exist"
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            "users:\n- name: x\n  user: {token: hunter2-very-secret\n  bad: [\n",
            "malformed kubeconfig (ParserError)",
        ),
        (
            "clusters: [{name: c, cluster: {insecure-skip-tls-verify: true}}]\n"
            "users: [{name: u, user: {token: hunter2-very-secret}}]\n"
            "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
            "current-context: x\n",
            "its cluster names no API server address",
        ),
        (
            "clusters: []\nusers: []\n"
            "contexts: [{name: x, note: hunter2-very-secret}]\ncurrent-context: x\n",
            "Invalid kube-config file. Expected key context in ",
        ),
    ],
)
async def test_broken_kubeconfig_is_reported_without_its_content(
    cluster: Cluster, tmp_path: Path, text: str, reason: str
) -> None:
    broken = tmp_path / "broken"
    broken.write_text(text)
    registry = cluster.from_settings({"targets": {"test": {"kubeconfig": str(broken)}}})
    result = await run(registry, "k8s_events", namespace=NS)
    assert not result.ok
    assert result.summary.startswith(
        f"cannot load the Kubernetes configuration of 'test': {reason}"
    )
    assert "hunter2" not in everything(result)


async def test_implicit_default_target_is_in_cluster_inside_a_pod(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubernetes_asyncio.config import incluster_config

    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(tmp_path / "no-token"))
    registry = cluster.from_settings({})
    result = await run(registry, "k8s_pods", namespace=NS)
    assert result.summary == (
        "cannot load the Kubernetes configuration of 'default': Service token file does not exist."
    )


async def test_implicit_default_target_uses_kubeconfig_env(
    cluster: Cluster, kube: FakeKube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(kube.write_kubeconfig(tmp_path / "env-config")))
    registry = cluster.from_settings({})
    first = await run(registry, "k8s_rollout_status", namespace=NS, deployment="web")
    assert first.ok, first.summary
    other = await run(registry, "k8s_pods", namespace=NS, target="prod")
    assert other.summary == "invalid parameters: target must be one of: default"
    clients = cluster.clients()
    assert await clients.client("default") is await clients.client("default")


# -- parameters ------------------------------------------------------------------------------

HOSTILE: list[tuple[str, dict[str, Any], str]] = [
    ("k8s_pods", {"namespace": "prod; rm -rf /"}, "namespace must be a DNS-1123 label"),
    ("k8s_pods", {"namespace": "../../etc"}, "namespace must be a DNS-1123 label"),
    ("k8s_pods", {"namespace": "prоd"}, "namespace must be a DNS-1123 label"),  # Cyrillic о
    ("k8s_pods", {"namespace": "Prod"}, "namespace must be a DNS-1123 label"),
    ("k8s_pods", {"namespace": "prod\n"}, "namespace must be a DNS-1123 label"),
    ("k8s_pods", {"namespace": "x" * 10_000}, "namespace: String should have at most 63"),
    ("k8s_pods", {"namespace": NS, "label_selector": "app=web;id"}, "label_selector must be"),
    ("k8s_pods", {"namespace": NS, "label_selector": "app=$(id)"}, "label_selector must be"),
    ("k8s_pods", {"namespace": NS, "label_selector": "app=web\ntier=x"}, "label_selector must"),
    ("k8s_pods", {"namespace": NS, "label_selector": "a" * 64 + "=b"}, "label_selector must"),
    ("k8s_pods", {"namespace": NS, "label_selector": "app in (web"}, "label_selector must"),
    ("k8s_pods", {"namespace": NS, "label_selector": "app=wéb"}, "label_selector must"),
    ("k8s_pods", {"namespace": NS, "extra": "x"}, "extra: Extra inputs are not permitted"),
    ("k8s_pod_describe", {"namespace": NS, "pod": "web/../../x"}, "pod must be a DNS-1123"),
    ("k8s_pod_logs", {"namespace": NS, "pod": "web-1", "tail_lines": 5000}, "tail_lines: Input"),
    ("k8s_pod_logs", {"namespace": NS, "pod": "web-1", "tail_lines": "10"}, "tail_lines: Input"),
    ("k8s_pod_logs", {"namespace": NS, "pod": "web-1", "container": "a.b"}, "container must be"),
    ("k8s_pod_logs", {"namespace": NS, "pod": "web-1", "contains": "a\nb"}, "contains must be"),
    ("k8s_events", {"namespace": NS, "name": "x y"}, "name must be a DNS-1123 subdomain"),
    ("k8s_rollout_restart", {"namespace": NS, "deployment": "web`id`"}, "deployment must be"),
    ("k8s_rollout_restart", {"namespace": NS}, "deployment: Field required"),
    ("k8s_scale", {"namespace": NS, "deployment": "web", "replicas": 2.5}, "replicas: Input"),
    ("k8s_rollback", {"namespace": NS, "deployment": "web", "to_revision": -1}, "to_revision"),
    ("k8s_rollback", {"namespace": NS, "deployment": "web", "target": "other"}, "target must"),
]


@pytest.mark.parametrize(("name", "params", "message"), HOSTILE)
async def test_hostile_parameters_are_refused_before_any_request(
    registry: PluginRegistry, kube: FakeKube, name: str, params: dict[str, Any], message: str
) -> None:
    result = await execute(registry, name, PluginContext(), params)
    assert not result.ok
    assert result.summary.startswith("invalid parameters: ")
    assert message in result.summary
    assert "rm -rf" not in result.summary
    assert "$(id)" not in result.summary
    assert len(result.summary) < 400
    assert kube.requests == []


async def test_policy_scope_and_quota_target(registry: PluginRegistry) -> None:
    def model(name: str, **params: Any) -> Any:
        plugin = registry.get(name)
        assert plugin is not None
        return validate_params(plugin.spec, params)

    restart = model("k8s_rollout_restart", namespace=NS, deployment="web")
    assert restart.policy_scope() == {"namespace": NS, "service": "web", "target": "test"}
    assert restart.policy_target() == "k8s:prod/deployment/web"
    pods = model("k8s_pods", namespace=NS)
    assert pods.policy_scope() == {"namespace": NS, "target": "test"}
    assert pods.policy_target() == "k8s:prod/pods"
    assert model("k8s_pods", namespace=NS, deployment="web").policy_scope()["service"] == "web"
    assert model("k8s_pod_logs", namespace=NS, pod="web-1").policy_target() == "k8s:prod/pod/web-1"
    assert model("k8s_rollback", namespace=NS, deployment="web").policy_target() == (
        "k8s:prod/deployment/web"
    )
    specs = {n: registry.get(n).spec for n in PLUGIN_NAMES}  # type: ignore[union-attr]
    assert {n: (s.category, s.risk) for n, s in specs.items()} == {
        "k8s_pods": ("diagnostic", "low"),
        "k8s_pod_describe": ("diagnostic", "low"),
        "k8s_pod_logs": ("diagnostic", "low"),
        "k8s_events": ("diagnostic", "low"),
        "k8s_rollout_status": ("diagnostic", "low"),
        "k8s_rollout_restart": ("remediation", "medium"),
        "k8s_scale": ("remediation", "medium"),
        "k8s_rollback": ("remediation", "high"),
    }


# -- settings and start-up -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"cluster": "x"}, "kubernetes: unknown settings cluster"),
        ({"scale_max": 0}, "scale_max >= 1"),
        ({"scale_min": 5, "scale_max": 3}, "scale_min <= scale_max"),
        ({"scale_max": True}, "scale_max must be a whole number"),
        ({"default": "prod"}, "default target 'prod' is not configured"),
        ({"targets": {"Prod": {}}}, "must be lower-case"),
        ({"targets": {"a": {"token": "x"}}}, "unknown keys token"),
        ({"targets": {"a": {"in_cluster": True, "kubeconfig": "/k"}}}, "in_cluster excludes"),
        ({"targets": {"a": {"kubeconfig": 3}}}, "kubeconfig has the wrong type"),
        ({"targets": {"a": {}, "b": {}}, "default": "c"}, "default target 'c' is not"),
    ],
)
def test_bad_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match="kubernetes") as caught:
        create_plugins(settings)
    assert message in str(caught.value)


def test_importing_and_building_does_not_load_the_client() -> None:
    code = (
        "import sys\n"
        "from plugins.builtin.kubernetes import create_plugins\n"
        "plugins = create_plugins({'targets': {'a': {'kubeconfig': '/nonexistent'}}})\n"
        "assert len(plugins) == 8\n"
        "print(sorted(m for m in sys.modules if m.startswith('kubernetes_asyncio')))\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
