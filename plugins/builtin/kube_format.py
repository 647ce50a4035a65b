"""Reading Kubernetes objects the way `kubectl` shows them: pod status, ages, events, rollouts.

Pure functions over `kubernetes_asyncio` model objects (imported for typing only), so the
plugins stay short and the wording stays in one place.

Usage::

    state = pod_state(pod, now)
    state.healthy, state.status, state.problem   # False, 'CrashLoopBackOff', 'CrashLoopBackOff ...'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubernetes_asyncio.client import CoreV1Event, V1ContainerState, V1Deployment, V1Pod

BAD_WAITING = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "CreateContainerConfigError",
        "CreateContainerError",
        "InvalidImageName",
        "RunContainerError",
    }
)


def age(since: datetime | None, now: datetime) -> str:
    """`45s`, `12m`, `5h`, `3d` (kubectl-like, coarser)."""
    if since is None:
        return "?"
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    seconds = max(0, int((now - since).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 120 * 60:
        return f"{seconds // 60}m"
    if seconds < 48 * 3600:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def stamp(value: datetime | None) -> str:
    """ISO-8601 UTC, seconds precision ('' for None)."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class PodState:
    """One pod as `kubectl get pods` sees it, plus whether it is healthy and why not."""

    name: str
    phase: str
    status: str
    ready: int
    total: int
    restarts: int
    node: str
    age: str
    last_termination: str
    problem: str

    @property
    def healthy(self) -> bool:
        """Running and ready (or Succeeded), not crash-looping."""
        return not self.problem

    def row(self) -> dict[str, Any]:
        """Compact data for the result."""
        row: dict[str, Any] = {
            "name": self.name,
            "status": self.status,
            "ready": f"{self.ready}/{self.total}",
            "restarts": self.restarts,
            "node": self.node,
            "age": self.age,
        }
        if self.last_termination:
            row["last_termination"] = self.last_termination
        return row

    def line(self) -> str:
        """`web-1 CrashLoopBackOff ready 0/1, 7 restarts (last: OOMKilled, exit 137), node n1`."""
        text = f"{self.name} {self.status}, ready {self.ready}/{self.total}"
        text += f", {self.restarts} restarts" if self.restarts != 1 else ", 1 restart"
        if self.last_termination:
            text += f" (last: {self.last_termination})"
        return text + (f", node {self.node}" if self.node else "")


def pod_state(pod: V1Pod, now: datetime) -> PodState:
    """Status column, readiness, restarts and the problem (empty when healthy) of a pod."""
    meta, status = pod.metadata, pod.status
    phase = (status.phase if status else None) or "Unknown"
    statuses = (status.container_statuses if status else None) or []
    spec_containers = pod.spec.containers if pod.spec else []
    total = max(len(spec_containers or []), len(statuses))
    ready = sum(1 for cs in statuses if cs.ready)
    restarts = sum(cs.restart_count or 0 for cs in statuses)
    shown = (status.reason if status else None) or phase
    waiting = ""
    last = ""
    for cs in reversed(statuses):
        state = cs.state
        if state and state.waiting and state.waiting.reason:
            shown = waiting = state.waiting.reason
        elif state and state.terminated:
            shown = state.terminated.reason or f"ExitCode:{state.terminated.exit_code}"
        if cs.last_state and cs.last_state.terminated and not last:
            term = cs.last_state.terminated
            last = f"{term.reason or 'Terminated'}, exit {term.exit_code}"
    init_problem = _init_problem(pod)
    if init_problem:
        shown = init_problem
    if meta and meta.deletion_timestamp:
        shown = "Terminating"
    problem = ""
    if phase == "Succeeded":
        problem = ""
    elif init_problem:
        problem = init_problem
    elif waiting in BAD_WAITING:
        problem = waiting
    elif phase != "Running":
        problem = shown if shown == phase else f"{phase}: {shown}"
    elif ready < total:
        problem = f"not ready ({ready}/{total})"
    return PodState(
        name=(meta.name if meta else None) or "?",
        phase=phase,
        status=shown,
        ready=ready,
        total=total,
        restarts=restarts,
        node=(pod.spec.node_name if pod.spec else None) or "",
        age=age(meta.creation_timestamp if meta else None, now),
        last_termination=last,
        problem=problem,
    )


def _init_problem(pod: V1Pod) -> str:
    statuses = (pod.status.init_container_statuses if pod.status else None) or []
    for cs in statuses:
        state = cs.state
        if state and state.terminated and state.terminated.exit_code != 0:
            return f"Init:{state.terminated.reason or 'Error'}"
        if state and state.waiting and state.waiting.reason in BAD_WAITING:
            return f"Init:{state.waiting.reason}"
    return ""


