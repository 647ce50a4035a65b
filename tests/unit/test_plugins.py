"""Plugin registry, discovery, `execute` and the checks made when configuration is loaded."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from plugins import (
    AlertContext,
    PluginContext,
    PluginRegistry,
    PluginResult,
    PluginSpec,
    RunbookBook,
    discover,
    execute,
)
from plugins.alertfields import MissingField, fill
from plugins.builtin.argv import load_template
from plugins.builtin.http_check import HttpCheckParams
from plugins.execution import OUTPUT_LIMIT
from storage.redaction import MASK, Redactor
from tests.support.cancellation import cancel_at_every_turn, ready


class Words(BaseModel):
    word: str
    repeat: int = 1


SPEC = PluginSpec(
    name="say",
    category="diagnostic",
    risk="low",
    params=Words,
    timeout=2,
    idempotent=True,
    supports_dry_run=False,
    title_zh="说",
    title_en="Say",
    description_zh="重复一个词",
    description_en="Repeats a word",
)


class SayPlugin:
    """Repeats a word; a real, tiny plugin for the registry tests."""

    def __init__(self, spec: PluginSpec = SPEC) -> None:
        self.spec = spec
        self.runs = 0

    async def run(self, ctx: PluginContext, params: BaseModel) -> PluginResult:
        assert isinstance(params, Words)
        self.runs += 1
        text = " ".join([params.word] * params.repeat)
        return PluginResult(ok=True, summary=text, output=text, evidence=(text,) * params.repeat)


class BrokenPlugin(SayPlugin):
    async def run(self, ctx: PluginContext, params: BaseModel) -> PluginResult:
        raise RuntimeError("disk on fire")


class SlowPlugin(SayPlugin):
    async def run(self, ctx: PluginContext, params: BaseModel) -> PluginResult:
        await asyncio.sleep(30)  # a plugin that hangs: its spec's timeout must cut it off
        raise AssertionError("not reached")


class SyncPlugin:
    spec = SPEC

    def run(self, ctx: PluginContext, params: BaseModel) -> PluginResult:
        return PluginResult(ok=True, summary="sync")


def registry_with(*plugins: Any, redactor: Redactor | None = None) -> PluginRegistry:
    registry = PluginRegistry(redactor=redactor)
    for plugin in plugins:
        registry.register(plugin)
    return registry


# --- registry -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"name": ""}, "name is empty"),
        ({"name": "Bad Name"}, "name must be"),
        ({"timeout": 0}, "timeout must be a positive"),
        ({"timeout": -1}, "timeout must be a positive"),
        ({"timeout": float("nan")}, "timeout must be a positive"),
        ({"params": dict}, "params must be a pydantic BaseModel"),
        ({"params": Words(word="x")}, "params must be a pydantic BaseModel"),
        ({"risk": "extreme"}, "risk must be one of"),
        ({"category": "magic"}, "category must be one of"),
        ({"title_en": " "}, "title_zh and title_en"),
    ],
)
def test_register_refuses_a_bad_spec_with_the_reason(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        PluginRegistry().register(SayPlugin(replace(SPEC, **change)))


def test_register_refuses_duplicates_and_sync_run() -> None:
    registry = registry_with(SayPlugin())
    with pytest.raises(ValueError, match="'say' is already registered"):
        registry.register(SayPlugin())
    with pytest.raises(ValueError, match="async"):
        PluginRegistry().register(SyncPlugin())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be a PluginSpec"):
        PluginRegistry().register(object())  # type: ignore[arg-type]


def test_names_by_category_and_disable_enable() -> None:
    fix = SayPlugin(replace(SPEC, name="fix", category="remediation", risk="medium"))
    registry = registry_with(SayPlugin(), fix)
    assert registry.names() == ["fix", "say"]
    assert registry.names("remediation") == ["fix"]
    registry.disable("fix")
    assert registry.names() == ["say"]
    assert registry.names(include_disabled=True) == ["fix", "say"]
    assert not registry.is_enabled("fix")
    registry.enable("fix")
    assert registry.is_enabled("fix")
    with pytest.raises(KeyError):
        registry.disable("nope")


# --- discovery ----------------------------------------------------------------------------


ALWAYS = [
    "dns_resolve",
    "host_disk",
    "host_load",
    "host_log_tail",
    "host_memory",
    "host_top",
    "http_check",
    "tcp_check",
]


def test_discover_builtins_command_only_with_templates() -> None:
    assert discover().names() == ALWAYS
    assert discover().names("remediation") == []
    templates = {"hello": {"argv": ["/bin/echo", "hello"]}}
    registry = discover({"settings": {"command": {"templates": templates}}})
    assert registry.names() == sorted([*ALWAYS, "command"])
    assert registry.names("remediation") == ["command"]


def test_server_plugins_only_with_targets() -> None:
    registry = discover(
        {
            "settings": {
                "postgres": {"targets": {"main": {"dsn": "postgresql://m:pw@db1:5432/app"}}},
                "redis": {"targets": {"cache": {"url": "redis://cache1:6379/0"}}},
                "prometheus": {"targets": {"prom": {"url": "http://prom:9090"}}},
                "kubernetes": {},
            }
        }
    )
    names = set(registry.names())
    assert {"pg_locks", "pg_vacuum", "redis_slowlog", "prom_query", "k8s_pods"} <= names
    assert {"pg_cancel_backend", "pg_vacuum", "k8s_rollout_restart", "k8s_scale"} <= set(
        registry.names("remediation")
    )


def test_discover_disables_by_config_and_refuses_unknown_names() -> None:
    registry = discover({"disabled": ["http_check"]})
    assert "http_check" not in registry.names()
    assert registry.get("http_check") is not None
    with pytest.raises(ValueError, match="unknown plugin 'nope'"):
        discover({"disabled": ["nope"]})


PLUGIN_MODULE = """
from pydantic import BaseModel
from plugins.contract import PluginContext, PluginResult, PluginSpec

