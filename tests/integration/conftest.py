"""The integration tests' fixtures, found by every module here without importing them: the settings of a test
(`hrsync_env`), BioStar's MariaDB (`biostar_db`, `staff`), the PostgreSQL HRIS (`pg_hris`, `hris`,
`demo_hris`), a recording SMTP server (`smtp_server`), a TCP proxy for outages (`tcp_proxy`), an event plane
of the test's own (`event_plane`) and an empty app database of each kind (`empty_database`). Helpers (types,
builders, the stack) stay importable from the `*_fixtures` modules and `scenarios`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.config.settings import get_settings
from shared.runtime import runner
from tests.conftest import create_mariadb_database, drop_mariadb_database, set_env
from tests.integration.biostar_fixtures import biostar_db, hrsync_env, staff
from tests.integration.hris_fixtures import demo_hris, hris, pg_hris
from tests.integration.scenarios import event_plane
from tests.integration.smtp_fixtures import smtp_server
from tests.integration.tcp_proxy import tcp_proxy

__all__ = ["biostar_db", "demo_hris", "empty_database", "event_plane", "hris", "hrsync_env", "pg_hris", "smtp_server",
           "staff", "tcp_proxy"]


@pytest.fixture(params=["mariadb", "sqlite"])
def empty_database(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[str]:
    """An empty app database of each kind, set as HRSYNC_DATABASE_URL."""
    name = ""
    if request.param == "mariadb":
        request.getfixturevalue("mariadb")
        name = create_mariadb_database("hrsync_migrate")
        url = f"mysql+aiomysql://root@127.0.0.1:3306/{name}"
    else:
        url = f"sqlite+aiosqlite:///{tmp_path}/app.db"
    with pytest.MonkeyPatch.context() as mp:
        set_env(mp, database_url=url)
        yield request.param
        runner.shutdown()
    get_settings.cache_clear()  # the restored environment must be read again
    if name:
        drop_mariadb_database(name)
