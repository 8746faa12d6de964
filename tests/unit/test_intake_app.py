"""The intake app in-process (Starlette's test client): DESIGN §12's order of checks, the problem documents,
the handshake and the contract. Its broker is a closed port, so nothing here is published: every request
either is refused before publishing or meets an unreachable broker (503)."""

from __future__ import annotations

import base64
import json
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from standardwebhooks.webhooks import Webhook

from intake.app import create_app
from intake.asyncapi import asyncapi_document
from intake.publisher import EventSender
from shared.events.intake_sources import parse_sources

PAYROLL = "whsec_" + base64.b64encode(b"p" * 32).decode()
BADGES = "whsec_" + base64.b64encode(b"b" * 32).decode()
SOURCES = parse_sources({"sources": {
    "payroll": {"secrets": [PAYROLL], "types": ["hrsync.employee.changed", "hrsync.sync.requested"],
                "rate_per_second": 2},
    "badges": {"secrets": [BADGES], "types": ["hrsync.punches.imported"], "rate_per_second": 40}}})
CLOSED_BROKER = "amqp://guest:guest@127.0.0.1:1//"


@pytest.fixture
def client() -> Iterator[Any]:
    """A test client on an intake whose broker cannot be reached."""
    with warnings.catch_warnings():  # Starlette warns about httpx's future at import; not ours to fix
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    app = create_app(SOURCES, EventSender(CLOSED_BROKER, connect_timeout=1), ZoneInfo("Europe/Berlin"))
    with TestClient(app) as visitor:
        yield visitor


def employee(**changes: Any) -> dict[str, Any]:
    document = {"specversion": "1.0", "id": "payroll-7", "source": "payroll", "type": "hrsync.employee.changed",
                "data": {"employee_no": "E7"}}
    document.update(changes)
    return document


def post(client: Any, body: bytes, *, secret: str = PAYROLL, content_type: str = "application/cloudevents+json",
         age: float = 0, headers: dict[str, str] | None = None) -> Any:
    """POST /events signed by `secret` (`age` seconds ago) as a Standard Webhooks sender would."""
    when = datetime.fromtimestamp(time.time() - age, UTC)
    webhook_id = f"msg_{time.monotonic_ns()}"
    signed = {"content-type": content_type, "webhook-id": webhook_id, "webhook-timestamp": str(int(when.timestamp())),
              "webhook-signature": Webhook(secret).sign(webhook_id, when, body)}
    return client.post("/events", content=body, headers={**signed, **(headers or {})})


def as_json(document: Any) -> bytes:
    return json.dumps(document).encode()


BIG = b"[" + b" " * (300 * 1024) + b"]"


