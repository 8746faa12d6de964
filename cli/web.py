"""`hrsync web [--host 127.0.0.1] [--port 8080]` and `hrsync web adduser NAME --role viewer|operator` (DESIGN §10).

Beyond loopback the console needs HRSYNC_WEB_USERS_FILE and HRSYNC_WEB_SECRET (else exit 2, one line);
on loopback without a users file it makes a one-time operator whose password is printed once.
"""

from __future__ import annotations

import getpass
import ipaddress
import signal
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from shared.config.errors import ConfigError
from shared.config.settings import get_settings
from shared.runtime.stopping import StopFlag

web_app = typer.Typer(help="The operator console (a web app).")
ONE_TIME_USER = "operator"


def is_loopback(host: str) -> bool:
    """Whether `host` only listens on this machine (localhost, 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve anywhere


def serve(host: str, port: int, out: Console, one_time_note: str = "", stop_flag: StopFlag | None = None) -> None:
    """Check the listening rules, build the app and run it with uvicorn until interrupted."""
    import uvicorn

    from web.app import create_app
    from web.users import UserStore

    settings = get_settings()
    secret = settings.web_secret.get_secret_value() if settings.web_secret else None
    if not is_loopback(host):
        if settings.web_users_file is None:
            raise ConfigError(f"--host {host}: beyond loopback the console needs HRSYNC_WEB_USERS_FILE")
        if not secret:
            raise ConfigError(f"--host {host}: beyond loopback the console needs HRSYNC_WEB_SECRET")
    if settings.web_users_file is not None:
        users = UserStore.load(settings.web_users_file)
    else:
        users, password = UserStore.one_time(ONE_TIME_USER)
        out.print(f"no HRSYNC_WEB_USERS_FILE: sign in as [bold]{ONE_TIME_USER}[/] with the one-time password "
                  f"[bold]{password}[/] (valid while this process runs){one_time_note}", highlight=False)
    shown = f"[{host}]" if ":" in host else host
    out.print(f"console on http://{shown}:{port}/", highlight=False)
    server = uvicorn.Server(uvicorn.Config(create_app(users, secret), host=host, port=port, log_level="warning"))
    if stop_flag is not None and stop_flag.is_set():
        return  # stopped during start-up
    # Until uvicorn installs its handlers, and again when it re-raises the signal after shutting down, ours
    # runs: it sets flags only (exit 0, never the default action's death by SIGTERM).
    stop_flag = stop_flag or StopFlag()
    previous = {sig: signal.signal(sig, lambda signum, frame: _stop_server(server, stop_flag, signum))
                for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop_server(server: Any, stop_flag: StopFlag, signum: int) -> None:
    """A signal handler: flags only (see `shared.runtime.stopping`)."""
    stop_flag.on_signal(signum)
    server.should_exit = True


@web_app.callback(invoke_without_command=True)
def web(ctx: typer.Context,
        host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", min=1, max=65535, help="port to listen on")] = 8080) -> None:
    """Serve the operator console (loopback only unless --host says otherwise)."""
    if ctx.invoked_subcommand is None:
        stop_flag = StopFlag().install()  # from the first moment: a SIGTERM during start-up still exits 0
        serve(host, port, Console(), stop_flag=stop_flag)


@web_app.command("adduser")
def adduser(name: Annotated[str, typer.Argument(metavar="NAME", help="the user's sign-in name")],
            role: Annotated[str, typer.Option("--role", help="viewer (reads) or operator (acts)")] = "viewer",
            password_stdin: Annotated[bool, typer.Option(
                "--password-stdin", help="read the password from the first line of stdin")] = False) -> None:
    """Add a console user to HRSYNC_WEB_USERS_FILE (or replace their password and role)."""
    from web.users import ROLES, add_user

    path = get_settings().web_users_file
    if path is None:
        raise ConfigError("HRSYNC_WEB_USERS_FILE: not set (where should the user be written?)")
    if role not in ROLES:  # before the prompt: a typo costs no password
        raise ConfigError(f"--role: {role!r} is not one of {', '.join(ROLES)}")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise ConfigError("password: the two entries differ")
    new = add_user(path, name, password, role)
    Console().print(f"{'added' if new else 'updated'} {name} ({role}) in {path}", highlight=False)
