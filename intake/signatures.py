"""Standard Webhooks signatures (`webhook-id`, `webhook-timestamp`, `webhook-signature`): which source signed.

The signed content is `<webhook-id>.<webhook-timestamp>.<body>`, the signature `v1,<base64 HMAC-SHA256>`; the
header may carry several (space-separated, e.g. while a sender rotates its secret). Every key of every source
is tried, so the signature itself names the source; keys are unique across sources (the sources file refuses
a shared one). Pure code, no I/O.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from typing import Final

from shared.events.intake_sources import Source

TOLERANCE_SECONDS: Final = 5 * 60
ID_HEADER: Final = "webhook-id"
TIMESTAMP_HEADER: Final = "webhook-timestamp"
SIGNATURE_HEADER: Final = "webhook-signature"
_TIMESTAMP: Final = re.compile(r"\d{1,12}")  # UNIX seconds, as the header carries them


class SignatureRefused(Exception):
    """The request is not signed by any source; `field` is the header at fault."""

    def __init__(self, field: str, message: str) -> None:
        self.field, self.message = field, message
        super().__init__(f"{field}: {message}")


def signature(key: bytes, webhook_id: str, timestamp: str, body: bytes) -> str:
    """The `v1,<base64>` signature of a request."""
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signing_source(headers: Mapping[str, str], body: bytes, sources: Iterable[Source], now: float) -> Source:
    """The source whose key signed this request (`headers` with lower-case names, `now` in UNIX seconds);
    `SignatureRefused` when a header is missing or malformed, the timestamp is more than 5 minutes away
    from `now`, or no key of any source made any of the signatures."""
    values = {}
    for name in (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER):
        value = headers.get(name, "")
        if not value:
            raise SignatureRefused(name, "missing: requests are signed as Standard Webhooks define it")
        values[name] = value
    timestamp = values[TIMESTAMP_HEADER]
    if not _TIMESTAMP.fullmatch(timestamp):
        raise SignatureRefused(TIMESTAMP_HEADER, "not a whole number of seconds since 1970 (UTC)")
    if abs(now - int(timestamp)) > TOLERANCE_SECONDS:
        raise SignatureRefused(TIMESTAMP_HEADER, f"more than {TOLERANCE_SECONDS // 60} minutes away from now")
    offered = [part.encode() for part in values[SIGNATURE_HEADER].split(" ") if part.startswith("v1,")]
    if not offered:
        raise SignatureRefused(SIGNATURE_HEADER, "no v1 signature (expected v1,<base64>)")
    webhook_id = values[ID_HEADER]
    for source in sources:
        for key in source.keys:
            expected = signature(key, webhook_id, timestamp, body).encode()
            # Every offered signature is compared, in constant time each.
            if any(hmac.compare_digest(expected, candidate) for candidate in offered):
                return source
    raise SignatureRefused(SIGNATURE_HEADER, "no signature matches a secret of any source")
