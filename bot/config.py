"""Configuration: environment variables, a `.env` file and the `LARKOPS_CONFIG` YAML file.

Precedence, highest first: process environment, `.env` in the working directory, the YAML file
named by `LARKOPS_CONFIG`, then the defaults below. Every name in the external contract of
ARCHITECTURE.md is a field here, under exactly that environment name.

Usage::

    settings = load_settings()          # raises ConfigError with one readable line
    print(settings.http_port)
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from bot.config_sources import ConfigError as ConfigError
from bot.config_sources import (
    config_path,
    dotenv_file,
    environment,
    merged,
    yaml_file,
)
from bot.roles import RoleConfig
from storage.retention import RetentionConfig
from workflows.hygiene import HygieneRules
from workflows.oncall.escalation_policy import EscalationConfig
from workflows.oncall.rotation import OncallConfig
from workflows.postmortem import PostmortemConfig

SECRET_MASK = "***"  # noqa: S105 - the mask, not a password


def _split_list(value: object) -> object:
    """Accept `a,b , c` (environment) as well as a YAML list."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


PLAIN = "plain"  # a list given as `a,b` in the environment, not as JSON
CommaList = Annotated[list[str], PLAIN]


class CoordinationSettings(BaseModel):
    """Structured settings for shared state (YAML `coordination:`)."""

    model_config = ConfigDict(extra="forbid")

    key_prefix: str = Field(default="larkops", min_length=1, max_length=64)


class IncidentSettings(BaseModel):
    """Structured settings for incidents (YAML `incidents:`)."""

    model_config = ConfigDict(extra="forbid")

    dedupe_window_minutes: int = Field(default=240, ge=1, le=7 * 24 * 60)
    storm_threshold: int = Field(default=5, ge=2, le=1000)
    storm_window_seconds: int = Field(default=120, ge=10, le=3600)
    # a firing alert with no incident of its own joins its service's active incident
    join_by_service: bool = False
    sources: dict[str, str] = Field(default_factory=dict)  # webhook source -> chat id
    # chat id -> open_ids who may approve that chat's incidents (besides LARKOPS_APPROVERS)
    approvers_by_chat: dict[str, list[str]] = Field(default_factory=dict)


