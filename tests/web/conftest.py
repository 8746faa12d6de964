"""The console in-process (Starlette's test client) on the session's MariaDB app database, with a viewer and
an operator; helpers to sign in and to record executions."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.database.db import app_engine
from shared.database.tables import execution_stages, executions
from shared.runtime.runner import run_async
from tests.integration.biostar_fixtures import biostar_db, hrsync_env, staff
from tests.integration.hris_fixtures import pg_hris
from tests.integration.smtp_fixtures import smtp_server
from tests.integration.stack_fixtures import Stack
from tests.web.browser import OPERATOR
from tests.web.browser import PASSWORD as OPERATOR_PASSWORD
from web.users import UserStore, add_user, hash_password

__all__ = ["biostar_db", "hrsync_env", "pg_hris", "smtp_server", "staff"]  # the stack's fixtures, for the browser tests

PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def users() -> UserStore:
    """A viewer `vera` and an operator `otto`, both with PASSWORD."""
    digest = hash_password(PASSWORD)
    return UserStore({"vera": (digest, "viewer"), "otto": (digest, "operator")})


def new_client(users: UserStore) -> Any:
    """A test client on a fresh console app (its own throttle and sessions)."""
    with warnings.catch_warnings():  # Starlette warns about httpx's future at import; not ours to fix
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    from web.app import create_app

    return TestClient(create_app(users, "test-secret"), follow_redirects=False)


@pytest.fixture
def client(app_db: str, users: UserStore) -> Iterator[Any]:
    """An anonymous visitor of a console on the app database."""
    with new_client(users) as visitor:
        yield visitor


def csrf_of(page: str) -> str:
    """The CSRF token in a page's forms."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page[:500]
    return found.group(1)


def sign_in(client: Any, name: str, password: str = PASSWORD) -> Any:
    """Post the login form as a browser would (with the page's CSRF token); the response."""
    token = csrf_of(client.get("/login").text)
    return client.post("/login", data={"name": name, "password": password, "csrf_token": token, "next": "/"})


def record_failed(error: str = "ValueError: boom") -> str:
    """A failed execution (failed at merge, shard `k1`) with its stage rows; its id."""
    execution_id = str(uuid.uuid4())
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)

    async def insert() -> None:
        engine = await app_engine()
        async with engine.begin() as conn:
            await conn.execute(executions.insert().values(
                id=execution_id, kind="nightly", trigger="event", attempt=1, status="failed",
                params={"scope": "nightly"}, created_at=start, started_at=start,
                finished_at=start + dt.timedelta(seconds=9), failed_stage="merge", error=f"merge[k1]: {error}"))
            for n, (stage, shard, state) in enumerate((("extract", "k1", "succeeded"), ("merge", "k1", "failed"))):
                began = start + dt.timedelta(seconds=n)
                await conn.execute(execution_stages.insert().values(
                    execution_id=execution_id, stage=stage, shard=shard, attempt=1, status=state, started_at=began,
                    finished_at=began + dt.timedelta(seconds=1), duration_ms=1000, rows_in=1, rows_out=1,
                    result={}, error_type="ValueError" if state == "failed" else None,
                    error_message=error if state == "failed" else None))

    run_async(insert())
    return execution_id


@contextmanager
def console_process(env: dict[str, str]) -> Iterator[str]:
    """`hrsync web` on a free loopback port with `env` added to this process's; its base URL until the block
    ends (then it is stopped, and must not have printed a traceback)."""
    from tests.integration.scenarios import free_port

    port = free_port()
    script = str(Path(sys.executable).parent / "hrsync")
    process = subprocess.Popen([script, "web", "--port", str(port)], env={**os.environ, **env},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base, process)
        yield base
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert "Traceback" not in output, output[-3000:]


def wait_until_serving(base: str, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"hrsync web ended: {process.communicate()[0][-3000:]}")
        try:
            if httpx.get(f"{base}/login", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"hrsync web did not answer on {base}")


@pytest.fixture
def console(stack: Stack, tmp_path: Path) -> Iterator[str]:
    """`hrsync web` on a free loopback port with a users file holding the operator; its base URL."""
    users = tmp_path / "users.json"
    add_user(users, OPERATOR, OPERATOR_PASSWORD, "operator")
    with console_process({**stack.env, "HRSYNC_WEB_USERS_FILE": str(users), "HRSYNC_WEB_SECRET": "s" * 32}) as base:
        yield base
