"""Engine configuration that users notice: no "database is locked", URLs that just work."""

from __future__ import annotations

import asyncio
import importlib
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from storage import DEFAULT_DATABASE_URL, autocommit, create_engine, database_url, open_pool, session_factory

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


async def test_an_autocommit_read_does_not_wait_for_a_writer_and_transactions_stay_whole(tmp_path: Path):
    """The chat's first look at a message reads in autocommit: it must not queue behind a writer
    holding SQLite's write lock, and the pooled connection must come back with real transactions."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/h.db", pool_size=2, max_overflow=0,
                           connect_args={"timeout": 1.0})
    sessions = session_factory(engine)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (n INTEGER)"))
            await connection.execute(text("INSERT INTO t VALUES (1)"))
        async with sessions() as writer:
            await writer.execute(text("INSERT INTO t VALUES (2)"))  # holds the write lock
            async with sessions() as reader:
                await autocommit(reader)
                seen = (await asyncio.wait_for(reader.execute(text("SELECT count(*) FROM t")), 0.5)).scalar()
            assert seen == 1  # the writer's row is not committed yet
            await writer.commit()
        for _ in range(2):  # both pooled connections, one of them used in autocommit above
            async with sessions() as session:
                await session.execute(text("INSERT INTO t VALUES (3)"))
                await session.rollback()
        async with sessions() as session:
            assert (await session.execute(text("SELECT count(*) FROM t"))).scalar() == 2
    finally:
        await engine.dispose()


def test_postgres_keeps_enough_connections_open_and_sqlite_one(tmp_path: Path):
    """Under bursts a small pool opened and closed a PostgreSQL connection per message."""
    assert create_engine("postgresql+asyncpg://u@db/h").sync_engine.pool.size() == 15  # type: ignore[attr-defined]
    assert create_engine("postgresql+asyncpg://u@db/h", postgres_pool_size=4).sync_engine.pool.size() == 4  # type: ignore[attr-defined]
    assert create_engine(f"sqlite+aiosqlite:///{tmp_path}/h.db", postgres_pool_size=4).sync_engine.pool.size() == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
async def test_the_pool_is_opened_at_start_up_not_in_the_first_replies(db_url: str):
    engine = create_engine(db_url, postgres_pool_size=4)
    try:
        opened = await open_pool(engine)
        assert opened == (1 if db_url.startswith("sqlite") else 4)
        assert engine.sync_engine.pool.checkedin() == opened  # type: ignore[attr-defined]
    finally:
        await engine.dispose()
