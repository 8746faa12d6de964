"""Engines and the portable upsert, the app tables, Alembic migrations, the ODBC pool."""
