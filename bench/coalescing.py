"""Benchmark of coalescing in memory: N events of one kind joining one pending execution, then its params
written once (what one bridge batch does in `shared.events.inbox`), with the stages' declared joins against
the `shared/events/coalesce.py` of a baseline commit (read with `git show`, run in the same process).

One command: `python3 bench/coalescing.py --baseline 60c1933` (N = 5,000, the most employees one execution
holds). Rounds alternate baseline and current so both run under the same load; printed per kind: events
joined, whether both wrote the same params, the median times and the median, min and max of the per-round
ratio current/baseline. No services needed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipelines.registry import joins  # noqa: E402  (after the path: run as a script)
from shared.events import coalesce  # noqa: E402

T0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def punches(n: int) -> dict[str, Any]:
    """A 5-minute window, one per minute over 20 days (all within 31: every event joins), one of 7 devices."""
    start = T0 + dt.timedelta(minutes=n % (60 * 24 * 20))
    return {"scope": "punches", "stages": ["merge", "notify"], "event": {"id": f"e{n}", "type": "t"},
            "merge": {"window": {"from": start.isoformat(), "to": (start + dt.timedelta(minutes=5)).isoformat()},
                      "devices": [n % 7], "employees": None}}


def employee(n: int) -> dict[str, Any]:
    """One employee's change: the extract and the merge of their recent week."""
    return {"scope": "employee", "stages": ["extract", "merge", "notify"], "fields": ["name"],
            "event": {"id": f"e{n}", "type": "t"},
            "extract": {"full": False, "employees": [f"E{n}"], "source": "hris"},
            "merge": {"from": "2026-11-24", "to": "2026-11-30", "employees": [f"E{n}"]}}


def baseline_module(commit: str) -> types.ModuleType:
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{commit}:shared/events/coalesce.py"],
                            check=True, capture_output=True, text=True).stdout
    module = types.ModuleType("baseline_coalesce")
    exec(compile(source, f"{commit}:shared/events/coalesce.py", "exec"), module.__dict__)  # noqa: S102
    return module


def gather(gathering: Callable[..., Any], initial: Callable[..., Any], kind: str, events: list[dict[str, Any]],
           **given: Any) -> tuple[float, int, dict[str, Any]]:
    started = time.perf_counter()
    pending = gathering(kind, initial(kind, events[0], **given), **given)
    joined = sum(pending.join(e) for e in events[1:])
    params = pending.params()
    return time.perf_counter() - started, joined, params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="the commit whose coalesce.py is the baseline")
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    before, declared = baseline_module(args.baseline), joins()
    for kind, make in (("punches", punches), ("employee", employee)):
        events = [make(n) for n in range(args.events)]
        old, new, ratios = [], [], []
        for _ in range(args.rounds):
            t_old, j_old, p_old = gather(before.Gathering, before.initial, kind, events)
            t_new, j_new, p_new = gather(coalesce.Gathering, coalesce.initial, kind, events, joins=declared)
            if (j_old, p_old) != (j_new, p_new):
                raise SystemExit(f"{kind}: the params differ from the baseline's")
            old.append(t_old)
            new.append(t_new)
            ratios.append(t_new / t_old)
        mid = args.rounds // 2
        old.sort()
        new.sort()
        ratios.sort()
        print(f"{kind}: {args.events} events, {j_new} joined, same params as {args.baseline}; median "
              f"{old[mid] * 1000:.1f} ms → {new[mid] * 1000:.1f} ms; current/baseline per round: median "
              f"{ratios[mid]:.2f} (min {ratios[0]:.2f}, max {ratios[-1]:.2f})")


if __name__ == "__main__":
    main()
