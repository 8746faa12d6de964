"""The pieces every stage and retry site shares: the backoff, "transient", shard-name kinds, the stage
declarations, and the short ids of `hrsync executions`."""

from __future__ import annotations

import pika.exceptions
import pytest

from cli.operations import short_id_width
from pipelines.mail import TemporaryMailError
from pipelines.registry import BY_NAME, STAGE_NAMES
from shared.config.retry import Backoff, TransientError, is_transient
from shared.records.shards import ShardKind, shard_name


@pytest.mark.parametrize(("base", "cap", "retry", "ceiling"), [
    (2.0, 120.0, 0, 2.0),  # 2·2⁰
    (2.0, 120.0, 3, 16.0),  # 2·2³
    (2.0, 120.0, 6, 120.0),  # 2·2⁶ = 128, capped
    (0.5, 15.0, 200, 15.0),  # a huge retry number stays capped (no overflow)
])
def test_backoff_ceiling_doubles_up_to_the_cap(base: float, cap: float, retry: int, ceiling: float) -> None:
    """The ceiling before retry n is min(cap, base·2ⁿ)."""
    assert Backoff(base, cap).ceiling(retry) == ceiling


def test_backoff_is_full_jitter_unless_floored() -> None:
    """Delays lie in [0, ceiling] (full jitter), or in [floor·ceiling, ceiling] with a floor."""
    assert all(0 <= Backoff(1.0, 10.0).delay(2) <= 4.0 for _ in range(200))
    assert all(2.0 <= Backoff(1.0, 10.0, floor=0.5).delay(2) <= 4.0 for _ in range(200))


@pytest.mark.parametrize(("error", "transient"), [
    (TransientError("4xx"), True),
    (TemporaryMailError("421", []), True),  # a mail server's temporary refusal
    (pika.exceptions.AMQPConnectionError("refused"), True),  # the broker away
    (pika.exceptions.ConnectionBlockedTimeout(), False),  # a resource alarm: the caller hears at once
    (ConnectionResetError(), True),
    (ValueError("bad row"), False),
])
def test_one_notion_of_transient(error: BaseException, transient: bool) -> None:
    """Every retry site asks the same predicate."""
    assert is_transient(error) is transient


@pytest.mark.parametrize(("stage", "shard", "kind"), [
    ("merge", "@plan", None),  # a control step: no kind of work
    ("merge", "@plan-days", None),
    ("notify", "@failure", None),
    ("merge", "punches:2026-03-02T00:00..2026-03-03T00:00", "punches:"),
    ("merge", "leave:2026-03-02..2026-03-08=Ops", "leave:"),
    ("merge", "2026-03-02..2026-03-08=Ops", ""),  # no prefix: the stage's plain kind (its first)
    ("extract", "('E1', 'E9']", ""),
    ("extract", "absences", "absences"),
    ("extract", "absences-not", ""),  # a kind with a name is that name only
    ("notify", "batch:1-50:50", "batch:"),
    ("export", "export:2019-04:v2", "export:"),
])
def test_shard_names_have_one_kind_in_their_stage(stage: str, shard: str, kind: str | None) -> None:
    """A recorded shard name maps to one of its stage's declared kinds (by prefix or name; a name matching
    none to the stage's plain kind), a control step to none."""
    found = BY_NAME[stage].kind_of(shard)
    assert (found if found is None else found.prefix or found.name) == kind


def test_the_persisted_shard_names_are_those_of_before() -> None:
    """The names recorded rows and replays read keep their spelling now that the stages declare them."""
    extract, merge, notify, export = (BY_NAME[n] for n in ("extract", "merge", "notify", "export"))
    assert [k.of("x") for k in extract.shard_kinds] == ["x", "absences"]
    assert [k.of("x") for k in merge.shard_kinds] == ["x", "punches:x", "leave:x"]
    assert [k.of("x") for k in (*notify.shard_kinds, *export.shard_kinds)] == ["batch:x", "export:x"]
    assert [s.plan_shards for s in (extract, merge, notify, export)] == [
        ("@plan",), ("@plan", "@plan-days"), ("@plan",), ("@plan",)]
    assert merge.shard_kinds[1].of("y" * 80) == shard_name("punches:" + "y" * 80)  # clipped as before
    assert {k.value for k in ShardKind} == {"@plan", "@done", "@start", "@finish", "@failure"}


@pytest.mark.parametrize(("stage", "shard", "group"), [
    ("extract", "('E1', 'E9']", "ranges"),
    ("extract", "absences", "ranges"),
    ("merge", "punches:x", "imports"),
    ("merge", "2026-03-02..2026-03-08=Ops", "days"),
    ("merge", "leave:2026-03-02..2026-03-08=Ops", "days"),
    ("notify", "batch:1-50:50", "batches"),
    ("export", "export:2019-04:v2", "exports"),
    ("merge", "@plan-days", "@plan-days"),
])
def test_the_trace_groups_shards_by_the_declared_kinds(stage: str, shard: str, group: str) -> None:
    """The trace's grouping comes from the stage declarations."""
    assert BY_NAME[stage].group_of(shard) == group


def test_the_declarations_keep_the_task_names() -> None:
    """The stages, their order and their Celery task names are those queued messages use."""
    assert STAGE_NAMES == ("extract", "merge", "notify", "export")
    names = {stage.task_name(step) for stage in BY_NAME.values()
             for step in (*(p.planner for p in stage.phases), *(p.worker for p in stage.phases), "done")}
    assert names == {"hrsync.extract.plan", "hrsync.extract.shard", "hrsync.extract.done", "hrsync.merge.plan",
                     "hrsync.merge.import", "hrsync.merge.days", "hrsync.merge.shard", "hrsync.merge.done",
                     "hrsync.notify.plan", "hrsync.notify.send", "hrsync.notify.done",
                     "hrsync.export.plan", "hrsync.export.write", "hrsync.export.done"}


@pytest.mark.parametrize(("ids", "width"), [
    (["0631b3c4-761f", "8b9d8846-aaaa"], 8),  # distinct in 8 characters
    (["0631b3c4-761f", "0631b3c4-7aaa"], 12),  # the same 8 (and 10): grown by 2 until they differ
    ([], 8),
])
def test_short_ids_are_the_shortest_unique_prefix(ids: list[str], width: int) -> None:
    """The listing's id prefix tells the listed ids apart, at least 8 characters."""
    assert short_id_width(ids) == width


def test_a_stage_reads_only_outputs_of_stages_before_it() -> None:
    """`reads=`: notify reads the merge's days, the merge the extract's absence marks; the producer is a
    registered stage earlier in the pipeline (extract, merge, notify, export)."""
    reads = {name: {(o.stage, o.name) for o in BY_NAME[name].reads} for name in STAGE_NAMES}
    assert reads == {"extract": set(), "merge": {("extract", "absence_recomputes")},
                     "notify": {("merge", "merged_days")}, "export": set()}
    for position, name in enumerate(STAGE_NAMES):
        assert {o.stage for o in BY_NAME[name].reads} <= set(STAGE_NAMES[:position])
