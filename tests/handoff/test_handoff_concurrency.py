"""Twenty counsellors claiming from 1,000 open tickets at once, on SQLite and PostgreSQL.

Half the time each claimer presses "claim next", half the time it races for a ticket it saw in
the list (the adversarial case). Expected: every ticket claimed exactly once, and no claimer ever
sees "database is locked" or any other database error.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from handoff import AlreadyClaimed, InvalidState, Role, Status, claim, claim_next
from handoff.tables import Ticket
from storage import create_engine, session_factory
from tests.handoff.handoff_support import make_account

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLAIMERS = 20
TICKETS = 1000


async def seed_tickets(sessions, count: int, mrc_id: str = "tj") -> list[int]:
    now = datetime.now(UTC)
    rows = [
        {
            "user_key": f"user-{i}",
            "mrc_id": mrc_id,
            "reason": "crisis" if i % 50 == 0 else "no_answer",
            "priority": 0 if i % 50 == 0 else 2,
            "lang": ("tg", "ru", "uz")[i % 3],
            "profile": {},
            "status": "open",
            "created_at": now - timedelta(seconds=count - i),
            "due_at": now + timedelta(hours=4),
        }
        for i in range(count)
    ]
    async with sessions() as db, db.begin():
        await db.execute(insert(Ticket), rows)
        return list((await db.scalars(select(Ticket.id))).all())


async def test_twenty_claimers_never_claim_a_ticket_twice(db_url):
    engine = create_engine(db_url, pool_size=CLAIMERS, max_overflow=0, pool_timeout=60)
    sessions = session_factory(engine)
    try:
        ids = await seed_tickets(sessions, TICKETS)
        actors = [await make_account(sessions, f"counsellor{i:02d}", Role.COUNSELLOR, "tj") for i in range(CLAIMERS)]
        claims: list[tuple[int, int]] = []
        errors: list[BaseException] = []
        lost_races = 0

        async def counsellor(index: int) -> None:
            nonlocal lost_races
            me = actors[index]
            rng = random.Random(index)
            while True:
                try:
                    async with sessions() as db, db.begin():
                        if rng.random() < 0.5:
                            ticket = await claim_next(session=db, actor=me)
                            if ticket is None:
                                return
                        else:
                            ticket = await claim(session=db, ticket_id=rng.choice(ids), actor=me)
                        claims.append((ticket.id, me.id))
                except (AlreadyClaimed, InvalidState):
                    lost_races += 1
                except Exception as exc:  # any database error fails the test below
                    errors.append(exc)
                    return

        started = time.perf_counter()
        await asyncio.gather(*(counsellor(i) for i in range(CLAIMERS)))
        elapsed = time.perf_counter() - started

        async with sessions() as db:
            rows = (await db.execute(select(Ticket.id, Ticket.status, Ticket.claimed_by_id))).all()
    finally:
        await engine.dispose()

    assert errors == [], f"database errors under contention: {errors[:3]!r}"
    # Claiming a ticket one already holds is a harmless no-op (a double click); a ticket held by
    # two different counsellors is the failure this test exists for.
    distinct = set(claims)
    counts = Counter(ticket_id for ticket_id, _ in distinct)
    twice = [ticket_id for ticket_id, n in counts.items() if n > 1]
    assert twice == [], f"tickets claimed by two counsellors: {twice[:10]}"
    # Claims in our own bookkeeping match the database: same owner, every ticket claimed once.
    owners = dict(claims)
    assert len(owners) == TICKETS
    assert all(status == Status.CLAIMED and owners[tid] == owner for tid, status, owner in rows)
    print(
        f"\n[{engine.dialect.name}] {CLAIMERS} claimers, {TICKETS} tickets: {len(distinct)} claims, "
        f"0 claimed twice, 0 database errors, {lost_races} lost races, {elapsed:.2f} s "
        f"({len(distinct) / elapsed:.0f} claims/s)"
    )