class SchedulingConfig(BaseModel):
    """The `scheduling:` section: leader lease, missed-fire policy, retries of failed runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    missed: Literal["run_once", "skip"] = "run_once"
    lease_seconds: float = Field(default=15.0, ge=3, le=300)
    retries: int = Field(default=1, ge=0, le=5)
    retry_delay_seconds: float = Field(default=30.0, ge=0, le=3600)


class SchedulesConfig(BaseModel):
    """The `schedules:` section: what 工作日 / "workday" mean in schedule sentences.

    `workdays: cn` is China's State Council calendar (public holidays off, the adjusted working
    weekends on); `mon-fri` Monday to Friday. Unset: `cn` when LARKOPS_TIMEZONE is
    Asia/Shanghai or LARKOPS_LANGUAGE is zh, else `mon-fri` (`Settings.workdays`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    workdays: Literal["cn", "mon-fri"] | None = None


class ApiConfig(BaseModel):
    """The `api:` section: the REST API's rate limits and the console's sessions (`bot.api`).

    Limits are token buckets shared by every replica (the coordination backend): `key_rate`
    requests per second per API key or signed-in user (bursts up to `key_burst`), `ip_rate` per
    client address, counted before anyone is known (so guessing keys is slow too)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key_rate: float = Field(default=20.0, gt=0, le=100_000)
    key_burst: int = Field(default=60, ge=1, le=1_000_000)
    ip_rate: float = Field(default=50.0, gt=0, le=100_000)
    ip_burst: int = Field(default=150, ge=1, le=1_000_000)
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    # the console's address as people reach it (e.g. https://ops.example.com): the Feishu
    # sign-in's redirect_uri, and Secure cookies when https; unset: taken from each request
    public_url: str = Field(default="", max_length=300, pattern=r"^(https?://[^\s]+)?$")


class AdvisorConfig(BaseModel):
    """The `advisor:` section: the scheduled alert-hygiene report (`bot.scheduling.advisor`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    # standard cron of fixed times (Sunday 0) in LARKOPS_TIMEZONE: Mondays 10:00
    cron: str = "0 10 * * 1"
    days: int = Field(default=7, ge=1, le=30)
    chats: tuple[str, ...] | None = None  # None: LARKOPS_ALERT_CHAT_ID when it is set
    rules: HygieneRules = Field(default_factory=HygieneRules)

    @field_validator("cron")
    @classmethod
    def _fixed_times(cls, value: str) -> str:
        from workflows.schedule.cron import calendar_of_cron  # the parser loads only if needed

        calendar_of_cron(value, "UTC")  # a SpecError (ValueError) says what is wrong
        return value


class Settings(BaseModel):
    """The whole effective configuration of one larkops process (built by `load_settings`)."""

    model_config = ConfigDict(extra="ignore", validate_by_name=True, validate_by_alias=True)

    lark_app_id: str = Field(default="", validation_alias="LARK_APP_ID")
    lark_app_secret: SecretStr = Field(default=SecretStr(""), validation_alias="LARK_APP_SECRET")
    lark_domain: str = Field(
        default="https://open.feishu.cn",
        validation_alias="LARK_DOMAIN",
    )
    # how Lark delivers events: the long connection, or HTTP request URLs (bot.lark.delivery)
    lark_event_delivery: Literal["websocket", "http"] = Field(
        default="websocket", validation_alias="LARK_EVENT_DELIVERY"
    )
    lark_encrypt_key: SecretStr = Field(default=SecretStr(""), validation_alias="LARK_ENCRYPT_KEY")
    lark_verification_token: SecretStr = Field(
        default=SecretStr(""), validation_alias="LARK_VERIFICATION_TOKEN"
    )
    lark_event_max_age_seconds: int = Field(
        default=300, ge=10, le=24 * 3600, validation_alias="LARK_EVENT_MAX_AGE_SECONDS"
    )
    database_url: SecretStr | None = Field(default=None, validation_alias="DATABASE_URL")
    redis_url: SecretStr | None = Field(default=None, validation_alias="REDIS_URL")
    home: Path = Field(default=Path("./.larkops"), validation_alias="LARKOPS_HOME")
    config_file: Path | None = Field(default=None, validation_alias="LARKOPS_CONFIG")
    approvers: CommaList = Field(default_factory=list, validation_alias="LARKOPS_APPROVERS")
    alert_senders: CommaList = Field(
        default_factory=list,
        validation_alias="LARKOPS_ALERT_SENDERS",
    )
    admins: CommaList = Field(default_factory=list, validation_alias="LARKOPS_ADMINS")
    # hosts, host:port, URL prefixes or networks plugins may connect to when an alert, a chat or
    # a model names the address (plugins.reach); enforced once Lark credentials are set
    fetch_allow: CommaList = Field(default_factory=list, validation_alias="LARKOPS_FETCH_ALLOW")
    # reverse proxies (addresses or networks) whose X-Forwarded-For / X-Real-IP and
    # X-Forwarded-Proto are believed (bot.api.proxies); empty: none, the peer is the client
    trusted_proxies: CommaList = Field(
        default_factory=list, validation_alias="LARKOPS_TRUSTED_PROXIES"
    )
    language: Literal["zh", "en"] = Field(default="zh", validation_alias="LARKOPS_LANGUAGE")
    signing_key: SecretStr = Field(default=SecretStr(""), validation_alias="LARKOPS_SIGNING_KEY")
    alert_chat_id: str = Field(default="", validation_alias="LARKOPS_ALERT_CHAT_ID")
    timezone: str = Field(default="Asia/Shanghai", validation_alias="LARKOPS_TIMEZONE")
    http_host: str = Field(default="127.0.0.1", validation_alias="LARKOPS_HTTP_HOST")
    http_port: int = Field(
        default=8080,
        ge=0,
        le=65535,
        validation_alias="LARKOPS_HTTP_PORT",
    )
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", validation_alias="LARKOPS_LOG_FORMAT"
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", validation_alias="LARKOPS_LOG_LEVEL"
    )
    llm_provider: Literal["rules", "openai", "anthropic"] = Field(
        default="rules", validation_alias="LLM_PROVIDER"
    )
    llm_model: str = Field(default="", validation_alias="LLM_MODEL")
    openai_api_key: SecretStr = Field(default=SecretStr(""), validation_alias="OPENAI_API_KEY")
    openai_base_url: str = Field(default="", validation_alias="OPENAI_BASE_URL")
    anthropic_api_key: SecretStr = Field(
        default=SecretStr(""),
        validation_alias="ANTHROPIC_API_KEY",
    )
    anthropic_base_url: str = Field(default="", validation_alias="ANTHROPIC_BASE_URL")
    approval_ttl_minutes: int = Field(
        default=30, ge=1, le=24 * 60, validation_alias="LARKOPS_APPROVAL_TTL_MINUTES"
    )
    # hours a draft, a question, a confirmation card or a request waits for its click before it
    # expires (its buttons then answer 已过期)
    pending_ttl_hours: float = Field(
        default=24.0, gt=0, le=24 * 30, validation_alias="LARKOPS_PENDING_TTL_HOURS"
    )
    requester_may_approve: bool = Field(
        default=False, validation_alias="LARKOPS_REQUESTER_MAY_APPROVE"
    )
    webhook_token: SecretStr = Field(
        default=SecretStr(""), validation_alias="LARKOPS_WEBHOOK_TOKEN"
    )
    incidents: IncidentSettings = Field(
        default_factory=IncidentSettings, validation_alias="LARKOPS_INCIDENTS"
    )
    # checked by `plugins` when the advisor is built (plugins.registry.PluginsConfig,
    # plugins.policy.PolicyConfig, plugins.runbooks.RunbookConfig)
    plugins: dict[str, Any] = Field(default_factory=dict, validation_alias="LARKOPS_PLUGINS")
    policy: dict[str, Any] = Field(default_factory=dict, validation_alias="LARKOPS_POLICY")
    scheduling: SchedulingConfig = Field(default_factory=lambda: SchedulingConfig())
    schedules: SchedulesConfig = Field(default_factory=lambda: SchedulesConfig())
    advisor: AdvisorConfig = Field(default_factory=lambda: AdvisorConfig())
    api: ApiConfig = Field(default_factory=lambda: ApiConfig())
    retention: RetentionConfig = Field(default_factory=lambda: RetentionConfig())
    # checked by workflows.llm.guard.LlmConfig when the advisor is built
    llm: dict[str, Any] = Field(default_factory=dict, validation_alias="LARKOPS_LLM")
    runbooks: list[dict[str, Any]] = Field(
        default_factory=list, validation_alias="LARKOPS_RUNBOOKS"
    )
    coordination: CoordinationSettings = Field(
        default_factory=CoordinationSettings, validation_alias="LARKOPS_COORDINATION"
    )
    # YAML `roles:` (bot.roles); None: no section, everybody is an operator as before roles
    roles: RoleConfig | None = Field(default=None, validation_alias="LARKOPS_ROLES")
    # YAML `oncall:` and `escalation:` (workflows.oncall); without `escalation:` nobody is paged
    oncall: OncallConfig = Field(default_factory=lambda: OncallConfig())
    escalation: EscalationConfig = Field(default_factory=lambda: EscalationConfig())
    postmortems: PostmortemConfig = Field(default_factory=lambda: PostmortemConfig())

    @property
    def workdays(self) -> Literal["cn", "mon-fri"]:
        """The working-day calendar of schedule sentences (see `SchedulesConfig`)."""
        if self.schedules.workdays is not None:
            return self.schedules.workdays
        from workflows.schedule.holidays import workdays_for  # not at import: the CLI starts fast

        return workdays_for(self.timezone, self.language)

    @field_validator(
        "approvers", "alert_senders", "admins", "fetch_allow", "trusted_proxies", mode="before"
    )
    @classmethod
    def _comma_list(cls, value: object) -> object:
        return _split_list(value)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an address or a network (10.0.0.5, 10.0.0.0/8, ::1)"
                ) from None
        return value

    @field_validator("lark_domain", "openai_base_url", "anthropic_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https:// (got {value!r})")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        scheme = value.get_secret_value().split("://", 1)[0]
        if scheme.split("+", 1)[0] not in ("postgres", "postgresql"):
            raise ValueError(f"must be a postgresql:// URL (got scheme {scheme!r})")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if not value.get_secret_value().startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("unknown time zone (use an IANA name such as Asia/Shanghai)") from None
        return value

    @model_validator(mode="after")
    def _http_delivery_is_authenticated(self) -> Settings:
        unauthenticated = not (
            self.lark_encrypt_key.get_secret_value()
            or self.lark_verification_token.get_secret_value()
        )
        if self.lark_event_delivery == "http" and unauthenticated:
            raise ValueError(
                "LARK_EVENT_DELIVERY=http needs LARK_ENCRYPT_KEY (better) or "
                "LARK_VERIFICATION_TOKEN: anyone could post events otherwise"
            )
        return self

    @model_validator(mode="after")
    def _paged_schedules_exist(self) -> Settings:
        unknown = sorted(self.escalation.schedules() - set(self.oncall.schedules))
        if unknown:
            raise ValueError(f"escalation pages oncall:{unknown[0]}, a schedule oncall: lacks")
        return self

    @property
    def lark_configured(self) -> bool:
        return bool(self.lark_app_id and self.lark_app_secret.get_secret_value())

    def secret_values(self) -> list[str]:
        """Every configured secret, for the log redactor."""
        found: list[str] = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr) and value.get_secret_value():
                found.append(value.get_secret_value())
        return found

    def masked(self) -> dict[str, Any]:
        """The effective configuration as plain data, secrets replaced by a mask."""
        data: dict[str, Any] = {}
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            key = _env_name(field.validation_alias) or name
            if isinstance(value, SecretStr):
                data[key] = _mask(name, value.get_secret_value())
            elif isinstance(value, BaseModel):
                data[key] = value.model_dump(mode="json")
            elif isinstance(value, Path):
                data[key] = str(value)
            else:
                data[key] = value
        return data


