"""The outbox's claims when a sender dies holding one (finding: an execution `succeeded` while a mail it
built stayed pending, which went out only if some later notify run happened to pick it up)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select, update

from pipelines.mail import send as sending
from pipelines.mail.errors import TemporaryMailError
from pipelines.mail.outbox import _insert_new, _row, claim
from pipelines.notify.stage import finish_notify, send_batch
from shared.database.db import app_engine
from shared.database.tables import notifications
from shared.runtime.clock import utcnow
from shared.runtime.runner import run_async

pytestmark = pytest.mark.integration


def built_row(execution_id: str) -> int:
    """One pending mail built by `execution_id`; its outbox id."""
    key = f"missing_punch:{uuid.uuid4().hex}"
    row = _row("missing_punch", key, "someone@example.test", "Someone", "Missing punch",
               {"name": "Someone", "work_date": "2026-12-01", "shift_code": "D", "punch_time": "09:00"},
               execution_id, utcnow())
    run_async(_insert_new([row]))

    async def row_id() -> int:
        engine = await app_engine()
        async with engine.connect() as conn:
            return int((await conn.execute(select(notifications.c.id).where(notifications.c.outbox_key == key)))
                       .scalar_one())

    return run_async(row_id())


def status_of(row_id: int) -> Any:
    async def read() -> Any:
        engine = await app_engine()
        async with engine.connect() as conn:
            return (await conn.execute(select(notifications.c.status).where(notifications.c.id == row_id))).scalar()

    return run_async(read())


def held_by(row_id: int, claimed_by: str) -> None:
    """The row claimed now by `claimed_by` (a run of another process, as it would have claimed it)."""
    async def write() -> None:
        engine = await app_engine()
        async with engine.begin() as conn:
            await conn.execute(update(notifications).where(notifications.c.id == row_id)
                               .values(claimed_at=utcnow(), claimed_by=claimed_by))

    run_async(write())


def test_a_batch_redelivered_after_its_run_died_holding_a_claim_sends_that_mail(app_db: str) -> None:
    """The batch's first run claimed the row and died (or failed before marking it): its redelivery or
    retry (the same execution and shard) takes the claim back and sends the mail, instead of skipping it
    as another sender's until the lease ends."""
    execution_id = str(uuid.uuid4())
    row_id = built_row(execution_id)
    shard = {"key": f"batch:{row_id}-{row_id}:1", "ids": [row_id]}
    held_by(row_id, f"{execution_id}/{shard['key']}")
    result = run_async(send_batch(execution_id, shard))
    assert result.output["sent"] == 1
    assert status_of(row_id) == "sent"


def test_a_redelivery_beside_a_live_run_of_the_same_batch_leaves_its_rows_to_it(app_db: str) -> None:
    """The same batch's run in this very process is delivering the row (a redelivery after a lost broker
    connection runs beside it): the redelivery skips the row, so the mail is not sent twice."""
    execution_id = str(uuid.uuid4())
    row_id = built_row(execution_id)
    shard = {"key": f"batch:{row_id}-{row_id}:1", "ids": [row_id]}
    assert run_async(claim(row_id, f"{execution_id}/{shard['key']}")) is not None  # the live run's claim
    sending._DELIVERING.add(row_id)  # ...and its delivery in progress
    try:
        assert run_async(send_batch(execution_id, shard)).output["skipped_claimed"] == 1
    finally:
        sending._DELIVERING.discard(row_id)
    assert status_of(row_id) == "pending"


def test_an_execution_does_not_finish_notify_while_its_mail_is_held_by_a_dead_sender(app_db: str) -> None:
    """Another execution's batch claimed this execution's mail and died: this execution's batch skips it
    (claimed), and its notify `@done` raises `TemporaryMailError` (retried, then failed) instead of letting
    the execution succeed with the mail left pending."""
    execution_id = str(uuid.uuid4())
    row_id = built_row(execution_id)
    assert run_async(claim(row_id)) is not None  # another sender (e.g. another execution's batch), then died
    shard = {"key": f"batch:{row_id}-{row_id}:1", "ids": [row_id]}
    assert run_async(send_batch(execution_id, shard)).output["skipped_claimed"] == 1
    with pytest.raises(TemporaryMailError, match="held by another sender"):
        run_async(finish_notify(execution_id))
    assert status_of(row_id) == "pending"


def test_a_batch_claims_its_rows_at_once_and_leaves_a_live_claim_of_another_sender_alone(app_db: str) -> None:
    """One batch, three rows: free, held by this very step's dead run, held live by another sender. The
    batch's one claim takes the first two (both sent, marked together) and skips the third, whose claim stays
    as it was; the sent rows keep no claim."""
    execution_id = str(uuid.uuid4())
    free, own, other = built_row(execution_id), built_row(execution_id), built_row(execution_id)
    shard = {"key": f"batch:{free}-{other}:3", "ids": [free, own, other]}
    held_by(own, f"{execution_id}/{shard['key']}")
    held_by(other, "another-execution/batch:x")
    result = run_async(send_batch(execution_id, shard))
    assert (result.output["sent"], result.output["skipped_claimed"], result.output["lost_claim"]) == (2, 1, 0)
    assert [status_of(i) for i in (free, own, other)] == ["sent", "sent", "pending"]

    async def claims() -> dict[int, Any]:
        engine = await app_engine()
        async with engine.connect() as conn:
            rows = await conn.execute(select(notifications.c.id, notifications.c.claimed_by)
                                      .where(notifications.c.id.in_([free, own, other])))
            return {int(i): by for i, by in rows}

    assert run_async(claims()) == {free: None, own: None, other: "another-execution/batch:x"}
