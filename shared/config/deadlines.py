"""Bounded waits on the source databases (HRIS, BioStar): a hung server or network fails the stage.

Every round trip to a source (connect, query, next batch of rows) runs inside `source_call(name)`: if no
answer comes within HRSYNC_SOURCE_TIMEOUT seconds the await is cancelled and `SourceTimeout` raised. The
caller must then throw the connection away without talking to it again (a polite close would wait on the
same silent server): `shared.database.odbc` abandons it, the BioStar reader invalidates it.

`SourceTimeout` is a `TimeoutError`, hence transient: the stage task retries it with backoff. The quick
in-stage retries of `shared.config.retry` skip it (five more waits of the full timeout would not be quick).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from shared.config.errors import HrsyncError
from shared.config.settings import get_settings


class SourceTimeout(HrsyncError, TimeoutError):
    """A source database did not answer within HRSYNC_SOURCE_TIMEOUT."""


@asynccontextmanager
async def source_call(source: str) -> AsyncIterator[None]:
    """Bound the awaits inside to HRSYNC_SOURCE_TIMEOUT; `source` names the database in the error."""
    seconds = get_settings().source_timeout
    deadline = asyncio.timeout(seconds)
    try:
        async with deadline:
            yield
    except TimeoutError:
        if not deadline.expired():
            raise  # the driver's own timeout, not ours
        raise SourceTimeout(f"{source} did not answer within {seconds:g} s (HRSYNC_SOURCE_TIMEOUT)") from None