class Params(BaseModel):
    pass

class Greeter:
    def __init__(self, name, greeting):
        self.greeting = greeting
        self.spec = PluginSpec(
            name=name, category="diagnostic", risk="low", params=Params, timeout=1,
            idempotent=True, supports_dry_run=False, title_zh="问候", title_en="Greet",
            description_zh="", description_en="",
        )

    async def run(self, ctx, params):
        return PluginResult(ok=True, summary=self.greeting)

def create_plugin(settings):
    return Greeter(settings.get("name", "{default}"), settings.get("greeting", "hi"))
"""


async def test_discover_loads_a_plugin_directory(tmp_path: Path) -> None:
    (tmp_path / "greeter.py").write_text(PLUGIN_MODULE.replace("{default}", "greeter"))
    (tmp_path / "_private.py").write_text("raise RuntimeError('never imported')")
    registry = discover({"directory": str(tmp_path), "settings": {"greeter": {"greeting": "你好"}}})
    assert registry.names() == sorted([*ALWAYS, "greeter"])
    result = await execute(registry, "greeter", PluginContext(), {})
    assert (result.ok, result.summary) == (True, "你好")


def test_discover_names_a_broken_plugin_module(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("import no_such_module_anywhere\n")
    with pytest.raises(ValueError, match=r"broken\.py: cannot load: ModuleNotFoundError"):
        discover({"directory": str(tmp_path)})
    (tmp_path / "broken.py").write_text("x = 1\n")
    with pytest.raises(ValueError, match="defines no create_plugin"):
        discover({"directory": str(tmp_path)})


async def test_discover_loads_the_entry_point_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real installed distribution (a dist-info on sys.path) declaring larkops.plugins."""
    (tmp_path / "larkops_ep_demo.py").write_text(PLUGIN_MODULE.replace("{default}", "ep_demo"))
    info = tmp_path / "larkops_ep_demo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: larkops-ep-demo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[larkops.plugins]\nep_demo = larkops_ep_demo:create_plugin\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        registry = discover({"settings": {"ep_demo": {"greeting": "hello from an entry point"}}})
        assert "ep_demo" in registry.names()
        result = await execute(registry, "ep_demo", PluginContext(), {})
        assert result.summary == "hello from an entry point"
        assert "ep_demo" not in discover({"entry_points": False}).names()
    finally:
        sys.modules.pop("larkops_ep_demo", None)


# --- execute ------------------------------------------------------------------------------


async def test_execute_validates_params_and_never_raises() -> None:
    plugin = SayPlugin()
    registry = registry_with(plugin)
    result = await execute(registry, "say", PluginContext(), {"word": "x", "repeat": "many"})
    assert not result.ok
    assert result.summary.startswith("invalid parameters: repeat:")
    assert "many" not in result.summary  # input values are not echoed
    assert plugin.runs == 0
    unknown = await execute(registry, "nope", PluginContext(), {})
    assert (unknown.ok, unknown.summary) == (False, "unknown plugin 'nope'")
    registry.disable("say")
    disabled = await execute(registry, "say", PluginContext(), {"word": "x"})
    assert (disabled.ok, disabled.summary) == (False, "plugin 'say' is disabled")
    assert plugin.runs == 0


