"""`hrsync web [--host 127.0.0.1] [--port 8080]` and `hrsync web adduser|passwd|deluser NAME` (DESIGN §10).

Beyond loopback the console needs HRSYNC_WEB_USERS_FILE, a HRSYNC_WEB_SECRET of at least 32 bytes, and TLS
(`--certfile`/`--keyfile`) or `--behind-proxy` (else exit 2, one line naming what is missing); cookies are
then `Secure`. `X-Forwarded-For` is believed only from `--forwarded-allow-ips`. On loopback without a
users file it makes a one-time operator whose password is printed once.
"""

from __future__ import annotations

import getpass
import ipaddress
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
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


@dataclass(frozen=True)
class Listening:
    """How the console is reached: TLS of its own (`certfile`/`keyfile`), a TLS proxy in front
    (`behind_proxy`), and the addresses whose `X-Forwarded-For` is believed."""

    certfile: Path | None = None
    keyfile: Path | None = None
    behind_proxy: bool = False
    forwarded_allow_ips: str | None = None

    @property
    def tls(self) -> bool:
        return self.certfile is not None

    def uvicorn_options(self) -> dict[str, Any]:
        """uvicorn's proxy and TLS options: proxy headers only from the given addresses (uvicorn alone
        would believe them from loopback, letting any local client pick its own throttle key)."""
        return {"proxy_headers": bool(self.forwarded_allow_ips), "forwarded_allow_ips": self.forwarded_allow_ips or "",
                "ssl_certfile": str(self.certfile) if self.certfile else None,
                "ssl_keyfile": str(self.keyfile) if self.keyfile else None}


def check_listening(host: str, listening: Listening, users_file: Path | None, secret: str | None) -> None:
    """Refuse (ConfigError naming what is missing) a console that would be reachable from elsewhere
    without users, a strong secret and TLS (its own or a proxy's)."""
    if (listening.certfile is None) != (listening.keyfile is None):
        raise ConfigError("--certfile/--keyfile: give both (TLS needs the certificate and its key)")
    if is_loopback(host):
        return
    if users_file is None:
        raise ConfigError(f"--host {host}: beyond loopback the console needs HRSYNC_WEB_USERS_FILE")
    if not secret:
        raise ConfigError(f"--host {host}: beyond loopback the console needs HRSYNC_WEB_SECRET")
    from web.security import MIN_SECRET_BYTES

    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ConfigError(f"HRSYNC_WEB_SECRET: at least {MIN_SECRET_BYTES} bytes beyond loopback "
                          "(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))')")
    if not (listening.tls or listening.behind_proxy):
        raise ConfigError(f"--host {host}: beyond loopback the console needs --certfile/--keyfile (TLS) "
                          "or --behind-proxy (a TLS proxy in front)")


def serve(host: str, port: int, out: Console, one_time_note: str = "", listening: Listening | None = None,
          stop_flag: StopFlag | None = None) -> None:
    """Check the listening rules, build the app and run it with uvicorn until interrupted."""
    import uvicorn

    from web.app import create_app
    from web.users import UserStore

    listening = listening or Listening()
    settings = get_settings()
    secret = settings.web_secret.get_secret_value() if settings.web_secret else None
    check_listening(host, listening, settings.web_users_file, secret)
    if listening.behind_proxy and not listening.forwarded_allow_ips:
        out.print("note: --behind-proxy without --forwarded-allow-ips: every client counts as the proxy's "
                  "address for the sign-in throttle", highlight=False)
    if settings.web_users_file is not None:
        users = UserStore.load(settings.web_users_file)
    else:
        users, password = UserStore.one_time(ONE_TIME_USER)
        out.print(f"no HRSYNC_WEB_USERS_FILE: sign in as [bold]{ONE_TIME_USER}[/] with the one-time password "
                  f"[bold]{password}[/] (valid while this process runs){one_time_note}", highlight=False)
    shown = f"[{host}]" if ":" in host else host
    out.print(f"console on http{'s' if listening.tls else ''}://{shown}:{port}/", highlight=False)
    app = create_app(users, secret, secure_cookies=listening.tls or listening.behind_proxy)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                           **listening.uvicorn_options()))
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
        port: Annotated[int, typer.Option("--port", min=1, max=65535, help="port to listen on")] = 8080,
        certfile: Annotated[Path | None, typer.Option("--certfile", help="TLS certificate (PEM)")] = None,
        keyfile: Annotated[Path | None, typer.Option("--keyfile", help="TLS private key (PEM)")] = None,
        behind_proxy: Annotated[bool, typer.Option(
            "--behind-proxy", help="a TLS proxy in front: cookies are Secure")] = False,
        forwarded_allow_ips: Annotated[str | None, typer.Option(
            "--forwarded-allow-ips", help="comma-separated proxy addresses whose X-Forwarded-For is believed")]
            = None) -> None:
    """Serve the operator console (loopback only unless --host says otherwise)."""
    if ctx.invoked_subcommand is None:
        stop_flag = StopFlag().install()  # from the first moment: a SIGTERM during start-up still exits 0
        serve(host, port, Console(), listening=Listening(certfile, keyfile, behind_proxy, forwarded_allow_ips),
              stop_flag=stop_flag)


def _users_file() -> Path:
    path = get_settings().web_users_file
    if path is None:
        raise ConfigError("HRSYNC_WEB_USERS_FILE: not set (which users file?)")
    return path


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass("password: ")
    if getpass.getpass("again: ") != password:
        raise ConfigError("password: the two entries differ")
    return password


PasswordStdin = Annotated[bool, typer.Option("--password-stdin", help="read the password from the first line of stdin")]
UserName = Annotated[str, typer.Argument(metavar="NAME", help="the user's sign-in name")]


@web_app.command("adduser")
def adduser(name: UserName,
            role: Annotated[str, typer.Option("--role", help="viewer (reads) or operator (acts)")] = "viewer",
            password_stdin: PasswordStdin = False) -> None:
    """Add a console user to HRSYNC_WEB_USERS_FILE (or replace their password and role, ending their sessions)."""
    from web.users import ROLES, add_user

    path = _users_file()
    if role not in ROLES:  # before the prompt: a typo costs no password
        raise ConfigError(f"--role: {role!r} is not one of {', '.join(ROLES)}")
    new = add_user(path, name, _read_password(password_stdin), role)
    Console().print(f"{'added' if new else 'updated'} {name} ({role}) in {path}", highlight=False)


@web_app.command("passwd")
def passwd(name: UserName, password_stdin: PasswordStdin = False) -> None:
    """Give a console user a new password: their sessions end at their next request."""
    from web.users import change_password, read_users_file

    path = _users_file()
    if name not in read_users_file(path):  # before the prompt
        raise ConfigError(f"NAME: no user {name!r} in {path}")
    change_password(path, name, _read_password(password_stdin))
    Console().print(f"new password for {name} in {path}; their sessions are ended", highlight=False)


@web_app.command("deluser")
def deluser(name: UserName) -> None:
    """Remove a console user: their sessions end at their next request."""
    from web.users import delete_user

    path = _users_file()
    delete_user(path, name)
    Console().print(f"removed {name} from {path}; their sessions are ended", highlight=False)
