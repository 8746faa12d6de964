"""The `hrsync` console script as a user runs it: exit codes, one-line errors, no secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.drives_subprocesses]


def hrsync(*args: str, env: dict[str, str] | None = None, home: Path) -> subprocess.CompletedProcess[str]:
    """Run the installed console script with a clean HRSYNC_* environment."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("HRSYNC_")}
    script = str(Path(sys.executable).parent / "hrsync")
    return subprocess.run([script, *args], capture_output=True, text=True, timeout=120, check=False,
                          env={**base, "HRSYNC_HOME": str(home), **(env or {})})


@pytest.mark.parametrize(
    ("args", "env", "fragment"),
    [
        (["no-such-command"], {}, "No such command"),
        (["check", "--no-such-option"], {}, "No such option"),
        (["check"], {"HRSYNC_TIMEZONE": "Nowhere/Town"}, "HRSYNC_TIMEZONE"),
        (["check"], {"HRSYNC_DATABASE_URL": "mysql://x:y@h/db"}, "HRSYNC_DATABASE_URL"),
        (["db", "upgrade"], {"HRSYNC_RESULT_BACKEND": "rpc://"}, "HRSYNC_RESULT_BACKEND"),
    ],
    ids=["command", "option", "timezone", "sync-driver", "rpc-backend"],
)
def test_bad_usage_exits_2_with_one_line(tmp_path: Path, args: list[str], env: dict[str, str],
                                         fragment: str) -> None:
    """Bad usage or a bad setting: exit code 2 and one line on stderr naming the problem."""
    done = hrsync(*args, env=env, home=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert fragment in lines[0]
    assert "y@h" not in done.stderr


def test_check_offline_passes_on_embedded_defaults(tmp_path: Path) -> None:
    """`hrsync check --offline --json` passes the static checks of the default configuration."""
    done = hrsync("check", "--offline", "--json", home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert {r["name"] for r in json.loads(done.stdout)} >= {"result backend", "serializer", "acks_late"}


def test_check_fails_on_an_unreachable_database_without_showing_its_password(tmp_path: Path) -> None:
    """An unreachable database fails the check (exit 1) and its URL is shown redacted."""
    env = {"HRSYNC_DATABASE_URL": "mysql+aiomysql://app:hunter2@127.0.0.1:1/app"}
    done = hrsync("check", "--json", env=env, home=tmp_path)
    assert done.returncode == 1
    results = {r["name"]: r for r in json.loads(done.stdout)}
    assert not results["app database"]["ok"]
    assert "app:***@127.0.0.1:1" in results["app database"]["detail"]
    assert "hunter2" not in done.stdout + done.stderr


def test_check_refuses_a_time_limit_above_the_consumer_timeout(tmp_path: Path) -> None:
    """A task time limit above the broker's consumer timeout fails the self-check."""
    env = {"HRSYNC_TASK_TIME_LIMIT": "4000", "HRSYNC_CONSUMER_TIMEOUT": "1800"}
    done = hrsync("check", "--offline", "--json", env=env, home=tmp_path)
    assert done.returncode == 1
    assert not {r["name"]: r for r in json.loads(done.stdout)}["time limit"]["ok"]


def test_db_upgrade_on_the_embedded_database(tmp_path: Path) -> None:
    """`hrsync db upgrade` migrates the embedded SQLite app database and reports the revision."""
    done = hrsync("db", "upgrade", home=tmp_path)
    assert done.returncode == 0, done.stderr
    from alembic.script import ScriptDirectory

    from shared.database.migrations import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert f"at revision {head}" in done.stdout
    assert (tmp_path / "app.db").exists()
