"""A period: one calendar month of attendance dates, named `YYYY-MM`."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date

from shared.config.errors import ConfigError

_PERIOD = re.compile(r"(\d{4})-(\d{2})")


@dataclass(frozen=True, order=True)
class Period:
    """A calendar month; `str(period)` is its `YYYY-MM` name."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Period:
        """`YYYY-MM` in years 1900-2100; anything else is bad input naming the period."""
        match = _PERIOD.fullmatch(text)
        if match is None or not 1900 <= int(match[1]) <= 2100 or not 1 <= int(match[2]) <= 12:
            raise ConfigError(f"period: {text!r} is not a month YYYY-MM in years 1900-2100")
        return cls(int(match[1]), int(match[2]))

    @classmethod
    def of(cls, day: date) -> Period:
        """The month `day` belongs to."""
        return cls(day.year, day.month)

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        return date(self.year, self.month, calendar.monthrange(self.year, self.month)[1])

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and (day.year, day.month) == (self.year, self.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"
