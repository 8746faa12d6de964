"""Fuzz the event parser with hostile payloads: every one must end in an event or a one-line reason.

    python bench/fuzz_events.py [--payloads 100000] [--seed 1]

Payloads are generated (seeded, so a failure can be replayed): random bytes, broken UTF-8, truncated
and mutated valid events, wrong types in every field, deep nesting, huge numbers and strings, control
characters, duplicate keys, oversize bodies. The parser must never raise anything but `InvalidEvent`,
and every reason must be one line of at most 300 characters. Prints the throughput and the most
common reasons.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.events.models import MAX_EVENT_BYTES, InvalidEvent, parse_event

VALID = [
    {"specversion": "1.0", "id": "e1", "source": "s", "type": "hrsync.sync.requested",
     "data": {"scope": "nightly", "from": "2026-11-01", "to": "2026-11-02", "employees": ["E1"], "notify": True}},
    {"specversion": "1.0", "id": "e2", "source": "s", "type": "hrsync.employee.changed",
     "data": {"employee_no": "E0042", "fields": ["email"]}},
    {"specversion": "1.0", "id": "e3", "source": "s", "type": "hrsync.punches.imported",
     "data": {"from": "2026-11-01T00:00:00Z", "to": "2026-11-01T06:00:00+01:00", "devices": [1, 2]}},
]
ODD_VALUES: list[object] = [
    None, True, False, 0, -1, 2**63, 2**200, 1.5, float("1e308"), "", " ", "\x00", "\r\nBcc: x@y", "é" * 300,
    "x" * 10_000, [], {}, [None], {"": ""}, "2026-02-30", "2026-11-01T25:00:00Z", "9999-99-99", "../../etc",
    "'; DROP TABLE employees;--", "\u202e", "\ufffd", [[[[[]]]]],
]


def mutate(rng: random.Random, value: object, depth: int = 0) -> object:
    """A copy of `value` with one field replaced, removed or added, somewhere inside."""
    if isinstance(value, dict) and value and depth < 4:
        out = dict(value)
        key = rng.choice(list(out))
        roll = rng.random()
        if roll < 0.4:
            out[key] = mutate(rng, out[key], depth + 1)
        elif roll < 0.6:
            del out[key]
        elif roll < 0.8:
            out[key] = rng.choice(ODD_VALUES)
        else:
            out[rng.choice(["extra", "Data", "ID", "x" * 30, "datacontenttype", "time"])] = rng.choice(ODD_VALUES)
        return out
    if isinstance(value, list) and value and depth < 4:
        out_list = list(value)
        out_list[rng.randrange(len(out_list))] = rng.choice(ODD_VALUES)
        return out_list
    return rng.choice(ODD_VALUES)


def payloads(rng: random.Random) -> dict[str, Callable[[], bytes]]:
    """Generators of hostile bodies, by family."""
    def valid_mutated() -> bytes:
        return json.dumps(mutate(rng, rng.choice(VALID))).encode()

    def random_bytes() -> bytes:
        return rng.randbytes(rng.randrange(0, 200))

    def truncated() -> bytes:
        body = json.dumps(rng.choice(VALID)).encode()
        return body[: rng.randrange(len(body))]

    def bad_utf8() -> bytes:
        body = bytearray(json.dumps(rng.choice(VALID)).encode())
        body[rng.randrange(len(body))] = rng.choice([0x80, 0xC3, 0xFF, 0xED])
        return bytes(body)

    def deep() -> bytes:
        depth = rng.randrange(100, 5000)
        if rng.random() < 0.5:
            return ("[" * depth + "]" * depth).encode()
        return ('{"a":' * depth + "1" + "}" * depth).encode()

    def huge() -> bytes:
        event = dict(rng.choice(VALID))
        size = rng.choice([MAX_EVENT_BYTES - 300, MAX_EVENT_BYTES, 2 * MAX_EVENT_BYTES])
        event["data"] = {**event["data"], "pad": "x" * size}
        return json.dumps(event).encode()

    def duplicate_keys() -> bytes:
        return b'{"specversion":"1.0","id":"a","id":"b","source":"s","type":"hrsync.employee.changed",' \
               b'"data":{"employee_no":"E1","employee_no":{"x":1}}}'

    def not_objects() -> bytes:
        return json.dumps(rng.choice(ODD_VALUES)).encode()

    return {"valid-mutated": valid_mutated, "random-bytes": random_bytes, "truncated": truncated,
            "bad-utf8": bad_utf8, "deep-nesting": deep, "huge": huge, "duplicate-keys": duplicate_keys,
            "not-objects": not_objects}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payloads", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    families = payloads(rng)
    weights = {"valid-mutated": 60, "random-bytes": 10, "truncated": 8, "bad-utf8": 6, "deep-nesting": 2,
               "huge": 1, "duplicate-keys": 3, "not-objects": 10}
    names = list(weights)
    reasons: collections.Counter[str] = collections.Counter()
    accepted = crashes = bad_reasons = 0
    started = time.perf_counter()
    for i in range(args.payloads):
        family = rng.choices(names, [weights[n] for n in names])[0]
        body = families[family]()
        try:
            parse_event(body)
            accepted += 1
        except InvalidEvent as invalid:
            reasons[invalid.reason.split(":")[0][:40]] += 1
            if "\n" in invalid.reason or len(invalid.reason) > 300:
                bad_reasons += 1
                print(f"payload {i} ({family}): reason not one short line: {invalid.reason[:200]!r}")
        except Exception as exc:  # the property under test: nothing else may escape
            crashes += 1
            print(f"payload {i} ({family}) raised {type(exc).__name__}: {exc}"[:300])
    elapsed = time.perf_counter() - started
    print(f"python bench/fuzz_events.py --payloads {args.payloads} --seed {args.seed}")
    print(f"{args.payloads} payloads in {elapsed:.1f}s ({args.payloads / elapsed:,.0f}/s): "
          f"{accepted} accepted, {args.payloads - accepted - crashes} refused with a reason, "
          f"{crashes} unexpected exceptions, {bad_reasons} malformed reasons")
    for reason, count in reasons.most_common(12):
        print(f"  {count:>7}  {reason}")
    return 1 if crashes or bad_reasons else 0


if __name__ == "__main__":
    sys.exit(main())
