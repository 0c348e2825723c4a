"""Persistence shared by every package: declarative base, engines, sessions, migrations.

`storage` imports nothing else of the project. Packages own their tables (they subclass
:class:`Base` in their own modules); the Alembic environment in ``storage/migrations`` imports
those modules so one migration history covers the whole database.
"""

from storage._base import Base
from storage._engine import (
    DATABASE_URL_ENV,
    DEFAULT_DATABASE_URL,
    autocommit,
    create_engine,
    database_url,
    open_pool,
    session_factory,
)
from storage._errors import MigrationError, StorageError
from storage._migrate import current_revision, head_revision, upgrade, upgrade_async
from storage._types import UTCDateTime, utcnow

__all__ = [
    "DATABASE_URL_ENV",
    "DEFAULT_DATABASE_URL",
    "Base",
    "MigrationError",
    "StorageError",
    "UTCDateTime",
    "autocommit",
    "create_engine",
    "current_revision",
    "database_url",
    "head_revision",
    "open_pool",
    "session_factory",
    "upgrade",
    "upgrade_async",
    "utcnow",
]
