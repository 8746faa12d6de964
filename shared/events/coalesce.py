"""Coalescing: the params of a pending execution grown by one more event of its kind (docs/workflows.md).

Pure code (no I/O) on the params shapes `pipelines.plans.request_for` builds. Only the kinds in `COALESCED`
are merged; `sync.requested` executions never are.

How one stage's inputs (`params[<stage>]`) grow is the stage's to say: its declaration's `join`
(`pipelines.stage.Stage.join`) makes a `Joining` of them. This module names no stage: the joins come from
the caller (`joins=`) or, by default, from the provider the stage registry installs when it is imported
(`provide_joins`; shared/ does not import the pipelines). A stage with inputs but no declared join joins
only events whose inputs for it are the same. The execution's own keys are joined here: `events` (how many
events it serves) and the event's `fields` (united; None, every field, wins).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

COALESCED = ("punches", "employee")


class Joining(Protocol):
    """One stage's inputs growing by the events that join an execution: made from the pending inputs, asked
    whether the next event's inputs fit (`admits`: within one event's bounds, nothing changed), grown by them
    (`add`, only after every stage admitted them), written out once (`params`)."""

    def admits(self, new: Mapping[str, Any]) -> bool: ...

    def add(self, new: Mapping[str, Any]) -> None: ...

    def params(self) -> dict[str, Any]: ...


Join = Callable[[Mapping[str, Any]], Joining]  # a stage's declared join: its pending inputs → their Joining
Joins = Mapping[str, Join]  # stage name → its join

_provider: Callable[[], Joins] | None = None


def provide_joins(provider: Callable[[], Joins]) -> None:
    """Install where the stages' joins come from when a caller passes none (the stage registry does)."""
    global _provider
    _provider = provider


def installed_joins() -> Joins:
    """The installed stages' joins; refuses when none were installed (coalescing without them would open a
    new execution for every event, silently)."""
    if _provider is None:
        raise RuntimeError("no stage joins installed: import pipelines.registry before admitting events")
    return _provider()


def initial(kind: str, params: dict[str, Any], joins: Joins | None = None) -> dict[str, Any]:
    """The params of a one-event execution in the coalesced shape (`events`: 1, each stage's joined shape,
    e.g. the merge's `windows`)."""
    if kind not in COALESCED:
        return params
    return Gathering(kind, params, joins).params()


def coalesce(kind: str, pending: dict[str, Any], new: dict[str, Any],
             joins: Joins | None = None) -> dict[str, Any] | None:
    """`pending` grown by the event whose own params are `new`, or None when the union would leave the
    bounds of one event (DESIGN §5: a punches hull ≤ 31 days, ≤ 5,000 employees, a merge range ≤ 400
    days): the event then opens a new execution."""
    if kind not in COALESCED:
        return None
    gathering = Gathering(kind, pending, joins)
    return gathering.params() if gathering.join(new) else None


class Gathering:
    """The params of a pending execution growing by events of its kind: each `join` asks every stage's
    `Joining` (each keeps running bounds, so a join costs O(1) in what was gathered), and `params()` writes
    the union out once — a batch of the bridge grows an execution of thousands of windows without copying
    them per event."""

    def __init__(self, kind: str, params: dict[str, Any], joins: Joins | None = None) -> None:
        declared = installed_joins() if joins is None else joins
        self.kind = kind
        self.base = params
        self.events = int(params.get("events", 1))
        self.stages = _with_inputs(params)
        self.parts = {name: declared.get(name, Same)(params[name]) for name in self.stages}
        self.fields = set_or_all(params.get("fields"))

    def join(self, new: dict[str, Any]) -> bool:
        """Grow by one event's params; False (nothing changed) when the event runs other stages or the union
        would leave one event's bounds in any stage."""
        if _with_inputs(new) != self.stages or not all(p.admits(new[n]) for n, p in self.parts.items()):
            return False
        for name, part in self.parts.items():
            part.add(new[name])
        self.fields = union(self.fields, set_or_all(new.get("fields")))
        self.events += 1
        return True

    def params(self) -> dict[str, Any]:
        """The grown params (a new dict; the params it started from are not changed)."""
        # the stages' inputs (the growing lists) are written anew below: copy only the rest
        grown = {key: value if key in self.parts else copy.deepcopy(value) for key, value in self.base.items()}
        grown["events"] = self.events
        for name, part in self.parts.items():
            grown[name] = part.params()
        if "fields" in grown:
            grown["fields"] = listed(self.fields)
        return grown


def _with_inputs(params: Mapping[str, Any]) -> list[str]:
    """The stages an execution runs that have inputs of their own (a key in its params)."""
    return [name for name in params.get("stages", ()) if name in params]


class Same:
    """The join of a stage that declares none: only the same inputs join."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.inputs = dict(params)

    def admits(self, new: Mapping[str, Any]) -> bool:
        return dict(new) == self.inputs

    def add(self, new: Mapping[str, Any]) -> None:
        """Nothing grows: the inputs are those already held."""

    def params(self) -> dict[str, Any]:
        return copy.deepcopy(self.inputs)


# Helpers for the stages' joins: a list of values where None means everything.

def set_or_all(values: Iterable[Any] | None) -> set[Any] | None:
    """The values as a set; None (everything) stays None."""
    return None if values is None else set(values)


def union(first: set[Any] | None, second: set[Any] | None) -> set[Any] | None:
    """The union; None (everything) when either side is None."""
    return None if first is None or second is None else first | second


class BoundedUnion:
    """A growing union of values (employee numbers) that may hold at most `limit` of them; None (everyone)
    never joins, as it would leave any bound."""

    def __init__(self, values: Iterable[Any] | None, limit: int) -> None:
        self.values = set_or_all(values)
        self.limit = limit

    def admits(self, new: Iterable[Any] | None) -> bool:
        if self.values is None or new is None:
            return False
        return len(self.values) + len(set(new) - self.values) <= self.limit

    def add(self, new: Iterable[Any] | None) -> None:
        if self.values is None or new is None:
            self.values = None
        else:
            self.values |= set(new)  # in place: a join costs the new values, not the whole union

    def listed(self) -> list[Any] | None:
        return listed(self.values)


def listed(values: set[Any] | None) -> list[Any] | None:
    """The values sorted, as the params keep them (None stays None)."""
    return None if values is None else sorted(values)
