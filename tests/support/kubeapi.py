"""A fake Kubernetes API server: real HTTP, real JSON shapes, in-memory state, requests recorded.

It answers the endpoints the Kubernetes plugins use, as the API server does: pods (list with
`labelSelector`, get, `log` with `tailLines`/`container`/`previous`/`limitBytes`), events (list
with `fieldSelector`), deployments (get, PATCH with strategic-merge, merge and JSON patches,
`dryRun=All`), the deployments' `scale` subresource, ReplicaSets (list with `labelSelector`),
and `Status` objects for 401/403/404/400/415/422. A bearer token is required; a token can be
read-only (PATCH → 403). Every request is kept in `requests`, with its answer's status
(`writes`: the non-GET ones, `mutations`: successful writes that were not dry runs).

A small controller is simulated on demand: `settle()` does what the deployment controller
would (adopt or create the ReplicaSet of the current template with the next revision, replace
the pods, mark the rollout complete), so a test can patch, settle and read again.

Usage::

    async with FakeKube() as kube:
        kube.add_deployment("prod", "web", image="web:1.0")
        kube.write_kubeconfig(tmp_path / "config")
        ...
        assert kube.mutations[0].content_type == "application/strategic-merge-patch+json"
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import yaml
from aiohttp import web

REVISION = "deployment.kubernetes.io/revision"
HASH = "pod-template-hash"
PATCH_TYPES = {
    "application/strategic-merge-patch+json",
    "application/merge-patch+json",
    "application/json-patch+json",
}
GO_TRUE = {"1", "t", "T", "TRUE", "true", "True"}  # strconv.ParseBool, as the API server reads it
MERGE_KEYS = {"containers": "name", "initContainers": "name", "env": "name", "volumes": "name"}
_PODS = re.compile(r"/api/v1/namespaces/([^/]+)/pods(?:/([^/]+)(/log)?)?")
_EVENTS = re.compile(r"/api/v1/namespaces/([^/]+)/events")
_DEPLOYMENT = re.compile(r"/apis/apps/v1/namespaces/([^/]+)/deployments/([^/]+)(/scale)?")
_REPLICASETS = re.compile(r"/apis/apps/v1/namespaces/([^/]+)/replicasets")


@dataclass(frozen=True)
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: Any
    authorized: bool
    status: int

    @property
    def dry_run(self) -> bool:
        return self.query.get("dryRun") == "All"


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any]) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> dict[str, Any]:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }


def now_stamp(ago: float = 0) -> str:
    return (datetime.now(UTC) - timedelta(seconds=ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeKube:
    """In-memory cluster behind a real HTTP server on 127.0.0.1."""

    def __init__(self, token: str = "fake-token-0123456789abcdef") -> None:
        self.token = token
        self.users: dict[str, tuple[str, bool]] = {
            token: ("system:serviceaccount:ops:larkops", True)
        }
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}
        self.deployments: dict[tuple[str, str], dict[str, Any]] = {}
        self.replicasets: dict[tuple[str, str], dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.logs: dict[tuple[str, str, str, bool], str] = {}
        self.requests: list[Recorded] = []
        self.url = ""
        self._ids = itertools.count(1000)
        self._runner: web.AppRunner | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        site = web.SockSite(self._runner, sock)
        await site.start()
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def write_kubeconfig(self, path: Path, token: str | None = "", server: str = "") -> Path:
        """A kubeconfig for this server; token "" means the server's, None means no token."""
        user: dict[str, Any] = {}
        if token is not None:
            user["token"] = token or self.token
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": server or self.url}}],
            "users": [{"name": "larkops", "user": user}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "larkops"}}],
            "current-context": "fake",
        }
        path.write_text(yaml.safe_dump(config))
        return path

    @property
    def writes(self) -> list[Recorded]:
        """Every non-GET request (dry runs included)."""
        return [r for r in self.requests if r.method != "GET"]

    @property
    def mutations(self) -> list[Recorded]:
        """Successful writes that were not dry runs: what changed the state."""
        return [r for r in self.writes if r.status < 300 and not r.dry_run]

    # -- state builders --------------------------------------------------------------------

    def _meta(self, ns: str, name: str, ago: float = 3600, **extra: Any) -> dict[str, Any]:
        return {
            "name": name,
            "namespace": ns,
            "uid": f"00000000-0000-4000-8000-{next(self._ids):012d}",
            "resourceVersion": str(next(self._ids)),
            "creationTimestamp": now_stamp(ago),
            **extra,
        }

    def add_deployment(
        self, ns: str, name: str, *, image: str, replicas: int = 3, containers: int = 1
    ) -> dict[str, Any]:
        """A deployment, its first ReplicaSet (revision 1) and its running pods."""
        names = ["app", "sidecar"][:containers]
        template = {
            "metadata": {"creationTimestamp": None, "labels": {"app": name}},
            "spec": {
                "containers": [
                    {"name": c, "image": image if c == "app" else "sidecar:1", "resources": {}}
                    for c in names
                ],
                "restartPolicy": "Always",
                "terminationGracePeriodSeconds": 30,
                "dnsPolicy": "ClusterFirst",
            },
        }
        deployment = {
            "kind": "Deployment",
            "apiVersion": "apps/v1",
            "metadata": self._meta(ns, name, 86400 * 3, generation=1, labels={"app": name}),
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": template,
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
                },
                "revisionHistoryLimit": 10,
                "progressDeadlineSeconds": 600,
            },
            "status": {},
        }
        self.deployments[ns, name] = deployment
        self.settle(ns, name)
        return deployment

    def deploy(self, ns: str, name: str, image: str) -> None:
        """A new release: change the app image, then let the controller roll it out."""
        deployment = self.deployments[ns, name]
        deployment["spec"]["template"]["spec"]["containers"][0]["image"] = image
        deployment["metadata"]["generation"] += 1
        self.settle(ns, name)

    def settle(self, ns: str, name: str) -> None:
        """What the deployment controller would do once the rollout finishes."""
        deployment = self.deployments[ns, name]
        template = deployment["spec"]["template"]
        owned = [rs for rs in self.replicasets.values() if _owned_by(rs, deployment)]
        top = max((int(rs["metadata"]["annotations"][REVISION]) for rs in owned), default=0)
        wanted = _normalized(template)
        current = next((rs for rs in owned if _normalized(rs["spec"]["template"]) == wanted), None)
        if current is None:
            current = self._new_replicaset(deployment)
        if int(current["metadata"]["annotations"][REVISION]) != top or top == 0:
            current["metadata"]["annotations"][REVISION] = str(top + 1)
        desired = deployment["spec"]["replicas"]
        for rs in [*owned, current]:
            count = desired if rs is current else 0
            rs["spec"]["replicas"] = count
            rs["status"] = {"replicas": count, "readyReplicas": count, "availableReplicas": count}
        revision = current["metadata"]["annotations"][REVISION]
        deployment["metadata"].setdefault("annotations", {})[REVISION] = revision
        deployment["status"] = _complete_status(deployment)
        for key in [k for k, pod in self.pods.items() if k[0] == ns and _selects(pod, name)]:
            del self.pods[key]
        for index in range(desired):
            self._pod_from(current, f"{current['metadata']['name']}-{index:05d}"[-63:])

    def _new_replicaset(self, deployment: dict[str, Any]) -> dict[str, Any]:
        meta = deployment["metadata"]
        template = copy.deepcopy(deployment["spec"]["template"])
        digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
        template["metadata"]["labels"][HASH] = digest
        selector = {"matchLabels": {**deployment["spec"]["selector"]["matchLabels"], HASH: digest}}
        name = f"{meta['name']}-{digest}"
        owner = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": meta["name"],
            "uid": meta["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        rs = {
            "kind": "ReplicaSet",
            "apiVersion": "apps/v1",
            "metadata": self._meta(
                meta["namespace"],
                name,
                60,
                labels=dict(template["metadata"]["labels"]),
                annotations={REVISION: "0"},
                ownerReferences=[owner],
            ),
            "spec": {"replicas": 0, "selector": selector, "template": template},
            "status": {"replicas": 0},
        }
        self.replicasets[meta["namespace"], name] = rs
        return rs

    def _pod_from(self, rs: dict[str, Any], name: str) -> dict[str, Any]:
        ns = rs["metadata"]["namespace"]
        template = rs["spec"]["template"]
        owner = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": rs["metadata"]["name"],
            "uid": rs["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        labels = dict(template["metadata"]["labels"])
        pod = {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": self._meta(ns, name, 1800, labels=labels, ownerReferences=[owner]),
            "spec": {**copy.deepcopy(template["spec"]), "nodeName": "node-1"},
            "status": {},
        }
        self.pods[ns, name] = pod
        self.set_running(ns, name)
        return pod

    def set_running(self, ns: str, pod: str) -> None:
        """All containers running and ready."""
        body = self.pods[ns, pod]
        started = now_stamp(1800)
        body["status"] = {
            "phase": "Running",
            "hostIP": "10.0.0.1",
            "podIP": "10.1.0.7",
            "startTime": started,
            "qosClass": "BestEffort",
            "conditions": [
                {"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": started}
                for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
            ],
            "containerStatuses": [
                {
                    "name": c["name"],
                    "image": c["image"],
                    "imageID": f"docker.io/library/{c['image']}@sha256:{'0' * 64}",
                    "containerID": f"containerd://{'a' * 64}",
                    "ready": True,
                    "started": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": started}},
                    "lastState": {},
                }
                for c in body["spec"]["containers"]
            ],
        }

    def crashloop(
        self,
        ns: str,
        pod: str,
        *,
        reason: str = "OOMKilled",
        exit_code: int = 137,
        restarts: int = 7,
    ) -> None:
        """The app container keeps dying: CrashLoopBackOff, last termination `reason`."""
        body = self.pods[ns, pod]
        status = body["status"]
        for condition in status["conditions"]:
            if condition["type"] in ("Ready", "ContainersReady"):
                condition.update(status="False", reason="ContainersNotReady")
        app = status["containerStatuses"][0]
        app.update(ready=False, started=False, restartCount=restarts)
        app["state"] = {
            "waiting": {
                "reason": "CrashLoopBackOff",
                "message": f"back-off 5m0s restarting failed container={app['name']} pod={pod}",
            }
        }
        app["lastState"] = {
            "terminated": {
                "exitCode": exit_code,
                "reason": reason,
                "startedAt": now_stamp(90),
                "finishedAt": now_stamp(60),
                "containerID": f"containerd://{'b' * 64}",
            }
        }
        self.add_event(ns, "Pod", pod, "BackOff", "Back-off restarting failed container", 12)

    def add_event(
        self,
        ns: str,
        kind: str,
        name: str,
        reason: str,
        message: str,
        count: int = 1,
        type_: str = "Warning",
    ) -> None:
        """An event about `kind/name` (core/v1 Event shape)."""
        self.events.append(
            {
                "kind": "Event",
                "apiVersion": "v1",
                "metadata": self._meta(ns, f"{name}.{next(self._ids):x}", 300),
                "involvedObject": {
                    "kind": kind,
                    "namespace": ns,
                    "name": name,
                    "uid": "00000000-0000-4000-8000-000000000001",
                    "apiVersion": "v1" if kind == "Pod" else "apps/v1",
                },
                "reason": reason,
                "message": message,
                "source": {"component": "kubelet", "host": "node-1"},
                "firstTimestamp": now_stamp(3000),
                "lastTimestamp": now_stamp(30 + len(self.events)),
                "count": count,
                "type": type_,
                "eventTime": None,
                "reportingComponent": "kubelet",
                "reportingInstance": "node-1",
            }
        )

    def pods_of(self, ns: str, deployment: str) -> list[str]:
        """Names of the deployment's pods."""
        return sorted(
            k[1] for k, pod in self.pods.items() if k[0] == ns and _selects(pod, deployment)
        )

    # -- HTTP ------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        content_type = request.headers.get("Content-Type", "")
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
        user = self.users.get(token or "")
        try:
            if user is None:
                raise ApiError(401, "Unauthorized", "Unauthorized", {})
            response = self._route(request, user, body, content_type)
        except ApiError as exc:
            response = web.json_response(exc.status(), status=exc.code)
        self.requests.append(
            Recorded(
                request.method,
                request.path,
                dict(request.query),
                content_type,
                body,
                authorized=user is not None,
                status=response.status,
            )
        )
        return response

    def _route(
        self, request: web.Request, user: tuple[str, bool], body: Any, content_type: str
    ) -> web.StreamResponse:
        path, query, method = request.path, request.query, request.method
        if match := _PODS.fullmatch(path):
            ns, name, log = match.groups()
            _allow(method, "GET")
            if name is None:
                items = [p for (n, _), p in sorted(self.pods.items()) if n == ns]
                return _list("PodList", "v1", _filter_labels(items, query.get("labelSelector")))
            pod = _get(self.pods, ns, name, "pods", "")
            return self._log(pod, query) if log else web.json_response(pod)
        if match := _EVENTS.fullmatch(path):
            _allow(method, "GET")
            events = [e for e in self.events if e["metadata"]["namespace"] == match[1]]
            return _list("EventList", "v1", _filter_fields(events, query.get("fieldSelector")))
        if match := _REPLICASETS.fullmatch(path):
            _allow(method, "GET")
            items = [r for (n, _), r in sorted(self.replicasets.items()) if n == match[1]]
            return _list(
                "ReplicaSetList", "apps/v1", _filter_labels(items, query.get("labelSelector"))
            )
        if match := _DEPLOYMENT.fullmatch(path):
            ns, name, scale = match.groups()
            _allow(method, "GET", "PATCH")
            deployment = _get(self.deployments, ns, name, "deployments", "apps")
            if method == "GET":
                return web.json_response(_scale_of(deployment) if scale else deployment)
            if not user[1]:
                raise ApiError(
                    403,
                    "Forbidden",
                    f'deployments.apps "{name}" is forbidden: User "{user[0]}" cannot patch '
                    f'resource "deployments{"/scale" if scale else ""}" in API group "apps" in '
                    f'the namespace "{ns}"',
                    {"name": name, "group": "apps", "kind": "deployments"},
                )
            return self._patch(deployment, bool(scale), body, content_type, query)
        raise ApiError(404, "NotFound", "the server could not find the requested resource", {})

    def _log(self, pod: dict[str, Any], query: Any) -> web.StreamResponse:
        name = pod["metadata"]["name"]
        containers = [c["name"] for c in pod["spec"]["containers"]]
        container = query.get("container")
        if container is None:
            if len(containers) > 1:
                choices = " ".join(containers)
                raise _bad(
                    f"a container name must be specified for pod {name}, choose one of: [{choices}]"
                )
            container = containers[0]
        if container not in containers:
            raise _bad(f"container {container} is not valid for pod {name}")
        previous = query.get("previous") in GO_TRUE
        key = (pod["metadata"]["namespace"], name, container, previous)
        if key not in self.logs:
            if previous:
                raise _bad(f'previous terminated container "{container}" in pod "{name}" not found')
            text = ""
        else:
            text = self.logs[key]
        lines = text.splitlines(keepends=True)
        if "tailLines" in query:
            lines = lines[-int(query["tailLines"]) :] if int(query["tailLines"]) else []
        data = "".join(lines).encode()
        if "limitBytes" in query:
            data = data[: int(query["limitBytes"])]
        return web.Response(body=data, content_type="text/plain")

    def _patch(
        self, deployment: dict[str, Any], scale: bool, body: Any, content_type: str, query: Any
    ) -> web.StreamResponse:
        dry_run = query.get("dryRun")
        if dry_run not in (None, "All"):
            raise _bad(f"Invalid dry run value: {dry_run}")
        if content_type not in PATCH_TYPES:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types "
                f"include: {', '.join(sorted(PATCH_TYPES))}",
                {},
            )
        base = _scale_of(deployment) if scale else deployment
        patched = _apply(copy.deepcopy(base), body, content_type)
        if scale:
            replicas = (patched.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or replicas < 0:
                raise _invalid(deployment, "spec.replicas: Invalid value: must be >= 0")
            result = copy.deepcopy(deployment)
            result["spec"]["replicas"] = replicas
        else:
            result = patched
        _validate(deployment, result)
        if result["spec"] != deployment["spec"]:
            result["metadata"]["generation"] = deployment["metadata"]["generation"] + 1
        result["metadata"]["resourceVersion"] = str(next(self._ids))
        if dry_run is None:
            deployment.clear()
            deployment.update(result)
        return web.json_response(_scale_of(result) if scale else result)


def _allow(method: str, *methods: str) -> None:
    if method not in methods:
        raise ApiError(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
            {},
        )


def _bad(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message, {})


def _invalid(deployment: dict[str, Any], cause: str) -> ApiError:
    name = deployment["metadata"]["name"]
    return ApiError(
        422,
        "Invalid",
        f'Deployment.apps "{name}" is invalid: {cause}',
        {"name": name, "group": "apps", "kind": "Deployment"},
    )


def _get(
    store: dict[tuple[str, str], dict[str, Any]], ns: str, name: str, kind: str, group: str
) -> dict[str, Any]:
    if (ns, name) not in store:
        plural = f"{kind}.{group}" if group else kind
        raise ApiError(
            404,
            "NotFound",
            f'{plural} "{name}" not found',
            {"name": name, "group": group, "kind": kind},
        )
    return store[ns, name]


def _list(kind: str, api_version: str, items: list[dict[str, Any]]) -> web.Response:
    return web.json_response(
        {
            "kind": kind,
            "apiVersion": api_version,
            "metadata": {"resourceVersion": "1"},
            "items": items,
        }
    )


def _scale_of(deployment: dict[str, Any]) -> dict[str, Any]:
    meta = deployment["metadata"]
    labels = deployment["spec"]["selector"]["matchLabels"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
        },
        "spec": {"replicas": deployment["spec"]["replicas"]},
        "status": {
            "replicas": deployment["status"].get("replicas", 0),
            "selector": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
        },
    }


