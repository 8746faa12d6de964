"""Which database a dialect speaks: one test for the places whose SQL differs on MariaDB."""

from __future__ import annotations

from sqlalchemy import Dialect

MARIADB_DIALECTS = ("mysql", "mariadb")  # SQLAlchemy names MariaDB's dialect either way, by URL and server


def is_mariadb(dialect: Dialect) -> bool:
    """True for MariaDB (and MySQL): ON DUPLICATE KEY UPDATE, INSERT IGNORE, DATETIME(6), SLEEP()."""
    return dialect.name in MARIADB_DIALECTS