async def test_execute_turns_exceptions_and_timeouts_into_failures() -> None:
    broken = await execute(registry_with(BrokenPlugin()), "say", PluginContext(), {"word": "x"})
    assert (broken.ok, broken.summary) == (False, "say failed: RuntimeError: disk on fire")
    fast = replace(SPEC, timeout=0.05)
    slow = await execute(registry_with(SlowPlugin(fast)), "say", PluginContext(), {"word": "x"})
    assert (slow.ok, slow.summary) == (False, "say timed out after 0.05s")


class SteppingPlugin(SayPlugin):
    """Answers after a few awaits (a quick network round trip or two)."""

    async def run(self, ctx: PluginContext, params: BaseModel) -> PluginResult:
        for _ in range(3):
            await asyncio.sleep(0)
        return await super().run(ctx, params)


async def test_a_cancelled_execution_always_ends_cancelled() -> None:
    """Cancelled at any event-loop turn (a stop(), a run whose lease another worker took),
    an execution ends cancelled: it never returns the plugin's result as if it had not been
    cancelled (`asyncio.wait_for` did, on Python 3.11, when cancelled as the plugin answered)."""
    plugin = SteppingPlugin()
    registry = registry_with(plugin)
    sweep = await cancel_at_every_turn(
        lambda: ready(execute(registry, "say", PluginContext(), {"word": "x"}))
    )
    assert sweep.result.ok
    assert sweep.lost == []  # turns at which the cancellation was lost
    assert sweep.turns > 3  # the sweep went through the plugin's steps


async def test_execute_caps_output_and_evidence() -> None:
    registry = registry_with(SayPlugin())
    result = await execute(registry, "say", PluginContext(), {"word": "日志" * 50, "repeat": 200})
    assert result.ok
    assert len(result.output.encode()) <= OUTPUT_LIMIT
    assert result.output.endswith("more bytes cut]")
    assert len(result.evidence) == 21
    assert result.evidence[-1] == "… 180 more evidence lines dropped"
    assert len(result.summary) <= 500


async def test_execute_redacts_secrets_everywhere() -> None:
    registry = registry_with(SayPlugin(), redactor=Redactor(known=["configured-secret"]))
    word = "password=hunter22 configured-secret"
    result = await execute(registry, "say", PluginContext(), {"word": word})
    for text in (result.summary, result.output, *result.evidence):
        assert "hunter22" not in text
        assert "configured-secret" not in text
        assert MASK in text


async def test_remediation_without_dry_run_support_is_not_run_in_a_dry_run() -> None:
    plugin = SayPlugin(replace(SPEC, category="remediation", risk="medium"))
    result = await execute(registry_with(plugin), "say", PluginContext(dry_run=True), {"word": "x"})
    assert not result.ok
    assert "does not support dry runs" in result.summary
    assert plugin.runs == 0


