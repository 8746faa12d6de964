"""Errors of the notify stage, split by what the caller (the Celery task) should do about them."""

from __future__ import annotations

from typing import Any

from shared.config.errors import HrsyncError
from shared.config.retry import TransientError


class TemporaryMailError(HrsyncError, TransientError):
    """The server answered 4xx or could not be reached, after retries within the call: retry the task later.

    The rows in `pending_ids` are still ``pending`` (their claims released); rows already sent or parked
    in this call stay so, and `output` holds the call's counts. The message carries no credentials.
    """

    def __init__(self, message: str, pending_ids: list[int], output: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.pending_ids = pending_ids
        self.output = output or {}


class MailSetupError(HrsyncError):
    """The mail setup is wrong (bad HRSYNC_SMTP_URL, login or sender refused with 5xx): do not retry.

    No row was parked because of it: once the setup is fixed, a replay sends the pending rows.
    """
