"""Replaying failed chains and dead letters on the whole running product (worker, bridge, MariaDB,
PostgreSQL HRIS, BioStar, aiosmtpd): what reruns, what does not, and that nothing is done twice."""

from __future__ import annotations

import json
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pika
import pytest

from shared.database.tables import operator_actions
from shared.events.bus import DEAD_LETTER_EXCHANGE, REASON_HEADER, pika_url
from shared.events.dead_letters import list_dead_letters
from shared.records.queries import get_execution, get_stages
from shared.runtime.runner import run_async
from tests.integration.hris_fixtures import PgHris
from tests.integration.scenarios import FAST_RETRIES, free_port, restart_smtp
from tests.integration.smtp_fixtures import SmtpServer, stop_smtp_server
from tests.integration.stack_fixtures import (
    TUESDAY,
    Stack,
    app_rows,
    attendance_rows,
    event_body,
    hrsync,
    nightly,
    refused_attendance_of,
    replays_of,
    running_stack,
    settle,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def ports() -> dict[str, int]:
    """Free ports for the worker's and the bridge's metrics endpoints."""
    return {"worker": free_port(), "bridge": free_port()}


@pytest.fixture
def stack(app_db: str, pg_hris: PgHris, biostar_db: str, smtp_server: SmtpServer,
          hrsync_env: Any, ports: dict[str, int]) -> Iterator[Stack]:
    """The running product with one retry (0.2 s backoff) per task, and metrics on free ports."""
    with running_stack(app_db, pg_hris, biostar_db, smtp_server, hrsync_env, extra_env=FAST_RETRIES,
                       worker_env={"HRSYNC_METRICS_PORT": str(ports["worker"])},
                       bridge_env={"HRSYNC_METRICS_PORT": str(ports["bridge"])}) as rig:
        yield rig


def shards(rows: list[dict[str, Any]], stage: str) -> set[str]:
    return {r["shard"] for r in rows if r["stage"] == stage and not r["shard"].startswith("@")}


def stage_plan(plan: dict[str, Any], stage: str) -> dict[str, Any]:
    return next(s for s in plan["plan"] if s["stage"] == stage)


def message_ids(stack: Stack) -> Counter[str]:
    return Counter(str(m.message["Message-ID"]) for m in stack.smtp.handler.messages)


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return str(response.read().decode())


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text `text` (0 if absent)."""
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            head = line.split(" ")[0]
            if head == name or head.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_notify_failure_then_replay_sends_each_mail_once(stack: Stack) -> None:
    """SMTP down: the chain fails at notify; SMTP back: the replay sends each mail once, extract and merge not rerun."""
    stop_smtp_server(stack.smtp)
    back: SmtpServer | None = None
    try:
        failed = stack.wait_for_execution(nightly(stack))
        assert failed["status"] == "failed", failed
        assert failed["failed_stage"] == "notify"
        settle(failed["id"])
        assert run_async(get_execution(failed["id"]))["failed_stage"] == "notify"  # the notice hid nothing
        assert stack.smtp.handler.messages == []

        dry = hrsync(stack, "replay", failed["id"], "--dry-run", "--json")
        assert dry.returncode == 0, dry.stderr
        plan = json.loads(dry.stdout)
        assert plan["stages"] == ["notify"]
        assert [(s["stage"], s["action"]) for s in plan["plan"]] == [("extract", "skip"), ("merge", "skip"),
                                                                      ("notify", "run")]
        assert plan["emails"]["pending"] >= 4
        assert replays_of(failed["id"]) == []  # a dry run creates nothing

        back = restart_smtp(stack.smtp)
        done = hrsync(stack, "replay", failed["id"], "--reason", "test", "--wait", "--timeout", "180")
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        if back is not None:
            stop_smtp_server(back)
    [replay] = replays_of(failed["id"])
    assert (replay["trigger"], replay["attempt"], replay["event_id"], replay["kind"]) == ("replay", 2, None, "nightly")
    assert replay["params"] == failed["params"]
    assert replay["status"] == "succeeded"
    rows = run_async(get_stages(replay["id"]))
    assert {r["stage"] for r in rows} == {"workflow", "notify"}  # no new extract or merge rows
    assert shards(rows, "notify") == set(stage_plan(plan, "notify")["run"])  # the dry run said so
    assert replay["summary"]["merge"]["by_status"]  # the merge output came through the lineage
    assert len(stack.mails_to(stack.address("lone"))) == 1
    assert len(stack.mails_to(stack.address("m"))) == 2
    assert len(stack.mails_to(stack.ops)) == 1  # the sync_failed notice, queued while the server was down
    assert max(message_ids(stack).values()) == 1  # every mail exactly once

    again = hrsync(stack, "replay", failed["id"], "--reason", "test")
    assert again.returncode == 1
    assert "already replayed by" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    succeeded = hrsync(stack, "replay", replay["id"], "--reason", "test")
    assert succeeded.returncode == 1
    assert "succeeded: there is nothing to replay" in succeeded.stderr


def fail_one_merge_shard(stack: Stack) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run a nightly chain whose Sales merge shard fails for good (a trigger refuses NONE's attendance rows)."""
    with refused_attendance_of(stack.no("NONE")):
        failed = stack.wait_for_execution(nightly(stack))
        rows = settle(failed["id"])
    assert failed["status"] == "failed", failed
    assert failed["failed_stage"] == "merge"
    return failed, rows


def test_failed_merge_shard_replay_reruns_that_shard_and_notify_only(stack: Stack, ports: dict[str, int]) -> None:
    """One merge shard fails: the replay (as its dry run said) reruns that shard, the merge's end and notify only."""
    failed, rows = fail_one_merge_shard(stack)
    [broken] = {r["shard"] for r in rows if r["stage"] == "merge" and r["status"] == "failed"}
    assert "Sales" in broken
    assert metric(scrape(ports["worker"]), "hrsync_stage_runs_total", stage="merge", status="failed") >= 1

    plan = json.loads(hrsync(stack, "replay", failed["id"], "--dry-run", "--json").stdout)
    assert plan["stages"] == ["merge", "notify"]
    merge = stage_plan(plan, "merge")
    assert merge["run"] == [broken]
    assert set(merge["skipped"]) == shards(rows, "merge") - {broken}
    assert stage_plan(plan, "extract")["action"] == "skip"
    text = hrsync(stack, "replay", failed["id"], "--dry-run")
    assert "nothing was created" in text.stdout
    assert broken in text.stdout

    done = hrsync(stack, "replay", failed["id"], "--reason", "test", "--wait", "--timeout", "180")
    assert done.returncode == 0, done.stdout + done.stderr
    [replay] = replays_of(failed["id"])
    replayed = run_async(get_stages(replay["id"]))
    assert {r["stage"] for r in replayed} == {"workflow", "merge", "notify"}
    assert shards(replayed, "merge") == {broken} == set(merge["run"])
    statuses = {(r["employee_no"], r["work_date"]): r["status"] for r in attendance_rows(stack)}
    assert statuses[(stack.no("NONE"), TUESDAY)] == "absent"
    assert len(stack.mails_to(stack.address("lone"))) == 1
    assert len(stack.mails_to(stack.address("m"))) == 2
    assert max(message_ids(stack).values()) == 1
    assert metric(scrape(ports["worker"]), "hrsync_stage_runs_total", stage="merge", status="succeeded") >= 1

    shown = json.loads(hrsync(stack, "show", replay["id"], "--json").stdout)
    assert shown["lineage"] == [{"id": failed["id"], "status": "failed", "attempt": 1}]
    traced = hrsync(stack, "trace", failed["id"])
    assert traced.returncode == 0, traced.stderr
    assert "✗" in traced.stdout


def test_from_stage_reruns_every_shard_of_that_stage(stack: Stack) -> None:
    """`replay --from-stage merge` reruns all merge shards (none skipped) and leaves extract alone."""
    failed, rows = fail_one_merge_shard(stack)
    plan = json.loads(hrsync(stack, "replay", failed["id"], "--from-stage", "merge", "--dry-run", "--json").stdout)
    assert plan["stages"] == ["merge", "notify"]
    assert plan["params"]["rerun_stages"] == ["merge", "notify"]
    assert stage_plan(plan, "merge")["skipped"] == []
    late = hrsync(stack, "replay", failed["id"], "--from-stage", "notify", "--reason", "test")
    assert late.returncode == 2
    assert late.stderr.startswith("hrsync: error: --from-stage: notify comes after the failed stage merge")

    done = hrsync(stack, "replay", failed["id"], "--from-stage", "merge", "--reason", "test", "--wait",
                  "--timeout", "180")
    assert done.returncode == 0, done.stdout + done.stderr
    [replay] = replays_of(failed["id"])
    replayed = run_async(get_stages(replay["id"]))
    assert "extract" not in {r["stage"] for r in replayed}
    assert shards(replayed, "merge") == shards(rows, "merge")  # the succeeded ones ran again too
    assert max(message_ids(stack).values()) == 1


def publish_dead_letter(url: str, body: bytes, message_id: str, reason: str, routing_key: str) -> None:
    """Put a message in the dead-letter queue as the bridge does (copy with the reason header)."""
    connection = pika.BlockingConnection(pika.URLParameters(pika_url(url)))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(DEAD_LETTER_EXCHANGE, routing_key, body, pika.BasicProperties(
            content_type="application/cloudevents+json", delivery_mode=2, message_id=message_id,
            headers={REASON_HEADER: reason, "x-hrsync-routing-key": routing_key,
                     "x-hrsync-rejected-at": "2026-11-25T01:00:00+00:00"}), mandatory=True)
    finally:
        connection.close()


def dead_letters_listed(stack: Stack) -> list[dict[str, Any]]:
    done = hrsync(stack, "dlq", "list", "--json")
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def dead_letter_ids(stack: Stack) -> list[str]:
    """The event ids of the dead letters `dlq list` shows, oldest first."""
    return [letter["event_id"] for letter in dead_letters_listed(stack)]


def test_dead_letters_are_listed_without_loss_and_replayed(stack: Stack, ports: dict[str, int]) -> None:
    """The bridge moves dead letters into the app table; `dlq list` changes nothing however often it runs; a
    fixed dead letter replayed launches one execution (audited with its reason), one still invalid comes back
    as a new letter; replaying needs ids or --all."""
    good_id, bad_id = f"{stack.prefix}-fixed", f"{stack.prefix}-broken"
    good = json.dumps(event_body("hrsync.sync.requested", {"scope": "hris"}, good_id)).encode()
    publish_dead_letter(stack.amqp_url, good, good_id, "app database unreachable", "hrsync.sync.requested")
    stack.publish(b"{not json", "hrsync.sync.requested", bad_id)  # the bridge dead-letters this one itself
    deadline = time.monotonic() + 30
    while bad_id not in dead_letter_ids(stack) and time.monotonic() < deadline:
        time.sleep(0.3)
    for _ in range(25):  # more than a 4.x quorum queue's default delivery limit (20)
        assert [letter.event_id for letter in run_async(list_dead_letters())] == [good_id, bad_id]
    listed = dead_letters_listed(stack)
    assert [letter["event_id"] for letter in listed] == [good_id, bad_id]
    assert listed[1]["reason"].startswith("not JSON")
    assert listed[0]["first_seen"] == "2026-11-25T01:00:00+00:00"
    assert metric(scrape(ports["bridge"]), "hrsync_events_dead_lettered_total") >= 1

    assert hrsync(stack, "dlq", "replay", "--reason", "test").returncode == 2  # neither ids nor --all
    missing = hrsync(stack, "dlq", "replay", "no-such-id", "--reason", "test")
    assert missing.returncode == 1
    assert "no dead letter waiting under: no-such-id" in missing.stderr
    done = hrsync(stack, "dlq", "replay", listed[0]["id"], "--reason", "source fixed")
    assert done.returncode == 0, done.stderr
    assert stack.wait_for_execution(good_id)["status"] == "succeeded"
    assert dead_letter_ids(stack) == [bad_id]
    [audited] = app_rows(operator_actions, operator_actions.c.target == listed[0]["id"])
    assert (audited["action"], audited["details"]["reason"]) == ("dlq_replay", "source fixed")

    again = hrsync(stack, "dlq", "replay", "--all", "--reason", "retry all")  # the broken one comes back
    assert again.returncode == 0, again.stderr
    deadline = time.monotonic() + 30
    while ((now := dead_letters_listed(stack)) == [] or now[0]["id"] == listed[1]["id"]) \
            and time.monotonic() < deadline:
        time.sleep(0.3)
    assert [(letter["event_id"], letter["replays"]) for letter in now] == [(bad_id, 1)]
    assert len(stack.executions_of(good_id)) == 1
    assert stack.executions_of(bad_id) == []
    assert metric(scrape(ports["bridge"]), "hrsync_events_consumed_total", outcome="launched") >= 1
