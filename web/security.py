"""Sessions, CSRF tokens and login throttling of the console (DESIGN §10).

A session is a cookie signed with `HRSYNC_WEB_SECRET` (itsdangerous, timed): `{"u": user name or null,
"c": CSRF token}`. Every visitor gets one (anonymous ones too, so the login form carries a token); it is
`HttpOnly`, `SameSite=Strict`, `Secure` on https. A state-changing request (any method but GET/HEAD/OPTIONS)
must send the session's token as the form field `csrf_token` or the header `X-CSRF-Token`.
"""

from __future__ import annotations

import hmac
import math
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE = "hrsync_session"
SESSION_SECONDS = 12 * 3600
CSRF_FIELD, CSRF_HEADER = "csrf_token", "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class Session:
    """What the cookie holds; `changed` when it must be sent again."""

    user: str | None
    csrf: str
    changed: bool = False

    @classmethod
    def fresh(cls, user: str | None = None) -> Session:
        """A new session with a new CSRF token (a login gets one too: no token survives a sign-in)."""
        return cls(user, secrets.token_urlsafe(24), changed=True)

    def token_matches(self, sent: str | None) -> bool:
        return bool(sent) and hmac.compare_digest(self.csrf.encode(), str(sent).encode())


class SessionCodec:
    """Signs and reads session cookies with one secret."""

    def __init__(self, secret: str) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="hrsync-web-session")

    def dumps(self, session: Session) -> str:
        return self._serializer.dumps({"u": session.user, "c": session.csrf})

    def loads(self, cookie: str | None) -> Session | None:
        """The session in a valid, unexpired cookie, else None."""
        if not cookie:
            return None
        try:
            data: Any = self._serializer.loads(cookie, max_age=SESSION_SECONDS)
        except BadSignature:  # also SignatureExpired
            return None
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            return None
        user = data.get("u")
        return Session(user if isinstance(user, str) else None, data["c"])


@dataclass
class _Failures:
    count: int = 0
    blocked_until: float = 0.0
    last: float = field(default_factory=time.monotonic)


class LoginThrottle:
    """Slows password guessing: after `free` failures for one name or one client address, each further
    attempt is refused until a wait that doubles per failure (1 s, 2 s, 4 s … at most `cap`); a success
    clears the name's count. Failures are forgotten after `forget` quiet seconds. In memory, per process."""

    def __init__(self, free: int = 5, cap: float = 300.0, forget: float = 900.0) -> None:
        self.free, self.cap, self.forget = free, cap, forget
        self._by_key: dict[str, _Failures] = {}
        self._lock = threading.Lock()

    def wait_seconds(self, *keys: str) -> int:
        """Whole seconds until these keys may try again (0: now)."""
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            waits = [f.blocked_until - now for k in keys if (f := self._by_key.get(k))]
        return max(0, math.ceil(max(waits, default=0.0)))

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                entry = self._by_key.setdefault(key, _Failures())
                entry.count += 1
                entry.last = now
                if entry.count >= self.free:
                    entry.blocked_until = now + min(self.cap, 2.0 ** (entry.count - self.free))

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._by_key.pop(key, None)

    def _expire(self, now: float) -> None:
        for key in [k for k, f in self._by_key.items() if now - f.last > self.forget and now > f.blocked_until]:
            del self._by_key[key]
