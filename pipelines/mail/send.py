"""Sending a batch of outbox rows: claim the batch's rows, deliver each, record the outcomes.

Outcomes per row: accepted → ``sent`` (+ sent_at); a 5xx to MAIL/RCPT/DATA (or an address that cannot
be sent) → parked ``failed`` with the reason, and the batch goes on; a 4xx, or a lost connection, is
retried a few times within the call with backoff, after which the row is released (still ``pending``)
and the call raises `TemporaryMailError` once the rest of the batch is done (so the task retries later).
A connection that cannot be (re)opened stops the batch at once: its other rows are given back pending.

Round trips: one transaction claims the whole batch (only ``pending`` rows without a live claim), and
accepted rows are marked ``sent`` `MARK_EVERY` at a time, plus whatever was accepted when the batch ends,
fails or is cancelled (two transactions per message before; docs/reliability.md "Mail").

Delivery is at-least-once in exactly one case: the connection drops after the message was handed over
but before the server's answer, or the process dies between the answer and the ``sent`` mark — then up to
`MARK_EVERY` accepted rows are still pending under this step's claim. They are sent again — by the retry
within the call, by the batch's redelivery (the same holder takes its claim back), or by a later call once
the claim's lease expired — with the same deterministic Message-ID, so receivers can drop the copy.
Everywhere else a row is sent at most once: only ``pending`` rows are claimed, one claimer at a time, and
``sent`` is recorded before the step ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeVar

import aiosmtplib
import structlog

from pipelines.mail import outbox
from pipelines.mail.errors import MailSetupError, TemporaryMailError
from pipelines.mail.message import build_message, parse_mailbox
from pipelines.mail.smtp import ConnectFailed, MailTarget, Transport, mail_target, open_transport
from pipelines.stage import StageResult
from shared.config.retry import Backoff, is_transient
from shared.config.settings import get_settings
from shared.runtime.clock import utcnow
from shared.runtime.slots import loop_slots

log = structlog.get_logger(__name__)

Verdict = Literal["sent", "permanent", "temporary", "connection"]
T = TypeVar("T")


@dataclass(frozen=True)
class SendPolicy:
    """Retries within one call: `attempts` tries per message, backoff `base_delay`·2ⁿ (jittered, capped)."""

    attempts: int = 3
    base_delay: float = 1.0
    max_delay: float = 10.0

    def delay(self, retry: int) -> float:
        """The wait before retry `retry`: the shared backoff, at least half its ceiling (a server that just
        answered 4xx gains nothing from an immediate retry)."""
        return Backoff(self.base_delay, self.max_delay, floor=0.5).delay(retry)


DEFAULT_POLICY = SendPolicy()
MARK_PATIENCE = 60.0  # seconds a delivered row's `sent` mark is retried through database outages
MARK_BACKOFF = Backoff(base=0.5, cap=5.0)
_DELIVERING: set[int] = set()  # outbox rows a run of this process is delivering right now
# Delivered rows marked `sent` in one transaction: a process killed between a delivery and its mark sends
# at most this many mails again on the batch's redelivery (same Message-IDs; docs/reliability.md).
MARK_EVERY = 10
SEND_SLOTS = 8  # batches of one process sending at once (shared/runtime/slots.py)


async def _patiently(write: Callable[[], Awaitable[T]]) -> T:
    """`write()` (a retried one-transaction outbox write), run again while it fails with a transient error,
    for up to `MARK_PATIENCE` seconds: a restarting database takes longer than the write's own retries."""
    deadline = time.monotonic() + MARK_PATIENCE
    retry = 0
    while True:
        try:
            return await write()
        except Exception as exc:
            if not is_transient(exc) or time.monotonic() > deadline:
                raise
            await asyncio.sleep(MARK_BACKOFF.delay(retry))
            retry += 1


