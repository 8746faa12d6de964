"""The console's ASGI app: `create_app(users, secret)` → FastAPI with the pages, `/api/` and `/openapi.json`.

Request flow: the session middleware reads the signed cookie (a fresh anonymous session when there is
none) and adds the security headers; the app-wide `csrf_guard` refuses a state-changing request without
the session's token (403); `signed_in` / `operator` dependencies send anonymous visitors to the login page
(401 on `/api/`) and viewers' actions away (403).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader

from operations.corrections import AmbiguousTime, PunchExists
from shared.config.errors import ConfigError, HrsyncError
from shared.config.settings import get_settings
from shared.records.queries import UnknownExecution
from web import api, month_end, pages
from web.auth import Console, LoginRequired, console_of, csrf_guard, session_of, signed_in
from web.security import COOKIE, SESSION_SECONDS, Session, SessionCodec
from web.users import User, UserStore

HERE = Path(__file__).parent
# Scripts and styles from this origin only; inline SVG is markup, not script.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin", "Cache-Control": "no-store"}


def templates() -> Environment:
    """The Jinja2 environment: autoescape on for every template, whatever its name."""
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True, trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["when"] = _when
    return env


def _when(value: Any) -> str:
    if value is None:
        return "-"
    return str(value.astimezone(get_settings().zone).strftime("%Y-%m-%d %H:%M:%S"))


def create_app(users: UserStore, secret: str | None = None, *, secure_cookies: bool = False) -> FastAPI:
    """The console app for these users; `secret` signs the cookies (a random one when None);
    `secure_cookies` when browsers reach it over https (TLS of its own or a proxy's)."""
    app = FastAPI(title="hrsync console", version="1", docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(csrf_guard)],
                  description="The operator console's JSON: the shapes of the CLI's `--json`. Sign in at "
                              "/login; state-changing requests need the X-CSRF-Token header.")
    app.state.console = Console(users, SessionCodec(secret or secrets.token_urlsafe(32)),
                                secure_cookies=secure_cookies)
    app.state.templates = templates()

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(user: Annotated[User, Depends(signed_in)]) -> dict[str, Any]:
        """The OpenAPI document, for signed-in users only (it maps every action)."""
        return app.openapi()

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(pages.router)
    app.include_router(api.router)
    app.include_router(month_end.pages)  # month end: exceptions, overtime, periods, exports
    app.include_router(month_end.api)
    app.middleware("http")(_sessions)
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(UnknownExecution, _hrsync_error(404))
    app.add_exception_handler(PunchExists, _punch_exists)
    app.add_exception_handler(AmbiguousTime, _ambiguous_time)
    app.add_exception_handler(ConfigError, _hrsync_error(422))  # bad input, named (the CLI's exit 2)
    app.add_exception_handler(HrsyncError, _hrsync_error(409))  # refused in this state (the CLI's exit 1)
    app.add_exception_handler(HTTPException, _http_error)
    return app


async def _sessions(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    console = console_of(request)
    session = console.codec.loads(request.cookies.get(COOKIE)) or Session.fresh()
    if session.user is not None and console.user_of(session) is None:
        session = Session.fresh()  # logged out, replaced, removed or from before a restart: anonymous now
    request.state.session = session
    response = await call_next(request)
    session = request.state.session  # sign-in and sign-out put a new one there
    if session.changed:
        response.set_cookie(COOKIE, console.codec.dumps(session), max_age=SESSION_SECONDS, httponly=True,
                            samesite="strict", secure=console.secure_cookies or request.url.scheme == "https",
                            path="/")
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def is_api(request: Request) -> bool:
    """A request for JSON (`/api/`, the OpenAPI document): errors as JSON, 401 instead of the login page."""
    return request.url.path.startswith("/api/") or request.url.path == "/openapi.json"


async def _login_required(request: Request, exc: Exception) -> Response:
    if is_api(request):
        return JSONResponse({"detail": "sign in first (POST /login)"}, status_code=401)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def error_response(request: Request, status: int, message: str) -> Response:
    """The error as JSON on `/api/`, as a page elsewhere (the message is escaped like any data)."""
    if is_api(request):
        return JSONResponse({"detail": message}, status_code=status)
    page = request.app.state.templates.get_template("error.html").render(
        status=status, message=message, user=console_of(request).user_of(session_of(request)),
        csrf=session_of(request).csrf)
    return HTMLResponse(page, status_code=status)


def _hrsync_error(status: int) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def handle(request: Request, exc: Exception) -> Response:
        return error_response(request, status, str(exc))

    return handle


async def _punch_exists(request: Request, exc: Exception) -> Response:
    """The same punch twice: 409 with the stored punch (in the JSON; named in the page's message)."""
    assert isinstance(exc, PunchExists)
    if is_api(request):
        return JSONResponse({"detail": str(exc), "punch": exc.punch}, status_code=409)
    return error_response(request, 409, str(exc))


async def _ambiguous_time(request: Request, exc: Exception) -> Response:
    """A repeated wall-clock time: 422 with both instants to choose from."""
    assert isinstance(exc, AmbiguousTime)
    if is_api(request):
        return JSONResponse({"detail": str(exc), "choices": [c.isoformat() for c in exc.choices]}, status_code=422)
    return error_response(request, 422, str(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    response = error_response(request, exc.status_code, str(exc.detail))
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response
