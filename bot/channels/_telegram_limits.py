"""Staying inside Telegram's flood limits without the optional ``aiolimiter`` dependency.

Telegram allows about one message per second in one chat (short bursts are tolerated) and about
thirty per second for the whole bot; beyond that it answers HTTP 429 with ``retry_after``, and a
bot that keeps hammering gets longer and longer bans. Throttling before sending is cheaper than
reacting to 429s, so every request waits for its turn in its chat and then for a global turn; a 429
that still happens pauses *all* requests for ``retry_after`` (the limit is usually the bot's, not
the chat's) and the request is retried a bounded number of times. A wait longer than
``max_retry_after`` is not sat out inside a request: the error goes up, the reply stays in the
outbox, and until the pause is over every request fails at once without reaching Telegram (asking
again during a flood ban only lengthens it); the delivery loop sends the reply afterwards.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import time
import warnings
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

__all__ = ["TelegramRateLimiter", "retry_after_seconds"]

log = logging.getLogger("bot.channels.telegram")

_PRUNE_EVERY = 1024


class _Pacer:
    """Generic cell rate algorithm: reserve a send time per key, ``burst`` at once, ``rate`` per second.

    Reservations (rather than sleeping and re-checking) keep waiting requests in arrival order and
    need no lock: all bookkeeping happens between two awaits of one event loop.
    """

    def __init__(self, rate: float, burst: int) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.interval = 1.0 / rate
        self.tolerance = (burst - 1) * self.interval
        self._tat: dict[object, float] = {}

    def reserve(self, key: object, now: float) -> float:
        """Seconds to wait before sending for ``key``; the slot is taken."""
        tat = max(self._tat.get(key, now), now)
        start = max(now, tat - self.tolerance)
        self._tat[key] = tat + self.interval
        if len(self._tat) > _PRUNE_EVERY:
            self._tat = {k: v for k, v in self._tat.items() if v > now}
        return start - now


def _seconds(value: int | float | dt.timedelta) -> float:
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


def retry_after_seconds(exc: RetryAfter) -> float:
    """``retry_after`` in seconds, whichever type this PTB version is migrating it to."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _seconds(exc.retry_after)


class TelegramRateLimiter(BaseRateLimiter[int]):
    """Per-chat and global pacing plus bounded ``RetryAfter`` retries for every Bot API request.

    Per chat, a burst of ``chat_burst`` then ``chat_per_second`` (Telegram tolerates short bursts
    in one chat). Overall, no burst by default: a burst of *b* on top of a rate of *r* lets *b + r*
    requests through in one second, and the bot-wide limit is the one that earns long bans; even
    spacing (33 ms at 30/s) costs nothing a person would notice.
    ``getUpdates`` never comes through a rate limiter (PTB exempts it), so polling is unaffected.
    ``clock`` and ``sleep`` are injectable so the pacing can be tested without waiting.
    """

    def __init__(self, *, overall_per_second: float = 30.0, overall_burst: int = 1,
                 chat_per_second: float = 1.0, chat_burst: int = 3, max_retries: int = 3,
                 max_retry_after: float = 30.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        if max_retries < 0 or max_retry_after < 0:
            raise ValueError("max_retries and max_retry_after must not be negative")
        self._overall = _Pacer(overall_per_second, overall_burst)
        self._chat = _Pacer(chat_per_second, chat_burst)
        self._max_retries = max_retries
        self._max_retry_after = max_retry_after
        self._clock = clock
        self._sleep = sleep
        self._paused_until = 0.0

    async def initialize(self) -> None:
        """Nothing to set up: the limiter keeps only in-memory reservations."""

    async def shutdown(self) -> None:
        """Nothing to release."""

    async def _wait_turn(self, chat_id: object) -> None:
        while (pause := self._paused_until - self._clock()) > 0:
            await self._sleep(pause)
        if chat_id is not None:
            delay = self._chat.reserve(str(chat_id), self._clock())
            if delay > 0:
                await self._sleep(delay)
        delay = self._overall.reserve(None, self._clock())
        if delay > 0:
            await self._sleep(delay)

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        """Wait for a slot, call, and on 429 pause everyone for ``retry_after`` and try again."""
        chat_id = data.get("chat_id")
        attempt = 0
        while True:
            banned_for = self._paused_until - self._clock()
            if banned_for > self._max_retry_after:
                # Telegram asked for a long pause: fail at once instead of asking again (and again)
                raise RetryAfter(math.ceil(banned_for))
            await self._wait_turn(chat_id)
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                wait = retry_after_seconds(exc)
                attempt += 1
                self._paused_until = max(self._paused_until, self._clock() + wait)
                if attempt > self._max_retries or wait > self._max_retry_after:
                    log.warning("Telegram flood limit on %s: giving up after %d attempt(s), retry_after=%.0fs",
                                endpoint, attempt, wait)
                    raise
                log.info("Telegram flood limit on %s: waiting %.1fs (attempt %d)", endpoint, wait, attempt)
