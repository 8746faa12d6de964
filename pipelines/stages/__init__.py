"""The stages of a workflow, in pipeline order: the one registration of each (`STAGES`).

Adding a stage: a module beside these that declares `STAGE = Stage(...)` (see `pipelines.stage`
and docs/architecture.md), and one line here. The task shells, the canvas, the replay planner and the
trace's grouping follow from the declaration.
"""

from __future__ import annotations

from pipelines.stage import Stage
from pipelines.stages import export, extract, merge, notify

STAGES: tuple[Stage, ...] = (extract.STAGE, merge.STAGE, notify.STAGE, export.STAGE)
BY_NAME = {stage.name: stage for stage in STAGES}
STAGE_NAMES = tuple(BY_NAME)
