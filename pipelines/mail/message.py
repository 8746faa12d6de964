"""Pure pieces of a notification: outbox keys, Message-IDs, header sanitising, the MIME message."""

from __future__ import annotations

import datetime as dt
import hashlib
import mimetypes
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email import quoprimime
from email.header import Header
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from functools import lru_cache

KEY_MAX = 255  # notifications.outbox_key
SUBJECT_MAX = 255  # notifications.subject
NAME_MAX = 200  # notifications.recipient_name

# Anything that could end a header line or hide one: C0 controls (CR, LF, NUL, TAB...), DEL, C1 controls,
# and the Unicode line/paragraph separators some parsers treat as line breaks.
_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SPACES = re.compile(r"\s{2,}")


def clean_header(value: str | None, limit: int = SUBJECT_MAX) -> str:
    """`value` made safe for one header line: control characters become one space, cut to `limit`."""
    if not value:
        return ""
    text = _SPACES.sub(" ", _BREAKS.sub(" ", value)).strip()
    return text[:limit].rstrip()


def outbox_key(kind: str, *parts: object) -> str:
    """The outbox's unique key, ``kind:part:part…``; over 255 characters, the tail becomes a hash."""
    key = ":".join([kind, *(clean_header(str(p), KEY_MAX).replace(":", "_") for p in parts)])
    if len(key) <= KEY_MAX:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{key[:KEY_MAX - len(digest) - 1]}#{digest}"


def message_id_for(key: str) -> str:
    """The deterministic Message-ID of an outbox key, so receivers can drop a resent copy."""
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@hrsync>"


_REGISTRY = HeaderRegistry()
# An address that is exactly one plain ASCII addr-spec (dot-atom local part and domain): taken as it is,
# without the header parser (1-2 ms a call); anything else goes through `parse_mailbox`.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
                            r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# A display name that needs no quoting in a header (RFC 5322 atoms and spaces).
_PLAIN_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*")


def parse_mailbox(value: str) -> Address:
    """``Name <a@b>`` or ``a@b`` as one `Address`; `ValueError` unless it is exactly one clean mailbox.

    Strict on purpose (no groups, no parser defects): lax parsing turns ``HR Bcc: x@y <a@b>`` into x@y.
    """
    try:
        header = _REGISTRY("To", clean_header(value, 600))
        addresses, groups, defects = header.addresses, header.groups, header.defects  # type: ignore[attr-defined]
    except (ValueError, IndexError) as exc:  # the header parser raises IndexError on some junk
        raise ValueError(f"not an e-mail address: {value!r} ({exc})") from None
    if defects or len(addresses) != 1 or groups[0].display_name is not None or "@" not in addresses[0].addr_spec:
        raise ValueError(f"not exactly one e-mail address: {value!r}")
    found: Address = addresses[0]
    return Address(display_name=clean_header(found.display_name, NAME_MAX), addr_spec=found.addr_spec)


@lru_cache(maxsize=64)
def _sender_mailbox(value: str) -> Address:
    """`parse_mailbox` of the configured sender, once per value (the same on every message)."""
    return parse_mailbox(value)


@dataclass(frozen=True)
class Outgoing:
    """What a transport needs: envelope addresses, the Message-ID and the message as bytes (CRLF)."""

    sender: str
    recipient: str
    message_id: str
    data: bytes


def build_message(
    *,
    sender: str,
    recipient: str,
    recipient_name: str | None,
    subject: str,
    body_text: str,
    body_html: str | None,
    message_id: str,
    date: dt.datetime,
    attachments: Sequence[tuple[str, bytes]] = (),
) -> Outgoing:
    """The MIME message of one notification; every header value is sanitised (no CR/LF injection).

    `attachments`: (file name, content) pairs, attached under their names.
    """
    from_addr = _sender_mailbox(sender)
    plain = _PLAIN_ADDRESS.fullmatch(recipient)
    to_addr = Address(addr_spec=recipient) if plain else parse_mailbox(recipient)
    if recipient_name:
        to_addr = Address(display_name=clean_header(recipient_name, NAME_MAX), addr_spec=to_addr.addr_spec)
    if not attachments and from_addr.addr_spec.isascii() and to_addr.addr_spec.isascii():
        data = _assembled(from_addr, to_addr, clean_header(subject), format_datetime(date.astimezone(dt.UTC)),
                          clean_header(message_id), body_text, body_html)
        return Outgoing(sender=from_addr.addr_spec, recipient=to_addr.addr_spec,
                        message_id=clean_header(message_id), data=data)
    msg = EmailMessage(policy=SMTP)
    msg["From"] = from_addr
    msg["To"] = to_addr
    msg["Subject"] = clean_header(subject)
    msg["Date"] = format_datetime(date.astimezone(dt.UTC))
    msg["Message-ID"] = clean_header(message_id)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to robots
    # Quoted-printable keeps the body 7-bit: any relay accepts it, 8BITMIME or not.
    msg.set_content(body_text, cte="quoted-printable")
    if body_html:
        msg.add_alternative(body_html, subtype="html", cte="quoted-printable")
    for name, content in attachments:
        maintype, _, subtype = (mimetypes.guess_type(name)[0] or "application/octet-stream").partition("/")
        msg.add_attachment(content, maintype=maintype, subtype=subtype, filename=name)
    return Outgoing(sender=from_addr.addr_spec, recipient=to_addr.addr_spec, message_id=msg["Message-ID"],
                    data=msg.as_bytes())


