"""Settings from the environment (prefix ``HRSYNC_``, optional ``.env``): DESIGN §4.

Every value has an embedded default so `hrsync demo` runs with no services. Errors name the variable;
`Settings.redacted()` is the only form in which settings are ever shown.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.config.errors import ConfigError, in_field_order
from shared.config.redaction import redact_text, redact_url

ENV_PREFIX = "HRSYNC_"
DEFAULT_HRIS_QUERY = (
    "SELECT employee_no, full_name, email, department, manager_no, status, hire_date, "
    "termination_date, biostar_user_id, updated_at FROM hrsync_employees"
)
DEFAULT_HRIS_ABSENCES_QUERY = (
    "SELECT absence_id, employee_no, kind, date_from, date_to, part, status, updated_at FROM hrsync_absences"
)


CRON_FIELDS = ("minute", "hour", "day", "month", "day_of_week")
JOB_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


def cron_fields(expression: str) -> dict[str, str]:
    """A crontab expression as APScheduler `CronTrigger` keyword arguments; raise ValueError if invalid.

    5 fields (minute hour day month weekday) or 6 with seconds first. Weekdays must be names (`mon-fri`):
    APScheduler 3 counts 0 as Monday where crontab counts it as Sunday, so a number would be ambiguous.
    """
    from apscheduler.triggers.cron import CronTrigger

    values = expression.split()
    if len(values) not in (5, 6):
        raise ValueError(f"expected 5 fields (or 6 with seconds first), got {len(values)}")
    names = ("second", *CRON_FIELDS) if len(values) == 6 else CRON_FIELDS
    fields = dict(zip(names, values, strict=True))
    if re.search(r"(?:^|[,-])\d", fields["day_of_week"]):
        raise ValueError("write weekdays as names (mon-fri, sun): cron and APScheduler 3 number them differently")
    CronTrigger(**fields, timezone="UTC")  # raises ValueError on a bad field
    return fields


class ScheduleSpec(BaseModel):
    """One job of HRSYNC_SCHEDULES: when it fires and the `hrsync.sync.requested` data it publishes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cron: str = Field(description="crontab in HRSYNC_TIMEZONE: 5 fields, or 6 with seconds first")
    scope: Literal["nightly", "hris", "attendance"]
    notify: bool | None = Field(None, description="send notification emails (omitted: the bridge's default)")
    days: int | None = Field(
        None, ge=1, le=366, description="sync the N local days ending with the fire date (1 = that day only)"
    )
    grace: int | None = Field(None, ge=1, le=7 * 24 * 3600, description="misfire grace in seconds")

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        cron_fields(value)
        return value


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
    hris_absences_query: str = Field(
        DEFAULT_HRIS_ABSENCES_QUERY, description="absence query (DESIGN §6); off turns absences off"
    )
    broker_url: str | None = Field(None, description="Celery broker URL")
    result_backend: str | None = Field(None, description="Celery result backend URL")
    events_url: str | None = Field(None, description="AMQP URL of the event plane")
    smtp_url: str | None = Field(None, description="mail server: smtp://, smtps://, smtp+starttls://")
    mail_from: str = Field("hrsync@localhost", description="sender address")
    ops_email: str = Field("ops@localhost", description="where sync_failed notices go")
    timezone: str = Field("UTC", description="the company's IANA time zone")
    nightly_cron: str = Field("0 2 * * *", description="nightly sync schedule (crontab, 5 fields)")
    schedules: Annotated[dict[str, ScheduleSpec | None], NoDecode] = Field(
        default_factory=dict,
        description='further scheduled syncs, JSON: {"job": {"cron", "scope", "notify"?, "days"?, "grace"?}}; '
                    '"nightly": null switches the nightly sync off',
    )
    shifts_file: Path | None = Field(None, description="shift definitions (YAML)")
    export_dir: Path | None = Field(None, description="month-end exports' folder; unset: $HRSYNC_HOME/exports")
    payroll_email: str | None = Field(None, description="who receives each month-end export by mail; unset: no mail")
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
    pending_max_wait: int = Field(
        900, ge=1, description="seconds a pending execution may wait behind a running one of its kind before "
                               "ops are alerted")
    nightly_deadline_minutes: int = Field(
        180, ge=1, description="the nightly must have succeeded this long after its scheduled time, else ops "
                               "are alerted")
    consumer_timeout: int = Field(1800, ge=10, description="RabbitMQ consumer_timeout the broker uses, s")
    source_timeout: float = Field(
        120.0, gt=0, le=3600,
        description="longest wait for one answer of the HRIS or BioStar (connect, query, next rows), seconds",
    )
    task_max_retries: int = Field(5, ge=0, le=100, description="retries of a stage task on a transient error")
    retry_backoff_seconds: float = Field(
        2.0, gt=0, le=3600, description="first retry delay of a stage task, doubling per retry (full jitter)"
    )
    bridge_retry_seconds: float = Field(
        0.5, gt=0, le=60, description="the bridge's first wait between attempts at one event, doubling up to 20x"
    )
    metrics_port: int | None = Field(None, ge=1, le=65535, description="Prometheus endpoint port; unset = off")
    web_users_file: Path | None = Field(None, description="console users (JSON: name -> {hash, role})")
    web_secret: SecretStr | None = Field(None, description="the console's cookie-signing secret")
    intake_sources_file: Path | None = Field(
        None, description="the HTTP intake's sources: signing secrets, allowed types, rates (YAML; DESIGN §12)"
    )

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
        try:
            if len(value.split()) != len(CRON_FIELDS):
                raise ValueError(f"got {len(value.split())} fields")
            cron_fields(value)
        except ValueError as exc:
            raise ValueError(f"not a 5-field crontab expression ({exc})") from None
        return value

    @field_validator("schedules", mode="before")
    @classmethod
    def _parse_schedules(cls, value: Any) -> dict[str, ScheduleSpec | None]:
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(f"not JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(value, dict):
            raise ValueError("expected a JSON object mapping job names to schedules")
        jobs: dict[str, ScheduleSpec | None] = {}
        for name, spec in value.items():
            if not isinstance(name, str) or not JOB_NAME.fullmatch(name):
                raise ValueError(f"{name!r}: job names are 1-64 of a-z 0-9 _ . - (starting with a letter or digit)")
            if name == "nightly" and spec is not None:
                raise ValueError("nightly: set its schedule with HRSYNC_NIGHTLY_CRON (null switches it off)")
            try:
                jobs[name] = None if spec is None else ScheduleSpec.model_validate(spec)
            except ValidationError as exc:
                first = in_field_order(exc.errors())[0]
                where = ".".join(str(part) for part in (name, *first["loc"]))
                raise ValueError(f"{where}: {str(first['msg']).removeprefix('Value error, ')}") from None
        return jobs

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

    def exports(self) -> Path:
        """Where month-end exports are written: HRSYNC_EXPORT_DIR, else `$HRSYNC_HOME/exports`."""
        return self.export_dir or self.home / "exports"

    def events(self) -> str:
        """The AMQP URL of the event plane: HRSYNC_EVENTS_URL, else an AMQP broker URL."""
        url = self.event_plane_url()
        if url is None:
            raise ConfigError("HRSYNC_EVENTS_URL: not set (and HRSYNC_BROKER_URL is not AMQP)")
        return url

    def event_plane_url(self) -> str | None:
        """The event plane's AMQP URL, or None on the embedded defaults (no AMQP server at all)."""
        url = self.events_url or (self.broker_url if self.broker().startswith(("amqp", "pyamqp")) else None)
        return None if url is None else url.replace("pyamqp://", "amqp://", 1)

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
    first = in_field_order(error.errors())[0]
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
