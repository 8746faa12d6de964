"""Run N overlapping greenlets through the runner under monkey.patch_all(); print a JSON report.

Started as a subprocess by the tests, so the process is patched before anything else is imported.
Usage: python -m tests.integration.greenlet_burst DATABASE_URL N SLEEP POOL_SIZE
"""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
from sqlalchemy import text  # noqa: E402

from shared.database.db import engine_for, make_engine  # noqa: E402, F401
from shared.runtime.runner import run_async, shutdown  # noqa: E402


def main() -> None:
    url, count, sleep = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])

    async def sleepy(i: int) -> int:
        engine = await engine_for(url)
        async with engine.connect() as conn:
            await conn.execute(text("SELECT SLEEP(:s)"), {"s": sleep})
        return i

    run_async(sleepy(-1))  # warm the engine so the timing measures the calls, not the first connect
    started = time.perf_counter()
    greenlets = [gevent.spawn(run_async, sleepy(i)) for i in range(count)]
    gevent.joinall(greenlets)
    wall = time.perf_counter() - started
    failures = [repr(g.exception) for g in greenlets if not g.successful()]
    values = sorted(g.value for g in greenlets if g.successful())
    shutdown()
    print(json.dumps({"wall": wall, "failures": failures, "ok": len(values),
                      "distinct": len(set(values))}))


if __name__ == "__main__":
    main()
