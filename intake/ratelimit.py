"""A token bucket per source (DESIGN §12): `rate_per_second` tokens a second, burst equal to the rate."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    """Holds at most `rate` tokens and gains `rate` a second; a request of n events takes n tokens."""

    rate: float
    tokens: float = field(init=False)
    updated: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.tokens = self.rate

    def take(self, count: int, now: float) -> int:
        """Take `count` tokens at `now` (monotonic seconds) and return 0, or take nothing and return the whole
        seconds (≥ 1) until there will be enough. `count` above the rate can never pass: see `fits`."""
        if self.updated is not None:
            self.tokens = min(self.rate, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if count <= self.tokens:
            self.tokens -= count
            return 0
        return max(1, math.ceil((count - self.tokens) / self.rate))

    def fits(self, count: int) -> bool:
        """Whether a request of `count` events can ever pass (the burst is the rate)."""
        return count <= self.rate