def container_state(state: V1ContainerState | None) -> str:
    """`Running since …`, `Waiting: CrashLoopBackOff (back-off 5m0s …)`, `Terminated: …`."""
    if state is None:
        return "Unknown"
    if state.running:
        return f"Running since {stamp(state.running.started_at)}"
    if state.waiting:
        message = f" ({_short(state.waiting.message)})" if state.waiting.message else ""
        return f"Waiting: {state.waiting.reason or 'unknown reason'}{message}"
    if state.terminated:
        term = state.terminated
        detail = f" ({_short(term.message)})" if term.message else ""
        return (
            f"Terminated: {term.reason or 'Terminated'}, exit code {term.exit_code}"
            f" at {stamp(term.finished_at)}{detail}"
        )
    return "Unknown"


def event_time(event: CoreV1Event) -> datetime | None:
    """The newest time an event names (last seen, event time, first seen, creation)."""
    return (
        event.last_timestamp
        or event.event_time
        or event.first_timestamp
        or (event.metadata.creation_timestamp if event.metadata else None)
    )


def event_row(event: CoreV1Event, now: datetime) -> dict[str, Any]:
    """Compact data for one event."""
    involved = event.involved_object
    return {
        "type": event.type or "",
        "reason": event.reason or "",
        "object": f"{involved.kind or '?'}/{involved.name or '?'}" if involved else "?",
        "count": (event.series.count if event.series else None) or event.count or 1,
        "age": age(event_time(event), now),
        "message": _short(event.message or "", 200),
    }


def event_line(row: dict[str, Any]) -> str:
    """`Warning BackOff pod/web-1 ×12 (2m ago): Back-off restarting failed container`."""
    count = f" ×{row['count']}" if row["count"] > 1 else ""
    return (
        f"{row['type']} {row['reason']} {row['object']}{count} ({row['age']} ago): {row['message']}"
    )


@dataclass(frozen=True)
class Rollout:
    """Where a deployment's rollout stands, decided as `kubectl rollout status` does."""

    complete: bool
    failed: bool
    message: str
    data: dict[str, Any]
    code: str = "rollout_done"  # the message as a catalogue code (`card.finding.<code>`)
    counts: tuple[int, int] = (0, 0)  # the two numbers a waiting message names


def rollout(deployment: V1Deployment) -> Rollout:
    """Evaluate generation, replica counts and the Progressing condition."""
    meta, spec, status = deployment.metadata, deployment.spec, deployment.status
    desired = spec.replicas if spec and spec.replicas is not None else 1
    generation = (meta.generation if meta else None) or 0
    observed = (status.observed_generation if status else None) or 0
    total = (status.replicas if status else None) or 0
    updated = (status.updated_replicas if status else None) or 0
    ready = (status.ready_replicas if status else None) or 0
    available = (status.available_replicas if status else None) or 0
    conditions = (status.conditions if status else None) or []
    progressing = next((c for c in conditions if c.type == "Progressing"), None)
    containers = spec.template.spec.containers if spec and spec.template.spec else []
    data: dict[str, Any] = {
        "desired": desired,
        "updated": updated,
        "ready": ready,
        "available": available,
        "total": total,
        "generation": generation,
        "observed_generation": observed,
        "paused": bool(spec and spec.paused),
        "revision": ((meta.annotations or {}) if meta else {}).get(REVISION, ""),
        "images": {c.name: c.image for c in containers or []},
        "conditions": [
            {"type": c.type, "status": c.status, "reason": c.reason or ""} for c in conditions
        ],
    }
    failed = bool(progressing and progressing.reason == "ProgressDeadlineExceeded")
    counts = (0, 0)
    if generation > observed:
        code, message = (
            "rollout_unobserved",
            ("waiting for the new generation to be observed by the controller"),
        )
    elif failed:
        code, message = "rollout_failed", "rollout failed: progress deadline exceeded"
    elif updated < desired:
        code, counts = "rollout_updating", (updated, desired)
        message = f"waiting: {updated} of {desired} new replicas updated"
    elif total > updated:
        code, counts = "rollout_terminating", (total - updated, 0)
        message = f"waiting: {total - updated} old replicas pending termination"
    elif available < updated:
        code, counts = "rollout_available", (available, updated)
        message = f"waiting: {available} of {updated} updated replicas available"
    else:
        return Rollout(True, False, "successfully rolled out", data)
    return Rollout(False, failed, message, data, code, counts)


REVISION = "deployment.kubernetes.io/revision"
DATA_BUDGET = 7 * 1024


def fit(data: dict[str, Any], budget: int = DATA_BUDGET) -> dict[str, Any]:
    """Halve the longest lists until the JSON fits (`execute` drops data that does not)."""
    data = dict(data)
    while len(json.dumps(data, ensure_ascii=False, default=str)) > budget:
        lists = [(len(v), k) for k, v in data.items() if isinstance(v, list) and len(v) > 1]
        if not lists:
            break
        key = max(lists)[1]
        data[key] = data[key][: len(data[key]) // 2]
        data["trimmed"] = True
    return data


def plural(count: int, noun: str) -> str:
    """`1 pod`, `3 pods`."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _short(text: str | None, limit: int = 160) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
