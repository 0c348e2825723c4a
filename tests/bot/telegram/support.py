"""Helpers shared by the Telegram tests (importable by name, unlike conftest)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from bot.channels.telegram import TelegramRateLimiter
from bot.privacy import user_key

__all__ = ["KEY_SECRET", "ClockedLimiter", "ManualClock", "eventually", "fast_limiter", "key_of"]

KEY_SECRET = "test-user-key-secret-0123456789abcdef"


def key_of(telegram_user_id: int) -> str:
    return user_key("telegram", telegram_user_id, KEY_SECRET)


def fast_limiter(**overrides: float) -> TelegramRateLimiter:
    """The real limiter with limits high enough that only the test's own subject is paced."""
    values: dict[str, float] = {"overall_per_second": 100_000, "overall_burst": 100_000,
                                "chat_per_second": 100_000, "chat_burst": 100_000}
    values.update(overrides)
    return TelegramRateLimiter(**values)  # type: ignore[arg-type]


class ManualClock:
    """Simulated time for the rate limiter: ``sleep`` waits until the test moves time on.

    So a test says "the limiter waits out Telegram's 2 s" without waiting 2 s, and without
    asserting on the wall clock (which a loaded CI machine makes flaky).
    """

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, asyncio.Event]] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        event = asyncio.Event()
        self._sleepers.append((self.now + seconds, event))
        await event.wait()

    @property
    def waiting(self) -> list[float]:
        """When each sleeper wakes, soonest first."""
        return sorted(wake for wake, _ in self._sleepers)

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self._wake()

    def advance_to_next(self) -> bool:
        """Move to the soonest wake-up (if any sleeper waits) and wake it."""
        if not self._sleepers:
            return False
        self.now = max(self.now, min(wake for wake, _ in self._sleepers))
        self._wake()
        return True

    def _wake(self) -> None:
        due = [(wake, event) for wake, event in self._sleepers if wake <= self.now + 1e-12]
        self._sleepers = [item for item in self._sleepers if item not in due]
        for _, event in due:
            event.set()

    async def run_until(self, predicate: Callable[[], bool], *, what: str, timeout: float = 10.0) -> None:
        """Let simulated time pass, one wake-up at a time, until ``predicate()`` holds."""
        deadline = time.monotonic() + timeout  # only a guard against a hang, never asserted on
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            await asyncio.sleep(0.01)  # let requests in flight finish before time moves on
            if not predicate():
                self.advance_to_next()


class ClockedLimiter(TelegramRateLimiter):
    """The real limiter on a :class:`ManualClock`, noting when (simulated) each message went out."""

    def __init__(self, clock: ManualClock, **overrides: float) -> None:
        values: dict[str, float] = {"overall_per_second": 100_000, "overall_burst": 100_000,
                                    "chat_per_second": 100_000, "chat_burst": 100_000}
        values.update(overrides)
        super().__init__(clock=clock, sleep=clock.sleep, **values)  # type: ignore[arg-type]
        self.clock = clock
        self.sent_at: list[tuple[Any, float]] = []

    async def process_request(self, callback: Callable[..., Coroutine[Any, Any, Any]], args: Any,
                              kwargs: dict[str, Any], endpoint: str, data: dict[str, Any],
                              rate_limit_args: int | None) -> Any:
        async def noted() -> Any:
            if endpoint == "sendMessage":
                self.sent_at.append((data.get("chat_id"), self.clock.now))
            return await callback(*args, **kwargs)

        return await super().process_request(noted, (), {}, endpoint, data, rate_limit_args)


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Wait until ``predicate()`` holds; the bot works in the background, so tests poll."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)
