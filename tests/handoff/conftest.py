"""Handoff test fixtures live in handoff_support (importable by name); registered here."""

from storage.testing import db_url, postgres_database, sqlite_template_db  # noqa: F401
from tests.handoff.handoff_support import answers, engine, outbound, sessions, settings  # noqa: F401
