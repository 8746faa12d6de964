"""The email notify stage against a real SMTP server (aiosmtpd) and the real MariaDB app database."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, or_, select, update
from structlog.testing import capture_logs

from pipelines.mail import (
    MailSetupError,
    SendPolicy,
    TemporaryMailError,
    build_notifications,
    plan_notify_batches,
    queue_sync_failed,
    send_notifications,
)
from pipelines.mail.smtp import eml_path
from shared.config.settings import get_settings
from shared.database.db import app_engine
from shared.database.tables import attendance_days, employees, notifications
from shared.runtime.runner import run_async
from tests.conftest import set_env
from tests.integration.smtp_fixtures import (
    RecordingHandler,
    SmtpServer,
    self_signed_cert,
    server_tls_context,
    start_smtp_server,
    stop_smtp_server,
)

pytestmark = pytest.mark.integration

FAST = SendPolicy(attempts=3, base_delay=0.01, max_delay=0.05)
UTC = dt.UTC


# -- test data ------------------------------------------------------------------------------------------

@dataclass
class World:
    """One test's own people and day: every key carries `prefix`, so tests never see each other's rows."""

    prefix: str
    day: dt.date
    execution_id: str

    def no(self, who: str) -> str:
        return f"{self.prefix}{who}"

    def mail(self, who: str) -> str:
        return f"{self.prefix}.{who.lower()}@example.test"

    def at(self, hhmm: str) -> dt.datetime:
        hour, minute = map(int, hhmm.split(":"))
        return dt.datetime.combine(self.day, dt.time(hour, minute), UTC)


async def _insert(table: Any, rows: list[dict[str, Any]]) -> None:
    engine = await app_engine()
    async with engine.begin() as conn:
        await conn.execute(table.insert(), rows)


async def _notification_rows(prefix: str) -> list[dict[str, Any]]:
    engine = await app_engine()
    async with engine.connect() as conn:
        found = await conn.execute(
            select(notifications).where(or_(notifications.c.outbox_key.contains(prefix),
                                            notifications.c.execution_id.contains(prefix)))
            .order_by(notifications.c.id))
        return [dict(r._mapping) for r in found]


async def _cleanup(prefix: str) -> None:
    engine = await app_engine()
    async with engine.begin() as conn:
        await conn.execute(delete(notifications).where(or_(notifications.c.outbox_key.contains(prefix),
                                                           notifications.c.execution_id.contains(prefix))))
        await conn.execute(delete(attendance_days).where(attendance_days.c.employee_no.startswith(prefix)))
        await conn.execute(delete(employees).where(employees.c.employee_no.startswith(prefix)))


def rows_of(world: World) -> list[dict[str, Any]]:
    return run_async(_notification_rows(world.prefix))


def employee(world: World, who: str, name: str, manager: str | None = None, email: str | None = "") -> dict[str, Any]:
    return {"employee_no": world.no(who), "full_name": name, "email": world.mail(who) if email == "" else email,
            "department": "Ops", "manager_no": world.no(manager) if manager else None, "status": "active",
            "synced_at": dt.datetime.now(UTC), "execution_id": world.execution_id}


def day(world: World, who: str, status: str, *, late: int = 0, early: int = 0, first_in: str | None = "09:00",
        last_out: str | None = "17:00", shift: str = "day") -> dict[str, Any]:
    punches = 1 if status == "missing_punch" else (0 if status == "absent" else 2)
    return {"employee_no": world.no(who), "work_date": world.day, "shift_code": shift,
            "first_in": world.at(first_in) if first_in and punches else None,
            "last_out": world.at(last_out) if last_out and punches > 1 else None,
            "worked_minutes": 0, "status": status, "late_minutes": late, "early_exit_minutes": early,
            "punch_count": punches, "execution_id": world.execution_id, "computed_at": dt.datetime.now(UTC)}


@pytest.fixture
def world(app_db: str) -> Iterator[World]:
    """A fresh prefix, a day of its own (far in the future) and an execution id; its rows go afterwards."""
    prefix = f"n{uuid.uuid4().hex[:8]}"
    chosen = World(prefix, dt.date(2100, 1, 1) + dt.timedelta(days=random.randrange(30000)), f"exec-{prefix}")
    yield chosen
    run_async(_cleanup(prefix))


@pytest.fixture
def team(world: World) -> World:
    """Manager M's team on the day: every kind of exception, one present member, one member with no e-mail;
    and manager N (another team) with one missing punch."""
    run_async(_insert(employees, [
        employee(world, "M", "Maria Manager"),
        employee(world, "A", "Ann Missing", "M"),
        employee(world, "B", "Ben Absent", "M"),
        employee(world, "C", "Cid Late", "M"),
        employee(world, "D", "Dee Early", "M"),
        employee(world, "E", "<b>Eve</b> Half", "M"),
        employee(world, "F", "Fay Present", "M"),
        employee(world, "G", "Gus Nomail", "M", email=None),
        employee(world, "N", "Nora Other"),
        employee(world, "H", "Hal Missing", "N"),
    ]))
    run_async(_insert(attendance_days, [
        day(world, "A", "missing_punch", first_in="08:58"),
        day(world, "B", "absent"),
        day(world, "C", "present", late=15, first_in="09:25"),
        day(world, "D", "present", early=20, last_out="16:40"),
        day(world, "E", "half_day", last_out="12:00"),
        day(world, "F", "present"),
        day(world, "G", "missing_punch"),
        day(world, "H", "missing_punch"),
    ]))
    return world


@pytest.fixture
def mail_env(smtp_server: SmtpServer, app_db: str) -> Iterator[SmtpServer]:
    """HRSYNC_SMTP_URL points at the test server; sender and operations addresses are set."""
    with pytest.MonkeyPatch.context() as mp:
        set_env(mp, smtp_url=smtp_server.url(), mail_from="HR Sync <hrsync@example.test>",
                ops_email="ops@example.test")
        yield smtp_server
    get_settings.cache_clear()


def build(world: World, kinds: tuple[str, ...] = ("missing_punch", "manager_digest")) -> Any:
    return run_async(build_notifications(world.day, world.day, world.execution_id, kinds))


def send_all(world: World, policy: SendPolicy = FAST) -> list[Any]:
    batches = run_async(plan_notify_batches(world.execution_id, 50))
    return [run_async(send_notifications(batch, world.execution_id, policy=policy)) for batch in batches]


# -- building -------------------------------------------------------------------------------------------

def test_building_twice_makes_the_same_rows(team: World, mail_env: SmtpServer) -> None:
    """A second build adds no row and leaves existing rows (also a sent one) exactly as they were."""
    first = build(team)
    assert first.output["built"] == {"missing_punch": 2, "manager_digest": 2}
    assert first.output["new"] == 4
    assert first.output["skipped_no_address"] == 1
    before = rows_of(team)
    assert {r["kind"] for r in before} == {"missing_punch", "manager_digest"}
    assert all(r["status"] == "pending" and r["attempts"] == 0 for r in before)

    run_async(send_notifications([before[0]["id"]], team.execution_id, policy=FAST))
    sent_row = rows_of(team)[0]
    assert sent_row["status"] == "sent"

    second = build(team)
    assert second.output["new"] == 0
    assert second.rows_out == 0
    after = rows_of(team)
    assert after[0] == sent_row  # not reset to pending
    assert [(r["id"], r["outbox_key"], r["created_at"]) for r in after] == \
        [(r["id"], r["outbox_key"], r["created_at"]) for r in before]


async def _set_late(world: World, who: str, minutes: int) -> None:
    engine = await app_engine()
    async with engine.begin() as conn:
        await conn.execute(update(attendance_days).where(attendance_days.c.employee_no == world.no(who))
                           .values(late_minutes=minutes))


def test_a_digest_is_corrected_each_time_its_text_changes_and_only_then(team: World, mail_env: SmtpServer) -> None:
    """Maria's digest, built; Cid's lateness changes twice, each change followed by two builds: one corrected
    digest per change (the second build finds the newest text unchanged), each keyed `<key>:<fingerprint>`."""
    def digests() -> list[dict[str, Any]]:
        return [r for r in rows_of(team) if r["kind"] == "manager_digest" and r["recipient"] == team.mail("M")]

    build(team)
    [first] = digests()
    for minutes in (30, 45):
        run_async(_set_late(team, "C", minutes))
        assert build(team).output["new"] == 1  # the corrected digest
        assert build(team).output["new"] == 0  # the newest one already says this
        newest = digests()[-1]
        assert newest["subject"].startswith("Corrected: ")
        assert newest["outbox_key"].startswith(first["outbox_key"] + ":")
        assert f"late {minutes} min" in newest["body_text"]
    assert len(digests()) == 3  # the first and one correction per change


def test_missing_punch_rows_and_their_keys(team: World, mail_env: SmtpServer) -> None:
    """Missing punch mails go to the employee, keyed by employee, date and shift, with local punch time."""
    build(team, ("missing_punch",))
    rows = {r["recipient"]: r for r in rows_of(team)}
    assert set(rows) == {team.mail("A"), team.mail("H")}
    ann = rows[team.mail("A")]
    assert ann["outbox_key"] == f"missing_punch:{team.no('A')}:{team.day.isoformat()}:day"
    assert ann["recipient_name"] == "Ann Missing"
    assert ann["message_id"].startswith("<")
    assert ann["message_id"].endswith("@hrsync>")
    assert "08:58" in ann["body_text"]
    assert team.day.isoformat() in ann["subject"]


# -- sending --------------------------------------------------------------------------------------------

def test_sending_twice_delivers_exactly_once(team: World, mail_env: SmtpServer) -> None:
    """Sending the same batches twice, and two senders racing on one batch, deliver one mail per row."""
    build(team)
    ids = [r["id"] for r in rows_of(team)]

    async def race() -> list[Any]:
        return list(await asyncio.gather(send_notifications(ids, team.execution_id, policy=FAST),
                                         send_notifications(ids, team.execution_id, policy=FAST)))

    results = run_async(race())
    assert sum(r.output["sent"] for r in results) == 4
    again = send_all(team)
    assert again == []  # nothing pending is left to plan
    repeat = run_async(send_notifications(ids, team.execution_id, policy=FAST))
    assert repeat.output["sent"] == 0
    assert repeat.output["skipped_done"] == 4

    received = mail_env.handler.messages
    assert sorted(m.rcpt_tos[0] for m in received) == sorted([team.mail("A"), team.mail("H"), team.mail("M"),
                                                              team.mail("N")])
    rows = rows_of(team)
    assert all(r["status"] == "sent" and r["sent_at"] is not None and r["attempts"] == 1 for r in rows)
    assert {m.message["Message-ID"] for m in received} == {r["message_id"] for r in rows}


def test_a_4xx_then_success_is_retried_within_the_call(team: World, mail_env: SmtpServer) -> None:
    """Two 451 answers, then acceptance: the row is sent in the same call after three attempts."""
    mail_env.handler.refuse(team.mail("A"), "451 4.3.0 try again later", "452 4.2.2 mailbox busy")
    build(team, ("missing_punch",))
    [result] = send_all(team)
    assert result.output["sent"] == 2
    ann = next(r for r in rows_of(team) if r["recipient"] == team.mail("A"))
    assert ann["status"] == "sent"
    assert ann["attempts"] == 3
    assert len(mail_env.handler.to(team.mail("A"))) == 1


def test_a_persistent_4xx_raises_a_retryable_error_and_keeps_the_row_pending(
        team: World, mail_env: SmtpServer) -> None:
    """Always 451: the call raises TemporaryMailError naming the row, which stays pending and unclaimed."""
    mail_env.handler.refuse(team.mail("A"), "451 4.3.0 greylisted", forever=True)
    build(team, ("missing_punch",))
    [batch] = run_async(plan_notify_batches(team.execution_id, 10))
    with pytest.raises(TemporaryMailError) as caught:
        run_async(send_notifications(batch, team.execution_id, policy=FAST))
    rows = {r["recipient"]: r for r in rows_of(team)}
    ann, hal = rows[team.mail("A")], rows[team.mail("H")]
    assert caught.value.pending_ids == [ann["id"]]
    assert caught.value.output["sent"] == 1
    assert ann["status"] == "pending"
    assert ann["claimed_at"] is None
    assert ann["attempts"] == 3
    assert "451" in ann["last_error"]
    assert hal["status"] == "sent"
    # The Celery retry: the server now accepts, and only the pending row goes out.
    mail_env.handler.forever.clear()
    retried = run_async(send_notifications(batch, team.execution_id, policy=FAST))
    assert retried.output["sent"] == 1
    assert retried.output["skipped_done"] == 1
    assert len(mail_env.handler.to(team.mail("A"))) == 1
    assert len(mail_env.handler.to(team.mail("H"))) == 1


def test_a_5xx_parks_the_row_as_failed_and_the_others_are_sent(team: World, mail_env: SmtpServer) -> None:
    """550 for one recipient: that row is failed with the server's reason, the batch goes on, no error."""
    mail_env.handler.refuse(team.mail("A"), "550 5.1.1 no such user", forever=True)
    build(team)
    [result] = send_all(team)
    assert result.output["sent"] == 3
    assert result.output["failed"] == 1
    ann = next(r for r in rows_of(team) if r["recipient"] == team.mail("A"))
    assert ann["status"] == "failed"
    assert ann["attempts"] == 1
    assert ann["last_error"] == "550 5.1.1 no such user"
    assert mail_env.handler.to(team.mail("A")) == []
    assert send_all(team) == []  # a parked row is never planned or sent again