def classify(exc: BaseException) -> tuple[Verdict, str]:
    """What an error means for the row, and the reason to record (server code and text, no secrets)."""
    if isinstance(exc, ConnectFailed):
        cause = exc.__cause__
        if isinstance(cause, aiosmtplib.SMTPResponseException) and 500 <= cause.code < 600:
            raise MailSetupError(f"the mail server refused the session: {cause.code} {cause.message}") from None
        return "connection", str(exc)
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        exc = exc.recipients[0]
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        reason = f"{exc.code} {exc.message}".strip()
        if exc.code == 421:  # the server is closing the connection
            return "connection", reason
        if 400 <= exc.code < 500:
            return "temporary", reason
        if isinstance(exc, aiosmtplib.SMTPSenderRefused):
            raise MailSetupError(f"the mail server refused the sender {exc.sender!r}: {reason}") from None
        return "permanent", reason
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected | aiosmtplib.SMTPTimeoutError | OSError):
        return "connection", f"{type(exc).__name__}: {exc}"
    if isinstance(exc, aiosmtplib.SMTPNotSupported | ValueError):
        return "permanent", f"cannot send: {exc}"
    raise exc


async def _deliver(transport: Transport, row: dict[str, Any], sender: str,
                   policy: SendPolicy) -> tuple[Verdict, str, int]:
    """Try one row up to `policy.attempts` times; return the verdict, the reason and the tries made."""
    try:
        files = [(Path(path).name, await asyncio.to_thread(Path(path).read_bytes))
                 for path in row.get("attachments") or ()]
        item = build_message(sender=sender, recipient=row["recipient"], recipient_name=row["recipient_name"],
                             subject=row["subject"], body_text=row["body_text"], body_html=row["body_html"],
                             message_id=row["message_id"], date=utcnow(), attachments=files)
    except (ValueError, OSError) as exc:
        return "permanent", f"cannot build the message: {exc}", 1
    verdict: Verdict = "temporary"
    reason = ""
    for attempt in range(policy.attempts):
        if attempt:
            await asyncio.sleep(policy.delay(attempt - 1))
        try:
            await transport.deliver(item)
        except (aiosmtplib.SMTPException, ConnectFailed, OSError, ValueError) as exc:
            verdict, reason = classify(exc)
            log.info("notify.attempt_failed", notification_id=row["id"], attempt=attempt + 1,
                     verdict=verdict, reason=reason[:200])
            if verdict == "permanent":
                return verdict, reason, attempt + 1
            if verdict == "connection":
                await transport.reset()
            continue
        return "sent", "", attempt + 1
    return verdict, reason, policy.attempts


async def send_notifications(
    ids: Sequence[int],
    execution_id: str | None = None,
    *,
    policy: SendPolicy = DEFAULT_POLICY,
    target: MailTarget | None = None,
    holder: str | None = None,
) -> StageResult:
    """Send the pending rows among `ids` over one connection (opened on the first message).

    Rows that are not pending (sent, failed) or that another sender holds are skipped. The batch's rows
    are claimed in one transaction (`outbox.claim_many`), and delivered rows are marked ``sent`` together,
    `MARK_EVERY` at a time (and whatever was delivered when the batch ends or is interrupted). Raises
    `TemporaryMailError` (retry the task later) if rows are left pending after 4xx answers or a lost
    connection, `MailSetupError` (do not retry) when the server refuses the session or the sender.
    `target` overrides HRSYNC_SMTP_URL (tests); `holder` names the step sending (see `outbox.claim`).
    """
    settings = get_settings()
    target = target or mail_target(settings)
    try:
        sender = str(parse_mailbox(settings.mail_from))
    except ValueError as exc:
        raise MailSetupError(f"HRSYNC_MAIL_FROM: {exc}") from None
    bound = log.bind(execution_id=execution_id, target=target.display)
    async with loop_slots("notify", SEND_SLOTS):
        return await _send(ids, execution_id, policy, target, holder, sender, bound)


