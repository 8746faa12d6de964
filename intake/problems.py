"""RFC 9457 problem details: every refusal of the intake is one, naming each bad field (DESIGN §12)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from starlette.responses import JSONResponse

MEDIA_TYPE: Final = "application/problem+json"
_TITLES: Final = {
    400: ("invalid-event", "Invalid event"),
    401: ("bad-signature", "Bad or missing signature"),
    403: ("not-allowed", "Not allowed for this source"),
    413: ("too-large", "Request too large"),
    429: ("slow-down", "Too many events"),
    500: ("internal-error", "Internal error"),
    503: ("broker-unavailable", "Broker unavailable"),
}


class Problem(Exception):
    """A refusal: HTTP `status`, a one-line `detail`, the (field, message) pairs, and `retry_after` seconds."""

    def __init__(self, status: int, detail: str, errors: Sequence[tuple[str, str]] = (),
                 retry_after: int | None = None) -> None:
        self.status, self.detail, self.errors, self.retry_after = status, detail, tuple(errors), retry_after
        super().__init__(detail)

    def response(self) -> JSONResponse:
        """The problem document (`type`, `title`, `status`, `detail`, `errors`) with `Retry-After` when set."""
        slug, title = _TITLES[self.status]
        document = {"type": f"urn:hrsync:problem:{slug}", "title": title, "status": self.status,
                    "detail": self.detail,
                    "errors": [{"field": field, "message": message} for field, message in self.errors]}
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else None
        return JSONResponse(document, status_code=self.status, headers=headers, media_type=MEDIA_TYPE)
