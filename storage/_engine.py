"""Engine and session factories.

Nothing is created at import time: the application builds one engine at start-up from its
settings and passes the session factory down; tests build their own.

SQLite is configured for many concurrent writers in one or several processes:

* WAL journal, so readers never block the writer and the writer never blocks readers;
* a busy timeout, so a writer waits for the lock instead of failing with "database is locked";
* ``BEGIN IMMEDIATE`` for every transaction. A deferred transaction that reads and then writes
  cannot wait for the write lock in WAL mode: when another connection committed in between,
  SQLite fails it at once with SQLITE_BUSY (the busy timeout does not apply). Taking the write
  lock at ``BEGIN`` makes every transaction wait its turn instead. The price is that SQLite
  transactions are serialised, so keep them short and never await the network inside one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

__all__ = [
    "DATABASE_URL_ENV",
    "DEFAULT_DATABASE_URL",
    "autocommit",
    "checkpoint_after_erasure",
    "create_engine",
    "database_url",
    "open_pool",
    "session_factory",
]

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///data/hamroh.db"
DATABASE_URL_ENV = "HAMROH_DATABASE_URL"
SQLITE_BUSY_TIMEOUT_MS = 30_000
AUTOCOMMIT = "AUTOCOMMIT"
POSTGRES_POOL_SIZE = 15


def database_url(environ: dict[str, str] | None = None) -> str:
    """The database URL: ``HAMROH_DATABASE_URL`` if set, else the SQLite file under ``data/``.

    A plain ``postgresql://`` URL (as operators usually write it) is given the asyncpg driver.
    """
    env = os.environ if environ is None else environ
    url = env.get(DATABASE_URL_ENV, "").strip() or DEFAULT_DATABASE_URL
    return _with_async_driver(url)


def _with_async_driver(url: str) -> str:
    for plain, driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


def create_engine(
    url: str | URL,
    *,
    sqlite_begin: Literal["immediate", "deferred"] = "immediate",
    postgres_pool_size: int = POSTGRES_POOL_SIZE,
    **engine_kwargs: Any,
) -> AsyncEngine:
    """Create an async engine for SQLite (aiosqlite) or PostgreSQL (asyncpg).

    ``engine_kwargs`` go to :func:`sqlalchemy.ext.asyncio.create_async_engine` (e.g.
    ``pool_size``). For SQLite the parent directory of the file is created if missing.

    ``postgres_pool_size``: PostgreSQL connections each process keeps open (plus up to 10 more
    for bursts, closed again after use). Why 15 and not SQLAlchemy's 5: under 100 chat messages a
    second the bursts outgrew 5, and every extra connection was opened and closed again (a new
    server process, a login, asyncpg's type introspection), which tripled the p95 latency.
    Processes x (pool size + 10) must stay below the server's ``max_connections`` (100 by default).
    """
    parsed = make_url(_with_async_driver(url) if isinstance(url, str) else url)
    backend = parsed.get_backend_name()
    # a failed statement's message (logged, or shown in a traceback) must not carry its
    # parameters: they are migrants' messages, counsellors' notes and usernames
    engine_kwargs.setdefault("hide_parameters", True)
    if backend == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            _private_file(Path(database).expanduser())
        engine_kwargs.setdefault("connect_args", {}).setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
        if database and database != ":memory:":
            # one connection per process: transactions queue in the pool (FIFO, woken at once) instead
            # of in SQLite's busy handler, which sleeps 25-100 ms between tries (see module doc)
            engine_kwargs.setdefault("pool_size", 1)
            engine_kwargs.setdefault("max_overflow", 0)
            engine_kwargs.setdefault("pool_timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
        engine = create_async_engine(parsed, **engine_kwargs)
        _configure_sqlite(engine, in_memory=not database or database == ":memory:", begin=sqlite_begin)
        return engine
    if backend == "postgresql":
        # No pre-ping: it is one more round trip on every checkout, three per chat message. A
        # connection the server dropped fails its statement instead; SQLAlchemy then recognises the
        # disconnect and discards the whole pool, so only that one request fails (the web chat
        # resends it under the same id, Telegram redelivers the update). Recycling connections
        # after an hour keeps firewalls and proxies from dropping idle ones silently.
        engine_kwargs.setdefault("pool_recycle", 3600)
        engine_kwargs.setdefault("pool_size", postgres_pool_size)
        return create_async_engine(parsed, **engine_kwargs)
    raise ValueError(
        f"unsupported database {backend!r} in {DATABASE_URL_ENV}: use sqlite+aiosqlite:///path/to.db "
        "or postgresql+asyncpg://user@host/dbname"
    )


def _private_file(path: Path) -> None:
    """Create the SQLite file readable by its owner only (its -wal and -shm files inherit the mode).

    Why: with the default umask the database, which holds conversations, was created 0644.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def _configure_sqlite(engine: AsyncEngine, *, in_memory: bool, begin: str) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction begins (see module doc).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                # NORMAL is durable across application crashes in WAL mode and much faster.
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            # erased rows are overwritten with zeros in the file, not just unlinked from the b-tree:
            # /delete and the retention purge must not leave migrants' texts in free pages
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        # after an autocommit session SQLAlchemy hands the driver back its own default (implicit
        # BEGIN before writes); transactions here are begun by ``_on_begin`` alone
        dbapi_connection.isolation_level = None

    statement = "BEGIN IMMEDIATE" if begin == "immediate" else "BEGIN"

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # an autocommit connection (see :func:`autocommit`) runs each statement on its own: a read
        # then takes no write lock at all
        if connection.get_execution_options().get("isolation_level") != AUTOCOMMIT:
            connection.exec_driver_sql(statement)


async def autocommit(session: AsyncSession) -> AsyncSession:
    """Put a fresh ``session`` in autocommit mode: each statement is its own transaction.

    Why: a single read, or a single self-contained write, needs no ``BEGIN`` and ``COMMIT``
    round trips around it (on PostgreSQL that is two of three round trips), and on SQLite a read
    then takes no write lock (every other transaction here begins ``IMMEDIATE``). Use it only
    where one statement is the whole unit of work; a change spanning statements needs a normal
    transaction. Call it before the session's first statement.
    """
    await session.connection(execution_options={"isolation_level": AUTOCOMMIT})
    return session


async def checkpoint_after_erasure(engine: AsyncEngine) -> bool:
    """After erasing people's data on SQLite, copy the WAL into the database and empty it.

    Why: in WAL mode every page a transaction wrote stays in the ``-wal`` file until a
    checkpoint, and the file is reused, not wiped; the deleted texts were found there in 25
    copies after /delete. ``secure_delete`` zeroes the freed pages, and ``TRUNCATE`` checkpoints
    them into the database and cuts the WAL to zero bytes. A no-op (False) on PostgreSQL, or when
    readers keep the checkpoint from finishing (it is tried again after the next erasure).
    """
    if engine.dialect.name != "sqlite":
        return False
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level=AUTOCOMMIT)
        row = (await connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")).first()
    return row is not None and int(row[0]) == 0


async def open_pool(engine: AsyncEngine) -> int:
    """Open the pool's connections now, at start-up; how many.

    Why: a PostgreSQL connection costs a server process, a login and asyncpg's type
    introspection. Opened lazily, the first burst of users after a restart paid for fifteen of them
    inside their replies (p50 above 400 ms for the first seconds of a load test).
    """
    size = int(getattr(engine.sync_engine.pool, "size", lambda: 1)())
    async with contextlib.AsyncExitStack() as stack:  # all checked out at once, then returned
        await asyncio.gather(*(stack.enter_async_context(engine.connect()) for _ in range(size)))
    return size


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose objects stay readable after commit (pages render after the transaction)."""
    return async_sessionmaker(engine, expire_on_commit=False)