# -- the message assembled by hand (no attachments): what `EmailMessage` with `policy.SMTP` gives, ~50x cheaper

_CRLF = "\r\n"
_MAX_LINE = 78  # policy.SMTP.max_line_length


def _mailbox_header(header: str, address: Address) -> str:
    """``Header: Name <addr>``: the name as it is (atoms), quoted (ASCII specials), or RFC 2047 (folded)."""
    name = address.display_name
    if not name:
        return f"{header}: {address.addr_spec}"
    if not name.isascii():
        name = Header(name, "utf-8", maxlinelen=_MAX_LINE, header_name=header).encode(linesep=_CRLF)
    elif not _PLAIN_NAME.fullmatch(name):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    value = f"{header}: {name}"
    angle = f"<{address.addr_spec}>"
    last = value.rsplit(_CRLF, 1)[-1]
    return f"{value}{_CRLF if len(last) + 1 + len(angle) > _MAX_LINE else ''} {angle}"


def _text_header(name: str, value: str) -> str:
    """One header, folded at spaces when longer than 78 (a longer word stays whole on its own line: legal
    up to 998), RFC 2047-encoded when not ASCII."""
    if not value.isascii():
        return f"{name}: " + Header(value, "utf-8", maxlinelen=_MAX_LINE, header_name=name).encode(linesep=_CRLF)
    line = f"{name}:"
    lines = []
    for word in value.split(" "):
        if len(line) + 1 + len(word) > _MAX_LINE and line.strip() and not line.endswith(":"):
            lines.append(line)
            line = ""
        line += " " + word
    return _CRLF.join([*lines, line])


def _quoted_printable(text: str) -> str:
    """The body as `EmailMessage.set_content(text, cte="quoted-printable")` encodes it, CRLF line ends."""
    body = b"\n".join(text.encode("utf-8").splitlines()) + b"\n"
    return quoprimime.body_encode(body.decode("latin-1"), _MAX_LINE).replace("\n", _CRLF)


def _text_part(subtype: str, text: str, extra: str = "") -> str:
    return (f'Content-Type: text/{subtype}; charset="utf-8"{_CRLF}'
            f"Content-Transfer-Encoding: quoted-printable{_CRLF}{extra}{_CRLF}{_quoted_printable(text)}")


def _assembled(from_addr: Address, to_addr: Address, subject: str, date: str, message_id: str, body_text: str,
               body_html: str | None) -> bytes:
    """The 7-bit message: headers in `EmailMessage`'s order, a text part, or text and HTML alternatives."""
    head = _CRLF.join([
        _mailbox_header("From", from_addr),
        _mailbox_header("To", to_addr),
        _text_header("Subject", subject),
        f"Date: {date}",
        f"Message-ID: {message_id}",
        "Auto-Submitted: auto-generated",
    ]) + _CRLF
    if not body_html:
        return (head + _text_part("plain", body_text, f"MIME-Version: 1.0{_CRLF}")).encode("ascii")
    boundary = f"==============={random.randrange(10 ** 18, 10 ** 19)}=="  # '==' never occurs in QP text
    return (head + f"MIME-Version: 1.0{_CRLF}"
            f'Content-Type: multipart/alternative;{_CRLF} boundary="{boundary}"{_CRLF}{_CRLF}'
            f"--{boundary}{_CRLF}{_text_part('plain', body_text)}{_CRLF}"
            f"--{boundary}{_CRLF}{_text_part('html', body_html)}{_CRLF}"
            f"--{boundary}--{_CRLF}").encode("ascii")
