"""Claim throughput of the counsellor queue on SQLite and PostgreSQL.

    .venv/bin/python -m bench.queue_bench [--tickets 1000] [--claimers 1,5,20] [--no-postgres]

Prints a table: claims per second and per-claim latency (p50/p95) for "claim next" with N
concurrent counsellors, and for a full cycle (claim, reply through a no-op outbound port,
resolve). Every run also checks that no ticket was claimed twice. Figures, never asserts on time.
PostgreSQL runs in a throw-away database (see storage.scratch) when 127.0.0.1:5432 answers.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from handoff import (
    Actor,
    ConsoleSettings,
    MrcSettings,
    OutboundMessage,
    claim_next,
    reply,
    resolve,
)
from handoff.tables import AuditEntry, Counsellor, Ticket
from storage import create_engine, session_factory, upgrade
from storage.scratch import postgres_unavailable_reason, temporary_postgres_database


class NullOutbound:
    async def send(self, user_key: str, message: OutboundMessage) -> None:
        return None


SETTINGS = ConsoleSettings(
    mrcs=(MrcSettings(id="tj", name="MRC Tajikistan", country="TJ", timezone="Asia/Dushanbe"),),
    session_secret="b" * 40,
)


async def _seed(sessions: Any, tickets: int, claimers: int) -> list[Actor]:
    async with sessions() as db, db.begin():
        now = datetime.now(UTC)
        await db.execute(
            insert(Ticket),
            [
                {
                    "user_key": f"u{i}",
                    "mrc_id": "tj",
                    "reason": "no_answer",
                    "priority": 0 if i % 50 == 0 else 2,
                    "lang": "tg",
                    "profile": {},
                    "status": "open",
                    "created_at": now - timedelta(seconds=tickets - i),
                    "due_at": now,
                }
                for i in range(tickets)
            ],
        )
        actors = []
        for i in range(claimers):
            c = Counsellor(username=f"b{i}", display_name=f"B{i}", password_hash="x", role="counsellor", mrc_id="tj")
            db.add(c)
            await db.flush()
            actors.append(Actor.of(c))
        return actors


async def _run(url: str, tickets: int, claimers: int, full_cycle: bool) -> dict[str, Any]:
    engine = create_engine(url, pool_size=claimers, max_overflow=0, pool_timeout=120)
    sessions = session_factory(engine)
    try:
        actors = await _seed(sessions, tickets, claimers)
        latencies: list[float] = []
        claimed: list[int] = []
        errors = 0
        outbound = NullOutbound()

        async def worker(me: Actor) -> None:
            nonlocal errors
            while True:
                started = time.perf_counter()
                try:
                    async with sessions() as db, db.begin():
                        ticket = await claim_next(session=db, actor=me)
                    if ticket is None:
                        return
                    if full_cycle:
                        async with sessions() as db, db.begin():
                            await reply(session=db, ticket_id=ticket.id, actor=me, text="ok", outbound=outbound)
                        async with sessions() as db, db.begin():
                            await resolve(session=db, ticket_id=ticket.id, actor=me)
                except Exception:
                    errors += 1
                    return
                latencies.append(time.perf_counter() - started)
                claimed.append(ticket.id)

        started = time.perf_counter()
        await asyncio.gather(*(worker(a) for a in actors))
        elapsed = time.perf_counter() - started
        async with sessions() as db:
            audit_rows = len((await db.scalars(select(AuditEntry.id))).all())
    finally:
        await engine.dispose()
    twice = sum(1 for n in Counter(claimed).values() if n > 1)
    latencies.sort()
    return {
        "claims": len(claimed),
        "twice": twice,
        "errors": errors,
        "seconds": elapsed,
        "per_s": len(claimed) / elapsed if elapsed else 0.0,
        "p50": statistics.median(latencies) * 1000 if latencies else 0.0,
        "p95": latencies[int(len(latencies) * 0.95) - 1] * 1000 if latencies else 0.0,
        "audit": audit_rows,
    }


def _databases(use_postgres: bool) -> list[tuple[str, Callable[[], Any]]]:
    def sqlite() -> Any:
        class _Ctx:
            def __enter__(self) -> str:
                self.dir = tempfile.TemporaryDirectory()
                url = f"sqlite+aiosqlite:///{Path(self.dir.name) / 'bench.db'}"
                upgrade(url)
                return url

            def __exit__(self, *exc: object) -> None:
                self.dir.cleanup()

        return _Ctx()

    found: list[tuple[str, Callable[[], Any]]] = [("sqlite", sqlite)]
    if use_postgres:
        reason = postgres_unavailable_reason()
        if reason is None:
            found.append(("postgresql", temporary_postgres_database))
        else:
            print(f"skipping PostgreSQL: {reason}")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=1000)
    parser.add_argument("--claimers", default="1,5,20")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    counts = [int(c) for c in args.claimers.split(",")]
    header = f"{'database':<11}{'mode':<21}{'claimers':>9}{'claims':>8}{'twice':>6}{'errors':>7}"
    header += f"{'seconds':>9}{'claims/s':>10}{'p50 ms':>8}{'p95 ms':>8}"
    print(header)
    print("-" * len(header))
    for name, database in _databases(not args.no_postgres):
        for mode in ("claim", "claim+reply+resolve"):
            for claimers in counts:
                with database() as url:
                    r = asyncio.run(_run(url, args.tickets, claimers, mode != "claim"))
                print(
                    f"{name:<11}{mode:<21}{claimers:>9}{r['claims']:>8}{r['twice']:>6}{r['errors']:>7}"
                    f"{r['seconds']:>9.2f}{r['per_s']:>10.0f}{r['p50']:>8.1f}{r['p95']:>8.1f}"
                )


if __name__ == "__main__":
    main()
