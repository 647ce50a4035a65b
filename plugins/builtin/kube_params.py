"""Parameter models of the Kubernetes plugins: every name and selector is checked before a request.

Names follow the Kubernetes rules and nothing looser: namespaces and container names are
DNS-1123 labels (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63), pod and deployment names
DNS-1123 subdomains (labels joined by dots, at most 253). Label selectors accept a safe subset
of the selector grammar: `key=value`, `key==value`, `key!=value`, `key in (a,b)`,
`key notin (a,b)`, `key` and `!key`, comma-separated, with keys and values per the label rules.
Anything else (shell metacharacters, `..`, newlines, look-alike Unicode letters, kilobytes of
text) is refused with a message that says which rule was broken, never echoing the value.

Each model reports `policy_scope()` (namespace, deployment as `service`, cluster `target`) and
`policy_target()` (the quota key, e.g. `k8s:prod/deployment/web`). `bind` fixes the configured
cluster names (see `plugins.builtin.targets`) and, for `k8s_scale`, the replica bounds.

Usage::

    Params = bind(ScaleParams, targets, scale_min=1, scale_max=20)
    Params.model_validate({"namespace": "prod", "deployment": "web", "replicas": 3})
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, ClassVar, Self, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from plugins.builtin.targets import Targets, with_targets
from plugins.contract import Risk

DNS_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?")
DNS_SUBDOMAIN = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*")
LABEL_NAME = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?")
SELECTOR_CHARS = re.compile(r"[A-Za-z0-9_.\-/=!(), ]*")
SELECTOR_LIMIT = 1000
MAX_TAIL_LINES = 1000
MAX_EVENTS = 100

_LABEL_RULE = "lower-case letters, digits and '-', starting and ending with a letter or digit"
_SELECTOR_RULE = (
    "label_selector must be comma-separated requirements like app=web, tier!=cache, "
    "env in (prod,staging), with label keys and values per the Kubernetes rules"
)


def _dns_label(what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if len(value) > 63 or not DNS_LABEL.fullmatch(value):
            raise ValueError(f"{what} must be a DNS-1123 label ({_LABEL_RULE}, at most 63)")
        return value

    return check


def _dns_subdomain(what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if len(value) > 253 or not DNS_SUBDOMAIN.fullmatch(value):
            raise ValueError(
                f"{what} must be a DNS-1123 subdomain ({_LABEL_RULE}, dot-separated, at most 253)"
            )
        return value

    return check


def _printable(value: str) -> str:
    if not value.isprintable():
        raise ValueError("contains must be one line of printable text")
    return value


Namespace = Annotated[
    str, Field(min_length=1, max_length=63), AfterValidator(_dns_label("namespace"))
]
Deployment = Annotated[
    str, Field(min_length=1, max_length=253), AfterValidator(_dns_subdomain("deployment"))
]
PodName = Annotated[str, Field(min_length=1, max_length=253), AfterValidator(_dns_subdomain("pod"))]
ObjectName = Annotated[
    str, Field(min_length=1, max_length=253), AfterValidator(_dns_subdomain("name"))
]
ContainerName = Annotated[
    str, Field(min_length=1, max_length=63), AfterValidator(_dns_label("container"))
]
TargetName = Annotated[str, Field(min_length=1, max_length=48)]
LogFilter = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_printable)]


def check_selector(value: str) -> str:
    """The selector in canonical spacing; ValueError when it leaves the safe grammar."""
    if len(value) > SELECTOR_LIMIT or not SELECTOR_CHARS.fullmatch(value):
        raise ValueError(_SELECTOR_RULE)
    parts = _split_requirements(value)
    if parts is None or not 0 < len(parts) <= 20:
        raise ValueError(_SELECTOR_RULE)
    return ",".join(_requirement(part) for part in parts)


def _split_requirements(value: str) -> list[str] | None:
    parts, depth, start = [], 0, 0
    for index, char in enumerate(value):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if depth not in (0, 1):
            return None
        if char == "," and depth == 0:
            parts.append(value[start:index])
            start = index + 1
    if depth:
        return None
    parts.append(value[start:])
    return [part.strip() for part in parts]


_EQUALITY = re.compile(r"(?P<key>[^\s=!()]+)\s*(?P<op>==|!=|=)\s*(?P<value>[^\s=!(),]*)")
_SET = re.compile(r"(?P<key>[^\s=!()]+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)")
_EXISTS = re.compile(r"(?P<neg>!?)\s*(?P<key>[^\s=!()]+)")


def _requirement(text: str) -> str:
    if match := _EQUALITY.fullmatch(text):
        key, value = _label_key(match["key"]), _label_value(match["value"])
        return f"{key}{match['op']}{value}"
    if match := _SET.fullmatch(text):
        values = [_label_value(v.strip()) for v in match["values"].split(",")]
        if not all(values):
            raise ValueError(_SELECTOR_RULE)
        return f"{_label_key(match['key'])} {match['op']} ({','.join(values)})"
    if match := _EXISTS.fullmatch(text):
        return f"{match['neg']}{_label_key(match['key'])}"
    raise ValueError(_SELECTOR_RULE)


def _label_key(key: str) -> str:
    prefix, _, name = key.rpartition("/")
    if "/" in key and not (len(prefix) <= 253 and DNS_SUBDOMAIN.fullmatch(prefix)):
        raise ValueError(_SELECTOR_RULE)
    if not (len(name) <= 63 and LABEL_NAME.fullmatch(name)):
        raise ValueError(_SELECTOR_RULE)
    return key


def _label_value(value: str) -> str:
    if value and not (len(value) <= 63 and LABEL_NAME.fullmatch(value)):
        raise ValueError(_SELECTOR_RULE)
    return value


LabelSelector = Annotated[str, Field(min_length=1), AfterValidator(check_selector)]


class KubeParams(BaseModel):
    """What every Kubernetes plugin takes: a namespace and, optionally, a configured cluster."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    default_target: ClassVar[str] = "default"

    target: TargetName | None = None
    namespace: Namespace

    def target_name(self) -> str:
        """The configured cluster this run uses."""
        return self.target or self.default_target

    def policy_scope(self) -> dict[str, str]:
        """Namespace and cluster (subclasses add the deployment as `service`)."""
        return {"namespace": self.namespace, "target": self.target_name()}


