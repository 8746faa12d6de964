"""Fixtures shared by every test: isolated settings, and the real services (skipped locally when down,
failing in CI where `.ci/run` starts them)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest

from shared.config.settings import get_settings
from shared.runtime import runner

IN_CI = os.environ.get("CI") == "true"
MARIADB = ("127.0.0.1", 3306)
# Under pytest-xdist (`tests/run`), each test process has a RabbitMQ virtual host of its own, so tests that use
# "the" broker never consume one another's messages; alone, the default virtual host.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
RABBITMQ_VHOST = f"hrsync-tests-{XDIST_WORKER}" if XDIST_WORKER else "/"
RABBITMQ_URL = f"amqp://guest:guest@127.0.0.1:5672/{'' if RABBITMQ_VHOST == '/' else RABBITMQ_VHOST}"
if RABBITMQ_VHOST == "/":
    RABBITMQ_URL += "/"
REDIS_URL = "redis://127.0.0.1:6379/0"
PG_ODBC = (
    "Driver={PostgreSQL Unicode};Server=127.0.0.1;Port=5432;Uid=postgres;Database=%s;"
    "UseDeclareFetch=1;ConnSettings={SET statement_timeout=30000}"
)


def require_service(name: str, host: str, port: int) -> None:
    """Skip the test when a service is down locally; fail it in CI, where it must be up."""
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as exc:
        message = f"{name} not reachable on {host}:{port} ({exc})"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def set_env(mp: pytest.MonkeyPatch, **values: str) -> None:
    """Set HRSYNC_* variables and make the process re-read its settings."""
    for key, value in values.items():
        mp.setenv(f"HRSYNC_{key.upper()}", value)
    get_settings.cache_clear()


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 120, every: float = 0.2) -> Any:
    """Poll `condition()` every `every` seconds until it returns something truthy, and return that; fail the
    test naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def rabbitmqctl(*args: str, check: bool = True) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=check, capture_output=True, timeout=60)


@pytest.fixture(scope="session", autouse=True)
def worker_vhost() -> Iterator[None]:
    """This test process's own virtual host under pytest-xdist (made fresh, deleted at the end)."""
    if RABBITMQ_VHOST == "/" or shutil.which("rabbitmqctl") is None:
        yield
        return
    rabbitmqctl("delete_vhost", RABBITMQ_VHOST, check=False)  # left by a killed run
    rabbitmqctl("add_vhost", RABBITMQ_VHOST)
    rabbitmqctl("set_permissions", "-p", RABBITMQ_VHOST, "guest", ".*", ".*", ".*")
    yield
    rabbitmqctl("delete_vhost", RABBITMQ_VHOST, check=False)


@pytest.fixture(scope="session", autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Embedded defaults live in a temporary HRSYNC_HOME; the runner stops after the session."""
    home = tmp_path_factory.mktemp("hrsync-home")
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("HRSYNC_"):
                mp.delenv(key)
        set_env(mp, home=str(home), log_format="json")
        yield home
        runner.shutdown()
    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def fresh_settings_after_test() -> Iterator[None]:
    """Settings are re-read after every test, so no test sees another's (restored) environment."""
    yield
    get_settings.cache_clear()


def mariadb_admin() -> pymysql.Connection:  # type: ignore[type-arg]
    return pymysql.connect(host=MARIADB[0], port=MARIADB[1], user="root", autocommit=True)


@pytest.fixture(scope="session")
def mariadb() -> None:
    """The real MariaDB server is up."""
    require_service("MariaDB", *MARIADB)


def create_mariadb_database(prefix: str) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with mariadb_admin() as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    return name


def drop_mariadb_database(name: str) -> None:
    with mariadb_admin() as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


def mariadb_connections(database: str) -> int:
    """How many server connections are open on `database` (from the process list)."""
    with mariadb_admin() as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = %s", (database,))
        return int(cur.fetchone()[0])  # type: ignore[index]


@pytest.fixture(scope="session")
def app_db(mariadb: None, isolated_home: Path) -> Iterator[str]:
    """A fresh, migrated MariaDB app database for the session; its name is yielded."""
    from shared.database import migrations

    name = create_mariadb_database("hrsync_test")
    with pytest.MonkeyPatch.context() as mp:
        set_env(mp, database_url=f"mysql+aiomysql://root@127.0.0.1:3306/{name}")
        runner.run_async(migrations.upgrade())
        yield name
        runner.shutdown()
    get_settings.cache_clear()
    drop_mariadb_database(name)
