"""Which instant a punch time names (`local_instant`): wall-clock times in a zone's DST gap are refused naming
the gap, repeated ones need their offset, an explicit offset is taken as it is. Expectations worked out by
hand from the zones' rules (EU: last Sunday of March 01:00 UTC forward, last Sunday of October 01:00 UTC
back; US: second Sunday of March 02:00 local forward, first Sunday of November 02:00 local back)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from operations.corrections import AmbiguousTime, local_instant
from shared.config.errors import ConfigError

BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")


@pytest.mark.parametrize(("zone", "text", "utc"), [
    (BERLIN, "2026-03-29T01:59", "2026-03-29T00:59:00+00:00"),  # before the jump: +01:00
    (BERLIN, "2026-03-29T03:00", "2026-03-29T01:00:00+00:00"),  # after it: +02:00
    (BERLIN, "2026-10-25T03:00", "2026-10-25T02:00:00+00:00"),  # after the repeated hour: +01:00
    (BERLIN, "2026-03-29T02:30+01:00", "2026-03-29T01:30:00+00:00"),  # an offset names the instant itself
    (BERLIN, "2026-10-25T02:30+02:00", "2026-10-25T00:30:00+00:00"),
    (NEW_YORK, "2026-06-01T09:00", "2026-06-01T13:00:00+00:00"),  # summer: -04:00
])
def test_times_that_name_one_instant(zone: ZoneInfo, text: str, utc: str) -> None:
    """A time that exists once, or one with its offset, is that instant."""
    assert local_instant(dt.datetime.fromisoformat(text), zone).astimezone(dt.UTC).isoformat() == utc


@pytest.mark.parametrize(("zone", "text", "gap"), [
    (BERLIN, "2026-03-29T02:00", "02:00-03:00"),
    (BERLIN, "2026-03-29T02:59", "02:00-03:00"),
    (NEW_YORK, "2026-03-08T02:30", "02:00-03:00"),
])
def test_times_in_a_gap_are_refused_naming_it(zone: ZoneInfo, text: str, gap: str) -> None:
    """A wall-clock time the clocks skip does not exist: the error names the gap."""
    with pytest.raises(ConfigError, match=f"DST gap {gap}"):
        local_instant(dt.datetime.fromisoformat(text), zone)


@pytest.mark.parametrize(("zone", "text", "first", "second"), [
    (BERLIN, "2026-10-25T02:30", "2026-10-25T02:30:00+02:00", "2026-10-25T02:30:00+01:00"),
    (NEW_YORK, "2026-11-01T01:15", "2026-11-01T01:15:00-04:00", "2026-11-01T01:15:00-05:00"),
])
def test_repeated_times_offer_both_instants(zone: ZoneInfo, text: str, first: str, second: str) -> None:
    """A wall-clock time the clocks pass twice is refused with both instants, the earlier first."""
    with pytest.raises(AmbiguousTime) as refused:
        local_instant(dt.datetime.fromisoformat(text), zone)
    assert [c.isoformat() for c in refused.value.choices] == [first, second]
