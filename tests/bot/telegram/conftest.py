"""Fixtures: one fake Bot API server per session, a fresh fake engine and bot per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from bench.fake_telegram import TOKEN, FakeBotApi
from bot.channels.telegram import build_telegram_application, start_polling, stop_telegram

from .fake_engine import FakeEngine
from .support import KEY_SECRET, fast_limiter


@pytest.fixture(scope="session")
def bot_api_server() -> Iterator[FakeBotApi]:
    server = FakeBotApi()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def bot_api(bot_api_server: FakeBotApi) -> FakeBotApi:
    bot_api_server.reset()
    return bot_api_server


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def make_app(bot_api: FakeBotApi) -> Any:
    """Build an application against the fake server; tests start it the way they need."""

    def make(engine: Any, **options: Any) -> Any:
        options.setdefault("rate_limiter", fast_limiter())
        options.setdefault("delivery_interval", 0.05)
        return build_telegram_application(TOKEN, engine, key_secret=KEY_SECRET, base_url=bot_api.base_url,
                                          **options)

    return make


@pytest.fixture
async def polling_bot(make_app: Any, engine: FakeEngine) -> AsyncIterator[Any]:
    """A bot polling the fake server with the fake engine, stopped after the test."""
    app = make_app(engine)
    await start_polling(app, poll_timeout=0.2)
    yield app
    await stop_telegram(app)
