"""Every worker swaps in newly published content within seconds, without a restart.

Each process polls the one-row content version (a primary-key read) every ``interval`` seconds;
when it moved, the process loads the served entries and their stored vectors, builds a new
knowledge base in a thread (no text is embedded again) and replaces ``app.state.kb`` in one
assignment. A request already running keeps the knowledge base it started with; the next one gets
the new one, so no message is dropped or answered from half an index. Expired entries are
withdrawn by the same loop (at most once a minute, whichever worker sees it first).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from knowledge_base import KnowledgeBase, LiveContent, build_live_knowledge_base

from ..settings import Settings
from ._repo import content_version, load_live
from ._workflow import withdraw_expired

__all__ = ["LiveContentWatcher"]

log = logging.getLogger("hamroh.content")


@dataclass
class LiveContentWatcher:
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    get_kb: Callable[[], KnowledgeBase | None]
    set_kb: Callable[[KnowledgeBase], None]
    interval: float = 1.0
    withdraw_every: float = 60.0
    version: int = -1
    swaps: int = 0
    #: what this process serves (the next load reads only revisions published since)
    live: LiveContent | None = None
    #: seconds the last swap took: reading what changed, and building the index
    last_load_seconds: float = 0.0
    last_build_seconds: float = 0.0
    _last_withdraw: float = field(default=0.0)

    async def refresh(self) -> bool:
        """Swap in the published content if its version moved; True when it did."""
        async with self.sessions() as db:
            version = await content_version(session=db)
        if version == 0 or version == self.version:
            return False
        previous = self.get_kb()
        if previous is None:
            return False
        started = time.perf_counter()
        async with self.sessions() as db:
            live = await load_live(session=db, model_id=previous.embedder.model_id, previous=self.live)
        loaded = time.perf_counter()
        kb = await asyncio.to_thread(build_live_knowledge_base, live, previous.embedder, self.settings.index,
                                     self.settings.search, previous=previous)
        self.set_kb(kb)
        self.live = live
        self.version = live.version
        self.swaps += 1
        self.last_load_seconds = loaded - started
        self.last_build_seconds = time.perf_counter() - loaded
        log.info("content version %d serving (%d entries; %d revisions read in %.2f s, index built in %.2f s)",
                 live.version, len(live.entries), live.fetched, self.last_load_seconds, self.last_build_seconds)
        return True

    async def withdraw(self) -> None:
        now = time.monotonic()
        if now - self._last_withdraw < self.withdraw_every:
            return
        self._last_withdraw = now
        async with self.sessions() as db, db.begin():
            gone = await withdraw_expired(session=db)
        if gone:
            log.warning("withdrew %d entries whose review date passed", len(gone))

    async def run(self) -> None:
        while True:
            try:
                await self.withdraw()
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep serving the last good content; say why in the log
                log.exception("live content refresh failed; still serving version %d", self.version)
            await asyncio.sleep(self.interval)