# --- configuration checks -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ({"argv": ["{tool}", "x"], "params": {"tool": ".+"}}, "executable may not contain"),
        ({"argv": ["bin/echo"]}, "must be absolute or a bare name"),
        ({"argv": ["no-such-program-anywhere"]}, "not found"),
        ({"argv": ["/bin/echo", "{a}"]}, "placeholders without a pattern"),
        ({"argv": ["/bin/echo"], "params": {"a": "x"}}, "patterns without a placeholder"),
        ({"argv": ["/bin/echo", "{a"], "params": {}}, "stray"),
        ({"argv": ["/bin/echo", "{a}"], "params": {"a": "(unclosed"}}, "bad regex"),
        ({"argv": ["/bin/echo"], "risk": "low"}, "risk may only raise"),
        ({"argv": ["/bin/echo"], "shell": True}, "Extra inputs are not permitted"),
        ({"argv": []}, "at least 1 item"),
    ],
)
def test_command_templates_are_checked_at_load(template: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        load_template("t", template)


def test_command_template_resolves_the_executable_and_renders_one_element_per_value() -> None:
    template = load_template(
        "unit",
        {
            "argv": ["echo", "--unit={name}.service", "{{literal}}", "{name}"],
            "params": {"name": "[a-z]+"},
        },
    )
    assert template.executable.startswith("/")
    assert template.executable.endswith("/echo")
    assert template.render({"name": "web"}) == [
        template.executable,
        "--unit=web.service",
        "{literal}",
        "web",
    ]
    assert template.problems({"name": "web"}) == []
    assert template.problems({}) == ["missing argument 'name'"]
    assert template.problems({"name": "web\n"}) == [
        "argument 'name' does not match its allowed pattern"
    ]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/", "scheme must be http or https"),
        ("file:///etc/passwd", "scheme must be http or https"),
        ("http://user:pw@example.com/", "credentials in URLs"),
        ("http://example.com\\@evil.com/", "backslashes"),
        ("http://example.com/ $(reboot)", "spaces"),
        ("http:///path-only", "no host"),
        ("http://example.com:99999/", "port is out of range"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[::ffff:169.254.169.254]/", "link-local"),
        ("http://0.0.0.0:8080/", "link-local"),
    ],
)
def test_http_check_refuses_urls_it_must_not_fetch(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        HttpCheckParams(url=url)


def test_http_check_body_text_needs_get() -> None:
    with pytest.raises(ValueError, match="body_contains needs method GET"):
        HttpCheckParams(url="http://x/", method="HEAD", body_contains="ok")


# --- runbook configuration and templating -------------------------------------------------

ALERT = AlertContext(
    title="Web down",
    severity="critical",
    labels={"alertname": "WebDown", "service": "web", "instance": "{labels.secret}"},
    annotations={"url": "http://127.0.0.1:9/health", "secret": "s"},
    service="web",
)


def test_fill_replaces_placeholders_once_and_requires_the_fields() -> None:
    params: Mapping[str, Any] = {
        "url": "{annotations.url}?from={labels.instance}",
        "nested": ["{service}", 3, {"sev": "{severity}"}],
    }
    assert fill(params, ALERT) == {
        "url": "http://127.0.0.1:9/health?from={labels.secret}",  # inserted text stays literal
        "nested": ["web", 3, {"sev": "critical"}],
    }
    with pytest.raises(MissingField, match=r"the alert has no labels\.pod"):
        fill({"x": "{labels.pod}"}, ALERT)


@pytest.mark.parametrize(
    ("runbook", "reason"),
    [
        ({"name": "a", "diagnose": [{"plugin": "nope"}]}, "unknown plugin 'nope'"),
        ({"name": "a", "match": {"x": "("}}, "bad regex"),
        (
            {"name": "a", "diagnose": [{"plugin": "http_check", "params": {"url": "{label.x}"}}]},
            r"unknown placeholder \{label.x\}",
        ),
        ({"name": "a", "propose": {"plugin": "http_check"}}, "not a remediation plugin"),
        ({"name": "a", "diagnose": [{"plugin": "command"}]}, "not a diagnostic plugin"),
        ({"name": "a", "verify": {"plugin": "http_check"}, "extra": 1}, "Extra inputs"),
    ],
)
def test_runbooks_are_checked_at_load(runbook: dict[str, Any], reason: str) -> None:
    registry = discover(
        {"settings": {"command": {"templates": {"hello": {"argv": ["/bin/echo", "hi"]}}}}}
    )
    with pytest.raises(ValueError, match=reason):
        RunbookBook.from_config([runbook], registry)


def test_runbook_matching_is_first_match_with_full_regexes() -> None:
    registry = discover()
    book = RunbookBook.from_config(
        [
            {"name": "exact", "match": {"alertname": "Web"}},
            {"name": "web", "match": {"alertname": "Web.*", "annotations.url": "http://.+"}},
            {"name": "pods", "match": {"pod": ".+"}},
        ],
        registry,
    )
    matched = book.match(ALERT)
    assert matched is not None
    assert matched.name == "web"
    no_url = replace(ALERT, annotations={})
    assert book.match(no_url) is None
    only_label_url = replace(no_url, labels={"url": "https://a.example/"})
    fallback = book.match(only_label_url)
    assert fallback is not None
    assert fallback.name == "default-http-check:labels.url"
    assert RunbookBook.from_config([], registry, defaults=False).match(ALERT) is None


def test_default_runbook_proposes_a_restart_only_when_the_template_exists() -> None:
    plain = RunbookBook.from_config([], discover()).match(ALERT)
    assert plain is not None
    assert plain.propose is None
    restart = {
        "restart_service": {"argv": ["/bin/echo", "{service}"], "params": {"service": "[a-z]+"}}
    }
    registry = discover({"settings": {"command": {"templates": restart}}})
    with_restart = RunbookBook.from_config([], registry).match(ALERT)
    assert with_restart is not None
    assert with_restart.propose is not None
    assert with_restart.propose.plugin == "command"


def test_plugin_source_files_never_reach_for_a_shell() -> None:
    """The whole package: no shell=True, os.system, os.popen or create_subprocess_shell."""
    root = Path(__file__).resolve().parents[2] / "plugins"
    banned = ("shell=True", "os.system", "os.popen", "create_subprocess_shell", "import bot")
    for path in root.rglob("*.py"):
        source = path.read_text()
        for needle in banned:
            assert needle not in source, f"{path.name} contains {needle}"
        for layer in ("bot", "workflows", "cards"):
            assert f"from {layer}" not in source, f"{path.name} imports {layer}"
