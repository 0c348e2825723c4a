"""Rate limits shared by every process: the ``limits`` library over memory, the database or Redis.

Why not a token bucket in each process: ``hamroh serve --workers N`` and replicas behind a load
balancer each kept their own buckets, so every limit was N times looser than configured, and a
restart forgot them. Here one counter per (rule, identifier) lives where every process sees it:

* ``memory://`` — one process only (a laptop on SQLite);
* ``database`` — a small table in the application's own database (PostgreSQL for replicas), one
  upsert per check, so no new service is needed;
* ``redis://host:6379/0`` — Redis, when the operator runs one.

Identifiers (client addresses, usernames) are keyed-hashed before they reach any storage, so
neither the table nor Redis holds an address or a username.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string
from sqlalchemy import Integer, String, Table, case, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from storage._base import Base
from storage._engine import autocommit
from storage._types import UTCDateTime

log = logging.getLogger("hamroh.limits")

__all__ = ["DatabaseStorage", "RateLimitCounter", "RateLimiter", "parse_rule", "purge_expired_counters"]


class RateLimitCounter(Base):
    """One fixed-window counter: a keyed hash of (rule, identifier), its count and its end."""

    __tablename__ = "rate_limit_counter"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


def parse_rule(rule: str) -> RateLimitItem:
    """``"30 per minute"``, ``"10/15 minutes"``; a ValueError names the expected form."""
    try:
        return parse(rule)
    except ValueError as exc:
        raise ValueError(f"{rule!r} is not a rate limit; write it like '30 per minute' or '10 per 15 minutes'") from exc


class DatabaseStorage(Storage):
    """``limits`` storage on the application's database (fixed windows only).

    Each ``incr`` is one autocommit upsert (``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``),
    atomic on PostgreSQL and SQLite alike, so concurrent workers never lose a hit.
    """

    STORAGE_SCHEME = ["hamroh+database"]  # noqa: RUF012 - the base class declares it so

    def __init__(self, sessions: async_sessionmaker[AsyncSession], **options: Any) -> None:
        super().__init__(None, wrap_exceptions=False)
        self._sessions = sessions

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return SQLAlchemyError

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = datetime.now(UTC)
        until = now + timedelta(seconds=expiry)
        table: Table = RateLimitCounter.__table__  # type: ignore[assignment]
        async with self._sessions() as session:
            await autocommit(session)
            dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            upsert = insert(table).values(key=key, count=amount, expires_at=until)
            expired = table.c.expires_at <= now
            stmt = upsert.on_conflict_do_update(
                index_elements=[table.c.key],
                set_={
                    "count": case((expired, amount), else_=table.c.count + amount),
                    "expires_at": case((expired, until), else_=table.c.expires_at),
                },
            ).returning(table.c.count)
            return int((await session.execute(stmt)).scalar_one())

    async def _row(self, key: str) -> RateLimitCounter | None:
        async with self._sessions() as session:
            await autocommit(session)
            row: RateLimitCounter | None = await session.scalar(
                select(RateLimitCounter).where(RateLimitCounter.key == key))
            if row is None or row.expires_at <= datetime.now(UTC):
                return None
            return row

    async def get(self, key: str) -> int:
        row = await self._row(key)
        return row.count if row else 0

    async def get_expiry(self, key: str) -> float:
        row = await self._row(key)
        return row.expires_at.timestamp() if row else time.time()

    async def check(self) -> bool:
        try:
            await self.get("check")
        except SQLAlchemyError:
            return False
        return True

    async def reset(self) -> int | None:
        async with self._sessions() as session, session.begin():
            result: Any = await session.execute(delete(RateLimitCounter))
            return int(result.rowcount or 0)

    async def clear(self, key: str) -> None:
        async with self._sessions() as session:
            await autocommit(session)
            await session.execute(delete(RateLimitCounter).where(RateLimitCounter.key == key))


async def purge_expired_counters(*, session: AsyncSession, now: datetime | None = None, dry_run: bool = False) -> int:
    """Delete counters whose window ended (the retention purge calls it); how many."""
    cutoff = now or datetime.now(UTC)
    where = RateLimitCounter.expires_at < cutoff
    if dry_run:
        return int(await session.scalar(select(func.count()).select_from(RateLimitCounter).where(where)) or 0)
    result: Any = await session.execute(delete(RateLimitCounter).where(where))
    return int(result.rowcount or 0)


@dataclass(frozen=True)
class _Rule:
    name: str
    item: RateLimitItem


class RateLimiter:
    """Named rules (``"ask"``, ``"login_address"``...) checked against one shared storage.

    ``hit`` consumes one unit and answers 0 when allowed, else the seconds until the window ends
    (for ``Retry-After``). A storage that fails (database or Redis down) lets the request through
    and says so once per failure kind: a broken limiter must not take the chat down with it.
    """

    def __init__(self, storage: Storage, rules: dict[str, str], *, key_secret: str,
                 exempt: frozenset[str] = frozenset(), per_address: frozenset[str] = frozenset()) -> None:
        self._limiter = FixedWindowRateLimiter(storage)
        #: addresses no per-address rule (``per_address``) applies to, e.g. the machine's own
        #: benchmarks and health checks on loopback
        self._exempt = exempt
        self._per_address = per_address
        self._rules = {name: _Rule(name, parse_rule(rule)) for name, rule in rules.items()}
        self._secret = key_secret.encode() or b"hamroh"
        self.storage = storage

    @classmethod
    def from_uri(cls, uri: str, rules: dict[str, str], *, key_secret: str,
                 sessions: async_sessionmaker[AsyncSession] | None = None, exempt: frozenset[str] = frozenset(),
                 per_address: frozenset[str] = frozenset()) -> RateLimiter:
        """``memory://``, ``database`` (needs ``sessions``) or ``redis://...``."""
        storage: Storage
        if uri in ("memory", "memory://"):
            storage = MemoryStorage()
        elif uri == "database":
            if sessions is None:
                raise ValueError("rate limits on the database need the session factory")
            storage = DatabaseStorage(sessions)
        elif uri.startswith(("redis://", "rediss://")):
            found = storage_from_string(f"async+{uri}", implementation="redispy")
            if not isinstance(found, Storage):  # pragma: no cover - the async+ scheme gives an async one
                raise ValueError(f"rate_limits.storage {uri!r}: not an asynchronous storage")
            storage = found
        else:
            raise ValueError(f"rate_limits.storage {uri!r}: use memory, database or redis://host:port/db")
        return cls(storage, rules, key_secret=key_secret, exempt=exempt, per_address=per_address)

    def has(self, name: str) -> bool:
        return name in self._rules

    def _rule(self, name: str, identifier: str) -> _Rule | None:
        if name in self._per_address and identifier in self._exempt:
            return None
        return self._rules.get(name)

    def _id(self, identifier: str) -> str:
        return hmac.new(self._secret, identifier.encode("utf-8", "replace"), hashlib.sha256).hexdigest()[:40]

    async def hit(self, name: str, identifier: str) -> float:
        rule = self._rule(name, identifier)
        if rule is None:
            return 0.0
        ident = self._id(identifier)
        try:
            if await self._limiter.hit(rule.item, name, ident):
                return 0.0
            stats = await self._limiter.get_window_stats(rule.item, name, ident)
        except Exception:  # fail open, see the class docstring
            log.warning("rate limit storage failed; request let through")
            return 0.0
        return max(1.0, math.ceil(stats.reset_time - time.time()))

    async def test(self, name: str, identifier: str) -> float:
        """Like :meth:`hit` without consuming: 0 when a hit would be allowed now."""
        rule = self._rule(name, identifier)
        if rule is None:
            return 0.0
        ident = self._id(identifier)
        try:
            if await self._limiter.test(rule.item, name, ident):
                return 0.0
            stats = await self._limiter.get_window_stats(rule.item, name, ident)
        except Exception:
            return 0.0
        return max(1.0, math.ceil(stats.reset_time - time.time()))

    async def clear(self, name: str, identifier: str) -> None:
        rule = self._rules.get(name)
        if rule is not None:
            await self._limiter.clear(rule.item, name, self._id(identifier))
