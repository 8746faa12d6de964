"""`hrsync intake` on the real stack: signed CloudEvents over HTTP (the official SDK's HTTP conversion, a
Standard Webhooks signature) become executions through the bridge, once per id; refusals; a RabbitMQ memory
alarm (429, then 202) and an unreachable broker (503, then 202) lose nothing.

The intake runs as `hrsync intake` (a subprocess) and reaches RabbitMQ through a TCP proxy, so a test can take
the broker away from it without touching the shared server.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from cloudevents.v1.conversion import to_binary, to_structured
from cloudevents.v1.http import CloudEvent
from standardwebhooks.webhooks import Webhook

from tests.integration import services
from tests.integration.stack_fixtures import Stack, executions_of, stack_fixture
from tests.integration.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.integration, pytest.mark.slow]

stack = stack_fixture()
SECRET = "whsec_" + base64.b64encode(uuid.uuid4().bytes * 2).decode()
SYNC = "hrsync.sync.requested"


class Intake:
    """`hrsync intake` as a subprocess on a free loopback port; `post` signs as a Standard Webhooks sender."""

    def __init__(self, env: dict[str, str]) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        script = os.path.join(os.path.dirname(sys.executable), "hrsync")
        self.process = subprocess.Popen([script, "intake", "--port", str(self.port)], env={**os.environ, **env},
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 30
        while not services.port_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                raise RuntimeError(f"intake did not listen: {self.process.communicate()[0][-3000:]}")
            time.sleep(0.1)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)

    def post(self, body: bytes, headers: dict[str, str], *, age: float = 0, webhook_id: str | None = None,
             signed: dict[str, str] | None = None) -> httpx.Response:
        """POST /events with `headers`, signed now (or `age` seconds ago), or with the `signed` headers given."""
        if signed is None:
            signed = self.sign(body, age=age, webhook_id=webhook_id)
        return self.http.post("/events", content=body, headers={**headers, **signed})

    @staticmethod
    def sign(body: bytes, *, age: float = 0, webhook_id: str | None = None) -> dict[str, str]:
        when = datetime.fromtimestamp(time.time() - age, UTC)
        webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
        return {"webhook-id": webhook_id, "webhook-timestamp": str(int(when.timestamp())),
                "webhook-signature": Webhook(SECRET).sign(webhook_id, when, body)}

    def stop(self) -> tuple[int, str]:
        self.http.close()
        self.process.send_signal(signal.SIGTERM)
        try:
            output = self.process.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            self.process.kill()
            output = self.process.communicate()[0]
        return self.process.returncode, output


@pytest.fixture
def intake(stack: Stack, tcp_proxy: TcpProxy, tmp_path: Path) -> Iterator[Intake]:
    """The intake on the stack's virtual host (through the proxy), source `payroll` allowed sync requests."""
    sources = tmp_path / "sources.yaml"
    sources.write_text(json.dumps({"sources": {"payroll": {"secrets": [SECRET], "types": [SYNC]},
                                               "badges": {"secrets": ["whsec_" + base64.b64encode(b"b" * 32)
                                                                      .decode()],
                                                          "types": ["hrsync.punches.imported"]}}}))
    vhost = stack.amqp_url.rsplit("/", 1)[1]
    running = Intake({**stack.env, "HRSYNC_INTAKE_SOURCES_FILE": str(sources),
                      "HRSYNC_EVENTS_URL": f"amqp://guest:guest@127.0.0.1:{tcp_proxy.port}/{vhost}"})
    try:
        yield running
    finally:
        code, output = running.stop()
    assert code in (0, -signal.SIGTERM), output[-3000:]  # uvicorn stops cleanly, then re-raises the signal
    assert "Traceback" not in output, output[-3000:]


def sync_event(prefix: str, **attributes: Any) -> CloudEvent:
    """A `sync.requested` (hris) from source `payroll`, as the official SDK builds it."""
    return CloudEvent({"type": SYNC, "source": "payroll", "id": f"{prefix}-{uuid.uuid4().hex[:8]}",
                       "datacontenttype": "application/json", **attributes}, {"scope": "hris"})


def structured_request(event: CloudEvent) -> tuple[bytes, dict[str, str]]:
    headers, body = to_structured(event)
    return body, dict(headers)


def wait_succeeded(stack: Stack, event_id: str) -> None:
    execution = stack.wait_for_execution(event_id)
    assert execution["status"] == "succeeded", execution


