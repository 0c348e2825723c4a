"""Throw-away databases: a migrated SQLite template to copy, a uniquely named PostgreSQL database.

The test suite (its pytest plugin ``tests/plugins/databases.py``) and the benchmarks use them; they
import nothing but ``storage`` and never pytest, so the wheel stays free of test dependencies.
Each caller creates its own uniquely named PostgreSQL database inside the server given by
``HAMROH_TEST_POSTGRES_URL`` (default: the ``test`` database on 127.0.0.1:5432), so concurrent runs
never collide, and drops it at the end.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from storage import create_engine, upgrade

__all__ = [
    "POSTGRES_URL_ENV",
    "admin_postgres_url",
    "copy_sqlite",
    "postgres_unavailable_reason",
    "reset_tables",
    "sqlite_template",
    "temporary_postgres_database",
]

POSTGRES_URL_ENV = "HAMROH_TEST_POSTGRES_URL"
DEFAULT_TEST_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def admin_postgres_url() -> str:
    return os.environ.get(POSTGRES_URL_ENV, DEFAULT_TEST_POSTGRES_URL)


def postgres_unavailable_reason(timeout: float = 3.0) -> str | None:
    """``None`` when PostgreSQL answers, else a sentence saying what was tried and why it failed."""
    url = admin_postgres_url()

    async def _probe() -> None:
        engine = create_engine(url, connect_args={"timeout": timeout})
        try:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        finally:
            await engine.dispose()

    try:
        asyncio.run(asyncio.wait_for(_probe(), timeout + 1))
    except Exception as exc:
        shown = make_url(url).render_as_string(hide_password=True)
        return f"PostgreSQL not reachable at {shown} (set {POSTGRES_URL_ENV} to change): {exc!r}"
    return None


@contextmanager
def temporary_postgres_database(prefix: str = "hamroh_test") -> Iterator[str]:
    """Create a uniquely named, migrated database; yield its URL; drop it afterwards."""
    admin_url = make_url(admin_postgres_url())
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"

    async def _ddl(statement: str) -> None:
        engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                await connection.execute(text(statement))
        finally:
            await engine.dispose()

    asyncio.run(_ddl(f'CREATE DATABASE "{name}"'))
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        asyncio.run(_ddl(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def sqlite_template(directory: Path) -> Path:
    """Migrate a SQLite file once; tests copy it instead of migrating again (fast)."""
    path = directory / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


def copy_sqlite(template: Path, destination: Path) -> str:
    """Copy a migrated template to ``destination`` and return its URL."""
    shutil.copyfile(template, destination)
    return f"sqlite+aiosqlite:///{destination}"


async def reset_tables(engine: AsyncEngine) -> None:
    """Empty every table but Alembic's (one TRUNCATE, which the audit guard allows on purpose)."""
    async with engine.begin() as connection:
        names = (
            (
                await connection.execute(
                    text(
                        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                        "AND tablename <> 'alembic_version'"
                    )
                )
            )
            .scalars()
            .all()
        )
        if names:
            joined = ", ".join(f'"{name}"' for name in names)
            await connection.execute(text(f"TRUNCATE {joined} RESTART IDENTITY CASCADE"))
