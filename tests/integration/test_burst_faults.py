"""Faults during a burst (the real stack): per-punch events while the bridge is SIGKILLed and restarted,
the worker SIGKILLed and restarted, MariaDB restarted and RabbitMQ's app stopped and started. The
scenario is `bench/burst_faults.py` (which prints the same counts)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench.burst_faults import run_scenario
from tests.conftest import require_service

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.fault]


@pytest.mark.timeout(900)
def test_every_punch_is_reflected_once_and_nothing_is_left_behind(tmp_path: Path) -> None:
    """Every confirmed punch is in its day row within 60 s of the last publish; afterwards no execution is
    pending or running, no mail was received twice and none is left pending in the outbox, no attendance
    row is doubled, and every event id is in the inbox."""
    require_service("RabbitMQ", "127.0.0.1", 5672)
    require_service("MariaDB", "127.0.0.1", 3306)
    if shutil.which("rabbitmqctl") is None or shutil.which("mariadb-admin") is None:
        pytest.skip("needs rabbitmqctl and mariadb-admin to restart the servers")
    result = run_scenario(punches=120, rate=10.0, folder=tmp_path)
    print(json.dumps(result, default=str))  # the counts, shown with `pytest -s` or on failure
    assert result["fault_error"] is None, result
    assert [name for name, _ in result["faults"]] == ["bridge SIGKILL + restart", "worker SIGKILL + restart",
                                                      "MariaDB restart", "RabbitMQ stop_app/start_app"], result
    assert result["punches_confirmed"] == 120, result
    assert result["reflected_within_60s"] == 120, result
    assert not {"pending", "running"} & set(result["executions"]), result
    assert result["events_missing_from_inbox"] == 0, result
    assert result["attendance_rows_doubled"] == 0, result
    assert result["mails_doubled"] == 0, result
    assert result["outbox"].get("pending", 0) == 0, result
    assert result["mails_received"] == result["outbox"].get("sent", 0), result
