"""Where mail goes: HRSYNC_SMTP_URL parsed into a `MailTarget`, and the transports that deliver to it.

``smtp://[user:password@]host[:25]`` plain SMTP (no STARTTLS, even if offered);
``smtp+starttls://…[:587]`` STARTTLS required; ``smtps://…[:465]`` implicit TLS. Query options:
``timeout=<seconds>`` (default 60), ``cafile=<path>`` (trust this CA bundle), ``verify=false`` (do not
check the server's certificate: test servers only). Unset, or ``file:///dir``: the embedded sink, which
writes each message once to ``<dir>/<message-id>.eml`` (default dir ``<HRSYNC_HOME>/mail``) and needs
no server. The password is kept out of `repr` and logs (`MailTarget.display` is redacted).
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from pipelines.mail.errors import MailSetupError
from pipelines.mail.message import Outgoing
from shared.config.redaction import redact_url
from shared.config.settings import Settings

SCHEMES = {"smtp": (25, False, False), "smtp+starttls": (587, False, True), "smtps": (465, True, False)}
QUERY_OPTIONS = {"timeout", "cafile", "verify"}


@dataclass(frozen=True)
class MailTarget:
    """A parsed mail destination: an SMTP server, or a folder of .eml files."""

    kind: Literal["smtp", "file"]
    display: str  # the URL as it may be shown: password redacted
    host: str = ""
    port: int = 0
    use_tls: bool = False
    start_tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 60.0
    validate_certs: bool = True
    cafile: str | None = None
    directory: Path | None = None


def _bad(url: str, why: str) -> MailSetupError:
    return MailSetupError(f"HRSYNC_SMTP_URL: {why} ({redact_url(url)})")


def parse_mail_url(url: str | None, home: Path) -> MailTarget:
    """Parse HRSYNC_SMTP_URL; `MailSetupError` names the variable (and never shows the password)."""
    if not url:
        return MailTarget(kind="file", display=f"file://{home / 'mail'}", directory=home / "mail")
    try:
        parts = urlsplit(url)
        port_given = parts.port
    except ValueError as exc:
        raise _bad(url, str(exc)) from None
    scheme = parts.scheme.lower()
    if scheme == "file":
        if not parts.path:
            raise _bad(url, "file:// needs a folder path")
        return MailTarget(kind="file", display=url, directory=Path(unquote(parts.path)))
    if scheme not in SCHEMES:
        raise _bad(url, f"unknown scheme {scheme!r}: use smtp://, smtp+starttls://, smtps:// or file://")
    if not parts.hostname:
        raise _bad(url, "no host")
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    if unknown := set(query) - QUERY_OPTIONS:
        raise _bad(url, f"unknown option(s) {', '.join(sorted(unknown))}")
    try:
        timeout = float(query.get("timeout", "60"))
    except ValueError:
        raise _bad(url, "timeout must be a number of seconds") from None
    default_port, use_tls, start_tls = SCHEMES[scheme]
    return MailTarget(
        kind="smtp",
        display=redact_url(url),
        host=parts.hostname,
        port=port_given or default_port,
        use_tls=use_tls,
        start_tls=start_tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        timeout=timeout,
        validate_certs=query.get("verify", "true").lower() not in ("false", "0", "no"),
        cafile=query.get("cafile") or None,
    )


def mail_target(settings: Settings) -> MailTarget:
    """The target of the process's settings."""
    return parse_mail_url(settings.smtp_url, settings.home)


class ConnectFailed(Exception):
    """Connecting, TLS, EHLO or login failed; `__cause__` is aiosmtplib's (or the OS's) error."""


class Transport(Protocol):
    """Delivers messages one at a time; one instance serves one batch and is closed after it."""

    async def deliver(self, item: Outgoing) -> None:
        """Hand `item` over; raise on refusal (aiosmtplib errors) or `ConnectFailed`."""

    async def reset(self) -> None:
        """Forget the connection after an error; the next `deliver` reconnects."""

    async def aclose(self) -> None:
        """Close politely (QUIT) if connected."""


class SmtpTransport:
    """One SMTP connection, opened on the first message and reused for the rest of the batch."""

    def __init__(self, target: MailTarget) -> None:
        self.target = target
        self._client: aiosmtplib.SMTP | None = None

    async def _connection(self) -> aiosmtplib.SMTP:
        if self._client is not None and self._client.is_connected:
            return self._client
        await self.reset()
        t = self.target
        client = aiosmtplib.SMTP(
            hostname=t.host, port=t.port, username=t.username, password=t.password, use_tls=t.use_tls,
            start_tls=t.start_tls, validate_certs=t.validate_certs, cert_bundle=t.cafile, timeout=t.timeout,
        )
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError) as exc:
            client.close()
            raise ConnectFailed(f"{type(exc).__name__}: {exc}") from exc
        self._client = client
        return client

    async def deliver(self, item: Outgoing) -> None:
        client = await self._connection()
        await client.sendmail(item.sender, [item.recipient], item.data)

    async def reset(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            if client.is_connected:
                await client.quit()
        except (aiosmtplib.SMTPException, OSError):
            pass  # already sent and recorded: a failed goodbye changes nothing
        finally:
            client.close()


_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9@._-]")


def eml_path(directory: Path, message_id: str) -> Path:
    """The sink's file for a Message-ID: ``<dir>/<id without brackets>.eml``."""
    return directory / f"{_UNSAFE_FILENAME.sub('_', message_id.strip('<> '))}.eml"


def _write_once(path: Path, data: bytes) -> bool:
    """Write `path` unless it exists; atomic (temp file + hard link), never overwrites."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_bytes(data)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink()
    return True


class FileTransport:
    """The embedded sink: each message becomes ``<dir>/<message-id>.eml``, written once."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def deliver(self, item: Outgoing) -> None:
        await asyncio.to_thread(_write_once, eml_path(self.directory, item.message_id), item.data)

    async def reset(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


def open_transport(target: MailTarget) -> Transport:
    """A transport for `target` (it connects lazily, on the first message)."""
    if target.kind == "file":
        assert target.directory is not None
        return FileTransport(target.directory)
    return SmtpTransport(target)
