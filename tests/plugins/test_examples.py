"""The example plugins in `examples/`: installed, discovered and run for real.

The third-party package `examples/larkops-plugin-example` is built and installed with pip into
a temporary directory (never into the venv), which is then put on `sys.path` so that its
dist-info (and its `larkops.plugins` entry point) is visible to `importlib.metadata`. Its
`cert_expiry` plugin then checks a local TLS server whose self-signed certificate (made with
`openssl`) expires in five days. The directory example `examples/plugin-directory/disk_marker.py`
is loaded through `plugins.directory`.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.metadata
import importlib.util
import os
import re
import shutil
import ssl
import subprocess
import sys
import time
import warnings
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from plugins.contract import PluginContext, PluginResult
from plugins.execution import execute
from plugins.fences import TargetFences, scope_of
from plugins.policy import target_of
from plugins.registry import PluginRegistry, discover
from tests.conftest import free_port

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PACKAGE = EXAMPLES / "larkops-plugin-example"
DIRECTORY = EXAMPLES / "plugin-directory"
CERT_DAYS = 5


def _offline_build_possible() -> bool:
    """Can this interpreter's setuptools build a wheel without fetching anything?

    setuptools >= 70.1 has `bdist_wheel` itself; older ones need the one the `wheel`
    distribution declares (a `distutils.commands` entry point).
    """
    if importlib.util.find_spec("setuptools") is None:
        return False
    if importlib.metadata.entry_points(group="distutils.commands", name="bdist_wheel"):
        return True
    version = importlib.metadata.version("setuptools")
    major_minor = tuple(int(part) for part in re.findall(r"\d+", version)[:2])
    return major_minor >= (70, 1)


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The example package, built and installed by pip into a temporary `--target` directory.

    The source is copied first, so that the build's `build/` and `*.egg-info` stay out of the
    checkout. Without build tools in the venv (setuptools < 70.1 and no `wheel`), pip builds
    in an isolated environment instead, fetching setuptools from the configured index: the venv
    is never changed either way.
    """
    work = tmp_path_factory.mktemp("example-package")
    source = work / "src"
    shutil.copytree(
        PACKAGE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    target = work / "site"
    argv = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target"]
    argv += [str(target)]
    if _offline_build_possible():
        argv += ["--no-build-isolation", "--no-index"]
    else:
        warnings.warn(
            "the venv has setuptools < 70.1 and no `wheel`: the example package was built with "
            "build isolation (setuptools fetched from the package index); add `wheel` to the "
            "dev extras to build it offline",
            stacklevel=1,
        )
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    done = subprocess.run(
        [*argv, str(source)], capture_output=True, text=True, env=env, timeout=180, check=False
    )
    assert done.returncode == 0, f"pip install failed:\n{done.stdout}\n{done.stderr}"
    assert (target / "larkops_plugin_example" / "cert_expiry.py").is_file()
    assert list(target.glob("larkops_plugin_example-*.dist-info"))
    yield target
    for name in [m for m in sys.modules if m.split(".")[0] == "larkops_plugin_example"]:
        del sys.modules[name]


@pytest.fixture
def on_path(site_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The installed package importable and its entry point visible, for one test."""
    monkeypatch.syspath_prepend(str(site_dir))
    importlib.invalidate_caches()
    return site_dir


def test_the_installed_distribution_declares_the_entry_point(on_path: Path) -> None:
    dist = importlib.metadata.distribution("larkops-plugin-example")
    assert Path(str(dist.locate_file(""))).resolve() == on_path.resolve()
    points = importlib.metadata.entry_points(group="larkops.plugins")
    assert {p.name: p.value for p in points}["cert_expiry"] == (
        "larkops_plugin_example:create_plugin"
    )
    import larkops_plugin_example

    assert Path(larkops_plugin_example.__file__).is_relative_to(on_path)


def test_discover_finds_cert_expiry_beside_the_builtins(on_path: Path) -> None:
    registry = discover({})
    diagnostics = registry.names("diagnostic")
    assert {"cert_expiry", "http_check", "tcp_check", "dns_resolve"} <= set(diagnostics)
    plugin = registry.get("cert_expiry")
    assert plugin is not None
    assert (plugin.spec.category, plugin.spec.risk) == ("diagnostic", "low")
    assert type(plugin).__module__ == "larkops_plugin_example.cert_expiry"


async def test_a_disabled_entry_point_plugin_stays_registered_but_does_not_run(
    on_path: Path,
) -> None:
    registry = discover({"disabled": ["cert_expiry"]})
    assert registry.get("cert_expiry") is not None
    assert not registry.is_enabled("cert_expiry")
    assert "cert_expiry" not in registry.names()
    assert "cert_expiry" in registry.names(include_disabled=True)
    result = await execute(registry, "cert_expiry", PluginContext(), {"host": "localhost"})
    assert not result.ok
    assert result.summary == "plugin 'cert_expiry' is disabled"
    registry.enable("cert_expiry")
    assert "cert_expiry" in registry.names("diagnostic")


def test_entry_points_off_does_not_load_it(on_path: Path) -> None:
    registry = discover({"entry_points": False})
    assert registry.get("cert_expiry") is None
    assert "http_check" in registry.names()


def test_its_settings_reach_the_factory_and_bad_ones_fail_at_start_up(on_path: Path) -> None:
    with pytest.raises(ValueError, match=r"entry point 'cert_expiry'.*unknown settings bogus"):
        discover({"settings": {"cert_expiry": {"bogus": 1}}})
    with pytest.raises(ValueError, match=r"entry point 'cert_expiry'.*cannot load"):
        discover({"settings": {"cert_expiry": {"ca_bundle": "/nonexistent/ca.pem"}}})


# --- cert_expiry against a real TLS server -------------------------------------------------


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for localhost and 127.0.0.1 that expires in CERT_DAYS days."""
    home = tmp_path_factory.mktemp("tls")
    made = Certificate(cert=home / "cert.pem", key=home / "key.pem")
    openssl = shutil.which("openssl")
    assert openssl, "the openssl command is needed to make the test certificate"
    argv = [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    argv += ["-nodes", "-keyout", str(made.key), "-out", str(made.cert)]
    argv += ["-days", str(CERT_DAYS), "-subj", "/CN=localhost"]
    argv += ["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return made


@pytest.fixture
async def tls_port(certificate: Certificate) -> AsyncIterator[int]:
    """A TLS server on 127.0.0.1 that completes handshakes and waits for the client to leave."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate.cert, certificate.key)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            await asyncio.wait_for(reader.read(), 5)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    async with server:
        yield int(server.sockets[0].getsockname()[1])


@pytest.fixture
def trusting(on_path: Path, certificate: Certificate) -> PluginRegistry:
    """Discovered with `plugins.settings.cert_expiry.ca_bundle` trusting the test certificate."""
    return discover({"settings": {"cert_expiry": {"ca_bundle": str(certificate.cert)}}})


async def check(registry: PluginRegistry, params: Mapping[str, Any]) -> PluginResult:
    return await execute(registry, "cert_expiry", PluginContext(), params)


async def test_cert_expiry_reports_the_days_left_and_warns_below_warn_days(
    trusting: PluginRegistry, tls_port: int
) -> None:
    started = time.perf_counter()
    result = await check(trusting, {"host": "127.0.0.1", "port": tls_port})  # warn_days 14
    assert time.perf_counter() - started < 3
    assert not result.ok, result.summary
    assert result.data["days_left"] in (CERT_DAYS - 1, CERT_DAYS)
    assert f"certificate expires in {result.data['days_left']} days" in result.summary
    assert "fewer than the 14 days" in result.summary
    assert result.data["subject"] == "CN=localhost"
    assert result.data["issuer"] == "CN=localhost"
    assert "IP Address:127.0.0.1" in result.data["names"]
    assert result.data["address"] == "127.0.0.1"
    assert str(result.data["tls_version"]).startswith("TLSv1.")

    relaxed = await check(trusting, {"host": "127.0.0.1", "port": tls_port, "warn_days": 3})
    assert relaxed.ok, relaxed.summary
    assert relaxed.data["days_left"] == result.data["days_left"]


async def test_cert_expiry_by_name_verifies_the_host_name(
    trusting: PluginRegistry, tls_port: int
) -> None:
    result = await check(trusting, {"host": "localhost", "port": tls_port, "warn_days": 1})
    assert result.ok, result.summary
    assert result.data["address"] in ("127.0.0.1", "::1")


async def test_cert_expiry_without_the_ca_bundle_reports_an_untrusted_certificate(
    on_path: Path, tls_port: int
) -> None:
    registry = discover({})
    result = await check(registry, {"host": "127.0.0.1", "port": tls_port})
    assert not result.ok
    assert "certificate not trusted" in result.summary
    assert result.data["days_left"] is None


async def test_cert_expiry_reports_a_closed_port(trusting: PluginRegistry) -> None:
    result = await check(trusting, {"host": "127.0.0.1", "port": free_port(), "timeout_s": 2})
    assert not result.ok
    assert "127.0.0.1" in result.summary
    assert result.data["error"]


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"host": "a;b"}, "host"),
        ({"host": "localhost", "port": 70000}, "port"),
        ({"host": "localhost", "port": 0}, "port"),
        ({"host": "localhost", "shell": "rm -rf /"}, "shell"),
        ({"host": "169.254.169.254"}, "link-local"),
        ({"host": "2852039166"}, "numeric host names"),
        ({"host": "localhost", "timeout_s": 600}, "timeout_s"),
        ({"host": "localhost", "warn_days": -1}, "warn_days"),
    ],
)
async def test_cert_expiry_refuses_hostile_parameters(
    trusting: PluginRegistry, params: Mapping[str, Any], problem: str
) -> None:
    result = await check(trusting, params)
    assert not result.ok
    assert result.summary.startswith("invalid parameters: ")
    assert problem in result.summary
    assert "rm -rf" not in result.summary  # values are never echoed


def test_cert_expiry_scope_and_target_feed_the_policy(trusting: PluginRegistry) -> None:
    plugin = trusting.get("cert_expiry")
    assert plugin is not None
    model = plugin.spec.params.model_validate({"host": "db.internal.example", "port": 5432})
    assert scope_of(model) == {"host": "db.internal.example"}
    assert TargetFences(hosts=("*.internal.example",)).violation(scope_of(model)) is None
    assert TargetFences(hosts=("web-*",)).violation(scope_of(model)) == (
        "host",
        "db.internal.example",
    )
    assert target_of(plugin.spec, model) == "cert_expiry:db.internal.example:5432"


# --- the plugin directory example ----------------------------------------------------------


@pytest.fixture
def marker_base(tmp_path: Path) -> Path:
    base = tmp_path / "base"
    (base / "jobs").mkdir(parents=True)
    marker = base / "jobs" / "backup.done"
    marker.write_text("ok\n")
    two_hours_ago = time.time() - 2 * 3600
    os.utime(marker, (two_hours_ago, two_hours_ago))
    (tmp_path / "secret.txt").write_text("outside\n")
    (base / "escape").symlink_to(tmp_path / "secret.txt")
    return base


@pytest.fixture
def from_directory(marker_base: Path) -> PluginRegistry:
    return discover(
        {"directory": str(DIRECTORY), "settings": {"disk_marker": {"base_dir": str(marker_base)}}}
    )


async def age(registry: PluginRegistry, params: Mapping[str, Any]) -> PluginResult:
    return await execute(registry, "file_age", PluginContext(), params)


async def test_the_directory_module_is_registered_and_runs(from_directory: PluginRegistry) -> None:
    assert "file_age" in from_directory.names("diagnostic")
    assert "http_check" in from_directory.names("diagnostic")
    plugin = from_directory.get("file_age")
    assert plugin is not None
    assert type(plugin).__module__ == "larkops_plugin_dir.disk_marker"

    stale = await age(from_directory, {"path": "jobs/backup.done", "max_age_s": 3600})
    assert not stale.ok, stale.summary
    assert abs(stale.data["age_s"] - 7200) < 60
    assert stale.data["size_bytes"] == 3
    assert "modified 2h ago, older than 60min" in stale.summary

    fresh = await age(from_directory, {"path": "jobs/backup.done", "max_age_s": 3 * 3600})
    assert fresh.ok, fresh.summary

    missing = await age(from_directory, {"path": "jobs/nothing"})
    assert not missing.ok
    assert missing.summary == "jobs/nothing: no such file"


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("../secret.txt", "'..'"),
        ("jobs/../../secret.txt", "'..'"),
        ("/etc/passwd", "relative"),
        ("~/.ssh/id_rsa", "relative"),
        ("jobs/\x00x", "control characters"),
    ],
)
async def test_the_directory_plugin_refuses_paths_outside_its_base(
    from_directory: PluginRegistry, path: str, problem: str
) -> None:
    result = await age(from_directory, {"path": path})
    assert not result.ok
    assert result.summary.startswith("invalid parameters: path: ")
    assert problem in result.summary


async def test_a_symbolic_link_out_of_the_base_is_refused_when_run(
    from_directory: PluginRegistry,
) -> None:
    result = await age(from_directory, {"path": "escape"})
    assert not result.ok
    assert result.summary == "escape: refused: the path leads outside the base directory"
    assert "size_bytes" not in result.data


def test_the_directory_module_needs_its_settings() -> None:
    with pytest.raises(ValueError, match=r"disk_marker\.py.*settings need base_dir"):
        discover({"directory": str(DIRECTORY)})


# --- bad third-party plugins are refused at start-up ---------------------------------------

PLUGIN_MODULE = """
from pydantic import BaseModel, ConfigDict

from plugins.contract import PluginResult, PluginSpec


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Bad:
    spec = PluginSpec(
        name={name!r}, category="diagnostic", risk="low", params=Params, timeout=5,
        idempotent=True, supports_dry_run=False, title_zh="坏", title_en="Bad",
        description_zh="", description_en="",
    )

    {run_kind} run(self, ctx, params):
        return PluginResult(ok=True, summary="ran")


def create_plugin(settings):
    return Bad()
"""


@pytest.mark.parametrize(
    ("module", "source", "problem"),
    [
        (
            "shadow.py",
            PLUGIN_MODULE.format(name="http_check", run_kind="async def"),
            "plugin 'http_check' is already registered",
        ),
        (
            "blocking.py",
            PLUGIN_MODULE.format(name="blocking", run_kind="def"),
            "plugin 'blocking': `run` must be an async method",
        ),
        (
            "shouting.py",
            PLUGIN_MODULE.format(name="Shouting", run_kind="async def"),
            "plugin 'Shouting': name must be lower-case",
        ),
        ("factoryless.py", "VALUE = 1\n", "defines no create_plugin(settings) function"),
        ("broken.py", "import nonexistent_module_for_larkops\n", "cannot load: ModuleNotFound"),
    ],
)
def test_a_bad_directory_plugin_is_refused_at_start_up(
    tmp_path: Path, module: str, source: str, problem: str
) -> None:
    path = tmp_path / module
    path.write_text(source)
    with pytest.raises(ValueError, match=re.escape(f"plugin module {path}: ") + ".*") as caught:
        discover({"directory": str(tmp_path)})
    assert problem in str(caught.value)
