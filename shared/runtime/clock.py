"""The time: `utcnow()`, the one aware-UTC "now" of the records and the stages (times are stored as UTC)."""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    """Now, as an aware UTC datetime."""
    return dt.datetime.now(dt.UTC)
