"""The stages of a workflow, in pipeline order: the one list of them (`STAGES`).

Adding a stage: a folder `pipelines/<stage>/` whose `stage.py` declares `STAGE = Stage(...)` (see
`pipelines.stage` and docs/architecture.md), and one line here. The Celery queues and task shells, the
canvas, the replay planner and the trace's grouping follow from the declaration.
"""

from __future__ import annotations

from pipelines.export.stage import STAGE as EXPORT
from pipelines.extract.stage import STAGE as EXTRACT
from pipelines.merge.stage import STAGE as MERGE
from pipelines.notify.stage import STAGE as NOTIFY
from pipelines.stage import Stage

STAGES: tuple[Stage, ...] = (EXTRACT, MERGE, NOTIFY, EXPORT)
BY_NAME = {stage.name: stage for stage in STAGES}
STAGE_NAMES = tuple(BY_NAME)
