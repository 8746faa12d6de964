"""Settings from the environment (prefix ``HRSYNC_``, optional ``.env``): DESIGN §4.

Every value has an embedded default so `hrsync demo` runs with no services. Errors name the variable;
`Settings.redacted()` is the only form in which settings are ever shown.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.errors import ConfigError
from shared.redaction import redact_text, redact_url

ENV_PREFIX = "HRSYNC_"
DEFAULT_HRIS_QUERY = (
    "SELECT employee_no, full_name, email, department, manager_no, status, hire_date, "
    "termination_date, biostar_user_id, updated_at FROM hrsync_employees"
)


def default_home() -> Path:
    """Where the embedded defaults keep their files (SQLite databases, mail sink, broker folder)."""
    return Path.home() / ".hrsync"


class Settings(BaseSettings):
    """All of hrsync's settings. Fields left ``None`` mean "the embedded default" (see `*_url` helpers)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore")

    home: Path = Field(default_factory=default_home, description="folder for embedded defaults")
    database_url: str | None = Field(None, description="app DB, SQLAlchemy async URL")
    biostar_url: str | None = Field(None, description="BioStar 2 DB, SQLAlchemy async URL")
    hris_odbc: str | None = Field(None, description="ODBC connection string of the HRIS")
    hris_query: str = Field(DEFAULT_HRIS_QUERY, description="employee query")
    broker_url: str | None = Field(None, description="Celery broker URL")
    result_backend: str | None = Field(None, description="Celery result backend URL")
    events_url: str | None = Field(None, description="AMQP URL of the event plane")
    smtp_url: str | None = Field(None, description="mail server: smtp://, smtps://, smtp+starttls://")
    mail_from: str = Field("hrsync@localhost", description="sender address")
    ops_email: str = Field("ops@localhost", description="where sync_failed notices go")
    timezone: str = Field("UTC", description="the company's IANA time zone")
    nightly_cron: str = Field("0 2 * * *", description="nightly sync schedule (crontab, 5 fields)")
    shifts_file: Path | None = Field(None, description="shift definitions (YAML)")
    biostar_read_overlap_minutes: int = Field(
        120, ge=0, le=7 * 24 * 60,
        description="BioStar reads start this much before the requested window: logs arrive late",
    )
    biostar_count_duress: bool = Field(
        False, description="count duress authentications (BioStar main codes 0x12, 0x15) as punches"
    )

    db_pool_size: int = Field(20, ge=1, le=500, description="pooled connections per engine and process")
    db_max_overflow: int = Field(40, ge=0, le=1000, description="extra connections above the pool")
    runner_dispose: Literal["shutdown", "per_task"] = Field(
        "shutdown", description="when engines are closed: at runner shutdown, or after every run_async call"
    )
    log_format: Literal["auto", "json", "console"] = Field("auto", description="auto: console on a TTY")
    log_level: str = Field("INFO", description="minimum log level")
    task_time_limit: int = Field(1500, ge=10, description="hard time limit of a task, seconds")
    consumer_timeout: int = Field(1800, ge=10, description="RabbitMQ consumer_timeout the broker uses, s")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    @field_validator("nightly_cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:
            raise ValueError(f"not a 5-field crontab expression ({exc})") from None
        return value

    @field_validator("database_url", "biostar_url")
    @classmethod
    def _async_driver(cls, value: str | None) -> str | None:
        if value is not None and "+" not in value.split("://", 1)[0]:
            raise ValueError("needs an async driver, e.g. mysql+aiomysql:// or sqlite+aiosqlite://")
        return value

    @field_validator("result_backend")
    @classmethod
    def _no_rpc_backend(cls, value: str | None) -> str | None:
        if value is not None and value.startswith("rpc://"):
            raise ValueError("rpc:// cannot hold chord state; use redis://")
        return value

    # -- resolved values: the embedded default where nothing was set --------------------------------

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def app_db_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.home / 'app.db'}"

    def biostar_db_url(self) -> str:
        return self.biostar_url or f"sqlite+aiosqlite:///{self.home / 'biostar.db'}"

    def broker(self) -> str:
        return self.broker_url or "filesystem://"

    def backend(self) -> str:
        return self.result_backend or f"db+sqlite:///{self.home / 'results.db'}"

    def events(self) -> str:
        """The AMQP URL of the event plane: HRSYNC_EVENTS_URL, else an AMQP broker URL."""
        url = self.events_url or (self.broker_url if self.broker().startswith(("amqp", "pyamqp")) else None)
        if url is None:
            raise ConfigError("HRSYNC_EVENTS_URL: not set (and HRSYNC_BROKER_URL is not AMQP)")
        return url.replace("pyamqp://", "amqp://", 1)

    def redacted(self) -> dict[str, Any]:
        """Settings as shown to people and logs: passwords masked, embedded defaults resolved."""
        shown = self.model_dump(mode="json")
        shown.update(database_url=self.app_db_url(), biostar_url=self.biostar_db_url(),
                     broker_url=self.broker(), result_backend=self.backend())
        for key, value in shown.items():
            if isinstance(value, str):
                shown[key] = redact_url(value) if "://" in value else redact_text(value)
        return shown


def _describe(error: ValidationError) -> str:
    """One line naming the environment variable of the first problem."""
    first = error.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else "settings"
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"{ENV_PREFIX}{field.upper()}: {message}"


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment; raise `ConfigError` naming the bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read once. Tests call `get_settings.cache_clear()` after changing env."""
    return load_settings()
