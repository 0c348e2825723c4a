"""Live delivery for the web chat: one poller for the whole process, and a ledger of what went where.

Why one poller and not one per connection: ``engine.pending("web")`` is a database query; a
thousand open chats polling it every second would be a thousand queries a second for nothing. The
hub asks once per interval, only while someone is connected, and routes each reply to the
connections (or waiting long-polls) of its user.

Why a ledger and acknowledgements: on 2G a WebSocket can die after the server wrote a frame and
before the phone got it. A reply is therefore marked sent only when the widget acknowledges its
outbox id; until then it stays pending and is delivered again on reconnect (the widget drops
duplicates by id). The ledger remembers which user each delivered id belongs to, so one browser
cannot acknowledge, and thereby hide, another person's replies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from cachetools import LRUCache

from bot.engine import OutboxPort, Outgoing

__all__ = ["DeliveryLedger", "PendingHub"]

log = logging.getLogger("hamroh.web")


class DeliveryLedger:
    """Outbox ids handed to a browser, by user key; bounded, in memory.

    The oldest deliveries are forgotten first (an LRU cache): a reply whose id was forgotten is
    simply delivered again and acknowledged then, never acknowledged for the wrong person.
    """

    def __init__(self, size: int = 100_000) -> None:
        self._owner: LRUCache[int, str] = LRUCache(maxsize=size)

    def note(self, items: Iterable[Outgoing]) -> None:
        for item in items:
            if item.id is not None:
                self._owner[item.id] = item.user_key  # delivered again: the most recent now

    def claim(self, user_key: str, ids: Iterable[int]) -> list[int]:
        """The ids among ``ids`` that were delivered to ``user_key`` (each claimed once)."""
        out = []
        for i in dict.fromkeys(ids):
            if self._owner.get(i) == user_key:
                self._owner.pop(i)
                out.append(i)
        return out


class PendingHub:
    """Polls ``engine.pending("web")`` while subscribers exist and fans replies out by user key."""

    def __init__(self, engine: OutboxPort, *, interval: float, limit: int, channel: str = "web") -> None:
        self._engine = engine
        self._interval = interval
        self._limit = limit
        self._channel = channel
        self._subs: dict[str, set[asyncio.Queue[Outgoing]]] = {}
        self._task: asyncio.Task[None] | None = None

    def subscribe(self, user_key: str) -> asyncio.Queue[Outgoing]:
        queue: asyncio.Queue[Outgoing] = asyncio.Queue(maxsize=1000)
        self._subs.setdefault(user_key, set()).add(queue)
        loop = asyncio.get_running_loop()
        task = self._task
        if task is None or task.done() or task.get_loop() is not loop:
            self._task = loop.create_task(self._run(), name="hamroh-web-pending")
        return queue

    def unsubscribe(self, user_key: str, queue: asyncio.Queue[Outgoing]) -> None:
        queues = self._subs.get(user_key)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del self._subs[user_key]

    async def _run(self) -> None:
        while self._subs:
            try:
                items = await self._engine.pending(self._channel, limit=self._limit, user_keys=tuple(self._subs))
            except Exception as exc:  # the database may be restarting; try again next tick
                log.warning("web: pending() failed (%s)", type(exc).__name__)
                items = []
            for item in items:
                for queue in tuple(self._subs.get(item.user_key, ())):
                    with contextlib.suppress(asyncio.QueueFull):  # a stuck client: it gets it on reconnect
                        queue.put_nowait(item)
            await asyncio.sleep(self._interval)
        self._task = None
