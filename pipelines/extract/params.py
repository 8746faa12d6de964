"""The extract stage's inputs: `ExtractParams` and `KeyRange` shards, small and JSON-able.

Fan-out messages carry these (ids and ranges, never rows: DESIGN §8), and `execution.params` keeps
them, so a replay reruns a shard with exactly the original inputs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from shared.config.errors import ConfigError

# A key as the HRIS returns it: text, or an integer when the HRIS column is numeric. Ranges keep the
# source's own type so the comparison happens in the source's order and type, not Python's.
Key = str | int


def _check_key(value: Any, name: str) -> Key | None:
    if value is None or (isinstance(value, str | int) and not isinstance(value, bool)):
        return value
    raise ConfigError(f"{name}: expected a string, an integer or null, got {type(value).__name__}")


@dataclass(frozen=True)
class KeyRange:
    """A contiguous range of `employee_no`: `lo` exclusive, `hi` inclusive, None = open end."""

    lo: Key | None = None
    hi: Key | None = None

    def to_json(self) -> dict[str, Any]:
        return {"lo": self.lo, "hi": self.hi}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KeyRange:
        if not isinstance(data, dict):
            raise ConfigError("key_range: expected an object with lo and hi")
        return cls(_check_key(data.get("lo"), "key_range.lo"), _check_key(data.get("hi"), "key_range.hi"))

    def __str__(self) -> str:
        lo = "-inf" if self.lo is None else repr(self.lo)
        hi = "+inf" if self.hi is None else repr(self.hi)
        return f"({lo}, {hi}]"


@dataclass(frozen=True)
class ExtractParams:
    """What to extract.

    - `full`: read every row, ignoring the watermark (a full resync).
    - `employees`: only these `employee_no` (the `hrsync.employee.changed` event); the watermark is
      ignored too, and such a partial read never advances it. An empty list extracts nothing.
    - `source`: the watermark's name in `sync_watermarks`.
    - `since`: the lower bound on `updated_at` (aware UTC), pinned once per execution by
      `pin_extract_window` so the planner and every shard (and a later replay) read the same window;
      None = read the stored watermark minus the overlap when the stage runs.
    - `until`: when the window was pinned; the rows read are those the HRIS had by then (and maybe a few
      later ones), so the watermark committed after the read never moves past it — a row dated in the
      future cannot push the mark ahead of rows still to come.
    """

    full: bool = False
    employees: list[str] | None = None
    source: str = "hris"
    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ConfigError(f"{name}: must be an aware datetime (UTC)")

    @property
    def advances_watermark(self) -> bool:
        """Whether this read covers every changed row, so its newest `updated_at` may become the mark."""
        return self.employees is None

    def with_since(self, since: datetime | None) -> ExtractParams:
        return replace(self, since=since)

    def to_json(self) -> dict[str, Any]:
        return {
            "full": self.full,
            "employees": None if self.employees is None else list(self.employees),
            "source": self.source,
            "since": _iso(self.since),
            "until": _iso(self.until),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExtractParams:
        if not isinstance(data, dict):
            raise ConfigError("params: expected an object")
        full = data.get("full", False)
        if not isinstance(full, bool):
            raise ConfigError("full: expected true or false")
        employees = data.get("employees")
        if employees is not None and (
            not isinstance(employees, list) or not all(isinstance(e, str) for e in employees)
        ):
            raise ConfigError("employees: expected a list of employee numbers (strings) or null")
        source = data.get("source", "hris")
        if not isinstance(source, str) or not 0 < len(source) <= 64:
            raise ConfigError("source: expected a name of 1 to 64 characters")
        return cls(full=full, employees=employees, source=source, since=_instant(data, "since"),
                   until=_instant(data, "until"))


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _instant(data: dict[str, Any], name: str) -> datetime | None:
    text = data.get(name)
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(str(text))
    except ValueError:
        raise ConfigError(f"{name}: not an ISO datetime: {text!r}") from None
    if value.tzinfo is None:
        raise ConfigError(f"{name}: needs a UTC offset")
    return value


ALL_KEYS = KeyRange()  # the whole key space


def cut_ranges(keys: Sequence[Key], max_shards: int, target_shard_size: int) -> list[KeyRange]:
    """Cut keys (in the source's order) into at most `max_shards` contiguous ranges covering all keys.

    Each range holds about `target_shard_size` keys, more when `max_shards` would be exceeded. The first
    range is open below and the last open above, so together they cover the whole key space: rows that
    appear after planning are read too. No keys → one open range.
    """
    if max_shards < 1 or target_shard_size < 1:
        raise ValueError("max_shards and target_shard_size must be at least 1")
    distinct = [k for i, k in enumerate(keys) if i == 0 or k != keys[i - 1]]
    per_shard = max(target_shard_size, math.ceil(len(distinct) / max_shards))
    cuts = distinct[per_shard - 1 : len(distinct) - 1 : per_shard]  # last key of each shard but the last
    bounds: list[Key | None] = [None, *cuts, None]
    return [KeyRange(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]


REJECTED_SHOWN = 100  # rejected rows listed in a read's output; the count covers all


@dataclass
class ReadTally:
    """What one read of the HRIS did (a key range of employees, or the absences): rows read, inserted,
    updated, unchanged, rejected (as JSON), recomputes marked, and the newest `updated_at` seen."""

    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    marked: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    max_updated_at: datetime | None = None

    def count_batch(self, read: int, valid: int, changed: int, inserted: int, rejected: list[dict[str, Any]],
                    times: list[datetime]) -> None:
        """Add one batch: `read` rows, `valid` of them kept, `changed` written (`inserted` new)."""
        self.read += read
        self.inserted += inserted
        self.updated += changed - inserted
        self.unchanged += valid - changed
        self.rejected.extend(rejected)
        if times:
            self.max_updated_at = max([*times, *([self.max_updated_at] if self.max_updated_at else [])])

    def output(self, params: ExtractParams, since: datetime | None) -> dict[str, Any]:
        """The counts of a read's stage output (`max_updated_at` feeds `next_watermark`)."""
        return {
            "since": since.isoformat() if since else None,
            "read": self.read,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected_count": len(self.rejected),
            "rejected": self.rejected[:REJECTED_SHOWN],
            "max_updated_at": self.max_updated_at.isoformat() if self.max_updated_at else None,
            "advances_watermark": params.advances_watermark,
        }
