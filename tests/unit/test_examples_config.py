"""The shipped example configuration loads, and says what it claims: its runbooks, fences and
approver routing are real, and its hostile-alert protection holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import load_settings
from bot.incidents.advisor import build_toolkit
from bot.operations import Toolkit
from plugins import AlertContext
from plugins.alertfields import fill

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "larkops.yaml"


@pytest.fixture
def toolkit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Toolkit:
    for name in ("DATABASE_URL", "REDIS_URL", "LARK_APP_ID", "LARK_APP_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LARKOPS_CONFIG", str(EXAMPLE))
    monkeypatch.chdir(tmp_path)
    return build_toolkit(load_settings(home=str(tmp_path)))


def test_example_loads_every_plugin_family(toolkit: Toolkit) -> None:
    names = set(toolkit.registry.names())
    for plugin in (
        "http_check",
        "host_disk",
        "command",
        "pg_locks",
        "redis_info",
        "prom_query",
        "k8s_rollout_restart",
    ):
        assert plugin in names
    assert [book.name for book in toolkit.book.runbooks][:4] == [
        "web-down",
        "postgres-connections",
        "disk-full",
        "service-down",
    ]


def test_example_policy_routes_database_fixes_to_the_dbas(toolkit: Toolkit) -> None:
    vacuum = toolkit.registry.get("pg_vacuum")
    assert vacuum is not None
    decision = toolkit.policy.evaluate(vacuum.spec, {"table": "orders"}, alert=None)
    assert decision.kind == "approve"
    assert decision.approvers == ("ou_dba_1", "ou_dba_2")
    scale = toolkit.registry.get("k8s_scale")
    assert scale is not None
    outside = toolkit.policy.evaluate(
        scale.spec, {"namespace": "kube-system", "deployment": "coredns", "replicas": 2}, alert=None
    )
    assert outside.kind == "refuse"


def test_example_runbook_never_turns_a_label_into_a_command(toolkit: Toolkit) -> None:
    hostile = AlertContext(
        "ServiceDown",
        "critical",
        {"alertname": "ServiceDown", "service": "web", "instance": "web1.internal; rm -rf /"},
        {},
        "web",
    )
    book = toolkit.book.match(hostile)
    assert book is not None
    assert book.name == "service-down"
    params = fill(dict(book.diagnose[0].params), hostile)
    tcp = toolkit.registry.get("tcp_check")
    assert tcp is not None
    decision = toolkit.policy.evaluate(tcp.spec, params, alert=hostile)
    assert decision.kind == "refuse"
    assert "rm -rf" not in decision.reason