def _env_name(alias: object) -> str | None:
    return alias if isinstance(alias, str) else None


def _mask(field: str, secret: str) -> str | None:
    """Hide a secret; for URLs keep the shape and hide only the password."""
    if not secret:
        return None
    if field.endswith("_url") and "://" in secret:
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(secret)
        if parts.password:
            netloc = f"{parts.username or ''}:{SECRET_MASK}@{parts.hostname or ''}"
            if parts.port:
                netloc += f":{parts.port}"
            return urlunsplit(parts._replace(netloc=netloc))
        return secret
    return SECRET_MASK


def _describe(error: ValidationError) -> str:
    """One line naming the setting and the problem."""
    first = error.errors()[0]
    location = [str(part) for part in first.get("loc", ())]
    name = ".".join(location) or "configuration"
    fields = {_env_name(f.validation_alias) or n: f for n, f in Settings.model_fields.items()}
    field = fields.get(location[0]) if location else None
    message = str(first.get("msg", "invalid value"))
    message = message.removeprefix("Value error, ")
    shown = first.get("input")
    secret = field is not None and "Secret" in str(field.annotation)
    if shown is not None and not isinstance(shown, dict | list) and not secret:
        message = f"{message} (got {str(shown)!r})"
    more = len(error.errors()) - 1
    suffix = f"; and {more} more problem(s)" if more else ""
    return f"{name}: {message}{suffix}"


