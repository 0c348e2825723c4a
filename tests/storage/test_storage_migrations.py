"""Migrations: `hamroh db upgrade` builds the schema the code expects, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, Table, insert, select, text

import storage
from storage import UTCDateTime, create_engine, current_revision, head_revision, upgrade, upgrade_async

pytestmark = pytest.mark.integration


async def test_upgrade_reaches_head_and_is_repeatable(db_url):
    engine = create_engine(db_url)
    try:
        assert await current_revision(engine) == head_revision()
        await upgrade_async(engine)  # running it again changes nothing and does not fail
        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()


async def test_models_and_migrations_agree(db_url):
    import bot.content.tables  # noqa: F401 - the live content's tables, as `hamroh db revision` imports them
    from bot.tables import schema_metadata  # every package's tables, as `hamroh db revision` collects them

    metadata = schema_metadata()
    engine = create_engine(db_url)

    def diff(connection):
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        return compare_metadata(context, metadata)

    try:
        async with engine.connect() as connection:
            changes = await connection.run_sync(diff)
    finally:
        await engine.dispose()
    assert changes == [], f"write a migration for: {changes}"


def test_sync_upgrade_creates_a_fresh_sqlite_file(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path}/fresh/hamroh.db"
    upgrade(url)
    assert (tmp_path / "fresh" / "hamroh.db").exists()


async def test_sync_upgrade_works_inside_a_running_loop(tmp_path):
    upgrade(f"sqlite+aiosqlite:///{tmp_path}/inloop.db")
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/inloop.db")
    try:
        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()


async def test_timestamps_come_back_aware_utc(db_url):
    metadata = MetaData()
    table = Table("t_times", metadata, Column("id", Integer, primary_key=True), Column("at", UTCDateTime))
    engine = create_engine(db_url)
    dushanbe = timezone(timedelta(hours=5))
    moment = datetime(2026, 3, 1, 23, 30, tzinfo=dushanbe)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
            await connection.execute(insert(table).values(id=1, at=moment))
            later = datetime(2026, 3, 1, 19, 0, tzinfo=UTC)  # 30 min after `moment`
            await connection.execute(insert(table).values(id=2, at=later))
            rows = (await connection.execute(select(table.c.at).order_by(table.c.at))).scalars().all()
            await connection.execute(text("DROP TABLE t_times"))
    finally:
        await engine.dispose()
    assert rows == [moment, later]
    assert all(r.tzinfo is not None and r.utcoffset() == timedelta(0) for r in rows)


async def test_naive_datetimes_are_refused(tmp_path):
    metadata = MetaData()
    table = Table("t_naive", metadata, Column("id", Integer, primary_key=True), Column("at", UTCDateTime))
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/n.db")
    try:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
            with pytest.raises(Exception, match="naive"):
                await connection.execute(insert(table).values(id=1, at=datetime(2026, 1, 1)))
    finally:
        await engine.dispose()


def test_autogenerate_without_the_packages_tables_is_refused(tmp_path):
    """An empty metadata would write a revision that drops every table: storage refuses it."""
    with pytest.raises(storage.MigrationError, match="no tables"):
        storage.autogenerate_revision(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", "nothing", metadata=MetaData())
