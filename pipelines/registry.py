"""The stages of a workflow, in pipeline order: the one list of them (`STAGES`).

Adding a stage: a folder `pipelines/<stage>/` whose `stage.py` declares `STAGE = Stage(...)` (see
`pipelines.stage` and docs/architecture.md), and one line here. The Celery queues and task shells, the
canvas, the replay planner, the trace's grouping and the joins of coalesced events' inputs follow from the
declaration. Importing this module installs the stages' joins for the inbox (`shared.events.coalesce`).
"""

from __future__ import annotations

from pipelines.export.stage import STAGE as EXPORT
from pipelines.extract.stage import STAGE as EXTRACT
from pipelines.merge.stage import STAGE as MERGE
from pipelines.notify.stage import STAGE as NOTIFY
from pipelines.stage import Stage
from shared.events.coalesce import Joins, provide_joins

STAGES: tuple[Stage, ...] = (EXTRACT, MERGE, NOTIFY, EXPORT)
BY_NAME = {stage.name: stage for stage in STAGES}
STAGE_NAMES = tuple(BY_NAME)


def register(stage: Stage) -> None:
    """Add a stage after the listed ones, in a process that declares it elsewhere (a plugin, a test).

    Read `registry.STAGES` (not a copy imported earlier): the Celery queues and task shells are derived when
    `workers` is first imported, so a worker process registers its stages before that.
    """
    global STAGES, STAGE_NAMES
    if stage.name in BY_NAME:
        raise ValueError(f"a stage named {stage.name!r} is already registered")
    STAGES = (*STAGES, stage)
    BY_NAME[stage.name] = stage
    STAGE_NAMES = tuple(BY_NAME)


def joins() -> Joins:
    """How each registered stage's inputs join when events coalesce (stages that declare a `join`)."""
    return {stage.name: stage.join for stage in STAGES if stage.join is not None}


provide_joins(joins)  # read when events are admitted: a stage registered later is included