def test_an_unreachable_server_leaves_every_row_pending(team: World, app_db: str) -> None:
    """No server listening: the call raises TemporaryMailError and releases all claims."""
    stopped = start_smtp_server()
    stop_smtp_server(stopped)  # a free port with nothing behind it
    build(team, ("missing_punch",))
    with pytest.MonkeyPatch.context() as mp:
        set_env(mp, smtp_url=stopped.url())
        [batch] = run_async(plan_notify_batches(team.execution_id, 10))
        with pytest.raises(TemporaryMailError) as caught:
            run_async(send_notifications(batch, team.execution_id, policy=FAST))
    get_settings.cache_clear()
    assert sorted(caught.value.pending_ids) == sorted(batch)
    assert all(r["status"] == "pending" and r["claimed_at"] is None for r in rows_of(team))


def test_a_connection_lost_after_data_resends_with_the_same_message_id(team: World, mail_env: SmtpServer) -> None:
    """The documented at-least-once case: no answer after DATA, so the retry resends the same Message-ID."""
    mail_env.handler.drop_after_data.add(team.mail("A"))
    build(team, ("missing_punch",))
    [result] = send_all(team)
    assert result.output["sent"] == 2
    copies = mail_env.handler.to(team.mail("A"))
    assert len(copies) == 2
    assert copies[0].message["Message-ID"] == copies[1].message["Message-ID"]
    ann = next(r for r in rows_of(team) if r["recipient"] == team.mail("A"))
    assert ann["status"] == "sent"
    assert ann["attempts"] == 2