def _validate(before: dict[str, Any], after: dict[str, Any]) -> None:
    if after["metadata"].get("name") != before["metadata"]["name"]:
        raise _invalid(before, "metadata.name: Invalid value: field is immutable")
    if after["spec"].get("selector") != before["spec"]["selector"]:
        raise _invalid(before, "spec.selector: Invalid value: field is immutable")
    labels = after["spec"]["template"].get("metadata", {}).get("labels") or {}
    wanted = before["spec"]["selector"]["matchLabels"]
    if any(labels.get(k) != v for k, v in wanted.items()):
        raise _invalid(
            before,
            "spec.template.metadata.labels: Invalid value: "
            "`selector` does not match template `labels`",
        )
    containers = after["spec"]["template"].get("spec", {}).get("containers")
    if not containers or not all(isinstance(c, dict) and c.get("image") for c in containers):
        raise _invalid(before, "spec.template.spec.containers: Required value")


def _complete_status(deployment: dict[str, Any]) -> dict[str, Any]:
    replicas = deployment["spec"]["replicas"]
    stamp = now_stamp()
    return {
        "observedGeneration": deployment["metadata"]["generation"],
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
        "conditions": [
            {
                "type": "Available",
                "status": "True",
                "lastUpdateTime": stamp,
                "lastTransitionTime": stamp,
                "reason": "MinimumReplicasAvailable",
                "message": "Deployment has minimum availability.",
            },
            {
                "type": "Progressing",
                "status": "True",
                "lastUpdateTime": stamp,
                "lastTransitionTime": stamp,
                "reason": "NewReplicaSetAvailable",
                "message": "ReplicaSet has successfully progressed.",
            },
        ],
    }


