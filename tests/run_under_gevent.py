"""Run the whole suite again with gevent's monkey-patching applied before anything is imported,
the way a `celery worker -P gevent` process runs our code. Usage: python tests/run_under_gevent.py [pytest args]
"""

from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402

import pytest  # noqa: E402

if __name__ == "__main__":
    # anyio's pytest plugin imports trio when present, and trio's epoll manager fails on a patched `select`;
    # the suite runs its async tests with pytest-asyncio, so the plugin is not needed here.
    sys.exit(pytest.main(["-p", "no:anyio", *sys.argv[1:]]))
