"""The flood-limit pacing and 429 retries, on a simulated clock (no real waiting)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from telegram.error import RetryAfter

from bot.channels._telegram_limits import retry_after_seconds
from bot.channels.telegram import TelegramRateLimiter

pytestmark = [pytest.mark.unit, pytest.mark.filterwarnings("ignore:.*attribute `retry_after` will be of type")]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def limiter(clock: Clock, **options: Any) -> TelegramRateLimiter:
    """By default only the per-chat limit binds; tests of the overall limit set it."""
    options.setdefault("overall_per_second", 1e6)
    return TelegramRateLimiter(clock=clock, sleep=clock.sleep, **options)


async def send_times(rl: TelegramRateLimiter, clock: Clock, chats: list[int | None]) -> list[float]:
    times: list[float] = []

    async def call() -> bool:
        times.append(clock.now)
        return True

    for chat in chats:  # one after another, as one chat's replies are sent
        data = {"chat_id": chat} if chat is not None else {}
        await rl.process_request(call, (), {}, "sendMessage", data, None)
    return times


async def test_one_chat_gets_about_one_message_per_second_after_a_short_burst() -> None:
    clock = Clock()
    times = await send_times(limiter(clock, chat_burst=3), clock, [1] * 6)
    assert times == pytest.approx([0, 0, 0, 1, 2, 3], abs=1e-3)


async def test_different_chats_are_limited_to_thirty_per_second_overall() -> None:
    clock = Clock()
    times = await send_times(limiter(clock, overall_per_second=30), clock, list(range(90)))
    assert times[-1] == pytest.approx(89 / 30)
    # in no one-second window more than thirty (a small tolerance for float rounding at the edge)
    assert max(sum(1 for t in times if s <= t < s + 1 - 1e-9) for s in times) == 30


async def test_concurrent_senders_to_one_chat_are_spaced_too() -> None:
    """Real time here: concurrent sleepers need a real event loop clock (20 ms spacing)."""
    rl = TelegramRateLimiter(chat_per_second=50, chat_burst=1, overall_per_second=1e6)
    times: list[float] = []

    async def call() -> bool:
        times.append(time.monotonic())
        return True

    await asyncio.gather(*(rl.process_request(call, (), {}, "sendMessage", {"chat_id": "42"}, None)
                           for _ in range(4)))
    # each call at its reserved slot or later (a late wake-up may shorten the next gap, never the schedule)
    offsets = [t - times[0] for t in times]
    assert all(offset >= i * 0.02 - 0.002 for i, offset in enumerate(offsets)), offsets


async def test_a_429_pauses_for_retry_after_and_retries() -> None:
    clock = Clock()
    rl = limiter(clock)
    attempts: list[float] = []

    async def call() -> bool:
        attempts.append(clock.now)
        if len(attempts) == 1:
            raise RetryAfter(5)
        return True

    assert await rl.process_request(call, (), {}, "sendMessage", {"chat_id": 1}, None) is True
    assert attempts == [0.0, pytest.approx(5.0)]
    # the pause applied to everybody: another chat's request waits it out as well
    clock.now = 1.0
    assert await send_times(rl, clock, [2]) == [pytest.approx(5.0)]


async def test_retries_are_bounded_and_long_waits_are_not_sat_out() -> None:
    clock = Clock()
    rl = limiter(clock, max_retries=2, max_retry_after=10)
    calls = 0

    async def always_429() -> bool:
        nonlocal calls
        calls += 1
        raise RetryAfter(1)

    with pytest.raises(RetryAfter):
        await rl.process_request(always_429, (), {}, "sendMessage", {"chat_id": 1}, None)
    assert calls == 3

    async def long_429() -> bool:
        raise RetryAfter(600)

    before = clock.now
    with pytest.raises(RetryAfter):
        await rl.process_request(long_429, (), {}, "sendMessage", {"chat_id": 1}, None)
    assert clock.now - before < 2

    # during the long pause nothing reaches Telegram; afterwards requests go through again
    reached: list[float] = []

    async def ok() -> bool:
        reached.append(clock.now)
        return True

    clock.now += 100
    with pytest.raises(RetryAfter) as caught:
        await rl.process_request(ok, (), {}, "answerCallbackQuery", {}, None)
    assert reached == [] and retry_after_seconds(caught.value) >= 490
    clock.now += 600
    assert await rl.process_request(ok, (), {}, "sendMessage", {"chat_id": 2}, None) is True


def test_nonsense_limits_fail_fast() -> None:
    with pytest.raises(ValueError):
        TelegramRateLimiter(chat_per_second=0)
    with pytest.raises(ValueError):
        TelegramRateLimiter(overall_burst=0)