def _owned_by(rs: dict[str, Any], deployment: dict[str, Any]) -> bool:
    uid = deployment["metadata"]["uid"]
    return any(
        o["uid"] == uid and o.get("controller") for o in rs["metadata"].get("ownerReferences", [])
    )


def _normalized(value: Any) -> Any:
    """A template as the API server would store it: no nulls, no pod-template-hash label."""
    if isinstance(value, dict):
        return {k: _normalized(v) for k, v in value.items() if v is not None and k != HASH}
    if isinstance(value, list):
        return [_normalized(v) for v in value]
    return value


def _selects(pod: dict[str, Any], deployment: str) -> bool:
    return bool(pod["metadata"].get("labels", {}).get("app") == deployment)


# -- patches ---------------------------------------------------------------------------------


def _apply(target: dict[str, Any], patch: Any, content_type: str) -> dict[str, Any]:
    if content_type == "application/json-patch+json":
        if not isinstance(patch, list):
            raise _bad("json patch must be a list of operations")
        for op in patch:
            _json_patch_op(target, op)
        return target
    if not isinstance(patch, dict):
        raise _bad("merge patch must be an object")
    merged: dict[str, Any] = _merge(
        target, patch, strategic=content_type.startswith("application/strategic")
    )
    return merged


def _merge(target: Any, patch: Any, *, strategic: bool, key: str = "") -> Any:
    if isinstance(patch, list) and strategic and key in MERGE_KEYS and isinstance(target, list):
        merge_key = MERGE_KEYS[key]
        merged = [copy.deepcopy(item) for item in target]
        for item in patch:
            found = next((m for m in merged if m.get(merge_key) == item.get(merge_key)), None)
            if found is None:
                merged.append(item)
            else:
                merged[merged.index(found)] = _merge(found, item, strategic=True)
        return merged
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = _merge(result.get(name), value, strategic=strategic, key=name)
    return result


