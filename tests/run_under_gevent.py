"""Run the whole suite again with gevent's monkey-patching applied before anything is imported,
the way a `celery worker -P gevent` process runs our code. Usage: python tests/run_under_gevent.py [pytest args]
"""

from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402

import pytest  # noqa: E402

if __name__ == "__main__":
    sys.exit(pytest.main(sys.argv[1:]))
