"""The shipped deployment and observability artifacts are real: the Kustomize base and overlay
render (kubectl) into what the bot needs, the alert rules pass promtool and fire on the series
they are about, and every metric the dashboard and the rules name is one the bot exposes.

kubectl and promtool are required: without them these tests fail, never skip (`.ci/run`
installs both).
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import re
import shutil
import subprocess
import typing
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY
from pydantic import BaseModel, SecretStr

from bot.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
OVERLAY = KUBE / "overlays" / "example"
SERVICE_MONITOR = KUBE / "components" / "servicemonitor"
DASHBOARD = ROOT / "deploy" / "grafana" / "larkops.json"
ALERTS = ROOT / "deploy" / "prometheus" / "larkops-alerts.yml"
GUIDE = ROOT / "docs" / "operator-guide.md"

METRIC_PACKAGES = ("bot", "workflows", "plugins", "storage", "cards")
# series Prometheus makes itself, not the bot
SCRAPE_SERIES = frozenset({"up"})
HTTP_PORT = 8080
APP_LABELS = {"app.kubernetes.io/name": "larkops", "app.kubernetes.io/component": "bot"}
# secrets the bot cannot run without on Kubernetes (several replicas: one webhook token)
REQUIRED_SECRETS = {
    "LARK_APP_ID",
    "LARK_APP_SECRET",
    "DATABASE_URL",
    "REDIS_URL",
    "LARKOPS_WEBHOOK_TOKEN",
}


# tools --------------------------------------------------------------------------------------


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/bin")
    if found is None:
        pytest.fail(
            f"{name} is required by tests/deploy and was not found on PATH "
            "(.ci/run installs it: kubectl, and prometheus for promtool)",
            pytrace=False,
        )
    return found


def run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=cwd, check=False)


def render(path: Path) -> list[dict[str, Any]]:
    result = run([tool("kubectl"), "kustomize", str(path)])
    assert result.returncode == 0, f"kubectl kustomize {path} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return run([tool("promtool"), *args])


# rendered objects ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return render(KUBE)


@pytest.fixture(scope="module")
def overlay() -> list[dict[str, Any]]:
    return render(OVERLAY)


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            yield doc["kind"], doc["spec"]["template"]["spec"]


def containers(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for kind, spec in pod_specs(docs):
        for container in spec["containers"] + spec.get("initContainers", []):
            yield kind, container


def env_names(docs: list[dict[str, Any]], container: dict[str, Any]) -> set[str]:
    """Every variable a container gets: `env` and the keys of the ConfigMaps in `envFrom`."""
    names = {entry["name"] for entry in container.get("env", [])}
    for source in container.get("envFrom", []):
        assert "configMapRef" in source or "secretRef" in source, source
        if "configMapRef" in source:
            names |= set(one(docs, "ConfigMap", source["configMapRef"]["name"])["data"])
    return names


def env_name(name: str) -> str:
    """The environment name of a setting (its alias; unaliased fields go by their name)."""
    alias = Settings.model_fields[name].validation_alias
    return alias if isinstance(alias, str) else name.upper()


def secret_fields() -> set[str]:
    """Environment names of the settings that hold secrets (SecretStr fields)."""
    return {
        env_name(name)
        for name, field in Settings.model_fields.items()
        if "SecretStr" in str(field.annotation) or field.annotation is SecretStr
    }


def scalar_settings() -> set[str]:
    """Environment names of the plain settings (not the structured YAML sections)."""
    names = set()
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        structured = (
            origin is dict
            or (origin is list and args and typing.get_origin(args[0]) is dict)
            or (isinstance(annotation, type) and issubclass(annotation, BaseModel))
        )
        if not structured:
            names.add(env_name(name))
    return names


# Kubernetes ---------------------------------------------------------------------------------


def test_base_renders_offline_without_secrets_or_crds(base: list[dict[str, Any]]) -> None:
    kinds = sorted(d["kind"] for d in base)
    assert kinds == sorted(
        [
            "ConfigMap",
            "ConfigMap",
            "Deployment",
            "Job",
            "PodDisruptionBudget",
            "Service",
            "ServiceAccount",
        ]
    )
    # only built-in APIs: the base applies on a cluster without the Prometheus Operator
    assert {d["apiVersion"] for d in base} <= {"v1", "apps/v1", "batch/v1", "policy/v1"}
    assert not [d for d in base if d["kind"] == "Secret"]


def test_deployment_probes_hit_the_bot_http_port(base: list[dict[str, Any]]) -> None:
    deployment = one(base, "Deployment", "larkops")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["template"]["metadata"]["labels"] == APP_LABELS
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "larkops"
    assert [*container["command"], *container["args"]] == ["larkops", "run"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["LARKOPS_HTTP_PORT"] == str(HTTP_PORT)
    assert env["LARKOPS_HTTP_HOST"] == "0.0.0.0"

    def target(probe: str) -> tuple[str, int]:
        get = container[probe]["httpGet"]
        port = get["port"]
        return get["path"], ports[port] if isinstance(port, str) else port

    assert target("readinessProbe") == ("/readyz", HTTP_PORT)
    assert target("livenessProbe") == ("/healthz", HTTP_PORT)
    assert target("startupProbe") == ("/healthz", HTTP_PORT)
    # the readiness checks wait up to 2 s each (database, coordination)
    assert container["readinessProbe"]["timeoutSeconds"] >= 5

    service = one(base, "Service", "larkops")
    assert service["spec"]["selector"] == APP_LABELS
    (port,) = service["spec"]["ports"]
    assert port["port"] == HTTP_PORT
    assert ports[port["targetPort"]] == HTTP_PORT


def test_pdb_keeps_one_bot_pod_and_selects_only_the_bot(base: list[dict[str, Any]]) -> None:
    pdb = one(base, "PodDisruptionBudget", "larkops")
    assert pdb["spec"]["minAvailable"] == 1
    selector = pdb["spec"]["selector"]["matchLabels"]
    deployment = one(base, "Deployment", "larkops")
    assert selector == deployment["spec"]["selector"]["matchLabels"] == APP_LABELS
    job_labels = one(base, "Job")["spec"]["template"]["metadata"]["labels"]
    assert not selector.items() <= job_labels.items(), "the migrate Job's pod would count"


def test_secrets_come_only_from_secret_references(base: list[dict[str, Any]]) -> None:
    secrets = secret_fields()
    assert {"LARK_APP_SECRET", "DATABASE_URL", "REDIS_URL", "OPENAI_API_KEY"} <= secrets
    for kind, container in containers(base):
        for entry in container.get("env", []):
            if entry["name"] in secrets | REQUIRED_SECRETS:
                assert "value" not in entry, f"{kind}: {entry['name']} given in clear"
                assert "secretKeyRef" in entry["valueFrom"], (kind, entry)
    for config_map in (d for d in base if d["kind"] == "ConfigMap"):
        data = config_map.get("data", {})
        assert not set(data) & secrets, f"secret settings in ConfigMap {data}"
    deployment = one(base, "Deployment", "larkops")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in container["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert set(refs) >= REQUIRED_SECRETS
    for name in REQUIRED_SECRETS:
        assert refs[name] == {"name": "larkops", "key": name}, "required: no `optional: true`"
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        assert refs[name]["optional"] is True


def test_secret_example_is_documentation_only(base: list[dict[str, Any]]) -> None:
    example = yaml.safe_load((KUBE / "secret.example.yaml").read_text(encoding="utf-8"))
    assert example["kind"] == "Secret"
    assert example["metadata"]["name"] == "larkops"
    assert set(example["stringData"]) >= REQUIRED_SECRETS
    for path in KUBE.rglob("kustomization.yaml"):
        listed = yaml.safe_load(path.read_text(encoding="utf-8")).get("resources", [])
        assert not [item for item in listed if "secret" in item], path
    referenced = {
        entry["valueFrom"]["secretKeyRef"]["name"]
        for _, container in containers(base)
        for entry in container.get("env", [])
        if "secretKeyRef" in entry.get("valueFrom", {})
    }
    assert referenced == {"larkops"}


def test_environment_names_are_the_configuration_contract(base: list[dict[str, Any]]) -> None:
    contract = {env_name(name) for name in Settings.model_fields}
    for kind, container in containers(base):
        names = env_names(base, container)
        assert names, kind
        assert names <= contract, f"{kind}: not settings of bot/config.py: {names - contract}"


def test_pod_is_hardened_and_writes_only_to_empty_dirs(base: list[dict[str, Any]]) -> None:
    for kind, spec in pod_specs(base):
        security = spec["securityContext"]
        assert security["runAsNonRoot"] is True, kind
        assert security["runAsUser"] == 10001, kind
        assert spec["enableServiceLinks"] is False, kind
        volumes = {v["name"]: v for v in spec["volumes"]}
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, kind
            assert context["allowPrivilegeEscalation"] is False, kind
            assert context["capabilities"]["drop"] == ["ALL"], kind
            assert "memory" in container["resources"]["limits"], kind
            env = {e["name"]: e.get("value") for e in container["env"]}
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert "emptyDir" in volumes[mounts[env["LARKOPS_HOME"]]], kind
            assert "emptyDir" in volumes[mounts["/tmp"]], kind
    deployment = one(base, "Deployment", "larkops")["spec"]
    spec = deployment["template"]["spec"]
    assert spec["serviceAccountName"] == "larkops"
    assert one(base, "ServiceAccount", "larkops")["automountServiceAccountToken"] is False
    assert 30 <= spec["terminationGracePeriodSeconds"] <= 120
    assert {c["topologyKey"] for c in spec["topologySpreadConstraints"]} == {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    }
    assert deployment["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def mounted_config(base: list[dict[str, Any]]) -> str:
    """The text of the file LARKOPS_CONFIG names, from the ConfigMap mounted there."""
    spec = one(base, "Deployment", "larkops")["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    config = Path(str(env["LARKOPS_CONFIG"]))
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == str(config.parent)]
    assert mount.get("readOnly") is True
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    data: dict[str, str] = one(base, "ConfigMap", volume["configMap"]["name"])["data"]
    assert config.name in data, f"{config} is not in the mounted ConfigMap"
    return data[config.name]


def test_config_file_is_mounted_where_larkops_config_points(base: list[dict[str, Any]]) -> None:
    assert yaml.safe_load(mounted_config(base))


def test_shipped_settings_are_accepted_by_the_bot(
    base: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The env ConfigMap, the literal env of the Deployment and the mounted YAML load through
    bot.config (and the plugin/policy sections through the toolkit) without an error."""
    from bot.incidents.advisor import build_toolkit

    spec = one(base, "Deployment", "larkops")["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    for name in secret_fields() | REQUIRED_SECRETS:
        monkeypatch.delenv(name, raising=False)
    config_map = one(base, "ConfigMap", container["envFrom"][0]["configMapRef"]["name"])
    literal = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    for name, value in {**config_map["data"], **literal}.items():
        monkeypatch.setenv(name, value)
    config = tmp_path / "larkops.yaml"
    config.write_text(mounted_config(base), encoding="utf-8")
    monkeypatch.setenv("LARKOPS_CONFIG", str(config))
    monkeypatch.setenv("LARKOPS_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)  # no stray .env
    settings = load_settings()
    assert settings.http_port == HTTP_PORT
    assert settings.log_format == "json"
    assert settings.config_file == config
    build_toolkit(settings)


def test_migrate_job_runs_larkops_migrate_against_the_secret_database(
    base: list[dict[str, Any]],
) -> None:
    job = one(base, "Job", "larkops-migrate")
    spec = job["spec"]["template"]["spec"]
    assert spec["restartPolicy"] == "Never"
    (container,) = spec["containers"]
    assert [*container["command"], *container["args"]] == ["larkops", "migrate"]
    env = {e["name"]: e for e in container["env"]}
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "larkops",
        "key": "DATABASE_URL",
    }
    assert job["spec"]["backoffLimit"] >= 1
    assert job["spec"]["activeDeadlineSeconds"] > 0


def test_example_overlay_pins_the_image_and_patches_replicas(
    overlay: list[dict[str, Any]],
) -> None:
    assert {d["metadata"].get("namespace") for d in overlay} == {"larkops"}
    assert one(overlay, "Deployment", "larkops")["spec"]["replicas"] == 3
    images = {container["image"] for _, container in containers(overlay)}
    assert images == {"registry.example.com/platform/larkops:0.1.0"}
    assert not [d for d in overlay if d["kind"] == "Secret"]
    deployment = one(overlay, "Deployment", "larkops")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env_map = one(overlay, "ConfigMap", container["envFrom"][0]["configMapRef"]["name"])
    assert env_map["data"]["LARK_DOMAIN"] == "https://open.larksuite.com"
    assert env_map["data"]["LARKOPS_TIMEZONE"] == "Asia/Shanghai"  # merged, not replaced


def test_service_monitor_component_scrapes_metrics_as_job_larkops(
    base: list[dict[str, Any]], tmp_path: Path
) -> None:
    # kustomize refuses absolute paths: refer to the repository relatively from tmp_path
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "resources": [os.path.relpath(KUBE / "base", tmp_path)],
                "components": [os.path.relpath(SERVICE_MONITOR, tmp_path)],
            }
        ),
        encoding="utf-8",
    )
    docs = render(tmp_path)
    monitor = one(docs, "ServiceMonitor", "larkops")
    service = one(base, "Service", "larkops")
    labels = service["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    # the dashboard and the alert rules select job="larkops"
    assert labels[monitor["spec"]["jobLabel"]] == "larkops"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"]
    assert endpoint["path"] == "/metrics"


# Prometheus rules ---------------------------------------------------------------------------


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_promtool_accepts_the_alert_rules() -> None:
    result = promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_for_severity_and_a_runbook_section() -> None:
    anchors = {
        re.sub(r"[^a-z0-9 _-]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in GUIDE.read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    }
    rules = alert_rules()
    assert len({rule["alert"] for rule in rules}) == len(rules)
    for rule in rules:
        name = rule["alert"]
        assert re.fullmatch(r"Larkops[A-Za-z]+", name)
        assert re.fullmatch(r"\d+[smh]", rule["for"]), name
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), name
        notes = rule["annotations"]
        assert notes["summary"], name
        assert "Runbook" in notes["description"], name
        page, anchor = notes["runbook_url"].split("#")
        assert page == "docs/operator-guide.md", name
        assert anchor in anchors, f"{name}: no section #{anchor} in the guide"


def test_operator_guide_documents_every_setting_and_the_lark_contract() -> None:
    guide = GUIDE.read_text(encoding="utf-8")
    missing = {name for name in scalar_settings() if f"`{name}`" not in guide}
    assert not missing, f"docs/operator-guide.md does not document {sorted(missing)}"
    for needed in (
        "im:message:send_as_bot",
        "im:message.group_msg",
        "im:message.group_at_msg:readonly",
        "im.message.receive_v1",
        "card.action.trigger",
        "deploy/grafana/larkops.json",
        "deploy/prometheus/larkops-alerts.yml",
        "pg_dump",
    ):
        assert needed in guide, needed


def series(name: str, values: str, **labels: str) -> dict[str, str]:
    pairs = ", ".join(
        f'{k}="{v}"' for k, v in {"job": "larkops", "instance": "a", **labels}.items()
    )
    return {"series": f"{name}{{{pairs}}}", "values": values}


ACCEPT = "larkops_inbound_accept_seconds_bucket"
API = "larkops_lark_api_calls_total"
PENDING = "larkops_inbound_pending"
OLDEST = "larkops_inbound_oldest_pending_seconds"
LEADER = "larkops_scheduler_leader"
APPROVALS = "larkops_approvals_total"
PLUGINS = "larkops_plugin_executions_total"
REFUSALS = "larkops_llm_refusals_total"
HEALTHY = [
    series("up", "1x40"),
    series("larkops_ready", "1x40"),
    series("larkops_lark_connected", "1x40"),
    series("larkops_component_up", "1x40", component="database"),
    series(ACCEPT, "0+20x40", kind="message", le="0.01"),
    series(ACCEPT, "0+20x40", kind="message", le="+Inf"),
    series(API, "0+50x40", endpoint="im.message.create", outcome="ok"),
    series(PENDING, "0x40", type="im.message.receive_v1"),
    series(OLDEST, "0x40"),
    series(LEADER, "1x40"),
    series(LEADER, "0x40", instance="b"),  # one leader among the replicas is right
    series(APPROVALS, "0+1x40", gate="diagnosis", outcome="approved"),
    series(APPROVALS, "0x40", gate="diagnosis", outcome="expired"),
    series(PLUGINS, "0+5x40", plugin="http_check", category="diagnostic", result="ok"),
    # a check that finds the problem it looks for is data, not a broken plugin
    series(PLUGINS, "0+1x40", plugin="http_check", category="diagnostic", result="failed"),
    series(PLUGINS, "0+1x40", plugin="command", category="remediation", result="ok"),
    series(REFUSALS, "0x40", provider="openai", reason="budget_day"),
    series(REFUSALS, "0+1x40", provider="openai", reason="rate"),  # pacing, not a budget
]
SYMPTOMS = [
    series("larkops_lark_connected", "0x40"),
    series("larkops_lark_connected", "0x40", instance="b"),
    series("larkops_component_up", "0x40", component="database"),
    series(ACCEPT, "0x40", kind="card_action", le="1"),
    series(ACCEPT, "0+10x40", kind="card_action", le="2.5"),
    series(ACCEPT, "0+10x40", kind="card_action", le="+Inf"),
    series(API, "0+90x40", endpoint="im.message.create", outcome="ok"),
    series(API, "0+10x40", endpoint="im.message.create", outcome="server_error"),
    series(
        "larkops_http_requests_total",
        "0+1x40",
        route="/webhooks/{source}",
        method="POST",
        status="401",
    ),
    series(PENDING, "0+5x40", type="im.message.receive_v1"),  # 5 more each minute
    series(OLDEST, "0+10x40"),  # past 60 s from minute 7
    series(LEADER, "0x40"),
    series(LEADER, "0x40", instance="b"),
    series(APPROVALS, "0+1x40", gate="proposal", outcome="expired"),
    series(PLUGINS, "0+1x40", plugin="command", category="remediation", result="error"),
    series(PLUGINS, "0+1x40", plugin="command", category="remediation", result="failed"),
    series(REFUSALS, "0+1x40", provider="openai", reason="budget_day"),
]
# (minute, alert, labels each expected alert has beyond alertname); [] = must not fire
FIRING: list[tuple[int, str, list[dict[str, str]]]] = [
    (4, "LarkopsNoLarkConnection", []),
    (6, "LarkopsNoLarkConnection", [{"severity": "critical"}]),
    (
        6,
        "LarkopsDependencyDown",
        [{"severity": "critical", "job": "larkops", "instance": "a", "component": "database"}],
    ),
    (15, "LarkopsEventAckSlow", [{"severity": "warning", "kind": "card_action"}]),
    (15, "LarkopsLarkApiErrors", [{"severity": "warning"}]),
    (15, "LarkopsWebhookUnauthorized", [{"severity": "warning"}]),
    (6, "LarkopsInboxBacklog", []),
    (15, "LarkopsInboxBacklog", [{"severity": "warning"}]),
    (20, "LarkopsInboxGrowing", [{"severity": "warning"}]),
    (1, "LarkopsNoSchedulerLeader", []),
    (5, "LarkopsNoSchedulerLeader", [{"severity": "warning"}]),
    (15, "LarkopsApprovalsExpiring", [{"severity": "warning", "gate": "proposal"}]),
    (15, "LarkopsPluginErrors", [{"severity": "warning", "plugin": "command"}]),
    (15, "LarkopsRemediationsFailing", [{"severity": "warning", "plugin": "command"}]),
    (
        15,
        "LarkopsLlmBudgetRefusals",
        [{"severity": "warning", "provider": "openai", "reason": "budget_day"}],
    ),
]
QUIET = (
    "LarkopsTargetDown",
    "LarkopsAbsent",
    "LarkopsNoReadyReplica",
    "LarkopsReplicaNotReady",
    "LarkopsDependencyDown",
    "LarkopsNoLarkConnection",
    "LarkopsLarkDisconnected",
    "LarkopsEventAckSlow",
    "LarkopsLarkApiErrors",
    "LarkopsLarkApiRateLimited",
    "LarkopsInboxBacklog",
    "LarkopsInboxGrowing",
    "LarkopsNoSchedulerLeader",
    "LarkopsApprovalsExpiring",
    "LarkopsPluginErrors",
    "LarkopsRemediationsFailing",
    "LarkopsLlmBudgetRefusals",
)


def test_alerts_fire_on_their_symptoms_and_stay_quiet_when_healthy(tmp_path: Path) -> None:
    """promtool unit tests over synthetic series (annotations stripped: they are prose)."""
    rules = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    stripped = tmp_path / "rules.yml"
    stripped.write_text(yaml.safe_dump(rules), encoding="utf-8")
    cases = [
        {
            "name": "a healthy installation raises nothing",
            "interval": "1m",
            "input_series": HEALTHY,
            "alert_rule_test": [
                {"eval_time": "30m", "alertname": name, "exp_alerts": []} for name in QUIET
            ],
        },
        {
            "name": "what the rules are about raises them",
            "interval": "1m",
            "input_series": SYMPTOMS,
            "alert_rule_test": [
                {
                    "eval_time": f"{minute}m",
                    "alertname": name,
                    "exp_alerts": [{"exp_labels": labels} for labels in expected],
                }
                for minute, name, expected in FIRING
            ],
        },
        {
            "name": "a bot that exposes no scheduler gauge has no leader",
            "interval": "1m",
            "input_series": [series("up", "1x10")],
            "alert_rule_test": [
                {
                    "eval_time": "5m",
                    "alertname": "LarkopsNoSchedulerLeader",
                    "exp_alerts": [{"exp_labels": {"severity": "warning", "job": "larkops"}}],
                }
            ],
        },
    ]
    tests = tmp_path / "tests.yml"
    tests.write_text(
        yaml.safe_dump(
            {"rule_files": [str(stripped)], "evaluation_interval": "1m", "tests": cases}
        ),
        encoding="utf-8",
    )
    result = promtool("test", "rules", str(tests))
    assert result.returncode == 0, result.stdout + result.stderr


# metric names -------------------------------------------------------------------------------


@cache
def exposed_series() -> dict[str, str]:
    """Sample names the bot's default registry exposes -> their family name. Every module of
    the app is imported first, so metrics defined next to the code they measure are there."""
    for package in METRIC_PACKAGES:
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, package + "."):
            importlib.import_module(info.name)
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "summary": ("", "_sum", "_count"),
        "info": ("_info",),
        "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    }
    names: dict[str, str] = {}
    for family in REGISTRY.collect():
        for suffix in suffixes.get(family.type, ("",)):
            names[family.name + suffix] = family.name
    return names


METRIC_PREFIXES = r"(?:larkops|process|python)_[a-zA-Z0-9_:]*"


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: every selector `name{…}` and every identifier with
    one of the bot's prefixes (catches a bare `name[5m]` too)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values are not names
    names = set(re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{", expr))
    names |= set(re.findall(rf"\b{METRIC_PREFIXES}", expr))
    return names - {"by", "without", "on", "ignoring", "group_left", "group_right"}


def load_dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def dashboard_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # collapsed rows keep their panels inside
    return panels


def dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    exprs = [
        target["expr"]
        for panel in dashboard_panels(dashboard)
        for target in panel.get("targets", [])
    ]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            exprs.append(str(variable["definition"]))
    return exprs


def test_rules_and_dashboard_name_only_metrics_the_bot_exposes() -> None:
    exposed = set(exposed_series()) | SCRAPE_SERIES
    used_by_rules = set().union(*(metric_names(rule["expr"]) for rule in alert_rules()))
    assert used_by_rules
    assert used_by_rules <= exposed, used_by_rules - exposed
    label_values = re.compile(r"label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)")
    used_by_dashboard: set[str] = set()
    for expr in dashboard_exprs(load_dashboard()):
        used_by_dashboard |= metric_names(expr) | set(label_values.findall(expr))
    assert used_by_dashboard
    assert used_by_dashboard <= exposed, used_by_dashboard - exposed


def test_dashboard_has_a_panel_for_every_larkops_metric_family() -> None:
    dashboard = load_dashboard()
    used: set[str] = set()
    for panel in dashboard_panels(dashboard):
        for target in panel.get("targets", []):
            used |= metric_names(target["expr"])
    series = exposed_series()
    covered = {series[name] for name in used if name in series}
    families = {family for family in series.values() if family.startswith("larkops_")}
    assert families <= covered, f"no dashboard panel for {sorted(families - covered)}"


def test_dashboard_is_valid_grafana_json_with_a_datasource_variable() -> None:
    dashboard = load_dashboard()
    assert dashboard["schemaVersion"] >= 36
    assert dashboard["uid"]
    assert dashboard["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    source = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
    panels = dashboard_panels(dashboard)
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    graphs = [panel for panel in panels if panel["type"] != "row"]
    assert len(graphs) >= 20
    for panel in graphs:
        title = panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, title
        assert grid["h"] > 0, title
        assert panel["datasource"] == source, title
        assert panel["targets"], f"panel {title!r} has no query"
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), title
        for target in panel["targets"]:
            assert target["datasource"] == source, title
            assert target["expr"].strip(), title
            assert metric_names(target["expr"]), f"{title!r}: no metric in {target['expr']}"
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == source


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses each panel query, given as a recording rule with the dashboard's
    variables filled in the way Grafana does."""
    values = {"$__rate_interval": "5m", "$job": "larkops", "$instance": ".*"}
    rules = []
    for number, expr in enumerate(
        target["expr"]
        for panel in dashboard_panels(load_dashboard())
        for target in panel.get("targets", [])
    ):
        for variable, value in values.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"unknown variable in {expr}"
        rules.append({"record": f"dashboard:query_{number}", "expr": expr})
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