def test_a_live_claim_is_respected_and_an_expired_one_is_taken_over(team: World, mail_env: SmtpServer) -> None:
    """A row claimed by another sender is skipped; once the claim's lease is over, it is sent."""
    build(team, ("missing_punch",))
    ids = [r["id"] for r in rows_of(team)]

    async def set_claim(at: dt.datetime) -> None:
        engine = await app_engine()
        async with engine.begin() as conn:
            await conn.execute(update(notifications).where(notifications.c.id.in_(ids)).values(claimed_at=at))

    run_async(set_claim(dt.datetime.now(UTC)))
    held = run_async(send_notifications(ids, team.execution_id, policy=FAST))
    assert held.output["skipped_claimed"] == 2
    assert mail_env.handler.messages == []
    run_async(set_claim(dt.datetime.now(UTC) - dt.timedelta(hours=1)))  # that sender died long ago
    taken = run_async(send_notifications(ids, team.execution_id, policy=FAST))
    assert taken.output["sent"] == 2


# -- content ----------------------------------------------------------------------------------------------

def test_the_manager_digest_lists_the_team_exceptions(team: World, mail_env: SmtpServer) -> None:
    """Maria's digest lists her team's five exceptions (not the present one, not Nora's team), escaped in HTML."""
    build(team)
    send_all(team)
    [digest] = mail_env.handler.to(team.mail("M"))
    message = digest.message
    assert message["Subject"] == f"Attendance exceptions of your team on {team.day.isoformat()} (6)"
    assert message["To"].addresses[0].display_name == "Maria Manager"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for line in ("Ann Missing", "missing punch", "Ben Absent", "absent", "Cid Late", "late 15 min",
                 "Dee Early", "early exit 20 min", "half day", "Gus Nomail"):
        assert line in text, line
    assert "Fay Present" not in text
    assert "Hal Missing" not in text
    assert "<b>Eve</b> Half" in text  # text is not HTML: the name as it is
    assert "&lt;b&gt;Eve&lt;/b&gt; Half" in html
    assert "<b>Eve</b>" not in html
    assert "09:25" in text
    assert "16:40" in text
    [nora] = mail_env.handler.to(team.mail("N"))
    assert "Hal Missing" in nora.message.get_body(("plain",)).get_content()


