"""The start-up self-check as the long-running commands (`bridge`, `scheduler`) run it: refuse to start."""

from __future__ import annotations

from shared.config.errors import CheckFailed
from shared.config.settings import get_settings


def refuse_on_failed_checks() -> None:
    """Run the self-check (DESIGN §9); `CheckFailed` (one line, every failed check) if any fails."""
    from operations.processes import celery_conf
    from shared.check import run_checks

    failed = [r for r in run_checks(get_settings(), celery_conf()) if not r.ok]
    if failed:
        raise CheckFailed("; ".join(f"{r.name}: {r.detail}" for r in failed))
