"""Bot test fixtures: throw-away migrated databases (SQLite and PostgreSQL) from storage.testing."""

from storage.testing import db_url, postgres_database, sqlite_template_db  # noqa: F401
