"""The runner against the real MariaDB: concurrency under gevent, no leaks over thousands of calls."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psutil
import pytest
from sqlalchemy import text

from shared.database.db import app_engine
from shared.runtime.runner import run_async
from tests.conftest import mariadb_connections

pytestmark = pytest.mark.integration


def test_200_greenlets_overlap_on_one_shared_engine(app_db: str) -> None:
    """200 greenlets under monkey.patch_all() each sleep 50 ms in MariaDB: none fails, and they overlap."""
    url = f"mysql+aiomysql://root@127.0.0.1:3306/{app_db}"
    env = {**os.environ, "HRSYNC_DB_POOL_SIZE": "50", "HRSYNC_DB_MAX_OVERFLOW": "50"}
    done = subprocess.run(
        [sys.executable, "-m", "tests.integration.greenlet_burst", url, "200", "0.05"],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["failures"] == []
    assert report["ok"] == report["distinct"] == 200
    serial = 200 * 0.05
    assert report["wall"] < serial / 4, f"{report['wall']:.2f}s for {serial}s of sleeps: no real overlap"


def test_5000_sequential_calls_leak_no_fds_or_connections(app_db: str) -> None:
    """Five thousand calls reuse pooled connections: open fds and server connections stay flat."""

    async def select_one() -> int:
        engine = await app_engine()
        async with engine.connect() as conn:
            return int((await conn.execute(text("SELECT 1"))).scalar_one())

    process = psutil.Process()
    for _ in range(50):  # warm-up: pool and executor threads exist before the baseline
        run_async(select_one())
    fds_before, conns_before = process.num_fds(), mariadb_connections(app_db)
    assert sum(run_async(select_one()) for _ in range(5000)) == 5000
    fds_after, conns_after = process.num_fds(), mariadb_connections(app_db)
    assert fds_after <= fds_before + 2, (fds_before, fds_after)
    assert conns_after <= conns_before, (conns_before, conns_after)