def by_alias(data: dict[Any, Any]) -> dict[str, Any]:
    """Key settings by their environment names, accepting field names (`http_port`) too.

    Field names are never read from the environment: `home` would otherwise pick up `$HOME`."""
    aliases = {
        name: _env_name(f.validation_alias) or name for name, f in Settings.model_fields.items()
    }
    return {aliases.get(str(key).lower(), str(key).upper()): value for key, value in data.items()}


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning every validation problem into one `ConfigError` line.

    `overrides` take field names or environment names and win over every other source."""
    names = _environment_names()
    given = by_alias(overrides)
    env, dotenv = environment(names), dotenv_file(names)
    from_yaml = by_alias(yaml_file(config_path(given, env, dotenv)))
    try:
        return Settings.model_validate(merged(given, env, dotenv, from_yaml))
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _environment_names() -> dict[str, bool]:
    """Every setting's environment name, and whether its value there is JSON. A setting with
    no environment name (a YAML section such as `oncall:`) is not read from the environment."""
    return {
        name: _structured(field)
        for field in Settings.model_fields.values()
        if (name := _env_name(field.validation_alias))
    }


def _structured(field: FieldInfo) -> bool:
    if PLAIN in field.metadata:
        return False
    kinds = get_args(field.annotation) if get_origin(field.annotation) in (Union, UnionType) else ()
    for kind in kinds or (field.annotation,):
        origin = get_origin(kind) or kind
        if origin in (dict, list) or (isinstance(origin, type) and issubclass(origin, BaseModel)):
            return True
    return False
