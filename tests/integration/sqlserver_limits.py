"""SQL Server's parameter limit on a real ODBC connection: aioodbc's cursor over psqlodbc (PostgreSQL) whose
`execute` refuses a statement of more than 2,100 parameters the way SQL Server does (error 8003, SQLSTATE
42000, raised by the driver as `pyodbc.ProgrammingError`), and otherwise runs it on the real driver.

`enforce()` patches aioodbc's `Cursor.execute` in this process and returns the list every statement it
sees is appended to (`Statement`); `SITECUSTOMIZE` is a `sitecustomize.py` that enforces it in a
subprocess (a worker) when its folder is first on the PYTHONPATH.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

SQLSERVER_MAX_PARAMETERS = 2100
SQLSERVER_TOO_MANY = (
    "[42000] [Microsoft][ODBC Driver 18 for SQL Server][SQL Server]The incoming request has too many "
    "parameters. The server supports a maximum of 2100 parameters. Reduce the number of parameters and "
    "resend the request. (8003) (SQLExecDirectW)"
)

SITECUSTOMIZE = "import tests.integration.sqlserver_limits as limits\nlimits.enforce()\n"


@dataclass(frozen=True)
class Statement:
    """One statement sent to the HRIS: its SQL and its parameters."""

    sql: str
    params: tuple[Any, ...]


Execute = Callable[..., Coroutine[Any, Any, Any]]
_seen: list[Statement] = []


def limited(execute: Execute, seen: list[Statement]) -> Execute:
    """`execute` (aioodbc's `Cursor.execute`) refusing more than 2,100 parameters, recording into `seen`."""
    import pyodbc

    async def execute_like_sql_server(self: Any, sql: str, *params: Any) -> Any:
        seen.append(Statement(sql, params))
        if len(params) > SQLSERVER_MAX_PARAMETERS:
            raise pyodbc.ProgrammingError("42000", SQLSERVER_TOO_MANY)
        return await execute(self, sql, *params)

    return execute_like_sql_server


def enforce() -> list[Statement]:
    """Enforce the limit on every aioodbc cursor of this process (once); the statements seen."""
    from aioodbc.cursor import Cursor

    if not getattr(Cursor.execute, "sqlserver_limit", False):
        patched = limited(Cursor.execute, _seen)
        patched.sqlserver_limit = True  # type: ignore[attr-defined]
        Cursor.execute = patched  # type: ignore[method-assign]
    return _seen
