"""Built-in plugins against real things: a local HTTP(S) server and real subprocesses.

Nothing is mocked: `http_check` talks to `http.server` in a thread (plain and TLS with a CA made
by `openssl`), `command` starts /bin/echo, /bin/sleep, /usr/bin/env, /usr/bin/seq and Python.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cards.texts import texts
from plugins import (
    AlertContext,
    PluginContext,
    PluginRegistry,
    PolicyEngine,
    RunbookBook,
    diagnose_with_rules,
    discover,
    execute,
    propose_with_rules,
    verify_with_rules,
)
from plugins.builtin.http_check import HttpCheckPlugin
from plugins.execution import OUTPUT_LIMIT
from storage.redaction import MASK
from tests.conftest import free_port
from tests.support.language import worded
from tests.support.wait import wait_until

WORD = "^[a-z]{1,20}$"
# a child that starts a grandchild and both nap: only the timeout's group kill ends them
GRANDCHILD = (
    "import subprocess, time\n"
    "child = subprocess.Popen(['/bin/sleep', '30'])\n"
    "print(child.pid, flush=True)\n"
    "time.sleep(30)\n"
)
PRINT_ARGV = "import json, sys; print(json.dumps(sys.argv[1:]))"
TEMPLATES: dict[str, Any] = {
    "say": {"argv": ["/bin/echo", "{word}"], "params": {"word": WORD}},
    "echo_any": {"argv": ["/bin/echo", "{text}"], "params": {"text": r"[^\x00-\x1f]{1,500}"}},
    "show_argv": {
        "argv": [sys.executable, "-c", PRINT_ARGV, "{a}", "--label={b}"],
        "params": {"a": r"[^\x00]{1,100}", "b": r"[^\x00]{1,100}"},
    },
    "nap": {"argv": ["sleep", "{seconds}"], "params": {"seconds": "[0-9]{1,3}"}, "timeout": 0.5},
    "nap_long": {"argv": ["sleep", "{seconds}"], "params": {"seconds": "[0-9]{1,3}"}},
    "spawn": {"argv": [sys.executable, "-c", GRANDCHILD], "timeout": 1},
    "env": {"argv": ["/usr/bin/env"], "env": {"DB_PASSWORD": "from-template-config"}},
    "flood": {"argv": ["/usr/bin/seq", "1", "300000"]},
    "touch": {"argv": ["/usr/bin/touch", "{path}"], "params": {"path": "/tmp/[a-z0-9_-]{1,60}"}},
    "fail": {"argv": ["/bin/sh", "-c", "echo nope >&2; exit 3"], "risk": "high"},
    "restart_service": {
        "argv": ["/bin/echo", "restarting", "{service}"],
        "params": {"service": WORD},
    },
}


class Handler(BaseHTTPRequestHandler):
    """Routes: /ok, /fail, /slow, /redirect, /flaky (503 twice, then 200). Records every path."""

    seen: list[str] = []  # noqa: RUF012 - shared by the server threads on purpose
    flaky_left = 0

    def do_GET(self) -> None:
        Handler.seen.append(self.path)
        if self.path.startswith("/ok"):
            self._answer(200, b"status: all good")
        elif self.path == "/fail":
            self._answer(500, b"boom: password=hunter22")
        elif self.path == "/slow":
            time.sleep(3)  # a slow site: the check's own timeout must give up first
            self._answer(200, b"late")
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/ok")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/flaky":
            Handler.flaky_left -= 1
            self._answer(503 if Handler.flaky_left >= 0 else 200, b"flaky")
        else:
            self._answer(404, b"no such page")

    def do_HEAD(self) -> None:
        self.do_GET()

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(tls: ssl.SSLContext | None = None) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    scheme = "https" if tls else "http"
    yield f"{scheme}://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    yield from serve()


@pytest.fixture(scope="module")
def tls_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """An HTTPS server whose certificate (valid 30 days) is signed by a throwaway CA."""
    d = tmp_path_factory.mktemp("tls")
    key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    openssl(
        "req",
        "-x509",
        *key,
        "-keyout",
        d / "ca.key",
        "-out",
        d / "ca.pem",
        "-days",
        "365",
        "-subj",
        "/CN=larkops test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    )
    openssl("req", *key, "-keyout", d / "srv.key", "-out", d / "srv.csr", "-subj", "/CN=127.0.0.1")
    (d / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n"
    )
    openssl(
        "x509",
        "-req",
        "-in",
        d / "srv.csr",
        "-CA",
        d / "ca.pem",
        "-CAkey",
        d / "ca.key",
        "-CAcreateserial",
        "-out",
        d / "srv.pem",
        "-days",
        "30",
        "-extfile",
        d / "ext.cnf",
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(d / "srv.pem", d / "srv.key")
    for url in serve(context):
        yield url, d / "ca.pem"


@pytest.fixture
def registry() -> PluginRegistry:
    return discover({"settings": {"command": {"templates": TEMPLATES}}})


async def check(registry: PluginRegistry, **params: Any) -> Any:
    return await execute(registry, "http_check", PluginContext(), params)


# --- http_check ---------------------------------------------------------------------------


async def test_http_check_ok_failure_and_body(registry: PluginRegistry, site: str) -> None:
    ok = await check(registry, url=f"{site}/ok", body_contains="all good")
    assert ok.ok
    assert ok.data["status"] == 200
    assert ok.data["latency_ms"] >= 0
    assert "tls_days_left" not in ok.data
    assert ok.summary == f"GET {site}/ok: 200 as expected"

    failed = await check(registry, url=f"{site}/fail")
    assert not failed.ok
    assert failed.summary == f"GET {site}/fail: status 500, expected 200"
    assert "hunter22" not in failed.output  # the body snippet is redacted
    assert MASK in failed.output

    expected_500 = await check(registry, url=f"{site}/fail", expect_status=500)
    assert expected_500.ok

    mismatch = await check(registry, url=f"{site}/ok", body_contains="degraded")
    assert not mismatch.ok
    assert mismatch.summary.endswith("body does not contain 'degraded'")

    head = await check(registry, url=f"{site}/ok", method="HEAD")
    assert (head.ok, head.data["status"]) == (True, 200)


async def test_http_check_does_not_follow_redirects(registry: PluginRegistry, site: str) -> None:
    redirected = await check(registry, url=f"{site}/redirect")
    assert (redirected.ok, redirected.data["status"]) == (False, 302)


async def test_http_check_timeout_and_refused(registry: PluginRegistry, site: str) -> None:
    started = time.monotonic()
    slow = await check(registry, url=f"{site}/slow", timeout_s=0.3)
    assert time.monotonic() - started < 2
    assert not slow.ok
    assert slow.data["status"] is None
    assert "timed out" in slow.summary

    refused = await check(registry, url=f"http://127.0.0.1:{free_port()}/")
    assert not refused.ok
    assert "connection failed" in refused.summary


async def test_http_check_refuses_hosts_that_resolve_to_cloud_metadata(
    registry: PluginRegistry,
) -> None:
    """169.254.169.254 written as one decimal number passes the URL check, not the resolver's."""
    result = await check(registry, url="http://2852039166/latest/meta-data/", timeout_s=1)
    assert not result.ok
    assert result.summary.endswith("a link-local or metadata address (169.254.169.254)")