def test_sync_failed_goes_to_the_operations_address(world: World, mail_env: SmtpServer) -> None:
    """The sync_failed mail reaches ops once, with execution, stage and a redacted error."""
    error = "OperationalError: cannot connect to mysql+aiomysql://app:s3cret@db.internal/app"
    key = run_async(queue_sync_failed(world.execution_id, "attendance_merge", error))
    assert key == run_async(queue_sync_failed(world.execution_id, "attendance_merge", error))
    assert key == f"sync_failed:{world.execution_id}:attendance_merge:ops@example.test"
    [row] = rows_of(world)
    assert row["recipient"] == "ops@example.test"
    assert row["execution_id"] == world.execution_id
    send_all(world)
    [received] = mail_env.handler.to("ops@example.test")
    message = received.message
    assert world.execution_id in message["Subject"]
    assert "attendance_merge" in message["Subject"]
    body = message.get_body(("plain",)).get_content()
    assert world.execution_id in body
    assert "attendance_merge" in body
    assert "app:***@db.internal" in body
    assert "s3cret" not in received.data.decode()


def test_cr_lf_in_a_name_or_subject_cannot_inject_a_header(world: World, mail_env: SmtpServer) -> None:
    """A name and a stage with CR/LF + "Bcc:" arrive as one header each: no Bcc, no extra recipient."""
    evil = "Mallory\r\nBcc: victim@evil.test\r\nX-Injected: yes"
    run_async(_insert(employees, [employee(world, "X", evil)]))
    run_async(_insert(attendance_days, [day(world, "X", "missing_punch")]))
    build(world, ("missing_punch",))
    run_async(queue_sync_failed(world.execution_id, "merge\nBcc: victim@evil.test\rX-Injected: yes", "boom"))
    send_all(world)
    received = mail_env.handler.messages
    assert len(received) == 2
    for item in received:
        assert len(item.rcpt_tos) == 1
        assert "victim@evil.test" not in item.rcpt_tos
        message = item.message
        assert sorted(message.keys()) == sorted(["From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted",
                                                 "MIME-Version", "Content-Type"])
        assert "\n" not in str(message["Subject"])
        assert "\n" not in str(message["To"])
    to_mallory = next(m for m in received if m.rcpt_tos == [world.mail("X")]).message
    assert to_mallory["To"].addresses[0].display_name == "Mallory Bcc: victim@evil.test X-Injected: yes"
    to_ops = next(m for m in received if m.rcpt_tos == ["ops@example.test"]).message
    assert "merge Bcc: victim@evil.test X-Injected: yes" in to_ops["Subject"]


