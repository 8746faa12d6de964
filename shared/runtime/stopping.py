"""A stop request a signal handler can make safely: setting it takes no lock and logs nothing.

A handler runs between two bytecodes of the main thread, which may be holding any lock at that moment
(a log writer's, a `threading.Event`'s condition): a handler that takes a lock can deadlock the process.
So handlers only call `StopFlag.set`, and the code that sees the flag logs and stops.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterable
from typing import Any

POLL_SECONDS = 0.1  # how soon a waiter sees the flag


class StopFlag:
    """A lock-free `threading.Event` look-alike (`set`, `is_set`, `wait`) whose `set` is signal-safe."""

    def __init__(self) -> None:
        self._set = False
        self.signal_name: str | None = None  # the signal that set it, if one did
        # Waits sleep on an event nobody sets (a handler never touches it, so it cannot deadlock on it):
        # `time.sleep` failed with EINVAL under libfaketime's clock jumps, a timed lock wait does not.
        self._nap = threading.Event()

    def set(self) -> None:
        self._set = True  # one attribute store: atomic, takes no lock

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float | None = None) -> bool:
        """Sleep until set or `timeout` seconds went by (polling); whether it is set."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._set:
            left = POLL_SECONDS if deadline is None else min(POLL_SECONDS, deadline - time.monotonic())
            if left <= 0:
                break
            self._nap.wait(left)
        return self._set

    def on_signal(self, signum: int, _: Any = None) -> None:
        """A signal handler: remember the signal and set the flag, nothing else."""
        self.signal_name = signal.Signals(signum).name
        self._set = True

    def install(self, signals: Iterable[int] = (signal.SIGTERM, signal.SIGINT)) -> StopFlag:
        """Make `on_signal` the handler of `signals` (main thread only); returns self."""
        for signum in signals:
            signal.signal(signum, self.on_signal)
        return self
