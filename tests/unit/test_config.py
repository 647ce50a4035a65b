"""Configuration: every contract name, the three sources, and one clear line on errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings

CONTRACT = [
    "LARK_APP_ID",
    "LARK_APP_SECRET",
    "LARK_DOMAIN",
    "DATABASE_URL",
    "REDIS_URL",
    "LARKOPS_HOME",
    "LARKOPS_CONFIG",
    "LARKOPS_APPROVERS",
    "LARKOPS_ALERT_SENDERS",
    "LARKOPS_ALERT_CHAT_ID",
    "LARKOPS_TIMEZONE",
    "LARKOPS_HTTP_PORT",
    "LLM_PROVIDER",
    "LLM_MODEL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
]
LARKOPS = str(Path(sys.executable).parent / "larkops")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in CONTRACT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_match_the_contract() -> None:
    settings = load_settings()
    assert settings.lark_domain == "https://open.feishu.cn"
    assert settings.home == Path(".larkops")
    assert settings.timezone == "Asia/Shanghai"
    assert settings.http_port == 8080
    assert settings.llm_provider == "rules"
    assert settings.database_url is None
    assert settings.redis_url is None
    assert settings.lark_configured is False


def test_every_contract_variable_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {
        "LARK_APP_ID": "cli_1",
        "LARK_APP_SECRET": "appsecret1",
        "LARK_DOMAIN": "http://127.0.0.1:9999/",
        "DATABASE_URL": "postgresql://u:p@db:5432/x",
        "REDIS_URL": "redis://cache:6379/1",
        "LARKOPS_HOME": "/srv/larkops",
        "LARKOPS_APPROVERS": "ou_a, ou_b,,ou_c ",
        "LARKOPS_ALERT_SENDERS": "ou_bot",
        "LARKOPS_ALERT_CHAT_ID": "oc_alerts",
        "LARKOPS_TIMEZONE": "America/New_York",
        "LARKOPS_HTTP_PORT": "9090",
        "LLM_PROVIDER": "openai",
        "LLM_MODEL": "gpt-x",
        "OPENAI_API_KEY": "sk-testtesttesttesttest",
        "OPENAI_BASE_URL": "http://127.0.0.1:8001/v1",
        "ANTHROPIC_API_KEY": "ak-test-123456",
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:8002",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    s = load_settings()
    masked = s.masked()
    assert set(CONTRACT) <= set(masked)
    assert s.lark_app_id == "cli_1"
    assert s.lark_configured is True
    assert s.lark_domain == "http://127.0.0.1:9999"
    assert s.approvers == ["ou_a", "ou_b", "ou_c"]
    assert s.alert_senders == ["ou_bot"]
    assert s.alert_chat_id == "oc_alerts"
    assert s.home == Path("/srv/larkops")
    assert s.timezone == "America/New_York"
    assert s.http_port == 9090
    assert s.llm_provider == "openai"
    assert s.llm_model == "gpt-x"
    assert s.openai_base_url == "http://127.0.0.1:8001/v1"
    assert s.anthropic_base_url == "http://127.0.0.1:8002"


def test_field_names_are_not_read_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # `home` must not pick up $HOME, `timezone` not $TIMEZONE
    monkeypatch.setenv("HOME", "/root-of-someone")
    monkeypatch.setenv("TIMEZONE", "UTC")
    s = load_settings()
    assert s.home == Path(".larkops")
    assert s.timezone == "Asia/Shanghai"


def test_secrets_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LARK_APP_SECRET", "appsecret-value")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-live-abcdef")
    monkeypatch.setenv("DATABASE_URL", "postgresql://bot:dbpass99@db:5432/larkops")
    monkeypatch.setenv("REDIS_URL", "redis://:redispass77@cache:6379/0")
    masked = load_settings().masked()
    text = repr(masked)
    for secret in ("appsecret-value", "sk-live-abcdef", "dbpass99", "redispass77"):
        assert secret not in text
    assert masked["DATABASE_URL"] == "postgresql://bot:***@db:5432/larkops"
    assert masked["LARK_APP_SECRET"] == "***"
    assert masked["ANTHROPIC_API_KEY"] is None


def test_yaml_file_then_dotenv_then_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "larkops.yaml"
    config.write_text(
        "http_port: 9001\nLARKOPS_TIMEZONE: UTC\napprovers: [ou_y1, ou_y2]\n"
        "alert_chat_id: oc_yaml\ncoordination:\n  key_prefix: team-a\n",
        encoding="utf-8",
    )
    (tmp_path / ".env").write_text(
        f"LARKOPS_CONFIG={config}\nLARKOPS_HTTP_PORT=9002\nLARKOPS_ALERT_CHAT_ID=oc_dotenv\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("LARKOPS_ALERT_CHAT_ID", "oc_env")
    s = load_settings()
    assert s.timezone == "UTC"  # only in YAML
    assert s.approvers == ["ou_y1", "ou_y2"]
    assert s.coordination.key_prefix == "team-a"
    assert s.http_port == 9002  # .env beats YAML
    assert s.alert_chat_id == "oc_env"  # environment beats .env


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("LARKOPS_HTTP_PORT", "eighty", "LARKOPS_HTTP_PORT: Input should be a valid integer"),
        ("LARKOPS_HTTP_PORT", "70000", "LARKOPS_HTTP_PORT: Input should be less than or equal"),
        ("LARKOPS_TIMEZONE", "Mars/Olympus", "LARKOPS_TIMEZONE: unknown time zone"),
        ("LLM_PROVIDER", "skynet", "LLM_PROVIDER: Input should be 'rules', 'openai'"),
        ("LARK_DOMAIN", "open.feishu.cn", "LARK_DOMAIN: must start with http:// or https://"),
        ("DATABASE_URL", "mysql://x@y/z", "DATABASE_URL: must be a postgresql:// URL"),
        ("REDIS_URL", "127.0.0.1:6379", "REDIS_URL: must be a redis://"),
        ("LARKOPS_CONFIG", "/nonexistent/larkops.yaml", "LARKOPS_CONFIG: cannot read"),
    ],
)
def test_invalid_values_give_one_line_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(expected)
    assert "\n" not in message


def test_invalid_yaml_names_file_and_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("http_port: 1\napprovers: [unclosed\n", encoding="utf-8")
    monkeypatch.setenv("LARKOPS_CONFIG", str(bad))
    with pytest.raises(ConfigError, match=r"LARKOPS_CONFIG: .*bad.yaml is not valid YAML at line"):
        load_settings()


def test_yaml_with_wrong_nested_value(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("coordination:\n  key_prefix: ''\n  surprise: 1\n", encoding="utf-8")
    monkeypatch.setenv("LARKOPS_CONFIG", str(config))
    with pytest.raises(ConfigError, match=r"^LARKOPS_COORDINATION\.key_prefix: .*more problem"):
        load_settings()


def test_secret_values_are_never_echoed_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://user:topsecretpw@db/x")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "topsecretpw" not in str(caught.value)


def test_cli_config_check_prints_masked_config(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "LARK_APP_SECRET": "hunter2hunter2",
        "LARKOPS_HTTP_PORT": "8181",
    }
    done = subprocess.run(
        [LARKOPS, "config", "check"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert '"LARKOPS_HTTP_PORT": 8181' in done.stdout
    assert "hunter2hunter2" not in done.stdout + done.stderr
    assert "configuration OK" in done.stdout


def test_cli_invalid_config_is_one_line_without_traceback(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "LARKOPS_HTTP_PORT": "abc"}
    for command in (["config", "check"], ["run"], ["migrate"]):
        done = subprocess.run(
            [LARKOPS, *command],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            check=False,
        )
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1
        assert done.stderr.startswith("larkops: configuration error: LARKOPS_HTTP_PORT:")
        assert "Traceback" not in done.stderr


def test_structured_setting_from_the_environment_is_json_merged_with_yaml(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "larkops.yaml"
    config.write_text("llm:\n  retries: 2\n  wall_seconds: 40\n", encoding="utf-8")
    monkeypatch.setenv("LARKOPS_CONFIG", str(config))
    monkeypatch.setenv("larkops_llm", '{"retries": 5}')  # names match without regard to case
    s = load_settings()
    assert s.llm == {"retries": 5, "wall_seconds": 40}  # key by key, the environment winning


def test_structured_setting_that_is_not_json_names_the_setting_not_the_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LARKOPS_ROLES", "admins=ou_secret_admin")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith("LARKOPS_ROLES: the value in the environment is not JSON")
    assert "ou_secret_admin" not in message
    assert "\n" not in message


def test_yaml_sections_are_not_read_from_same_named_environment_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `api:`, `oncall:` … have no environment name: a stray $API or $ONCALL is someone else's
    monkeypatch.setenv("API", "http://localhost:9000")
    monkeypatch.setenv("ONCALL", "alice")
    s = load_settings()
    assert s.oncall.schedules == {}


def test_dotenv_values_are_read_as_written(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "# team settings\nexport LARKOPS_APPROVERS=ou_a, ou_b\n"
        "LARKOPS_ALERT_CHAT_ID='oc_quoted'  # the alert group\n"
        'LARKOPS_LLM={"retries": 4}\n',
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert s.approvers == ["ou_a", "ou_b"]
    assert s.alert_chat_id == "oc_quoted"
    assert s.llm == {"retries": 4}
