"""Punch times taken strictly (DESIGN §10): a wall-clock time in a DST gap is refused naming the gap, one that
happens twice needs its offset (the form offers both instants), a punch more than 5 minutes ahead is refused,
and the same punch twice is 409 showing the stored one. The console in-process and `hrsync punches add`, on
the real MariaDB app database and RabbitMQ (for the recompute request a stored punch publishes)."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import require_service
from tests.integration.biostar_fixtures import SetEnv, Staff
from tests.integration.scenarios import hrsync
from tests.integration.stack_fixtures import private_vhost
from tests.web.conftest import csrf_of, sign_in

pytestmark = pytest.mark.integration


@pytest.fixture
def berlin(hrsync_env: SetEnv, staff: Staff) -> Iterator[str]:
    """One employee, the company in Europe/Berlin, recompute requests going to a private virtual host."""
    require_service("RabbitMQ", "127.0.0.1", 5672)
    staff.add(1)
    with private_vhost(f"hrsync-punch-{uuid.uuid4().hex[:6]}") as url:
        hrsync_env(timezone="Europe/Berlin", events_url=url)
        yield staff.no(1)


def post_punch(client: Any, employee: str, at: str) -> Any:
    token = client.get("/api/session").json()["csrf_token"]
    return client.post("/api/punches", headers={"X-CSRF-Token": token},
                       json={"employee_no": employee, "at": at, "reason": "forgot to badge"})


def test_a_time_in_the_spring_gap_is_refused_naming_it(client: Any, berlin: str) -> None:
    """02:30 on 2026-03-29 does not exist in Berlin (02:00 → 03:00): 422 naming the gap; with +01:00 it is
    an instant (01:30 UTC) and is stored as such."""
    sign_in(client, "otto")
    refused = post_punch(client, berlin, "2026-03-29T02:30")
    assert refused.status_code == 422
    assert "DST gap 02:00-03:00" in refused.json()["detail"]
    stored = post_punch(client, berlin, "2026-03-29T02:30:00+01:00")
    assert stored.status_code == 200, stored.text
    assert stored.json()["punched_at"] == "2026-03-29T01:30:00+00:00"  # 02:30 at +01:00 is 01:30 UTC


def test_a_repeated_time_needs_its_offset(client: Any, berlin: str) -> None:
    """02:30 on 2026-10-25 happens twice in Berlin (03:00 → 02:00): 422 with both instants (00:30 and 01:30
    UTC); the form answers with a button for each, and the second one stores 01:30 UTC."""
    sign_in(client, "otto")
    refused = post_punch(client, berlin, "2026-10-25T02:30")
    assert refused.status_code == 422
    assert refused.json()["choices"] == ["2026-10-25T02:30:00+02:00", "2026-10-25T02:30:00+01:00"]
    page = client.get(f"/employees/{berlin}")
    form = client.post(f"/employees/{berlin}/punches", data={"csrf_token": csrf_of(page.text),
                                                             "at": "2026-10-25T02:30", "reason": "forgot"})
    assert form.status_code == 422
    choices = re.findall(r'name="at" value="([^"]+)"', form.text)
    assert choices == ["2026-10-25T02:30+02:00", "2026-10-25T02:30+01:00"]
    chosen = client.post(f"/employees/{berlin}/punches", data={"csrf_token": csrf_of(form.text), "at": choices[1],
                                                               "reason": "forgot"})
    assert chosen.status_code == 303, chosen.text
    [punch] = client.get(f"/api/punches/{berlin}?from=2026-10-25&to=2026-10-25").json()
    assert punch["punched_at"] == "2026-10-25T01:30:00+00:00"


def test_a_punch_in_the_future_is_refused(client: Any, berlin: str) -> None:
    """A punch 10 minutes ahead is refused (at most 5 minutes); one 2 minutes ahead is taken."""
    sign_in(client, "otto")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    refused = post_punch(client, berlin, (now + dt.timedelta(minutes=10)).isoformat())
    assert refused.status_code == 422
    assert "future" in refused.json()["detail"]
    assert post_punch(client, berlin, (now + dt.timedelta(minutes=2)).isoformat()).status_code == 200


def test_the_same_punch_twice_is_409_with_the_stored_one(client: Any, berlin: str) -> None:
    """Submitting a punch again answers 409 and shows the punch stored the first time."""
    sign_in(client, "otto")
    first = post_punch(client, berlin, "2026-06-01T08:55:00+02:00")
    assert first.status_code == 200, first.text
    again = post_punch(client, berlin, "2026-06-01T08:55:00+02:00")
    assert again.status_code == 409
    assert again.json()["punch"]["id"] == first.json()["id"]


def test_the_cli_refuses_a_time_in_the_gap(berlin: str) -> None:
    """`hrsync punches add EMP 2026-03-29T02:30` exits 2 with one line naming the gap."""
    done = hrsync("punches", "add", berlin, "2026-03-29T02:30", "--reason", "forgot")
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "DST gap" in line
