"""Starting and stopping the channel from our own server, in both modes."""

from __future__ import annotations

import asyncio
import traceback
from typing import Any

import pytest

from bench.fake_telegram import TOKEN, FakeBotApi, message_update
from bot.channels.telegram import (
    TelegramChannelError,
    build_telegram_application,
    run_telegram,
    stop_telegram,
)

from .fake_engine import FakeEngine
from .support import KEY_SECRET, eventually, key_of

pytestmark = pytest.mark.integration

USER = 742_000_111


async def test_run_telegram_polls_delivers_and_stops_everything(bot_api: FakeBotApi, engine: FakeEngine,
                                                                make_app: Any) -> None:
    app = make_app(engine)
    async with run_telegram(app, poll_timeout=0.2):
        assert app.running and app.updater.running
        bot_api.push(message_update(1, USER, "hello"))
        engine.add_counsellor_reply(key_of(USER + 1), str(USER + 1), "from the console")
        await eventually(lambda: len(bot_api.sent()) == 2, what="an answer and a counsellor reply")
    assert not app.running and not app.updater.running
    # the delivery loop stopped with the application: a new pending reply stays pending
    engine.add_counsellor_reply(key_of(USER), str(USER), "after stop")
    await asyncio.sleep(0.2)
    assert len(bot_api.sent()) == 2
    await stop_telegram(app)  # a second stop is harmless


async def test_run_telegram_in_webhook_mode_sets_the_webhook_and_does_not_poll(bot_api: FakeBotApi,
                                                                               engine: FakeEngine,
                                                                               make_app: Any) -> None:
    app = make_app(engine)
    async with run_telegram(app, webhook_url="https://mrc.example/telegram/webhook", secret_token="abc_DEF-1"):
        assert app.running and not app.updater.running
        await asyncio.sleep(0.1)
    assert bot_api.webhook is not None and bot_api.webhook["secret_token"] == "abc_DEF-1"
    assert bot_api.calls_to("getUpdates") == []


async def test_a_rejected_token_is_reported_without_the_token(bot_api: FakeBotApi, engine: FakeEngine) -> None:
    wrong = "5550001:AAE-this-token-is-wrong-and-secret"
    app = build_telegram_application(wrong, engine, key_secret=KEY_SECRET, base_url=bot_api.base_url)
    with pytest.raises(TelegramChannelError, match="TELEGRAM_BOT_TOKEN") as caught:
        async with run_telegram(app, poll_timeout=0.2):
            pass
    printed = "".join(traceback.format_exception(caught.value))
    assert "this-token-is-wrong" not in printed
    assert not app.running


def test_building_without_secrets_fails_fast(engine: FakeEngine) -> None:
    with pytest.raises(ValueError, match="HAMROH_USER_KEY_SECRET"):
        build_telegram_application(TOKEN, engine, key_secret="")
    with pytest.raises(ValueError, match="TELEGRAM_BOT_TOKEN"):
        build_telegram_application("", engine, key_secret=KEY_SECRET)


async def test_webhook_mode_needs_a_secret(engine: FakeEngine, make_app: Any) -> None:
    with pytest.raises(ValueError, match="TELEGRAM_WEBHOOK_SECRET"):
        async with run_telegram(make_app(engine), webhook_url="https://mrc.example/telegram/webhook"):
            pass
