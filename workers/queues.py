"""The Celery queues, from the registry: importable without configuring the Celery app (`workers.app` does
that, with the settings of the moment, when first imported)."""

from __future__ import annotations

from pipelines import registry

WORKFLOW_QUEUE = "hrsync.workflow"  # the claim, the finish, the probe


def stage_queues() -> tuple[str, ...]:
    """Every queue a worker of all stages consumes: each registered stage's (`Stage.queue`), then the
    workflow's. Read when the app is configured, so a stage registered before that has its queue declared."""
    return (*dict.fromkeys(stage.queue for stage in registry.STAGES), WORKFLOW_QUEUE)
