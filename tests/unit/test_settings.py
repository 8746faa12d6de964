"""Settings: every DESIGN §4 variable, errors that name the variable, passwords never shown."""

from __future__ import annotations

import pytest

from shared.config.errors import ConfigError
from shared.config.settings import Settings, load_settings

DESIGN_VARIABLES = [
    "DATABASE_URL", "BIOSTAR_URL", "HRIS_ODBC", "HRIS_QUERY", "BROKER_URL", "RESULT_BACKEND",
    "EVENTS_URL", "SMTP_URL", "MAIL_FROM", "TIMEZONE", "NIGHTLY_CRON", "SHIFTS_FILE",
]


@pytest.mark.parametrize("variable", DESIGN_VARIABLES)
def test_every_design_variable_is_a_setting(variable: str) -> None:
    """Each HRSYNC_* variable of DESIGN §4 maps to a settings field."""
    assert variable.lower() in Settings.model_fields


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        ("TIMEZONE", "Mars/Olympus", "HRSYNC_TIMEZONE: unknown IANA time zone 'Mars/Olympus'"),
        ("NIGHTLY_CRON", "every night", "HRSYNC_NIGHTLY_CRON: not a 5-field crontab"),
        ("NIGHTLY_CRON", "0 2 * *", "HRSYNC_NIGHTLY_CRON: not a 5-field crontab"),
        ("DATABASE_URL", "mysql://root@db/app", "HRSYNC_DATABASE_URL: needs an async driver"),
        ("BIOSTAR_URL", "sqlite:///x.db", "HRSYNC_BIOSTAR_URL: needs an async driver"),
        ("RESULT_BACKEND", "rpc://", "HRSYNC_RESULT_BACKEND: rpc:// cannot hold chord state"),
        ("DB_POOL_SIZE", "0", "HRSYNC_DB_POOL_SIZE:"),
        ("DB_POOL_SIZE", "many", "HRSYNC_DB_POOL_SIZE:"),
        ("RUNNER_DISPOSE", "sometimes", "HRSYNC_RUNNER_DISPOSE:"),
        ("LOG_FORMAT", "xml", "HRSYNC_LOG_FORMAT:"),
    ],
    ids=lambda v: str(v)[:20],
)
def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, env: str, value: str,
                                      message: str) -> None:
    """A bad value raises ConfigError whose one-line message starts with the variable's name."""
    monkeypatch.setenv(f"HRSYNC_{env}", value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("field", "value", "secret"),
    [
        ("database_url", "mysql+aiomysql://app:s3cr3t@db:3306/hrsync", "s3cr3t"),
        ("biostar_url", "mysql+aiomysql://ro:b10star@bio/biostar2_ac", "b10star"),
        ("broker_url", "amqp://hr:rabbitpw@mq:5672//", "rabbitpw"),
        ("result_backend", "redis://:redispw@cache:6379/0", "redispw"),
        ("events_url", "amqp://ev:eventpw@mq//", "eventpw"),
        ("smtp_url", "smtps://mailer:smtppw@mail:465", "smtppw"),
        ("hris_odbc", "Driver={ODBC Driver 18 for SQL Server};Server=tcp:h,1433;UID=hr;PWD=odbcpw;", "odbcpw"),
        ("hris_odbc", "Driver={FreeTDS};Server=h;Password={br;aced};TDS_Version=7.4", "br;aced"),
    ],
    ids=lambda v: str(v)[:16],
)
def test_redacted_settings_hide_passwords(field: str, value: str, secret: str) -> None:
    """Settings as shown to people never contain a password, but keep user and host."""
    shown = load_settings(**{field: value}).redacted()
    assert secret not in str(shown)
    assert "***" in str(shown[field])


def test_embedded_defaults_need_no_services(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    """With nothing set, every URL resolves to an embedded default under HRSYNC_HOME."""
    for variable in DESIGN_VARIABLES:
        monkeypatch.delenv(f"HRSYNC_{variable}", raising=False)
    settings = load_settings(home=tmp_path)
    assert settings.app_db_url().startswith("sqlite+aiosqlite:///")
    assert settings.biostar_db_url().startswith("sqlite+aiosqlite:///")
    assert settings.broker() == "filesystem://"
    assert settings.backend().startswith("db+sqlite:///")
    assert settings.nightly_cron == "0 2 * * *"
