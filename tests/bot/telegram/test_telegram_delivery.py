"""The delivery loop: counsellor replies and leftovers reach the user exactly once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bench.fake_telegram import FakeBotApi, message_update
from bot.channels.telegram import deliver_pending, start_polling, stop_telegram

from .fake_engine import FakeEngine
from .support import eventually, key_of

pytestmark = pytest.mark.integration

USER = 740_777_001


async def test_a_pending_counsellor_reply_is_sent_exactly_once(bot_api: FakeBotApi, engine: FakeEngine,
                                                               polling_bot: Any) -> None:
    outbox_id = engine.add_counsellor_reply(key_of(USER), str(USER), "Bring your passport <and> the contract & visa.")
    await eventually(lambda: len(bot_api.sent()) == 1, what="the counsellor's reply")
    await asyncio.sleep(0.3)  # several more rounds of the loop
    assert len(bot_api.sent()) == 1
    assert engine.sent == {outbox_id} and engine.mark_sent_calls == [[outbox_id]]
    sent = bot_api.sent()[0]
    assert sent["chat_id"] == USER
    assert sent["text"] == "Counsellor Aziza:\nBring your passport &lt;and&gt; the contract &amp; visa."


async def test_a_slow_mark_sent_does_not_make_the_loop_send_a_reply_again(bot_api: FakeBotApi,
                                                                           engine: FakeEngine,
                                                                           polling_bot: Any) -> None:
    """The handler sends and is still marking; the loop sees the reply unsent meanwhile."""
    engine.mark_sent_delay = 0.3
    bot_api.push(message_update(3001, USER, "two"))
    await eventually(lambda: engine.sent == {1, 2}, what="both replies marked")
    await asyncio.sleep(0.2)
    assert [p["text"] for p in bot_api.sent()] == ["First reply.", "Second reply."]


async def test_replies_left_by_a_failed_send_are_delivered_in_order_by_the_loop(
        bot_api: FakeBotApi, engine: FakeEngine, polling_bot: Any) -> None:
    bot_api.fail_next("sendMessage", times=2, status=502, description="Bad Gateway")
    bot_api.push(message_update(3002, USER, "two"))
    await eventually(lambda: engine.sent == {1, 2}, what="both replies delivered")
    assert [p["text"] for p in bot_api.sent()] == ["First reply.", "Second reply."]


async def test_a_user_who_blocked_the_bot_is_not_retried_forever(bot_api: FakeBotApi, engine: FakeEngine,
                                                                 polling_bot: Any) -> None:
    bot_api.fail_next("sendMessage", status=403, description="Forbidden: bot was blocked by the user")
    outbox_id = engine.add_counsellor_reply(key_of(USER), str(USER), "hello")
    await eventually(lambda: outbox_id in engine.sent, what="the undeliverable reply settled")
    await asyncio.sleep(0.2)
    assert len(bot_api.calls_to("sendMessage", ok=None)) == 1


async def test_a_reply_without_a_chat_is_skipped_without_crashing_the_loop(bot_api: FakeBotApi,
                                                                           engine: FakeEngine,
                                                                           polling_bot: Any) -> None:
    engine.add_counsellor_reply(key_of(USER), None, "lost")
    deliverable = engine.add_counsellor_reply(key_of(USER + 1), str(USER + 1), "found")
    await eventually(lambda: deliverable in engine.sent, what="the deliverable reply")
    assert [p["text"] for p in bot_api.sent()] == ["Counsellor Aziza:\nfound"]


async def test_the_loop_survives_an_engine_outage(bot_api: FakeBotApi, engine: FakeEngine, make_app: Any) -> None:
    calls = {"n": 0}
    real_pending = engine.pending

    async def flaky_pending(channel: str, *, limit: int = 100, user_keys: Any = None) -> Any:
        calls["n"] += 1
        if calls["n"] <= 3:
            raise ConnectionError("database restarting")
        return await real_pending(channel, limit=limit, user_keys=user_keys)

    engine.pending = flaky_pending  # type: ignore[method-assign]
    app = make_app(engine)
    await start_polling(app, poll_timeout=0.2)
    try:
        outbox_id = engine.add_counsellor_reply(key_of(USER), str(USER), "after the outage")
        await eventually(lambda: outbox_id in engine.sent, what="delivery after the outage")
    finally:
        await stop_telegram(app)
    assert calls["n"] > 3


async def test_deliver_pending_can_be_called_directly_and_the_loop_stops_with_the_app(
        bot_api: FakeBotApi, engine: FakeEngine, make_app: Any) -> None:
    app = make_app(engine, deliver_in_background=False)
    await app.initialize()
    try:
        engine.add_counsellor_reply(key_of(USER), str(USER), "one")
        engine.add_counsellor_reply(key_of(USER + 1), str(USER + 1), "two")
        assert await deliver_pending(app) == 2
        assert await deliver_pending(app) == 0
    finally:
        await app.shutdown()
    assert len(bot_api.sent()) == 2