async def test_http_check_tls_days_left(tls_site: tuple[str, Path]) -> None:
    url, ca = tls_site
    trusting = PluginRegistry()
    trusting.register(HttpCheckPlugin(ca_bundle=str(ca)))
    result = await check(trusting, url=f"{url}/ok")
    assert result.ok, result.summary
    assert result.data["tls_days_left"] in (29, 30)
    assert "TLS certificate expires in" in result.evidence[1]

    untrusting = discover()  # only public CAs: a private CA's certificate is refused
    refused = await check(untrusting, url=f"{url}/ok")
    assert not refused.ok
    assert "CERTIFICATE_VERIFY_FAILED" in refused.summary


# --- command ------------------------------------------------------------------------------


async def command(
    registry: PluginRegistry, template: str, dry_run: bool = False, **args: str
) -> Any:
    params = {"template": template, "args": args}
    result = await execute(registry, "command", PluginContext(dry_run=dry_run), params)
    worded(result)  # every result, refusals included, reads in Chinese without English
    return result


async def test_command_runs_an_allow_listed_template(registry: PluginRegistry) -> None:
    result = await command(registry, "say", word="hello")
    assert result.ok
    assert result.output == "hello\n"
    assert result.data["argv"] == ["/bin/echo", "hello"]
    assert result.data["exit_code"] == 0
    assert worded(result) == "`say` 执行成功（退出码 0）"
    failed = await command(registry, "fail")
    assert (failed.ok, failed.summary, failed.output) == (False, "fail: exit 3", "nope\n")


@pytest.mark.parametrize(
    "hostile",
    ["; rm -rf /", "hello; rm -rf /", "$(reboot)", "`id`", "a|b", "hello\n", "-rf", "../../x", ""],
)
async def test_command_refuses_arguments_outside_their_regex(
    registry: PluginRegistry, hostile: str
) -> None:
    result = await command(registry, "say", word=hostile)
    assert not result.ok
    assert result.summary == (
        "invalid parameters: argument 'word' does not match its allowed pattern"
    )


