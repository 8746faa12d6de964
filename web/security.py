"""Sessions, CSRF tokens and login throttling of the console (DESIGN §10).

A session is a cookie signed with `HRSYNC_WEB_SECRET` (itsdangerous, timed): `{"u": user name or null,
"s": session id, "g": the credential fingerprint it was made with, "c": CSRF token}`. Every visitor gets
one (anonymous ones too, so the login form carries a token); it is `HttpOnly`, `SameSite=Strict`, and
`Secure` when the console is served over TLS or behind a TLS proxy. A signed-in session is valid only while
its id is in the console's `SessionRegistry` (logging out removes it; a restart forgets them all) and its
fingerprint is the user's current one (a new password or a removed user ends it). A state-changing request
(any method but GET/HEAD/OPTIONS) must send the session's token as the form field `csrf_token` or the
header `X-CSRF-Token`.
"""

from __future__ import annotations

import hmac
import math
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE = "hrsync_session"
SESSION_SECONDS = 12 * 3600
CSRF_FIELD, CSRF_HEADER = "csrf_token", "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MIN_SECRET_BYTES = 32
SWEEP_AT = 10_000  # throttle keys kept before a sweep of expired ones


@dataclass
class Session:
    """What the cookie holds; `changed` when it must be sent again."""

    user: str | None
    csrf: str
    sid: str = ""
    credential: str = ""
    changed: bool = False

    @classmethod
    def fresh(cls, user: str | None = None, credential: str = "") -> Session:
        """A new session with a new id and CSRF token (a sign-in gets both: nothing survives it)."""
        return cls(user, secrets.token_urlsafe(24), secrets.token_urlsafe(18), credential, changed=True)

    def token_matches(self, sent: str | None) -> bool:
        return bool(sent) and hmac.compare_digest(self.csrf.encode(), str(sent).encode())


class SessionCodec:
    """Signs and reads session cookies with one secret."""

    def __init__(self, secret: str) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="hrsync-web-session")

    def dumps(self, session: Session) -> str:
        return self._serializer.dumps({"u": session.user, "c": session.csrf, "s": session.sid,
                                       "g": session.credential})

    def loads(self, cookie: str | None) -> Session | None:
        """The session in a valid, unexpired cookie, else None."""
        if not cookie:
            return None
        try:
            data: Any = self._serializer.loads(cookie, max_age=SESSION_SECONDS)
        except BadSignature:  # also SignatureExpired
            return None
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in "csg"):
            return None
        user = data.get("u")
        return Session(user if isinstance(user, str) else None, data["c"], data["s"], data["g"])


class SessionRegistry:
    """The signed-in sessions this console process issued, by id, until they expire or are ended."""

    def __init__(self, lifetime: float = SESSION_SECONDS) -> None:
        self.lifetime = lifetime
        self._expires: dict[str, float] = {}
        self._lock = threading.Lock()

    def open(self, sid: str) -> None:
        now = time.monotonic()
        with self._lock:
            for old in [s for s, until in self._expires.items() if until <= now]:
                del self._expires[old]
            self._expires[sid] = now + self.lifetime

    def is_open(self, sid: str) -> bool:
        with self._lock:
            return self._expires.get(sid, 0.0) > time.monotonic()

    def close(self, sid: str) -> None:
        with self._lock:
            self._expires.pop(sid, None)


@dataclass(frozen=True)
class Attempt:
    """A sign-in attempt already counted as a failure under `keys` at `at` (`LoginThrottle.begin`)."""

    keys: tuple[str, ...]
    at: float


class TooManyAttempts(Exception):
    """The attempt is refused before any password is checked; `retry_after` whole seconds ≥ 1."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed sign-ins: try again in {retry_after} s")
        self.retry_after = retry_after


class LoginThrottle:
    """At most `limits[kind]` failed sign-ins per key of that kind (`name:…`, `client:…`) within `window`
    seconds. An attempt is counted as a failure *before* its password is checked (so parallel requests
    cannot slip past the count while the hash runs) and taken back when it succeeds. In memory, per process."""

    def __init__(self, limits: dict[str, int] | None = None, window: float = 300.0) -> None:
        self.limits = limits or {"name": 5, "client": 20}
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def begin(self, *keys: str) -> Attempt:
        """Count an attempt under `keys`, or raise `TooManyAttempts` if one of them is at its limit."""
        now = time.monotonic()
        with self._lock:
            if len(self._failures) > SWEEP_AT:  # many names tried once each: drop what left the window
                for key in list(self._failures):
                    self._recent(key, now)
            waits = []
            for key in keys:
                times = self._recent(key, now)
                if len(times) >= self.limits[key.partition(":")[0]]:
                    waits.append(times[-self.limits[key.partition(":")[0]]] + self.window - now)
            if waits:
                raise TooManyAttempts(max(1, math.ceil(max(waits))))
            for key in keys:
                self._failures.setdefault(key, deque()).append(now)
        return Attempt(keys, now)

    def succeeded(self, attempt: Attempt) -> None:
        """The password was right: this attempt is not a failure, and the name's earlier failures are forgotten."""
        with self._lock:
            for key in attempt.keys:
                times = self._failures.get(key)
                if key.startswith("name:"):
                    self._failures.pop(key, None)
                elif times and attempt.at in times:
                    times.remove(attempt.at)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
        return times