def _json_patch_op(target: dict[str, Any], op: Any) -> None:
    if not isinstance(op, dict) or op.get("op") not in ("add", "replace", "remove", "test"):
        raise _bad("unsupported json patch operation")
    parts = [p.replace("~1", "/").replace("~0", "~") for p in str(op["path"]).split("/")[1:]]
    parent: Any = target
    for part in parts[:-1]:
        parent = parent[int(part)] if isinstance(parent, list) else parent.get(part)
        if parent is None:
            raise ApiError(422, "Invalid", f"doc is missing path: {op['path']}", {})
    last = parts[-1]
    if op["op"] == "test":
        if parent.get(last) != op.get("value"):
            raise ApiError(422, "Invalid", f"testing value {op['path']} failed", {})
    elif op["op"] == "remove":
        parent.pop(last)
    elif op["op"] == "replace" and last not in parent:
        raise ApiError(
            422,
            "Invalid",
            f"replace operation does not apply: doc is missing key: {op['path']}",
            {},
        )
    else:
        parent[last] = op["value"]


# -- selectors -------------------------------------------------------------------------------


def _filter_labels(items: list[dict[str, Any]], selector: str | None) -> list[dict[str, Any]]:
    if not selector:
        return items
    requirements = re.findall(r"[^,(]+(?:\([^)]*\))?", selector)
    return [
        i
        for i in items
        if all(_matches(i["metadata"].get("labels") or {}, r.strip()) for r in requirements)
    ]