@pytest.mark.parametrize(("body", "options", "status", "field"), [
    # Each row breaks the check it names and every later one; the earliest check answers (DESIGN §12 order).
    pytest.param(BIG, {"secret": BADGES, "age": 3600}, 413, "body", id="size-before-signature"),
    pytest.param(b"[]", {"secret": BADGES, "content_type": "application/cloudevents-batch+json"}, 400, "body",
                 id="empty-batch-before-signature"),
    pytest.param(as_json([employee()] * 101), {"age": 3600, "content_type": "application/cloudevents-batch+json"},
                 400, "body", id="101-events-before-signature"),
    pytest.param(as_json(employee(data={})), {"age": 360}, 401, "webhook-timestamp",
                 id="6-minutes-old-before-validation"),
    pytest.param(as_json(employee(data={}, source="badges")), {"secret": "whsec_" + base64.b64encode(b"x" * 32)
                                                               .decode()}, 401, "webhook-signature",
                 id="unknown-key-before-validation"),
    pytest.param(as_json(employee(data={}, source="badges")), {}, 400, "data.employee_no",
                 id="validation-before-source"),
    pytest.param(as_json(employee(source="badges")), {}, 403, "source", id="wrong-source"),
    pytest.param(as_json(employee(source="payroll ")), {}, 403, "source", id="source-compares-exactly"),
    pytest.param(as_json(employee(source="badges")), {"secret": BADGES}, 403, "type", id="type-not-allowed"),
    pytest.param(as_json([employee(source="badges")]), {"content_type": "application/cloudevents-batch+json"}, 403,
                 "[0].source", id="batch-of-one-names-its-index"),
    pytest.param(as_json([employee(id=f"e{i}") for i in range(3)]),
                 {"content_type": "application/cloudevents-batch+json"}, 400, "body", id="batch-above-the-burst"),
    pytest.param(as_json(employee()), {}, 503, None, id="broker-unreachable"),
])
def test_the_first_failed_check_answers(client: Any, body: bytes, options: dict[str, Any], status: int,
                                        field: str | None) -> None:
    """The order: size (413; batch count 400), signature (401), validation (400), source and type (403),
    rate, publish (503 here: the broker's port is closed); every refusal is a problem document."""
    answer = post(client, body, **options)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert set(problem) == {"type", "title", "status", "detail", "errors"}
    assert problem["status"] == status
    assert [error["field"] for error in problem["errors"]][:1] == ([field] if field else [])
    if status in (429, 503):
        assert int(answer.headers["retry-after"]) >= 1


def test_the_rate_is_per_source_and_counts_events(client: Any) -> None:
    """payroll (2 per second): two single events pass the rate check (then meet the closed broker: 503), the
    third is 429 with a whole-seconds Retry-After; badges has its own bucket."""
    answers = [post(client, as_json(employee(id=f"r{i}"))) for i in range(3)]
    assert [a.status_code for a in answers] == [503, 503, 429]
    assert answers[2].headers["retry-after"] == "1"
    assert answers[2].json()["title"] == "Too many events"
    punches = {"specversion": "1.0", "id": "b-1", "source": "badges", "type": "hrsync.punches.imported",
               "data": {"from": "2026-12-07T08:00:00Z", "to": "2026-12-07T09:00:00Z"}}
    assert post(client, as_json(punches), secret=BADGES).status_code == 503


def test_a_bad_event_names_each_field(client: Any) -> None:
    """400 names every bad field, the detail is the bridge's reason."""
    answer = post(client, as_json(employee(type="hrsync.sync.requested", data={"scope": "weekly", "to": "x"})))
    assert answer.status_code == 400
    assert [e["field"] for e in answer.json()["errors"]] == ["data.scope", "data.to"]
    assert answer.json()["detail"].startswith("data.scope: Input should be 'nightly', 'hris' or 'attendance'; data.to")


def test_binary_mode_is_read_from_ce_headers(client: Any) -> None:
    """A binary-mode event (ce- headers, the data as the body) is validated like a structured one."""
    headers = {"ce-specversion": "1.0", "ce-id": "bin-1", "ce-source": "payroll", "ce-type": "hrsync.employee.changed"}
    answer = post(client, b'{"employee_no": ""}', content_type="application/json", headers=headers)
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == "data.employee_no"


def test_the_webhook_handshake(client: Any) -> None:
    """OPTIONS needs no signature, echoes the origin and announces the highest source rate (badges: 40)."""
    answer = client.options("/events", headers={"WebHook-Request-Origin": "eventemitter.example.com"})
    assert answer.status_code == 200
    assert answer.headers["webhook-allowed-origin"] == "eventemitter.example.com"
    assert answer.headers["webhook-allowed-rate"] == "40"
    assert client.options("/events").status_code == 400


def test_the_contract_and_health(client: Any) -> None:
    """GET /asyncapi.json is the AsyncAPI document; /healthz is 503 while the broker is unreachable."""
    assert client.get("/asyncapi.json").json() == asyncapi_document()
    health = client.get("/healthz")
    assert (health.status_code, health.json()["status"]) == (503, "unavailable")
