"""Who is asking: the console's state, the session of a request, the signed-in user and the CSRF guard.

`signed_in` sends anonymous visitors to the login page (401 on `/api/`): a session counts only while the
console holds its id (not logged out, not restarted) and its user is in the users file now with the same
credential; `operator` refuses viewers (403) by the role the users file gives now; `csrf_guard`
(app-wide) refuses a state-changing request without the session's token (403).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Depends, HTTPException, Request

from web.security import (
    CSRF_FIELD,
    CSRF_HEADER,
    SAFE_METHODS,
    LoginThrottle,
    Session,
    SessionCodec,
    SessionRegistry,
)
from web.users import User, UserStore


@dataclass
class Console:
    """What one console process serves with: its users, its cookie codec, its sessions, its login throttle;
    `secure_cookies` when it is reached over TLS (its own or a proxy's)."""

    users: UserStore
    codec: SessionCodec
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    sessions: SessionRegistry = field(default_factory=SessionRegistry)
    secure_cookies: bool = False

    def user_of(self, session: Session) -> User | None:
        """The session's user while the session is valid (see the module's docstring), else None."""
        if session.user is None or not self.sessions.is_open(session.sid):
            return None
        user = self.users.get(session.user)
        return user if user is not None and user.credential == session.credential else None


class LoginRequired(Exception):
    """No signed-in user: the login page (pages) or 401 (`/api/`)."""


def session_of(request: Request) -> Session:
    session: Session = request.state.session
    return session


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def signed_in(request: Request) -> User:
    """The signed-in user (a dependency of every page but the login)."""
    user = console_of(request).user_of(session_of(request))
    if user is None:
        raise LoginRequired
    return user


def operator(user: User = Depends(signed_in)) -> User:  # noqa: B008 - FastAPI's dependency idiom
    """The signed-in user, who must be an operator (403 for a viewer)."""
    if not user.can_act:
        raise HTTPException(403, "viewers can read only: this needs the operator role")
    return user


async def csrf_guard(request: Request) -> None:
    """A state-changing request must carry the session's CSRF token (form field or header), else 403."""
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not session_of(request).token_matches(sent):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")
