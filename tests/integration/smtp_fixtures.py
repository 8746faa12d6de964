"""A real SMTP server for the notify tests: aiosmtpd on 127.0.0.1 (free port), running on the runner's loop.

The server lives on the process's runner loop (started and stopped through `run_async`), not in
aiosmtpd's `Controller` thread: under gevent's monkey-patching `threading.Thread` is a greenlet that
would block its own asyncio loop, while the runner's loop is a real OS thread in both worlds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import ipaddress
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from shared.runtime.runner import run_async


@dataclass
class Received:
    """One message as the server received it."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    tls: bool
    login: str | None

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class RecordingHandler:
    """Records accepted messages; answers RCPT for chosen addresses with scripted replies (4xx/5xx)."""

    messages: list[Received] = field(default_factory=list)
    scripted: dict[str, list[str]] = field(default_factory=dict)
    forever: dict[str, str] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)
    drop_after_data: set[str] = field(default_factory=set)  # take the message, then hang up without answering

    def refuse(self, address: str, *replies: str, forever: bool = False) -> None:
        """Answer RCPT TO `address` with `replies` in turn (then accept), or always the first if `forever`."""
        if forever:
            self.forever[address.lower()] = replies[0]
        else:
            self.scripted[address.lower()] = list(replies)

    def to(self, address: str) -> list[Received]:
        return [m for m in self.messages if address.lower() in (r.lower() for r in m.rcpt_tos)]

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        key = address.lower()
        if key in self.forever:
            return self.forever[key]
        if self.scripted.get(key):
            return self.scripted[key].pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        self.messages.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), data,
                                      tls=server.transport.get_extra_info("ssl_object") is not None,
                                      login=login))
        if self.drop_after_data & {r.lower() for r in envelope.rcpt_tos}:
            self.drop_after_data.clear()  # once
            assert server.transport is not None
            server.transport.abort()
        return "250 Message accepted for delivery"

    def authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                     auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword)
              and self.users.get(auth_data.login.decode()) == auth_data.password.decode())
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


@dataclass
class SmtpServer:
    """A running test server: its port and handler."""

    host: str
    port: int
    handler: RecordingHandler
    server: asyncio.Server

    def url(self, scheme: str = "smtp", userinfo: str = "", query: str = "") -> str:
        at = f"{userinfo}@" if userinfo else ""
        return f"{scheme}://{at}{self.host}:{self.port}{'?' + query if query else ''}"


async def _start(handler: RecordingHandler, starttls: ssl.SSLContext | None,
                 implicit_tls: ssl.SSLContext | None) -> asyncio.Server:
    loop = asyncio.get_running_loop()

    def protocol() -> SMTP:
        options: dict[str, Any] = {}
        if handler.users:
            # aiosmtpd only knows about STARTTLS: on implicit TLS the session is encrypted but unmarked.
            options.update(authenticator=handler.authenticate, auth_require_tls=implicit_tls is None)
        return SMTP(handler, hostname="hrsync-test", tls_context=starttls, loop=loop, **options)

    return await loop.create_server(protocol, "127.0.0.1", 0, ssl=implicit_tls)


async def _stop(server: asyncio.Server) -> None:
    server.close()
    await server.wait_closed()


def start_smtp_server(handler: RecordingHandler | None = None, *, starttls: ssl.SSLContext | None = None,
                      implicit_tls: ssl.SSLContext | None = None) -> SmtpServer:
    """Start a server on the runner's loop; stop it with `stop_smtp_server`."""
    handler = handler or RecordingHandler()
    server = run_async(_start(handler, starttls, implicit_tls))
    port = server.sockets[0].getsockname()[1]
    return SmtpServer("127.0.0.1", port, handler, server)


def stop_smtp_server(server: SmtpServer) -> None:
    run_async(_stop(server.server))


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A plain SMTP server on a free port of 127.0.0.1, recording what it accepts."""
    server = start_smtp_server()
    yield server
    stop_smtp_server(server)


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (and localhost) and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hrsync-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def server_tls_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context