# -- transports ---------------------------------------------------------------------------------------------

def test_without_an_smtp_url_the_file_sink_writes_each_message_once(team: World, isolated_home: Path) -> None:
    """No HRSYNC_SMTP_URL: each message becomes <home>/mail/<message-id>.eml, once, even when resent."""
    assert get_settings().smtp_url is None
    build(team, ("missing_punch",))
    [result] = send_all(team)
    assert result.output["sent"] == 2
    rows = rows_of(team)
    files = [eml_path(isolated_home / "mail", r["message_id"]) for r in rows]
    assert all(f.is_file() for f in files)
    first_bytes = [f.read_bytes() for f in files]
    assert f"Message-ID: {rows[0]['message_id']}".encode() in first_bytes[0]

    async def back_to_pending() -> None:  # what a resend after a lost acknowledgement looks like
        engine = await app_engine()
        async with engine.begin() as conn:
            await conn.execute(update(notifications).where(notifications.c.id.in_([r["id"] for r in rows]))
                               .values(status="pending", sent_at=None))

    run_async(back_to_pending())
    run_async(send_notifications([r["id"] for r in rows], team.execution_id, policy=FAST))
    assert [f.read_bytes() for f in files] == first_bytes  # not rewritten
    assert len([p for p in (isolated_home / "mail").iterdir() if team.prefix in p.read_text()]) == 2
    assert not [p for p in (isolated_home / "mail").iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("scheme", ["smtp+starttls", "smtps"])
def test_tls_and_login_work_and_the_password_is_never_logged(
        scheme: str, world: World, tmp_path: Path) -> None:
    """STARTTLS and implicit TLS with a login: the message arrives encrypted; no log line holds the password."""
    cert, key = self_signed_cert(tmp_path)
    handler = RecordingHandler(users={"mailer": "p@ss:w0rd"})
    context = server_tls_context(cert, key)
    server = start_smtp_server(handler, **({"starttls": context} if scheme == "smtp+starttls"
                                           else {"implicit_tls": context}))
    try:
        url = server.url(scheme, userinfo="mailer:p%40ss%3Aw0rd", query=f"cafile={cert}")
        with pytest.MonkeyPatch.context() as mp, capture_logs() as logs:
            set_env(mp, smtp_url=url)
            key_ = run_async(queue_sync_failed(world.execution_id, "extract", "boom"))
            [ids] = run_async(plan_notify_batches(world.execution_id, 10))
            result = run_async(send_notifications(ids, world.execution_id, policy=FAST))
        get_settings.cache_clear()
    finally:
        stop_smtp_server(server)
    assert result.output["sent"] == 1
    assert key_.startswith("sync_failed:")
    [received] = handler.messages
    assert received.tls
    assert received.login == "mailer"
    assert logs
    assert "p@ss:w0rd" not in repr(logs)
    assert "p%40ss" not in repr(logs)


def test_a_refused_login_is_a_setup_error_and_sends_nothing(world: World, tmp_path: Path) -> None:
    """A wrong password (535) raises MailSetupError, not a retry; the row stays pending for a replay."""
    cert, key = self_signed_cert(tmp_path)
    handler = RecordingHandler(users={"mailer": "right"})
    server = start_smtp_server(handler, starttls=server_tls_context(cert, key))
    try:
        with pytest.MonkeyPatch.context() as mp:
            set_env(mp, smtp_url=server.url("smtp+starttls", userinfo="mailer:wrong", query=f"cafile={cert}"))
            run_async(queue_sync_failed(world.execution_id, "extract", "boom"))
            [ids] = run_async(plan_notify_batches(world.execution_id, 10))
            with pytest.raises(MailSetupError, match="535"):
                run_async(send_notifications(ids, world.execution_id, policy=FAST))
        get_settings.cache_clear()
    finally:
        stop_smtp_server(server)
    [row] = rows_of(world)
    assert row["status"] == "pending"
    assert row["claimed_at"] is None
    assert handler.messages == []
