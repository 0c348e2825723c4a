"""Storage tests run on SQLite and, where reachable, on PostgreSQL."""

from storage.testing import db_url, postgres_database, sqlite_template_db  # noqa: F401 - fixtures