def test_signed_sdk_events_in_both_modes_become_one_execution_each(stack: Stack, intake: Intake) -> None:
    """Structured and binary requests of the SDK, signed, answer 202 and run; the same request replayed (same
    webhook-id, same event id) is 202 again and still one execution; refusals answer 401, 403, 413."""
    structured = sync_event("structured")
    body, headers = structured_request(structured)
    signed = intake.sign(body)
    assert intake.post(body, headers, signed=signed).status_code == 202
    binary = sync_event("binary")
    binary_headers, binary_body = to_binary(binary)
    answer = intake.post(binary_body, dict(binary_headers))
    assert answer.status_code == 202, answer.text
    assert answer.json()["ids"] == [binary["id"]]
    wait_succeeded(stack, structured["id"])
    wait_succeeded(stack, binary["id"])

    assert intake.post(body, headers, signed=signed).status_code == 202  # the replay: accepted
    deadline = time.monotonic() + 60
    while not stack.bridge_logs("bridge.duplicate", structured["id"]):
        assert time.monotonic() < deadline, "the replayed event never reached the bridge"
        time.sleep(0.2)
    assert len(executions_of(structured["id"])) == 1

    late_body, late_headers = structured_request(sync_event("late"))
    late = intake.post(late_body, late_headers, age=6 * 60)
    assert late.status_code == 401
    assert late.json()["errors"][0]["field"] == "webhook-timestamp"
    other_body, other_headers = structured_request(sync_event("other", source="badges"))
    wrong = intake.post(other_body, other_headers)
    assert wrong.status_code == 403
    assert wrong.json()["errors"][0]["field"] == "source"
    big = intake.post(b"{" + b" " * (300 * 1024) + b"}", {"content-type": "application/cloudevents+json"})
    assert big.status_code == 413
    assert executions_of(json.loads(late_body)["id"]) == []


def post_until_accepted(intake: Intake, body: bytes, headers: dict[str, str], timeout: float = 30) -> list[int]:
    """Send (each time signed afresh, as a sender retrying would) until 202; the statuses seen."""
    statuses = []
    deadline = time.monotonic() + timeout
    while not statuses or statuses[-1] != 202:
        assert time.monotonic() < deadline, statuses
        answer = intake.post(body, headers)
        statuses.append(answer.status_code)
        if answer.status_code != 202:
            assert answer.status_code in (429, 503), answer.text
            time.sleep(min(1.0, int(answer.headers["retry-after"])))
    return statuses


@pytest.mark.fault
def test_a_memory_alarm_answers_429_then_202_and_loses_nothing(stack: Stack, intake: Intake) -> None:
    """While RabbitMQ blocks publishers the intake answers 429 with Retry-After (at once, not after a hang);
    once the alarm clears the same event is accepted, and every accepted event runs once."""
    before = sync_event("before")
    assert intake.post(*structured_request(before)).status_code == 202
    during = sync_event("during")
    body, headers = structured_request(during)
    services.rabbitmq_memory_alarm(on=True)
    try:
        started = time.monotonic()
        blocked = intake.post(body, headers)
        took = time.monotonic() - started
    finally:
        services.rabbitmq_memory_alarm(on=False)
    assert blocked.status_code == 429, blocked.text
    assert int(blocked.headers["retry-after"]) >= 1
    assert took < 5
    assert post_until_accepted(intake, body, headers)[-1] == 202
    wait_succeeded(stack, before["id"])
    wait_succeeded(stack, during["id"])
    assert len(executions_of(during["id"])) == 1


def test_an_unreachable_broker_answers_503_then_202(stack: Stack, intake: Intake,
                                                   tcp_proxy: TcpProxy) -> None:
    """With the broker out of reach (the proxy refuses) the intake answers 503 and /healthz 503; once it is
    back the same event is accepted and runs once."""
    assert intake.http.get("/healthz").status_code == 200
    event = sync_event("outage")
    body, headers = structured_request(event)
    tcp_proxy.set_mode("refuse")
    try:
        away = intake.post(body, headers)
        health = intake.http.get("/healthz")
    finally:
        tcp_proxy.set_mode("pass")
    assert away.status_code == 503, away.text
    assert int(away.headers["retry-after"]) >= 1
    assert (health.status_code, health.json()["status"]) == (503, "unavailable")
    assert post_until_accepted(intake, body, headers)[-1] == 202
    assert intake.http.get("/healthz").json() == {"status": "ok"}
    wait_succeeded(stack, event["id"])
    assert len(executions_of(event["id"])) == 1
