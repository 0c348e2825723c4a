"""The declarative base every package's tables derive from."""

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

__all__ = ["Base"]

# Deterministic constraint names: Alembic can then drop or alter them by name on both SQLite
# (batch mode) and PostgreSQL without guessing what the database generated.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with one shared metadata, so one Alembic history covers all tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
