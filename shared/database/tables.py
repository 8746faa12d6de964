"""The app database's tables (DESIGN §6-§7), as SQLAlchemy Core metadata; Alembic migrates them.

Times are stored as naive UTC (`UTCDateTime`) and read back as aware UTC datetimes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql

from shared.database.dialects import is_mariadb

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

# Long text on MariaDB (TEXT is 64 KiB; event bodies may be 256 KiB).
LongText = Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
BigId = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER keys only


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware datetimes in, stored as naive UTC with microseconds, aware UTC out."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if is_mariadb(dialect):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: hrsync stores aware UTC instants only")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


# Identifiers compare byte for byte (DESIGN §5): `Payroll-1`, `payroll-1` and `payroll-1 ` are three ids.
# MariaDB's default collation ignores case and trailing spaces; `utf8mb4_nopad_bin` ignores neither.
# SQLite compares exactly already.
EXACT_COLLATION = "utf8mb4_nopad_bin"


def _table(name: str, *columns: Any) -> Table:
    """A table of the app database, compared exactly on MariaDB (every new table is declared through this)."""
    return Table(name, metadata, *columns, mysql_charset="utf8mb4", mysql_collate=EXACT_COLLATION)


def _id(name: str = "id") -> Column[Any]:
    return Column(name, BigId, primary_key=True, autoincrement=True)


employees = _table(
    "employees",
    Column("employee_no", String(64), primary_key=True),
    Column("full_name", String(200), nullable=False),
    Column("email", String(254)),
    Column("department", String(100)),
    Column("manager_no", String(64)),
    Column("status", String(16), nullable=False),
    Column("hire_date", Date),
    Column("termination_date", Date),
    Column("biostar_user_id", String(64)),
    Column("updated_at", UTCDateTime),
    Column("synced_at", UTCDateTime, nullable=False),
    Column("execution_id", String(36)),
    Index(None, "biostar_user_id"),
    Index(None, "department"),
    Index(None, "manager_no"),
)

punches = _table(
    "punches",
    _id(),
    Column("employee_no", String(64), nullable=False),
    Column("device_id", BigInteger, nullable=False),
    Column("punched_at", UTCDateTime, nullable=False),
    Column("event_code", Integer, nullable=False),
    Column("tna_key", Integer),
    Column("received_at", UTCDateTime, nullable=False),
    Column("execution_id", String(36)),
    Column("source", String(8), nullable=False, server_default="device"),  # device / manual (DESIGN §6)
    Column("voided_at", UTCDateTime),  # set: the rules ignore the punch, which is kept
    Column("void_reason", Text),
    # Time before device: the attendance merge reads each employee's punches by time range on this index.
    UniqueConstraint("employee_no", "punched_at", "device_id"),
    Index(None, "punched_at"),
)

# Authentication successes whose USRID matches no employee: kept, counted, never dropped.
unmatched_punches = _table(
    "unmatched_punches",
    _id(),
    Column("biostar_user_id", String(64), nullable=False),
    Column("device_id", BigInteger, nullable=False),
    Column("punched_at", UTCDateTime, nullable=False),
    Column("event_code", Integer, nullable=False),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("execution_id", String(36)),
    UniqueConstraint("biostar_user_id", "device_id", "punched_at"),
)

attendance_days = _table(
    "attendance_days",
    Column("employee_no", String(64), primary_key=True),
    Column("work_date", Date, primary_key=True),
    Column("shift_code", String(32), primary_key=True),
    Column("first_in", UTCDateTime),
    Column("last_out", UTCDateTime),
    Column("worked_minutes", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("late_minutes", Integer, nullable=False),
    Column("early_exit_minutes", Integer, nullable=False),
    Column("punch_count", Integer, nullable=False),
    Column("overtime_minutes", Integer, nullable=False, server_default="0"),
    Column("absence_kind", String(64)),  # the approved absence covering the date, if any
    Column("execution_id", String(36)),
    Column("computed_at", UTCDateTime, nullable=False),
    Index(None, "work_date", "status"),
)

notifications = _table(
    "notifications",
    _id(),
    Column("outbox_key", String(255), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("recipient", String(254), nullable=False),
    Column("recipient_name", String(200)),  # display name of the To header
    Column("subject", String(255), nullable=False),
    Column("body_text", LongText, nullable=False),
    Column("body_html", LongText),
    Column("attachments", JSON),  # paths of files attached when sent (a month-end export's)
    Column("status", String(16), nullable=False),  # pending / sent / failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("claimed_at", UTCDateTime),  # a sender's lease on a pending row (pipelines.notify)
    Column("claimed_by", String(255)),  # the task holding the lease: its redelivery or retry may take it back
    Column("last_error", Text),
    Column("message_id", String(255), nullable=False),
    Column("execution_id", String(36)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Index(None, "status"),
)

executions = _table(
    "executions",
    Column("id", String(36), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("trigger", String(16), nullable=False),  # schedule / event / replay / manual
    Column("event_id", String(200)),
    Column("replay_of", String(36)),
    Column("attempt", Integer, nullable=False, default=1),
    Column("status", String(16), nullable=False),  # pending / running / succeeded / failed
    Column("params", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Column("summary", JSON),
    Column("error", Text),
    Column("failed_stage", String(32)),
    Index(None, "status", "created_at"),
    Index(None, "created_at", "id"),  # keyset pagination of the newest executions
    Index(None, "event_id"),
    Index(None, "kind", "status", "created_at"),  # the pending execution of a kind (coalescing)
    Index(None, "replay_of"),
)

execution_stages = _table(
    "execution_stages",
    _id(),
    Column("execution_id", String(36), nullable=False),
    Column("stage", String(32), nullable=False),
    Column("shard", String(64), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("task_id", String(64)),
    Column("status", String(16), nullable=False),  # running / succeeded / failed / retrying
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("duration_ms", Integer),
    Column("rows_in", Integer),
    Column("rows_out", Integer),
    Column("result", JSON),
    Column("error_type", String(200)),
    Column("error_message", Text),
    UniqueConstraint("execution_id", "stage", "shard", "attempt"),
)

event_inbox = _table(
    "event_inbox",
    Column("event_id", String(200), primary_key=True),
    Column("type", String(100), nullable=False),
    Column("source", String(200)),
    Column("status", String(16), nullable=False),  # received / launched
    Column("execution_id", String(36)),
    Column("received_at", UTCDateTime, nullable=False),
    Column("launched_at", UTCDateTime),
    Column("body", LongText),  # None once pruned: the id is kept longer, as the deduplication horizon
    Index(None, "received_at"),
    Index(None, "execution_id"),  # the events an execution served
)

# Incremental extraction: the last committed `updated_at` per source.
sync_watermarks = _table(
    "sync_watermarks",
    Column("source", String(64), primary_key=True),
    Column("watermark", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Every slot the scheduler fired or found missed: published / failed / missed / superseded (scheduler/).
schedule_runs = _table(
    "schedule_runs",
    Column("event_id", String(200), primary_key=True),  # `<job>:<fire time UTC>`: one row per slot
    Column("job", String(64), nullable=False),
    Column("fire_time", UTCDateTime, nullable=False),  # the scheduled fire time, not when it ran
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("published_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("error", Text),
    Index(None, "job", "fire_time"),
)

# A scheduled job an operator paused (DESIGN §3): one row while it is paused, deleted on resume.
schedule_pauses = _table(
    "schedule_pauses",
    Column("job", String(64), primary_key=True),
    Column("paused_at", UTCDateTime, nullable=False),
    Column("paused_by", String(200), nullable=False),
    Column("via", String(8), nullable=False),  # cli / web
    Column("reason", Text, nullable=False),
)

# What the watchdogs found (DESIGN §7): one row per alert key, so each alert mails ops once, whoever runs them.
watchdog_alerts = _table(
    "watchdog_alerts",
    Column("alert_key", String(255), primary_key=True),  # `<alert>:<execution id or job:slot>`
    Column("alert", String(32), nullable=False),  # pending_wait / stuck_running / nightly_deadline
    Column("target", String(255), nullable=False),  # the execution id, or the nightly's slot event id
    Column("kind", String(32)),  # the execution's kind, if any
    Column("detected_at", UTCDateTime, nullable=False),
    Column("since", UTCDateTime),  # when the late thing began: created, last step ran, slot time
    Column("detail", Text, nullable=False),
    Column("cleared_at", UTCDateTime),  # the condition ended (started, replayed, succeeded)
    Index(None, "detected_at"),
)

# Who did what, from where (DESIGN §7): every replay, cancel, dead-letter replay and correction.
operator_actions = _table(
    "operator_actions",
    _id(),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),  # the web user, or the OS user for the CLI
    Column("via", String(8), nullable=False),  # cli / web
    Column("action", String(64), nullable=False),
    Column("target", String(255), nullable=False),
    Column("details", JSON, nullable=False),
    Index(None, "at"),
)

# Dead-lettered events, moved out of `hrsync.events.dead` by the bridge (shared/events/dead_letters.py):
# listing is a SELECT; a replay republishes the message as it came and marks the row.
dead_letters = _table(
    "dead_letters",
    Column("id", String(32), primary_key=True),  # a digest of the message: the same message moved twice is one row
    Column("event_id", String(200)),
    Column("type", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("routing_key", String(255), nullable=False),
    Column("first_seen", String(64)),
    Column("replays", Integer, nullable=False),  # how often it had been replayed before it came back here
    Column("body", LongText, nullable=False),  # base64 of the bytes as they came (aiomysql cannot bind bytes here)
    Column("properties", JSON, nullable=False),  # AMQP properties and headers, tagged where JSON has no type
    Column("received_at", UTCDateTime, nullable=False),
    Column("replayed_at", UTCDateTime),
    Column("replayed_by", String(200)),
    Index(None, "replayed_at", "received_at"),
    Index(None, "event_id"),
)

# HRIS absences (DESIGN §6), upserted by the extract; never deleted: a cancellation is a status.
absences = _table(
    "absences",
    Column("absence_id", String(64), primary_key=True),
    Column("employee_no", String(64), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("date_from", Date, nullable=False),  # local dates, inclusive
    Column("date_to", Date, nullable=False),
    Column("part", String(8), nullable=False),  # full / am / pm
    Column("status", String(16), nullable=False),  # approved / pending / rejected / cancelled
    Column("updated_at", UTCDateTime),
    Column("synced_at", UTCDateTime, nullable=False),
    Column("execution_id", String(36)),
    # Local dates whose attendance a change of this absence may alter, until a merge recomputed them.
    Column("recompute_from", Date),
    Column("recompute_to", Date),
    Index(None, "employee_no", "date_from"),
    Index(None, "recompute_from"),
)

# Manual punch corrections: one row per add or void, kept with the punch they concern (DESIGN §6).
punch_corrections = _table(
    "punch_corrections",
    _id(),
    Column("punch_id", BigInteger, nullable=False),
    Column("employee_no", String(64), nullable=False),
    Column("action", String(8), nullable=False),  # add / void
    Column("punched_at", UTCDateTime, nullable=False),
    Column("reason", Text, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("via", String(8), nullable=False),  # cli / web
    Column("at", UTCDateTime, nullable=False),
    Index(None, "punch_id"),
    Index(None, "employee_no", "punched_at"),
)

# Month end (DESIGN §11): every exception a closed day showed, keyed (employee, date, kind), with the
# figures last seen and the decision with the figures it was made on (decisions live apart from
# attendance_days, so a recompute never erases one). state/changed_since_decided/approved_overtime_minutes
# are written from `pipelines.monthend.decisions.ExceptionRecord` whenever the day or the decision changes.
attendance_exceptions = _table(
    "attendance_exceptions",
    Column("employee_no", String(64), primary_key=True),
    Column("work_date", Date, primary_key=True),
    Column("kind", String(16), primary_key=True),  # missing_punch / absent / late / early_exit / half_day / overtime
    Column("severity", String(8), nullable=False),  # critical / review
    Column("state", String(8), nullable=False),  # open / accepted / resolved
    Column("changed_since_decided", Boolean, nullable=False, server_default="0"),
    Column("figures", JSON, nullable=False),  # as last seen (kept when resolved)
    Column("auto_approved", Boolean, nullable=False, server_default="0"),  # shift with overtime_approval: auto
    Column("approved_overtime_minutes", Integer),  # kind overtime only: what payroll pays
    Column("verdict", String(8)),  # accept / approve / refuse; null = undecided
    Column("decided_minutes", Integer),  # the overtime minutes a verdict approved (refuse: 0), stale or not
    Column("decided_figures", JSON),
    Column("decided_by", String(200)),
    Column("decided_at", UTCDateTime),
    Column("reason", Text),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("execution_id", String(36)),  # the recompute that last wrote the figures
    Index(None, "work_date", "state"),
)

# One row per close of a month: version 1, 2, … (a reopen marks its row; closing again adds the next).
# The period's state is its latest row's: `closed`, or `open` once reopened.
periods = _table(
    "periods",
    Column("period", String(7), primary_key=True),  # YYYY-MM
    Column("version", Integer, primary_key=True),
    Column("state", String(8), nullable=False),  # closed / open
    Column("forced", Boolean, nullable=False, server_default="0"),  # closed over open critical exceptions
    Column("closed_by", String(200), nullable=False),
    Column("closed_at", UTCDateTime, nullable=False),
    Column("reason", Text, nullable=False),
    Column("reopened_by", String(200)),
    Column("reopened_at", UTCDateTime),
    Column("reopen_reason", Text),
    Column("export_execution_id", String(36)),  # the execution the close's event launched
)

# What a recompute would have changed in a frozen day, kept instead of written (DESIGN §11).
period_changes = _table(
    "period_changes",
    _id(),
    Column("period", String(7), nullable=False),
    Column("version", Integer, nullable=False),  # the closed version that froze the day
    Column("employee_no", String(64), nullable=False),
    Column("work_date", Date, nullable=False),
    Column("before", JSON, nullable=False),
    Column("after", JSON, nullable=False),
    Column("execution_id", String(36), nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    # A retried shard of the same execution records its change once.
    UniqueConstraint("employee_no", "work_date", "execution_id"),
    Index(None, "period", "version"),
)
