"""Odd input and redelivery at volume: nothing crashes, nothing is answered twice."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from bench.fake_telegram import FakeBotApi, callback_update, message_update
from bot.channels.telegram import stop_telegram, telegram_webhook_route

from .fake_engine import FakeEngine
from .support import eventually

pytestmark = pytest.mark.integration

SECRET = "robustness-secret"


def odd_updates(n: int, seed: int = 7) -> list[Any]:
    """Updates Telegram might send, and bodies it never would, in a reproducible mix."""
    rng = random.Random(seed)
    photo = [{"file_id": "p", "file_unique_id": "pu", "width": 1, "height": 1}]
    makers: list[Any] = [
        lambda i, u: message_update(i, u, ""),                                   # empty text
        lambda i, u: message_update(i, u),                                       # no content (service)
        lambda i, u: message_update(i, u, "hi", with_from=False),                # no sender
        lambda i, u: message_update(i, u, "x" * rng.choice([4096, 5000, 100_000])),  # huge text
        lambda i, u: message_update(i, u, "<b>&amp;&#x1F600;</b> & < > \u202e\x00"),  # markup, controls
        lambda i, u: message_update(i, u, "/unknowncommand arg"),
        lambda i, u: message_update(i, u, "/start@hamroh_test_bot deep-link"),
        lambda i, u: message_update(i, u, "/"),
        lambda i, u: message_update(i, u, "in a group", chat_type="group"),
        lambda i, u: message_update(i, u, "in a channel", chat_type="channel"),
        lambda i, u: message_update(i, u, "from a bot", **{"from": {"id": u, "is_bot": True, "first_name": "B"}}),
        lambda i, u: message_update(i, u, photo=photo, caption="c" * 2000),
        lambda i, u: message_update(i, u, poll={"id": "1", "question": "?", "options": [], "total_voter_count": 0,
                                               "is_closed": False, "is_anonymous": True, "type": "regular",
                                               "allows_multiple_answers": False}),
        lambda i, u: message_update(i, u, dice={"emoji": "🎲", "value": 3}),
        lambda i, u: message_update(i, u, contact={"phone_number": "+992000", "first_name": "A"}),
        lambda i, u: message_update(i, u, new_chat_title="renamed"),
        lambda i, u: message_update(i, u, "😀" * 3000),
        lambda i, u: {"update_id": i},                                           # nothing at all
        lambda i, u: {"update_id": i, "edited_message": message_update(i, u, "edit")["message"]},
        lambda i, u: {"update_id": i, "channel_post": message_update(i, u, "post", chat_type="channel")["message"]},
        lambda i, u: {"update_id": i, "some_future_update": {"x": 1}},           # unknown type
        lambda i, u: {"update_id": i, "my_chat_member": {"chat": {"id": u, "type": "private"}}},  # malformed
        lambda i, u: callback_update(i, u, None),                                # no data (game)
        lambda i, u: callback_update(i, u, "x" * 300),                           # too long
        lambda i, u: callback_update(i, u, "lang:\x07"),                         # control character
        lambda i, u: callback_update(i, u, "lang:xx"),                           # unknown language
        lambda i, u: callback_update(i, u, "fb:down:" + "é" * 20),
        lambda i, u: callback_update(i, u, "lang:ru", with_message=False),      # inline message
        lambda i, u: {"update_id": i, "callback_query": {"id": "z", "chat_instance": "c"}},  # no sender
        lambda i, u: {"update_id": i, "message": {"message_id": 1}},             # malformed: no chat/date
    ]
    return [rng.choice(makers)(10_000 + i, 745_000_000 + rng.randrange(50)) for i in range(n)]


@pytest.mark.slow
async def test_a_thousand_odd_updates_crash_nothing(bot_api: FakeBotApi, engine: FakeEngine, make_app: Any,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    app = make_app(engine)
    await app.initialize()
    await app.start()
    api = FastAPI()
    api.include_router(telegram_webhook_route(app, SECRET))
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    try:
        with caplog.at_level(logging.WARNING, logger="bot.channels.telegram"):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://h") as client:
                codes: Counter[int] = Counter()
                updates = odd_updates(1000)
                for start in range(0, len(updates), 25):  # as Telegram does: several connections at once
                    batch = updates[start:start + 25]
                    responses = await asyncio.gather(*(client.post("/telegram/webhook", json=u, headers=headers)
                                                       for u in batch))
                    codes.update(r.status_code for r in responses)
                # and the bot still answers an ordinary question afterwards
                response = await client.post("/telegram/webhook", headers=headers,
                                             json=message_update(99_999, 745_999_999, "still there?"))
        assert set(codes) <= {200, 400} and codes[200] > 800, codes
        assert response.status_code == 200
        assert bot_api.sent(745_999_999)[-1]["text"].startswith("You asked: still there?")
        assert bot_api.rejected() == []  # every message we sent was one Telegram accepts
        assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
        seen = engine.messages()
        assert all(m.text is None or len(m.text) <= 8192 for m in seen)
        assert all(m.callback is None or len(m.callback.encode()) <= 64 for m in seen)
        assert not any(m.text in ("in a group", "in a channel", "from a bot", "edit", "post", "hi") for m in seen)
    finally:
        await stop_telegram(app)


@pytest.mark.slow
async def test_each_of_500_updates_delivered_three_times_is_answered_once(bot_api: FakeBotApi, engine: FakeEngine,
                                                                         polling_bot: Any) -> None:
    updates = [message_update(20_000 + i, 746_000_000 + i % 100, f"question {i}") for i in range(500)]
    deliveries = updates * 3
    random.Random(3).shuffle(deliveries)
    bot_api.push(*deliveries)
    await eventually(lambda: len(engine.calls) == 1500, timeout=30, what="1,500 deliveries handled")
    await eventually(lambda: len(engine.sent) == 500, timeout=30, what="500 answers marked sent")

    answered = Counter((p["chat_id"], p["text"].split("\n")[0]) for p in bot_api.sent())
    assert len(answered) == 500 and set(answered.values()) == {1}
    assert len(bot_api.sent()) == 500
