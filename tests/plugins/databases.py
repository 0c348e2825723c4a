"""Pytest plugin: throw-away migrated databases for every package's tests.

Registered once in ``tests/conftest.py`` (``pytest_plugins``), so no conftest re-imports the
fixtures. The database helpers themselves live in :mod:`storage.scratch` (no pytest there), which
the benchmarks use too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import create_engine
from storage.scratch import (
    copy_sqlite,
    postgres_unavailable_reason,
    reset_tables,
    sqlite_template,
    temporary_postgres_database,
)

__all__ = ["db_url", "empty_database", "postgres_database", "sqlite_template_db"]

_POSTGRES_PARAM = pytest.param("postgres", marks=pytest.mark.postgres, id="postgres")


@pytest.fixture(scope="session")
def sqlite_template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, made once per test session."""
    return sqlite_template(tmp_path_factory.mktemp("hamroh-sqlite"))


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A migrated PostgreSQL database unique to this test session, dropped at the end."""
    reason = postgres_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with temporary_postgres_database() as url:
        yield url


def empty_database(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database of ``kind`` ("sqlite" or "postgres"), outside any event loop."""
    if kind == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template_db")
        return copy_sqlite(template, tmp_path / "hamroh.db")
    url: str = request.getfixturevalue("postgres_database")

    async def _reset() -> None:
        engine = create_engine(url)
        try:
            await reset_tables(engine)
        finally:
            await engine.dispose()

    asyncio.run(_reset())
    return url


@pytest.fixture(params=["sqlite", _POSTGRES_PARAM])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: a fresh SQLite file, or the session's PostgreSQL database.

    Indirectly parametrised: the ``postgres`` parameter carries the ``postgres`` mark, so
    ``-m 'not postgres'`` leaves those cases out.
    """
    return empty_database(request.param, request, tmp_path)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that parametrise ``db_url`` themselves (``indirect=True``) replace the fixture's params
    and with them the ``postgres`` mark: put it back, so ``-m 'not postgres'`` leaves them out too."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("db_url") == "postgres":
            item.add_marker(pytest.mark.postgres)
