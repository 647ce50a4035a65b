"""The read-only Kubernetes plugins about one pod or object: describe, logs, events.

All low risk and idempotent; see `plugins.builtin.kubernetes` for parameters and settings.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from pydantic import BaseModel

from plugins.builtin.kube_client import KubeClients, KubeError, api_error, status_message
from plugins.builtin.kube_format import (
    container_state,
    event_line,
    event_row,
    event_time,
    fit,
    plural,
    pod_state,
    stamp,
)
from plugins.builtin.kube_params import EventsParams, PodLogsParams, PodParams
from plugins.builtin.kube_read import LIST_LIMIT, KubePlugin, diagnostic_spec
from plugins.contract import PluginContext, PluginResult

if TYPE_CHECKING:
    from kubernetes_asyncio.client import ApiClient, CoreV1Event

LOG_BYTES = 1024 * 1024
LOG_KEEP = 7 * 1024


async def pod_events(
    api: ApiClient, namespace: str, name: str, kind: str, request_timeout: float
) -> list[CoreV1Event]:
    """Events about one object, newest first."""
    from kubernetes_asyncio.client import CoreV1Api

    listed = await CoreV1Api(api).list_namespaced_event(
        namespace,
        field_selector=f"involvedObject.name={name},involvedObject.kind={kind}",
        limit=LIST_LIMIT,
        _request_timeout=request_timeout,
    )
    floor = datetime.min.replace(tzinfo=UTC)
    return sorted(listed.items, key=lambda e: event_time(e) or floor, reverse=True)


class PodDescribePlugin(KubePlugin):
    """`k8s_pod_describe`: status, conditions, containers and recent events of one pod."""

    def __init__(self, clients: KubeClients, params: type[PodParams]) -> None:
        super().__init__(clients)
        self.spec = diagnostic_spec(
            "k8s_pod_describe",
            params,
            ("Pod 详情", "Describe a pod"),
            (
                "查看 Pod 的状态、条件、容器状态（含上次退出原因）和最近事件",
                "Shows a pod's status, conditions, container states and recent events",
            ),
        )

    async def run(self, ctx: PluginContext, params: BaseModel) -> PluginResult:
        """Read the pod and its events."""
        assert isinstance(params, PodParams)
        what = f"pod {params.namespace}/{params.pod}"
        return await self.guarded(params, what, lambda api: self._describe(api, params))

    async def _describe(self, api: ApiClient, params: PodParams) -> PluginResult:
        from kubernetes_asyncio.client import CoreV1Api

        pod = await CoreV1Api(api).read_namespaced_pod(
            params.pod, params.namespace, _request_timeout=self._timeout()
        )
        events = await pod_events(api, params.namespace, params.pod, "Pod", self._timeout())
        now = datetime.now(UTC)
        state = pod_state(pod, now)
        status = pod.status
        lines = [
            f"Name:       {params.pod}",
            f"Namespace:  {params.namespace}",
            f"Node:       {state.node or '<none>'}",
            f"Status:     {state.status} (phase {state.phase})",
            f"Started:    {stamp(status.start_time) if status else ''}",
            "Conditions:",
        ]
        conditions = [
            {"type": c.type, "status": c.status, "reason": c.reason or ""}
            for c in (status.conditions if status else None) or []
        ]
        lines += [f"  {c['type']:18} {c['status']}  {c['reason']}".rstrip() for c in conditions]
        lines.append("Containers:")
        containers: list[dict[str, Any]] = []
        for cs in (status.container_statuses if status else None) or []:
            last = cs.last_state.terminated if cs.last_state else None
            entry: dict[str, Any] = {
                "name": cs.name,
                "image": cs.image,
                "ready": bool(cs.ready),
                "restarts": cs.restart_count or 0,
                "state": container_state(cs.state),
            }
            lines += [
                f"  {cs.name}:",
                f"    Image:     {cs.image}",
                f"    State:     {entry['state']}",
            ]
            if last is not None:
                entry["last_reason"] = last.reason or "Terminated"
                entry["last_exit_code"] = last.exit_code
                lines.append(f"    Last:      {container_state(cs.last_state)}")
            lines.append(f"    Ready:     {bool(cs.ready)}    Restarts: {entry['restarts']}")
            containers.append(entry)
        rows = [event_row(e, now) for e in events[:15]]
        lines.append("Events:" if rows else "Events:     <none>")
        lines += [f"  {event_line(row)}" for row in rows]
        evidence = [state.line()]
        evidence += [f"container {c['name']}: {c['state']}" for c in containers]
        evidence += [
            f"container {c['name']} last terminated: {c['last_reason']} "
            f"(exit code {c['last_exit_code']})"
            for c in containers
            if "last_reason" in c
        ]
        evidence += [event_line(row) for row in rows if row["type"] == "Warning"][:5]
        problem = f": {state.problem}" if state.problem else ""
        crashed = next((c for c in containers if "last_reason" in c), None)
        if state.problem and crashed:
            problem += (
                f"; container {crashed['name']} last terminated {crashed['last_reason']} "
                f"(exit code {crashed['last_exit_code']}), {state.restarts} restarts"
            )
        verdict = "healthy" if state.healthy else "unhealthy"
        return PluginResult(
            code="pod_healthy" if state.healthy else "pod_unhealthy",
            values={"pod": f"{params.namespace}/{params.pod}", "problem": problem.lstrip(": ")},
            ok=state.healthy,
            summary=f"pod {params.namespace}/{params.pod} is {verdict}{problem}",
            data=fit(
                {
                    "pod": state.row(),
                    "phase": state.phase,
                    "conditions": conditions,
                    "containers": containers,
                    "events": rows[:10],
                }
            ),
            evidence=tuple(evidence),
            output="\n".join(lines),
        )


class PodLogsPlugin(KubePlugin):
    """`k8s_pod_logs`: the last lines of a container's log (current or previous instance)."""

    def __init__(self, clients: KubeClients, params: type[PodLogsParams]) -> None:
        super().__init__(clients)
        self.spec = diagnostic_spec(
            "k8s_pod_logs",
            params,
            ("Pod 日志", "Pod logs"),
            (
                "读取容器日志的最后若干行（可选上一次实例、按子串过滤）",
                "Reads the last lines of a container's log (previous instance, substring filter)",
            ),
        )

    async def run(self, ctx: PluginContext, params: BaseModel) -> PluginResult:
        """Fetch the tail of the log; with `contains`, keep only the matching lines."""
        assert isinstance(params, PodLogsParams)
        what = f"pod {params.namespace}/{params.pod}"
        return await self.guarded(params, what, lambda api: self._logs(api, params))

    async def _logs(self, api: ApiClient, params: PodLogsParams) -> PluginResult:
        from kubernetes_asyncio.client import CoreV1Api

        options: dict[str, Any] = {"tail_lines": params.tail_lines, "limit_bytes": LOG_BYTES}
        if params.container:
            options["container"] = params.container
        if params.previous:
            options["previous"] = True
        # raw body: the generated client would json-decode a log that happens to be JSON
        response = cast(
            Any,
            await CoreV1Api(api).read_namespaced_pod_log(
                params.pod,
                params.namespace,
                _preload_content=False,
                _request_timeout=self._timeout(),
                **options,
            ),
        )
        try:
            body: bytes = await response.read()
            code = int(response.status)
        finally:
            response.release()
        what = f"pod {params.namespace}/{params.pod}"
        if code == 400:
            detail = status_message(body) or "400 Bad Request"
            raise KubeError(f"cannot read the log of {what}: {detail}")
        if code >= 300:
            raise KubeError(api_error(code, body, None, what, params.target_name()))
        lines = body.decode(errors="replace").splitlines()
        fetched = len(lines)
        if params.contains is not None:
            lines = [line for line in lines if params.contains in line]
        kept, dropped = _tail(lines, LOG_KEEP)
        source = f"pod {params.namespace}/{params.pod}"
        if params.container:
            source += f" container {params.container}"
        if params.previous:
            source += " (previous instance)"
        pod = f"{params.namespace}/{params.pod}"
        values = {
            "pod": pod + (f" {params.container}" if params.container else ""),
            "fetched": str(fetched),
            "matched": str(len(lines)),
            "text": str(params.contains),
        }
        if params.contains is not None:
            matched = f"{len(lines)} of the last {fetched} log lines"
            summary = f"{matched} of {source} contain {params.contains!r}"
            found = "kube_log_matched"
        elif fetched:
            summary = f"last {fetched} log lines of {source}"
            found = "kube_log_lines"
        else:
            summary = f"the log of {source} is empty"
            found = "kube_log_empty"
        if params.previous:
            found += "_previous"
        output = "\n".join(kept)
        if dropped:
            output = f"… {dropped} earlier lines omitted\n{output}"
        return PluginResult(
            code=found,
            values=values,
            ok=True,
            summary=summary,
            data={
                "pod": params.pod,
                "container": params.container,
                "previous": params.previous,
                "lines_fetched": fetched,
                "lines_matched": len(lines),
            },
            evidence=tuple(line[:300] for line in kept[-5:]),
            output=output,
        )