def _matches(labels: dict[str, str], requirement: str) -> bool:
    if match := re.fullmatch(r"(\S+)\s+(in|notin)\s*\((.*)\)", requirement):
        values = {v.strip() for v in match[3].split(",")}
        inside = labels.get(match[1]) in values
        return inside if match[2] == "in" else not inside
    if match := re.fullmatch(r"([^=!\s]+)\s*(==|!=|=)\s*(\S*)", requirement):
        equal = labels.get(match[1]) == match[3]
        return not equal if match[2] == "!=" else equal
    if requirement.startswith("!"):
        return requirement[1:].strip() not in labels
    if re.fullmatch(r"[^\s=!(),]+", requirement):
        return requirement in labels
    raise _bad(f"unable to parse requirement: {requirement}")


_EVENT_FIELDS = {
    "involvedObject.name": ("involvedObject", "name"),
    "involvedObject.kind": ("involvedObject", "kind"),
    "involvedObject.namespace": ("involvedObject", "namespace"),
    "reason": ("reason",),
    "type": ("type",),
}


def _filter_fields(items: list[dict[str, Any]], selector: str | None) -> list[dict[str, Any]]:
    if not selector:
        return items
    checks = []
    for part in selector.split(","):
        match = re.fullmatch(r"([A-Za-z.]+)(==|!=|=)(.*)", part.strip())
        if match is None or match[1] not in _EVENT_FIELDS:
            raise _bad(f'"{part}" is not a known field selector')
        checks.append((_EVENT_FIELDS[match[1]], match[2] == "!=", match[3]))
    result = []
    for item in items:
        keep = True
        for path, negate, value in checks:
            found: Any = item
            for step in path:
                found = (found or {}).get(step)
            if (found == value) == negate:
                keep = False
        if keep:
            result.append(item)
    return result