async def _send(ids: Sequence[int], execution_id: str | None, policy: SendPolicy, target: MailTarget,
                holder: str | None, sender: str, bound: Any) -> StageResult:
    counts = {"sent": 0, "failed": 0, "deferred": 0, "skipped_done": 0, "skipped_claimed": 0, "lost_claim": 0}
    deferred: list[int] = []
    rows = await outbox.load_rows(ids)
    counts["skipped_done"] = len(set(ids) - {r["id"] for r in rows})  # deleted meanwhile: nothing to send
    wanted: list[dict[str, Any]] = []
    for row in rows:
        if row["status"] != "pending":
            counts["skipped_done"] += 1
        elif row["id"] in _DELIVERING:  # a run of this process is at it (a redelivery runs beside it)
            counts["skipped_claimed"] += 1
        else:
            wanted.append(row)
    wanted_ids = [row["id"] for row in wanted]
    _DELIVERING.update(wanted_ids)  # before the claim's await: a run beside this one sees them at once
    try:
        token, taken = await outbox.claim_many(wanted_ids, holder)
    except BaseException:
        _DELIVERING.difference_update(wanted_ids)
        raise
    _DELIVERING.difference_update(set(wanted_ids) - taken)
    counts["skipped_claimed"] += len(wanted_ids) - len(taken)
    todo = [row for row in wanted if row["id"] in taken]
    untried = set(taken)  # claimed, not attempted yet: given back if the batch stops before them
    delivered: list[int] = []  # accepted by the server, `sent` not recorded yet

    async def mark_delivered() -> None:
        batch = list(delivered)
        delivered.clear()
        if not batch:
            return
        try:  # the mark must outlast a database restart, or the mail goes out twice
            marked = await _patiently(partial(outbox.mark_sent_many, batch, token))
        finally:
            _DELIVERING.difference_update(batch)
        counts["lost_claim"] += len(batch) - marked

    transport = open_transport(target)
    try:
        for position, row in enumerate(todo):
            untried.discard(row["id"])
            try:
                verdict, reason, tries = await _deliver(transport, row, sender, policy)
            except BaseException:
                # Setup error, cancellation, time limit: give the row back before leaving.
                _DELIVERING.discard(row["id"])
                await asyncio.shield(outbox.release(row["id"], token, "interrupted before an answer"))
                raise
            if verdict == "sent":
                counts["sent"] += 1
                bound.info("notify.sent", notification_id=row["id"], kind=row["kind"], attempts=tries)
                if tries == 1:
                    delivered.append(row["id"])
                    if len(delivered) >= MARK_EVERY:
                        await mark_delivered()
                    continue
                try:  # retried within the call: its own mark, with its extra attempts
                    ok = await _patiently(partial(outbox.mark_sent, row["id"], token, tries - 1))
                finally:
                    _DELIVERING.discard(row["id"])
                counts["lost_claim"] += not ok
                continue
            _DELIVERING.discard(row["id"])
            if verdict == "permanent":
                await outbox.mark_failed(row["id"], token, reason, tries - 1)
                counts["failed"] += 1
                bound.warning("notify.parked", notification_id=row["id"], kind=row["kind"], reason=reason[:200])
            else:
                await outbox.release(row["id"], token, reason, tries - 1)
                deferred.append(row["id"])
                if verdict == "connection":  # the server is unreachable: the rest waits for the retry
                    deferred += [r["id"] for r in todo[position + 1:]]
                    break
    finally:
        try:
            await asyncio.shield(mark_delivered())  # delivered before an error or a cancellation: recorded
        finally:
            try:
                if untried:
                    await asyncio.shield(outbox.release_many(sorted(untried), token, "not tried: the batch stopped"))
            finally:
                _DELIVERING.difference_update(untried)
                await transport.aclose()
    counts["deferred"] = len(deferred)
    result = StageResult(rows_in=len(ids), rows_out=counts["sent"], output=counts)
    bound.info("notify.batch", **counts)
    if deferred:
        raise TemporaryMailError(
            f"{len(deferred)} notification(s) left pending after temporary mail errors "
            f"({counts['sent']} sent, {counts['failed']} parked)", deferred, counts)
    return result
