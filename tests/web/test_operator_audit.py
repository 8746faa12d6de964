"""Actions that cannot happen unaudited (DESIGN §7): cancel, replay and dead-letter replay write their
`operator_actions` row in the action's own transaction, so a database that fails the audit insert leaves
neither; each needs a reason; dead letters are listed without touching the queue and replaying them all
needs an explicit `all`. In-process console on the real MariaDB app database and RabbitMQ."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pika
import pytest

from shared.database.tables import executions, operator_actions
from shared.events.bus import BRIDGE_QUEUE, DEAD_QUEUE, REASON_HEADER, event_channel
from shared.events.dead_letters import move_dead_letters
from shared.records.executions import replay_id
from shared.runtime.runner import run_async
from tests.conftest import require_service, set_env
from tests.integration.scenarios import CHAIN, record
from tests.integration.stack_fixtures import app_rows, on_app_database, private_vhost
from tests.web.conftest import sign_in

pytestmark = pytest.mark.integration


@contextmanager
def audit_refused() -> Iterator[None]:
    """While inside, the app database refuses every `operator_actions` insert (a trigger that signals)."""
    trigger = f"refuse_audit_{uuid.uuid4().hex[:8]}"
    run_async(on_app_database(f"""CREATE TRIGGER `{trigger}` BEFORE INSERT ON operator_actions FOR EACH ROW
                                  SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'engineered audit failure'"""))
    try:
        yield
    finally:
        run_async(on_app_database(f"DROP TRIGGER IF EXISTS `{trigger}`"))


def audit_rows(target: str) -> list[dict[str, Any]]:
    return app_rows(operator_actions, operator_actions.c.target == target)


def status_of(execution_id: str) -> str | None:
    rows = app_rows(executions, executions.c.id == execution_id)
    return str(rows[0]["status"]) if rows else None


@pytest.fixture
def operator_client(client: Any) -> tuple[Any, dict[str, str]]:
    """The console signed in as the operator `otto`, and the CSRF header its API calls send."""
    sign_in(client, "otto")
    return client, {"X-CSRF-Token": client.get("/api/session").json()["csrf_token"]}


@pytest.fixture
def event_plane(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """HRSYNC_EVENTS_URL on a private RabbitMQ virtual host with the event topology."""
    require_service("RabbitMQ", "127.0.0.1", 5672)
    with private_vhost(f"hrsync-audit-{uuid.uuid4().hex[:6]}") as url:
        set_env(monkeypatch, events_url=url)
        yield url


def put_dead_letter(url: str, event_id: str) -> None:
    body = {"specversion": "1.0", "id": event_id, "source": "test/other", "type": "hrsync.sync.requested",
            "data": {"scope": "nightly"}}
    with event_channel(url) as channel:
        channel.basic_publish("", DEAD_QUEUE, json.dumps(body).encode(), pika.BasicProperties(
            message_id=event_id, content_type="application/cloudevents+json", headers={REASON_HEADER: "test"}))


def queued(url: str, queue: str) -> int:
    with event_channel(url) as channel:
        return int(channel.queue_declare(queue, durable=True, passive=True).method.message_count)


def test_cancel_and_its_audit_row_commit_together(operator_client: tuple[Any, dict[str, str]]) -> None:
    """With the audit insert failing, a cancel leaves the execution running and no row; then it cancels with one."""
    client, csrf = operator_client
    running = record(f"t{uuid.uuid4().hex[:8]}", status="running", stages=CHAIN[:2])
    with audit_refused(), pytest.raises(Exception, match="engineered audit failure"):
        client.post(f"/api/executions/{running}/cancel", headers=csrf, json={"reason": "wrong range"})
    assert (status_of(running), audit_rows(running)) == ("running", [])
    done = client.post(f"/api/executions/{running}/cancel", headers=csrf, json={"reason": "wrong range"})
    assert done.status_code == 200, done.text
    [row] = audit_rows(running)
    assert (status_of(running), row["action"], row["details"]["reason"]) == ("cancelled", "cancel", "wrong range")


def test_replay_and_its_audit_row_commit_together(operator_client: tuple[Any, dict[str, str]]) -> None:
    """With the audit insert failing, a replay creates no execution (and launches none) and writes no row."""
    client, csrf = operator_client
    failed = record(f"t{uuid.uuid4().hex[:8]}", status="failed", failed_stage="merge", stages=CHAIN)
    with audit_refused(), pytest.raises(Exception, match="engineered audit failure"):
        client.post(f"/api/executions/{failed}/replay", headers=csrf, json={"reason": "source fixed"})
    assert (status_of(replay_id(failed)), audit_rows(failed)) == (None, [])


def test_dead_letter_replay_and_its_audit_row_commit_together(operator_client: tuple[Any, dict[str, str]],
                                                              event_plane: str) -> None:
    """With the audit insert failing, a dead-letter replay publishes nothing and the letter stays listed;
    then it goes out with its audit row."""
    client, csrf = operator_client
    event_id = f"dl-audit-{uuid.uuid4().hex[:8]}"
    put_dead_letter(event_plane, event_id)
    move_dead_letters(event_plane)  # what the bridge does as it runs
    with audit_refused(), pytest.raises(Exception, match="engineered audit failure"):
        client.post("/api/dead-letters/replay", headers=csrf, json={"ids": [event_id], "reason": "fixed"})
    assert queued(event_plane, BRIDGE_QUEUE) == 0
    [letter] = [d for d in client.get("/api/dead-letters").json() if d["event_id"] == event_id]
    assert audit_rows(letter["id"]) == []
    done = client.post("/api/dead-letters/replay", headers=csrf, json={"ids": [event_id], "reason": "fixed"})
    assert [d["event_id"] for d in done.json()["replayed"]] == [event_id]
    assert queued(event_plane, BRIDGE_QUEUE) == 1
    assert [r["details"]["reason"] for r in audit_rows(letter["id"])] == ["fixed"]


@pytest.mark.parametrize(("path", "body"), [
    ("/api/executions/{id}/cancel", None),
    ("/api/executions/{id}/cancel", {"reason": "  "}),
    ("/api/executions/{id}/replay", {}),
    ("/api/dead-letters/replay", {"ids": ["x"]}),
])
def test_actions_without_a_reason_are_422_naming_it(operator_client: tuple[Any, dict[str, str]], path: str,
                                                    body: dict[str, Any] | None) -> None:
    """Cancel, replay and dead-letter replay without a reason answer 422 naming `reason`; nothing is done."""
    client, csrf = operator_client
    running = record(f"t{uuid.uuid4().hex[:8]}", status="running", stages=CHAIN[:2])
    answer = client.post(path.format(id=running), headers=csrf, json=body)
    assert answer.status_code == 422
    assert "reason" in answer.text
    assert (status_of(running), audit_rows(running)) == ("running", [])


def test_no_ids_replays_no_dead_letter(operator_client: tuple[Any, dict[str, str]], event_plane: str) -> None:
    """`{}` or `{"ids": []}` replays nothing (422); `{"all": true}` replays every waiting letter."""
    client, csrf = operator_client
    event_id = f"dl-all-{uuid.uuid4().hex[:8]}"
    put_dead_letter(event_plane, event_id)
    move_dead_letters(event_plane)
    for body in ({"reason": "r"}, {"ids": [], "reason": "r"}):
        assert client.post("/api/dead-letters/replay", headers=csrf, json=body).status_code == 422
    assert queued(event_plane, BRIDGE_QUEUE) == 0
    done = client.post("/api/dead-letters/replay", headers=csrf, json={"all": True, "reason": "all fixed"})
    assert event_id in [d["event_id"] for d in done.json()["replayed"]]


def test_listing_dead_letters_does_not_touch_the_queue(operator_client: tuple[Any, dict[str, str]],
                                                       event_plane: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The list is read from the app database: it answers with the broker unreachable, and a message still
    in the queue stays there, untouched, while pages and the API list."""
    client, _ = operator_client
    event_id = f"dl-list-{uuid.uuid4().hex[:8]}"
    put_dead_letter(event_plane, event_id)
    move_dead_letters(event_plane)
    put_dead_letter(event_plane, f"{event_id}-later")  # not moved yet: the bridge's, not the listing's
    for _ in range(3):
        assert client.get("/dead-letters").status_code == 200
        assert event_id in [d["event_id"] for d in client.get("/api/dead-letters").json()]
    assert queued(event_plane, DEAD_QUEUE) == 1
    set_env(monkeypatch, events_url="amqp://guest:guest@127.0.0.1:1//")  # nothing listens there
    assert event_id in [d["event_id"] for d in client.get("/api/dead-letters").json()]
