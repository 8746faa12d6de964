"""The workflow of an execution: a chain of its stages, each planned and fanned out at run time.

    chain( start → extract.plan ⇒ chord(extract shards) → extract.done
                 → merge.plan ⇒ chord(imports) → merge.days ⇒ chord(day shards) → merge.done
                 → notify.plan ⇒ chord(send batches) → notify.done
                 → finish )

(⇒: the planner replaces itself with the chord; the rest of the chain follows the chord's body.)
The stages and their order come from `pipelines.registry.STAGES`; only those in the execution's params
run. `start` claims the execution, so launching the same execution twice runs it once.
"""

from __future__ import annotations

from collections.abc import Sequence

from celery import chain
from celery.canvas import Signature

from workers import tasks


def workflow(execution_id: str, stages: Sequence[str]) -> Signature:
    """The canvas running `stages` (in the order of the pipeline) for `execution_id`."""
    unknown = set(stages) - set(tasks.STAGE_TASKS)
    if unknown:
        raise ValueError(f"unknown stages: {sorted(unknown)}")
    ordered = [s for s in tasks.STAGE_TASKS if s in stages]
    return chain(
        tasks.start.si(execution_id),
        *(tasks.STAGE_TASKS[s].first.si(execution_id) for s in ordered),
        tasks.finish.si(execution_id, ordered),
    )


def launch(execution_id: str, stages: Sequence[str]) -> None:
    """Send the execution's workflow to the broker (publish confirmed before this returns)."""
    workflow(execution_id, stages).apply_async()
