"""Pure pieces of a notification: outbox keys, Message-IDs, header sanitising, the MIME message."""

from __future__ import annotations

import datetime as dt
import hashlib
import mimetypes
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

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
    from_addr = parse_mailbox(sender)
    to_addr = parse_mailbox(recipient)
    if recipient_name:
        to_addr = Address(display_name=clean_header(recipient_name, NAME_MAX), addr_spec=to_addr.addr_spec)
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
