"""Persistence shared by every package: declarative base, engines, sessions, migrations.

`storage` imports nothing else of the project. Packages own their tables (they subclass
:class:`Base` in their own modules); one migration history in ``storage/migrations`` covers the
whole database, and autogenerate gets the packages' metadata from the caller
(:func:`autogenerate_revision`), so the dependency points one way.
"""

from storage._base import Base
from storage._engine import (
    DATABASE_URL_ENV,
    DEFAULT_DATABASE_URL,
    autocommit,
    checkpoint_after_erasure,
    create_engine,
    database_url,
    open_pool,
    session_factory,
)
from storage._errors import MigrationError, StorageError
from storage._limits import DatabaseStorage, RateLimitCounter, RateLimiter, parse_rule, purge_expired_counters
from storage._migrate import autogenerate_revision, current_revision, head_revision, upgrade, upgrade_async
from storage._text import clean_json, clean_text
from storage._types import UTCDateTime, utcnow

__all__ = [
    "DATABASE_URL_ENV",
    "DEFAULT_DATABASE_URL",
    "Base",
    "DatabaseStorage",
    "MigrationError",
    "RateLimitCounter",
    "RateLimiter",
    "StorageError",
    "UTCDateTime",
    "autocommit",
    "autogenerate_revision",
    "checkpoint_after_erasure",
    "clean_json",
    "clean_text",
    "create_engine",
    "current_revision",
    "database_url",
    "head_revision",
    "open_pool",
    "parse_rule",
    "purge_expired_counters",
    "session_factory",
    "upgrade",
    "upgrade_async",
    "utcnow",
]
