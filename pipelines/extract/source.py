"""Where HRIS rows come from: the `HrisSource` protocol, over ODBC (aioodbc) or a SQLAlchemy URL.

Both run the same `?`-parameter SQL (`pipelines.extract.query`), so the stage code is one. The ODBC source
is production (SQL Server, or any ODBC driver); it imports pyodbc (which needs the system's unixODBC,
`libodbc.so.2`) only when it runs, so everything else works on a machine without it. The SQLAlchemy
source serves the embedded demo HRIS, a SQLite file `<HRSYNC_HOME>/hris.db`, through aiosqlite (qmark
parameters natively, via `exec_driver_sql`). `create_demo_hris` makes that file (or any qmark-style database) from rows.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol, cast

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from pipelines.extract.query import Window, build_select, resume_after, split_by_employees
from pipelines.extract.rows import ABSENCE_COLUMNS, COLUMNS
from shared.config.errors import ConfigError, HrsyncError
from shared.config.redaction import redact_text
from shared.config.retry import is_transient, transient_retrying
from shared.config.settings import Settings, get_settings
from shared.database.db import engine_for

DEMO_FILE = "hris.db"
DEMO_VIEW = "hrsync_employees"
DEMO_TABLE = "hris_people"
DEMO_ABSENCES_VIEW = "hrsync_absences"
DEMO_ABSENCES_TABLE = "hris_absences"
# How the demo stores instants: naive UTC text, fixed width, so text order is time order.
DEMO_INSTANT_FORMAT = "%Y-%m-%d %H:%M:%S.%f"

Batches = AsyncGenerator[list[tuple[Any, ...]], None]


class HrisSourceError(HrsyncError):
    """The HRIS refused the query (bad HRSYNC_HRIS_QUERY, missing view, permissions): not transient."""


class HrisSource(Protocol):
    """Runs a `?`-parameter query and yields its rows in batches, in the order the query gives.

    Callers close the generator (`contextlib.aclosing`) so a read given up half-way frees its connection.
    """

    def fetch_batches(self, sql: str, params: Sequence[Any], batch_size: int) -> Batches: ...


BATCH_SIZE = 500  # rows per fetchmany and per upsert transaction


async def read_in_batches(source: HrisSource, query: str, columns: Sequence[str], window: Window,
                          store: Callable[[Sequence[tuple[Any, ...]]], Awaitable[None]], *, key: str | None = None
                          ) -> None:
    """Read `query`'s rows in `window` in keyset batches, `store` each one; a transient error retries the
    read from after the last stored batch (each batch is stored in one transaction).

    A long list of employees is read as several statements (`split_by_employees`), one after the other,
    each in its own keyset order; a retry continues the statement it interrupted.
    """
    for part in split_by_employees(window):
        async for attempt in transient_retrying():
            with attempt:
                sql, args = build_select(query, columns, part, **({"key": key} if key else {}))
                async with aclosing(source.fetch_batches(sql, args, BATCH_SIZE)) as batches:
                    async for batch in batches:
                        await store(batch)
                        last = next((row[0] for row in reversed(batch) if row[0] is not None), None)
                        if last is not None:
                            part = resume_after(part, last)  # a retry continues after this batch


@dataclass(frozen=True)
class OdbcHrisSource:
    """The HRIS through an ODBC connection string (pooled by `shared.database.odbc`, autocommit reads)."""

    dsn: str = field(repr=False)  # may hold a password

    async def fetch_batches(self, sql: str, params: Sequence[Any], batch_size: int) -> Batches:
        # Here, not at the top: pyodbc's wheel needs libodbc.so.2, which only an ODBC HRIS requires.
        try:
            import pyodbc

            from shared.database.odbc import odbc_fetch_batches
        except ImportError as exc:
            raise ConfigError(f"HRSYNC_HRIS_ODBC: the ODBC driver manager cannot be loaded ({exc}); install "
                              "unixODBC (apt-get install unixodbc) and the HRIS's ODBC driver") from exc

        try:
            rows = cast(Batches, odbc_fetch_batches(self.dsn, sql, params, batch_size))  # an async generator
            async with aclosing(rows) as batches:
                async for batch in batches:
                    yield batch
        except pyodbc.Error as exc:
            if is_transient(exc):
                raise  # lost connection, timeout: the stage resumes after the last stored key
            state = str(exc.args[0]) if exc.args else "?"
            detail = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
            raise HrisSourceError(f"HRIS query failed [{state}]: {redact_text(detail)[:500]}") from exc


def _bind_sqlite(value: Any) -> Any:
    # sqlite3's implicit datetime adapters are deprecated: bind the demo's own text form.
    if isinstance(value, datetime):
        return _demo_instant(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


@dataclass(frozen=True)
class SqlAlchemyHrisSource:
    """The HRIS through a SQLAlchemy async URL whose driver takes `?` parameters (aiosqlite).

    The async drivers buffer a statement's result, so this suits the demo's small tables; production
    HRIS reads go through ODBC, which streams (psqlodbc with ``UseDeclareFetch=1``).
    """

    url: str

    async def fetch_batches(self, sql: str, params: Sequence[Any], batch_size: int) -> Batches:
        engine = await engine_for(self.url)
        if engine.dialect.paramstyle != "qmark":
            raise ConfigError(f"HRIS URL {engine.url.render_as_string()}: its driver does not take ? "
                              "parameters; use HRSYNC_HRIS_ODBC")
        async with engine.connect() as conn:
            try:
                result = await conn.exec_driver_sql(sql, tuple(_bind_sqlite(p) for p in params))
            except DBAPIError as exc:
                if is_transient(exc):
                    raise
                raise HrisSourceError(f"HRIS query failed: {redact_text(str(exc.orig))[:500]}") from exc
            while rows := result.fetchmany(batch_size):
                yield [tuple(r) for r in rows]


def demo_hris_path(settings: Settings | None = None) -> Path:
    """The embedded demo HRIS file."""
    return (settings or get_settings()).home / DEMO_FILE


def _sqlite_url(path_or_url: str | Path) -> str:
    text = str(path_or_url)
    return text if "://" in text else f"sqlite+aiosqlite:///{text}"


def hris_source(settings: Settings | None = None) -> HrisSource:
    """The configured HRIS: HRSYNC_HRIS_ODBC, else the demo SQLite file (which must exist)."""
    settings = settings or get_settings()
    if settings.hris_odbc:
        return OdbcHrisSource(settings.hris_odbc)
    path = demo_hris_path(settings)
    if not path.exists():
        raise ConfigError(f"HRSYNC_HRIS_ODBC: not set, and the demo HRIS {path} does not exist "
                          "(run `hrsync demo` or set HRSYNC_HRIS_ODBC)")
    return SqlAlchemyHrisSource(_sqlite_url(path))


def _demo_instant(value: datetime) -> str:
    utc = value.astimezone(UTC) if value.tzinfo else value  # naive values are UTC already
    return utc.replace(tzinfo=None).strftime(DEMO_INSTANT_FORMAT)


async def create_demo_hris(path_or_url: str | Path, employees: list[Mapping[str, Any]],
                           absences: Sequence[Mapping[str, Any]] = ()) -> None:
    """(Re)create the tables `hris_people`/`hris_absences` and the views `hrsync_employees`/`hrsync_absences`.

    `path_or_url` is a SQLite file path or a SQLAlchemy async URL with `?` parameters. Each row maps
    `COLUMNS` (absences: `ABSENCE_COLUMNS`) names to values (missing ones are NULL); dates may be `date`
    or text, `updated_at` a datetime (naive = UTC) or text. Run it through `run_async` like any stage.
    """
    url = _sqlite_url(path_or_url)
    if "://" not in str(path_or_url):
        Path(path_or_url).parent.mkdir(parents=True, exist_ok=True)
    engine = await engine_for(url)
    async with engine.begin() as conn:
        await _demo_view(conn, DEMO_VIEW, DEMO_TABLE, COLUMNS, "employee_no", employees)
        await _demo_view(conn, DEMO_ABSENCES_VIEW, DEMO_ABSENCES_TABLE, ABSENCE_COLUMNS, "absence_id", absences)


async def _demo_view(conn: AsyncConnection, view: str, table: str, columns: Sequence[str], key: str,
                     rows: Sequence[Mapping[str, Any]]) -> None:
    """(Re)create `table` holding `rows` and `view` over it; `key` and `updated_at` are indexed."""
    column_ddl = ", ".join(f"{c} VARCHAR({_DEMO_WIDTHS.get(c, 64)})" for c in columns)
    marks = ", ".join("?" for _ in columns)
    values = [tuple(_bind_sqlite(r.get(c)) for c in columns) for r in rows]
    await conn.exec_driver_sql(f"DROP VIEW IF EXISTS {view}")
    await conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
    await conn.exec_driver_sql(f"CREATE TABLE {table} ({column_ddl})")
    await conn.exec_driver_sql(f"CREATE INDEX ix_{table}_{key} ON {table} ({key})")
    await conn.exec_driver_sql(f"CREATE INDEX ix_{table}_updated_at ON {table} (updated_at)")
    await conn.exec_driver_sql(
        f"CREATE VIEW {view} AS SELECT {', '.join(columns)} FROM {table}"  # noqa: S608 - constants
    )
    if values:
        await conn.exec_driver_sql(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", values  # noqa: S608
        )


_DEMO_WIDTHS = {"full_name": 200, "email": 254, "department": 100, "status": 16,
                "hire_date": 32, "termination_date": 32, "updated_at": 32, "date_from": 32, "date_to": 32}