async def test_command_refuses_unknown_templates_and_extra_arguments(
    registry: PluginRegistry,
) -> None:
    unknown = await command(registry, "rm_rf")
    assert unknown.summary == "invalid parameters: template is not in the allow-list"
    extra = await command(registry, "say", word="hi", more="x")
    assert extra.summary == "invalid parameters: unexpected argument 'more'"
    not_text = await execute(
        registry, "command", PluginContext(), {"template": "say", "args": {"word": ["a", "b"]}}
    )
    assert not not_text.ok


async def test_shell_syntax_stays_literal_data(registry: PluginRegistry, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f"$(touch {marker}) `touch {marker}` ; touch {marker} && echo hi"
    result = await command(registry, "echo_any", text=text)
    assert result.ok
    assert result.output == text + "\n"
    assert not marker.exists()


async def test_each_value_fills_exactly_one_argv_element(registry: PluginRegistry) -> None:
    result = await command(registry, "show_argv", a="two words  --force", b="x y; z")
    assert result.ok
    assert json.loads(result.output) == ["two words  --force", "--label=x y; z"]
    dashed = await command(registry, "show_argv", a="--force", b="ok")
    assert dashed.summary == "invalid parameters: argument 'a' may not start with '-'"


async def test_timeout_kills_the_process(registry: PluginRegistry) -> None:
    started = time.monotonic()
    result = await command(registry, "nap", seconds="30")
    assert time.monotonic() - started < 5
    assert not result.ok
    assert result.summary == "nap: timed out after 0.5s; process group killed"
    assert worded(result) == "`nap` 超过 0.5 秒未结束，已终止其进程组"
    assert result.data["exit_code"] is None


async def test_timeout_kills_the_whole_process_group(registry: PluginRegistry) -> None:
    result = await command(registry, "spawn")
    assert not result.ok
    assert "timed out" in result.summary
    grandchild = int(result.output.split()[0])
    await gone(grandchild, "the grandchild sleep to die with its process group")


async def test_cancelling_a_run_kills_the_process(registry: PluginRegistry) -> None:
    task = asyncio.create_task(command(registry, "nap_long", seconds="731"))
    pids = await wait_until(lambda: sleeping("731"), what="our `sleep 731` running")
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for pid in pids:
        await gone(pid, f"the cancelled run's sleep (pid {pid}) to end")


async def test_output_is_capped(registry: PluginRegistry) -> None:
    result = await command(registry, "flood")
    assert result.ok
    assert len(result.output.encode()) <= OUTPUT_LIMIT
    assert result.output.startswith("1\n2\n3\n")
    assert "bytes cut" in result.output


async def test_environment_is_scrubbed(
    registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LARK_APP_SECRET", "lark-secret-in-os-environ")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-for-children-0000000000")
    result = await command(registry, "env")
    assert result.ok
    lines = sorted(result.output.splitlines())
    assert lines == ["DB_PASSWORD=***", "LANG=C.UTF-8", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"]


async def test_dry_run_runs_nothing(registry: PluginRegistry) -> None:
    target = Path(f"/tmp/larkops_dry_{os.getpid()}")
    result = await command(registry, "touch", dry_run=True, path=str(target))
    assert result.ok
    assert result.summary == f"dry run: would run /usr/bin/touch {target}"
    assert worded(result) == f"演练：将执行 `/usr/bin/touch {target}`"
    assert result.data["argv"] == ["/usr/bin/touch", str(target)]
    assert not target.exists()


# --- runbooks -----------------------------------------------------------------------------


def alert(**labels: str) -> AlertContext:
    annotations = {"description": "Web is down", "runbook_url": "https://wiki/web-down"}
    return AlertContext("WebDown", "critical", labels, annotations, labels.get("service"))


async def test_rules_diagnose_propose_verify(registry: PluginRegistry, site: str) -> None:
    book = RunbookBook.from_config([], registry)
    engine = PolicyEngine({}, registry=registry)
    firing = alert(service="web", url=f"{site}/fail")
    diagnosis = await diagnose_with_rules(book, registry, firing, policy=engine)
    assert diagnosis.summary == "Runbook default-http-check:labels.url: 1 of 1 checks failed."
    assert diagnosis.hypotheses == (
        (f"Check the URL failed: GET {site}/fail: status 500, expected 200", 0.7),
    )
    assert diagnosis.evidence[0][0] == "http_check"
    assert diagnosis.evidence[0][1].startswith(f"GET {site}/fail → 500 in ")
    assert diagnosis.next_checks == (
        "Follow the runbook: https://wiki/web-down",
        "Read the alert description: Web is down",
    )
    assert not diagnosis.partial

    proposal = await propose_with_rules(book, registry, firing)
    assert proposal is not None
    assert (proposal.plugin, proposal.params) == (
        "command",
        {"template": "restart_service", "args": {"service": "web"}},
    )
    assert proposal.steps == (
        "dry run: would run /bin/echo restarting web",
        "Then verify: Check the URL",
    )
    assert proposal.title_zh == "重启服务"
    command_spec = registry.get("command")
    assert command_spec is not None
    decision = engine.evaluate(command_spec.spec, proposal.params, alert=firing)
    assert (decision.kind, decision.required_approvals) == ("approve", 1)

    Handler.flaky_left = 2
    recovering = alert(service="web", url=f"{site}/flaky")
    verification = await verify_with_rules(book, registry, recovering, attempts=3, interval=0.05)
    assert verification is not None
    assert verification.ok
    assert verification.summary == f"GET {site}/flaky: 200 as expected"


async def test_hostile_label_values_are_skipped_never_executed(
    registry: PluginRegistry, site: str
) -> None:
    book = RunbookBook.from_config(
        [
            {
                "name": "pod",
                "match": {"pod": ".+"},
                "diagnose": [
                    {"plugin": "http_check", "params": {"url": f"{site}/ok?pod={{labels.pod}}"}},
                    {"plugin": "http_check", "params": {"url": f"{site}/ok/plain"}},
                ],
                "propose": {
                    "plugin": "command",
                    "params": {"template": "say", "args": {"word": "{labels.pod}"}},
                },
            }
        ],
        registry,
    )
    Handler.seen.clear()
    hostile = alert(pod="web-1 $(rm -rf /)")
    diagnosis = await diagnose_with_rules(book, registry, hostile)
    assert Handler.seen == ["/ok/plain"]  # the hostile URL never reached the server
    assert diagnosis.partial
    assert diagnosis.summary == "Runbook pod: 0 of 1 checks failed, 1 skipped."
    assert diagnosis.next_checks[0] == (
        "http_check: not run (parameters rejected: url: URL must not contain spaces, "
        "control characters or backslashes)"
    )
    assert await propose_with_rules(book, registry, hostile) is None
    assert await propose_with_rules(book, registry, alert(pod="web")) is not None


async def test_policy_keeps_diagnosis_inside_its_fences(
    registry: PluginRegistry, site: str
) -> None:
    """An alert pointing http_check at an internal address is not fetched when fenced."""
    book = RunbookBook.from_config([], registry)
    engine = PolicyEngine(
        {"fences": {"http_check": {"url": {"prefixes": ["https://status.example.com/"]}}}},
        registry=registry,
        say=texts("en"),
    )
    Handler.seen.clear()
    diagnosis = await diagnose_with_rules(book, registry, alert(url=f"{site}/ok"), policy=engine)
    assert Handler.seen == []
    assert diagnosis.partial
    assert diagnosis.hypotheses == ()
    assert diagnosis.next_checks[0] == (
        "Check the URL: not run (policy: url is outside the allowed values for http_check.)"
    )


async def test_unmatched_alert_gets_a_diagnosis_that_says_so(registry: PluginRegistry) -> None:
    book = RunbookBook.from_config([], registry)
    diagnosis = await diagnose_with_rules(book, registry, alert(host="db-1"))
    assert diagnosis.summary == "No runbook matches this alert; a person needs to look at it."
    assert diagnosis.next_checks == (
        "Follow the runbook: https://wiki/web-down",
        "Read the alert description: Web is down",
    )
    assert (diagnosis.hypotheses, diagnosis.evidence, diagnosis.provider) == ((), (), "rules")
    assert await propose_with_rules(book, registry, alert(host="db-1")) is None
    assert await verify_with_rules(book, registry, alert(host="db-1")) is None


# --- helpers ------------------------------------------------------------------------------


def openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def ended(pid: int) -> bool:
    """`pid` no longer runs (absent, or a zombie waiting for init to reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


async def gone(pid: int, what: str, within: float = 3.0) -> None:
    await wait_until(lambda: ended(pid), within, what)


def sleeping(seconds: str) -> list[int]:
    """`/usr/bin/sleep <seconds>` processes started by this test process (not by another run)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if argv[:2] == [b"/usr/bin/sleep", seconds.encode()] and parent == os.getpid():
            pids.append(int(entry.name))
    return pids
