"""Engine configuration that users notice: no "database is locked", URLs that just work."""

from __future__ import annotations

import asyncio
import importlib
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from storage import DEFAULT_DATABASE_URL, create_engine, database_url

pytestmark = pytest.mark.unit


def test_default_url_is_sqlite_under_data_and_env_overrides():
    assert database_url({}) == DEFAULT_DATABASE_URL == "sqlite+aiosqlite:///data/hamroh.db"
    assert database_url({"HAMROH_DATABASE_URL": "postgresql://u@db/hamroh"}) == "postgresql+asyncpg://u@db/hamroh"
    assert database_url({"HAMROH_DATABASE_URL": "sqlite:///x.db"}) == "sqlite+aiosqlite:///x.db"


def test_unsupported_database_is_named_in_the_error():
    with pytest.raises(ValueError, match="HAMROH_DATABASE_URL"):
        create_engine("mysql+aiomysql://u@h/db")


def test_importing_storage_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in [m for m in sys.modules if m == "storage" or m.startswith("storage.")]:
        monkeypatch.delitem(sys.modules, name)
    importlib.import_module("storage")
    assert list(tmp_path.iterdir()) == []


async def test_sqlite_file_gets_wal_busy_timeout_and_foreign_keys(tmp_path: Path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/nested/dir/h.db")
    try:
        async with engine.connect() as connection:
            assert (await connection.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await connection.execute(text("PRAGMA busy_timeout"))).scalar() >= 5000
            assert (await connection.execute(text("PRAGMA foreign_keys"))).scalar() == 1
    finally:
        await engine.dispose()
    assert (tmp_path / "nested" / "dir" / "h.db").exists()


async def _read_then_write(url: str, workers: int, rounds: int, begin: str) -> list[BaseException]:
    """The pattern that breaks SQLite in WAL mode: read, think, then write, many at once."""
    engine = create_engine(url, sqlite_begin=begin, pool_size=workers, max_overflow=0)  # type: ignore[arg-type]
    errors: list[BaseException] = []
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER)"))
            await connection.execute(text("INSERT INTO counter VALUES (1, 0)"))

        async def worker() -> None:
            for _ in range(rounds):
                try:
                    async with engine.begin() as connection:
                        n = (await connection.execute(text("SELECT n FROM counter WHERE id = 1"))).scalar()
                        await asyncio.sleep(0)
                        await connection.execute(text("UPDATE counter SET n = :n WHERE id = 1"), {"n": n + 1})
                except OperationalError as exc:
                    errors.append(exc)

        await asyncio.gather(*(worker() for _ in range(workers)))
        async with engine.connect() as connection:
            total = (await connection.execute(text("SELECT n FROM counter"))).scalar()
        if not errors:
            assert total == workers * rounds, "lost update"
    finally:
        await engine.dispose()
    return errors


async def test_concurrent_read_then_write_transactions_wait_instead_of_failing(tmp_path: Path):
    errors = await _read_then_write(f"sqlite+aiosqlite:///{tmp_path}/c.db", workers=20, rounds=10, begin="immediate")
    assert errors == []


async def test_deferred_transactions_would_fail_the_same_load(tmp_path: Path):
    """Why ``BEGIN IMMEDIATE`` is the default: the same load with deferred transactions fails."""
    errors = await _read_then_write(f"sqlite+aiosqlite:///{tmp_path}/d.db", workers=20, rounds=10, begin="deferred")
    assert errors and "database is locked" in str(errors[0])
