"""Helpers shared by the Telegram tests (importable by name, unlike conftest)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from bot.channels.telegram import TelegramRateLimiter
from bot.privacy import user_key

__all__ = ["KEY_SECRET", "eventually", "fast_limiter", "key_of"]

KEY_SECRET = "test-user-key-secret-0123456789abcdef"


def key_of(telegram_user_id: int) -> str:
    return user_key("telegram", telegram_user_id, KEY_SECRET)


def fast_limiter(**overrides: float) -> TelegramRateLimiter:
    """The real limiter with limits high enough that only the test's own subject is paced."""
    values: dict[str, float] = {"overall_per_second": 100_000, "overall_burst": 100_000,
                                "chat_per_second": 100_000, "chat_burst": 100_000}
    values.update(overrides)
    return TelegramRateLimiter(**values)  # type: ignore[arg-type]


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Wait until ``predicate()`` holds; the bot works in the background, so tests poll."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)
