"""Configuration: one TOML file, every key overridable by ``LEADTRAIL_…`` environment variables.

Only the bot token has no default, and only ``leadtrail run`` needs it, so a config file with just the
sections a command uses is enough.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from reports.alerts import AiBudget, AlertSettings
from reports.followup import FollowupSettings
from reports.metrics import ReportScope
from reports.periods import Period
from reports.pricing import ModelPrice, PriceTable
from storage.batch_store import StoreSettings
from storage.event_types import EventType
from storage.identity_policy import DEFAULT_MAX_USERS_PER_VALUE, IdentityPolicy
from storage.phones import DEFAULT_REGION

CONFIG_ENV_VAR = "LEADTRAIL_CONFIG"
_TOKEN_RE = re.compile(r"^\d{3,}:[A-Za-z0-9_-]{20,}$")
_HHMM_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class ConfigError(Exception):
    """A setting is missing or wrong; the message names the key and fits on one line."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TelegramSettings(_Section):
    token: SecretStr | None = None
    api_server: str = "https://api.telegram.org"
    owners: list[int] = Field(default_factory=list)
    # Administrators who answer and call clients: /followup, /client, /search and the unanswered alerts only.
    staff: list[int] = Field(default_factory=list)
    event_channel_id: int | None = None
    source_bots: list[int] = Field(default_factory=list)
    source_users: list[int] = Field(default_factory=list)
    notice_interval_minutes: float = Field(default=10.0, ge=0)
    request_timeout_seconds: float = Field(default=60.0, gt=0)
    # The Bot API refuses bots' uploads over 50 MB (a local Bot API server allows 2000 MB); /export checks it.
    upload_limit_bytes: int = Field(default=50 * 1024 * 1024, ge=1)

    @field_validator("token")
    @classmethod
    def _token_format(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _TOKEN_RE.match(value.get_secret_value()):
            raise ValueError("does not look like a bot token from @BotFather (123456:ABC…)")
        return value

    @field_validator("api_server")
    @classmethod
    def _api_server_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")


class DatabaseSettings(_Section):
    url: str = "sqlite+aiosqlite:///leadtrail.db"
    busy_timeout_ms: int = Field(default=5000, ge=0)
    leader_retry_seconds: float = Field(default=10.0, gt=0, le=3600)

    @field_validator("url")
    @classmethod
    def _supported_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value


class IngestSource(_Section):
    """A source with a token of its own: optionally limited to some channels and to a request rate."""

    name: str = Field(min_length=1, max_length=64)
    token: SecretStr
    channels: list[str] = Field(default_factory=list)
    rate_per_second: float | None = Field(default=None, gt=0)


class IngestSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    tokens: list[SecretStr] = Field(default_factory=list)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    batch_max_events: int = Field(default=5000, ge=1)
    batch_max_wait_ms: float = Field(default=0.0, ge=0)
    quarantine_max_rows: int = Field(default=10_000, ge=1)
    retry_after_seconds: int = Field(default=5, ge=1)
    metrics_token: SecretStr | None = None
    storage_alarm_after_seconds: float = Field(default=30.0, ge=0)
    sources: list[IngestSource] = Field(default_factory=list)


class ReportSettings(_Section):
    daily_at: str = "09:00"
    daily_grace_hours: float = Field(default=6.0, ge=0, le=24)
    sla_seconds: float = Field(default=3.0, gt=0)

    @field_validator("daily_at")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _HHMM_RE.match(value):
            raise ValueError("must be a time like 09:00")
        return value


class EmailSettings(_Section):
    """SMTP for owners who want the daily report and alerts by e-mail too."""

    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    sender: str = "leadtrail@localhost"
    owners: list[str] = Field(default_factory=list)
    starttls: bool = True
    use_tls: bool = False
    timeout_seconds: float = Field(default=30.0, gt=0)

    @field_validator("owners")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if "@" not in address or address.startswith("@") or address.endswith("@"):
                raise ValueError(f"{address!r} is not an e-mail address")
        return value


class IdentitySettings(_Section):
    """Which ids join user ids into one client (design.md, "Identities")."""

    default_region: str = DEFAULT_REGION
    ignore_values: list[str] = Field(default_factory=list)
    max_users_per_value: int = Field(default=DEFAULT_MAX_USERS_PER_VALUE, ge=1)

    @field_validator("default_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        if value.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown region {value!r} (a two-letter country code like RU)")
        return value.upper()

    def policy(self) -> IdentityPolicy:
        return IdentityPolicy.of(self.default_region, self.ignore_values, self.max_users_per_value)


class RetentionSettings(_Section):
    """Anonymisation of old events (152-FZ). Without ``hash_secret`` the key lives in ``key_file``
    (``bot.retention_key``), made on first need."""

    days: int = Field(default=183, ge=1)
    hash_secret: SecretStr | None = None
    key_file: str | None = None
    batch_size: int = Field(default=1000, ge=1, le=100_000)

    @field_validator("hash_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        # A short key could be found by trying, and with it every phone behind a pseudonym.
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (see config.example.toml for how to make one)")
        return value


class Bitrix24Settings(_Section):
    """The Bitrix24 link (issue 6): off while ``webhook_url`` is unset; the URL holds a secret."""

    webhook_url: SecretStr | None = None
    application_token: SecretStr | None = None
    create_lead_on: list[str] = Field(default_factory=lambda: [EventType.LEAD_CREATED.value])
    source_id: str = "OTHER"
    requests_per_second: float = Field(default=2.0, gt=0, le=50)
    batch_size: int = Field(default=50, ge=1, le=50)
    max_attempts: int = Field(default=12, ge=1, le=100)
    timeout_seconds: float = Field(default=20.0, gt=0)
    poll_seconds: float = Field(default=2.0, gt=0, le=3600)

    @field_validator("webhook_url")
    @classmethod
    def _webhook_form(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        url = value.get_secret_value().strip()
        if not re.match(r"^https?://[^/\s]+/rest/\d+/[^/\s]+/?$", url):
            raise ValueError("must be an inbound webhook URL like https://<portal>/rest/<user>/<secret>/")
        return SecretStr(url.rstrip("/") + "/")

    @property
    def enabled(self) -> bool:
        return self.webhook_url is not None


class AISettings(_Section):
    """``[ai]``: what the model calls cost (issue 17), how long an OTLP model call waits for its trace's
    user, and the monthly budget the owners are warned about."""

    currency: str = Field(default="RUB", pattern=r"^[A-Z]{3}$")
    prices: list[ModelPrice] = Field(default_factory=list)
    trace_wait_seconds: float = Field(default=120.0, ge=0, le=86_400)
    monthly_budget: float | None = Field(default=None, gt=0)

    def price_table(self) -> PriceTable:
        return PriceTable(self.currency, tuple(self.prices))

    def budget(self) -> AiBudget | None:
        return None if self.monthly_budget is None else AiBudget(self.monthly_budget, self.currency)


class YclientsSettings(_Section):
    """The YCLIENTS link: its webhooks (off while ``webhook_token`` is unset) and a reconciliation through
    its REST API (off until the two API tokens and ``company_ids`` are set)."""

    webhook_token: SecretStr | None = None
    # A company's point name in reports ("12345" = "Баумана"); else the company id is the location.
    locations: dict[str, str] = Field(default_factory=dict)
    partner_token: SecretStr | None = None
    user_token: SecretStr | None = None
    company_ids: list[int] = Field(default_factory=list)
    # The currency of the salon's prices and payments.
    currency: str = Field(default="RUB", min_length=3, max_length=3)
    sync_minutes: float = Field(default=30.0, gt=0, le=1440)
    # How far back the first reconciliation reads; later ones go on from where the last one ended.
    sync_days: int = Field(default=3, ge=1, le=90)
    api_url: str = "https://api.yclients.com/api/v1"
    # YCLIENTS allows 5 requests a second (200 a minute) per address.
    requests_per_second: float = Field(default=4.0, gt=0, le=5)
    timeout_seconds: float = Field(default=20.0, gt=0)

    @field_validator("webhook_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        # The token is the webhook's only password (YCLIENTS cannot send headers): it must not be guessable.
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (a random token, see config.example.toml)")
        return value

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @property
    def sync_enabled(self) -> bool:
        return bool(self.partner_token and self.user_token and self.company_ids)

    def location_of(self, company_id: int) -> str:
        return self.locations.get(str(company_id), str(company_id))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LEADTRAIL_",
        env_nested_delimiter="__",
        extra="forbid",
        nested_model_default_partial_update=True,
    )

    timezone: str = "Europe/Moscow"
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    reports: ReportSettings = Field(default_factory=ReportSettings)
    email: EmailSettings = Field(default_factory=EmailSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    followup: FollowupSettings = Field(default_factory=FollowupSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)
    bitrix24: Bitrix24Settings = Field(default_factory=Bitrix24Settings)
    ai: AISettings = Field(default_factory=AISettings)
    yclients: YclientsSettings = Field(default_factory=YclientsSettings)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like Europe/Moscow)") from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def report_scope(self, period: Period, location: str | None = None) -> ReportScope:
        """What the report builder needs of the settings, as plain values."""
        return ReportScope(period, self.tz, self.reports.sla_seconds, location, self.ai.currency)

    def store_settings(self) -> StoreSettings:
        """What the event writer's transactions need of the settings, as plain values."""
        return StoreSettings(self.ingest.quarantine_max_rows, self.identity.policy())

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's values arrive as init kwargs; the environment must win over them.
        return env_settings, init_settings


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(config)"
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown key (see config.example.toml for the keys there are)"
    return f"config: {key}: {message}"


def load_settings(path: str | Path | None = None) -> Settings:
    """Read the TOML file (``--config`` or ``LEADTRAIL_CONFIG``; none is fine) and the environment."""
    chosen = path or os.environ.get(CONFIG_ENV_VAR)
    data: dict[str, Any] = {}
    if chosen:
        file = Path(chosen)
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config: file {file} not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config: cannot read {file}: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config: {file} is not valid TOML: {exc}") from None
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