def _tail(lines: list[str], limit: int) -> tuple[list[str], int]:
    """The last lines that fit in `limit` bytes, and how many earlier lines did not."""
    kept: list[str] = []
    size = 0
    for line in reversed(lines):
        size += len(line.encode()) + 1
        if size > limit:
            break
        kept.append(line)
    if not kept and lines:  # one huge line: keep its end
        kept.append("…" + lines[-1][-(limit // 4) :])
    kept.reverse()
    return kept, len(lines) - len(kept)


class EventsPlugin(KubePlugin):
    """`k8s_events`: recent events of a namespace or one object, Warnings only by default."""

    def __init__(self, clients: KubeClients, params: type[EventsParams]) -> None:
        super().__init__(clients)
        self.spec = diagnostic_spec(
            "k8s_events",
            params,
            ("Kubernetes 事件", "Kubernetes events"),
            (
                "列出命名空间或某个对象最近的事件（默认只看 Warning）",
                "Lists recent events of a namespace or one object (Warnings by default)",
            ),
        )

    async def run(self, ctx: PluginContext, params: BaseModel) -> PluginResult:
        """List the events, newest first; ok when no Warning was found."""
        assert isinstance(params, EventsParams)
        what = f"events in {params.namespace}"
        return await self.guarded(params, what, lambda api: self._events(api, params))

    async def _events(self, api: ApiClient, params: EventsParams) -> PluginResult:
        from kubernetes_asyncio.client import CoreV1Api

        fields = [] if params.include_normal else ["type=Warning"]
        if params.name:
            fields.append(f"involvedObject.name={params.name}")
        listed = await CoreV1Api(api).list_namespaced_event(
            params.namespace,
            field_selector=",".join(fields),
            limit=LIST_LIMIT,
            _request_timeout=self._timeout(),
        )
        floor = datetime.min.replace(tzinfo=UTC)
        events = sorted(listed.items, key=lambda e: event_time(e) or floor, reverse=True)
        now = datetime.now(UTC)
        rows = [event_row(e, now) for e in events[: params.limit]]
        warnings = [row for row in rows if row["type"] == "Warning"]
        where = params.namespace + (f" for {params.name}" if params.name else "")
        kind = "events" if params.include_normal else "warning events"
        place = params.namespace + (f"/{params.name}" if params.name else "")
        values = {"where": place, "count": str(len(events)), "top": ""}
        code = "kube_events" if params.include_normal else "kube_warnings"
        if not rows:
            summary = f"no {kind} in {where}"
            code += "_none"
        else:
            reasons: dict[str, int] = {}
            for row in warnings or rows:
                reasons[row["reason"]] = reasons.get(row["reason"], 0) + row["count"]
            top = ", ".join(f"{r} ×{n}" for r, n in sorted(reasons.items(), key=lambda x: -x[1]))
            summary = f"{plural(len(events), kind.removesuffix('s'))} in {where}: {top}"
            values["top"] = top
        return PluginResult(
            code=code,
            values=values,
            ok=not warnings,
            summary=summary,
            data=fit({"namespace": params.namespace, "total": len(events), "events": rows[:15]}),
            evidence=tuple(event_line(row) for row in rows[:10]),
            output="\n".join(event_line(row) for row in rows),
        )
