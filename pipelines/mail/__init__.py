"""The mail outbox and its sending, used by the notify stage (its messages) and the export stage (payroll's mail).

Run every function through `shared.runtime.runner.run_async` (they use the app engine of the runner's loop).
The Celery layer's shape: ``build_notifications`` → ``plan_notify_batches`` → a group of
``send_notifications(batch)``, retrying a batch task on `TemporaryMailError` and failing it without
retry on `MailSetupError`; ``queue_sync_failed`` where an execution fails.

Each batch opens its own SMTP connection on its first message and closes it at the end: an SMTP session
is one transaction at a time and servers drop idle sessions after a few minutes, so a connection shared
through the runner's registry would need a pool with liveness checks to save one handshake per batch.
Without HRSYNC_SMTP_URL, mail goes to ``<HRSYNC_HOME>/mail/<message-id>.eml`` (see `smtp`).
"""

from pipelines.mail.errors import MailSetupError, TemporaryMailError
from pipelines.mail.outbox import build_notifications, plan_notify_batches, queue_sync_failed
from pipelines.mail.send import SendPolicy, send_notifications

__all__ = [
    "MailSetupError",
    "SendPolicy",
    "TemporaryMailError",
    "build_notifications",
    "plan_notify_batches",
    "queue_sync_failed",
    "send_notifications",
]