class DeploymentParams(KubeParams):
    """A namespace and a deployment (`k8s_rollout_status`, `k8s_rollout_restart`)."""

    deployment: Deployment

    def policy_scope(self) -> dict[str, str]:
        """Namespace, deployment (as service) and cluster."""
        return {**super().policy_scope(), "service": self.deployment}

    def policy_target(self) -> str:
        """Quotas count per deployment."""
        return f"k8s:{self.namespace}/deployment/{self.deployment}"


class PodsParams(KubeParams):
    """`k8s_pods`: pods of a namespace, narrowed by a label selector and/or a deployment."""

    label_selector: LabelSelector | None = None
    deployment: Deployment | None = None

    def policy_scope(self) -> dict[str, str]:
        """Namespace and cluster, plus the deployment (as service) when given."""
        scope = super().policy_scope()
        if self.deployment:
            scope["service"] = self.deployment
        return scope

    def policy_target(self) -> str:
        """Per deployment when given, else per namespace."""
        if self.deployment:
            return f"k8s:{self.namespace}/deployment/{self.deployment}"
        return f"k8s:{self.namespace}/pods"


class PodParams(KubeParams):
    """`k8s_pod_describe`: one pod."""

    pod: PodName

    def policy_target(self) -> str:
        """Quotas count per pod."""
        return f"k8s:{self.namespace}/pod/{self.pod}"


class PodLogsParams(PodParams):
    """`k8s_pod_logs`: the tail of one container's log, optionally filtered."""

    container: ContainerName | None = None
    tail_lines: int = Field(default=100, ge=1, le=MAX_TAIL_LINES)
    previous: bool = False
    contains: LogFilter | None = None


class EventsParams(KubeParams):
    """`k8s_events`: recent events of a namespace (Warning only unless asked)."""

    name: ObjectName | None = None
    include_normal: bool = False
    limit: int = Field(default=20, ge=1, le=MAX_EVENTS)

    def policy_target(self) -> str:
        """Per involved object when given, else per namespace."""
        suffix = f"/{self.name}" if self.name else ""
        return f"k8s:{self.namespace}/events{suffix}"


class ScaleParams(DeploymentParams):
    """`k8s_scale`: a deployment and a replica count inside the configured bounds."""

    scale_min: ClassVar[int] = 1
    scale_max: ClassVar[int] = 20

    replicas: int = Field(ge=0, le=10_000)

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        if self.replicas == 0 and self.scale_min > 0:
            raise ValueError(
                "scaling to 0 replicas is refused (allow it with scale_min: 0 in the "
                "kubernetes plugin settings)"
            )
        if not self.scale_min <= self.replicas <= self.scale_max:
            raise ValueError(
                f"replicas must be between {self.scale_min} and {self.scale_max} "
                "(scale_min/scale_max in the kubernetes plugin settings)"
            )
        return self

    def policy_risk(self) -> Risk:
        """Scaling to zero takes the service down: high."""
        return "high" if self.replicas == 0 else "medium"


class RollbackParams(DeploymentParams):
    """`k8s_rollback`: a deployment and, optionally, the revision to go back to."""

    to_revision: int | None = Field(default=None, ge=1, le=1_000_000_000)


M = TypeVar("M", bound=KubeParams)


def bind(model: type[M], targets: Targets, *, scale_min: int = 1, scale_max: int = 20) -> type[M]:
    """`model` restricted to the configured clusters (and replica bounds, for scale)."""
    bound = with_targets(model, targets)
    bound.default_target = targets.default
    if issubclass(bound, ScaleParams):
        bound.scale_min, bound.scale_max = scale_min, scale_max
    return bound
