"""A conversation through the real python-telegram-bot client, polling the fake Bot API."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from bench.fake_telegram import FakeBotApi, callback_update, message_update, telegram_html_problem
from bot.channels.telegram import start_polling, stop_telegram, telegram_webhook_route

from .fake_engine import LONG_ANSWER, FakeEngine
from .support import ClockedLimiter, ManualClock, eventually, key_of

pytestmark = [
    pytest.mark.integration,
    # PTB itself reads RetryAfter.retry_after while building the error (its int→timedelta migration)
    pytest.mark.filterwarnings("ignore:.*attribute `retry_after` will be of type"),
]

USER = 740_123_457


def visible(params: dict[str, Any]) -> str:
    problem, text = telegram_html_problem(params["text"])
    assert problem is None
    return text


async def test_start_shows_the_consent_notice_with_language_buttons(bot_api: FakeBotApi, engine: FakeEngine,
                                                                    polling_bot: Any) -> None:
    bot_api.push(message_update(1001, USER, "/start", language_code="tg"))
    await eventually(lambda: len(bot_api.sent()) == 1, what="the consent notice")

    message, address = engine.calls[0]
    assert message.channel == "telegram" and message.command == "start" and message.text is None
    assert message.user_key == key_of(USER) and str(USER) not in message.user_key
    assert message.message_id == "1001" and message.client_lang == "tg"
    assert address == str(USER)

    sent = bot_api.sent()[0]
    assert sent["chat_id"] == USER and sent["parse_mode"] == "HTML"
    assert "&lt;only&gt;" in sent["text"] and "&amp; you" in sent["text"]
    assert visible(sent).startswith("Hello! We keep your messages <only> to help you & you")
    keyboard = sent["reply_markup"]["inline_keyboard"]
    assert [[b["callback_data"] for b in row] for row in keyboard] == [["lang:en", "lang:ru"]]
    assert [[b["text"] for b in row] for row in keyboard] == [["English", "Русский"]]
    await eventually(lambda: engine.sent == {1}, what="mark_sent")


async def test_pressing_a_language_answers_the_button_and_the_engine_gets_its_payload(
        bot_api: FakeBotApi, engine: FakeEngine, polling_bot: Any) -> None:
    bot_api.push(callback_update(1002, USER, "lang:ru", query_id="9001"))
    await eventually(lambda: len(bot_api.sent()) == 1, what="the welcome")

    assert [c["params"]["callback_query_id"] for c in bot_api.calls_to("answerCallbackQuery")] == ["9001"]
    message, address = engine.calls[0]
    assert message.callback == "lang:ru" and message.message_id == "cb:9001" and address == str(USER)
    assert visible(bot_api.sent()[0]) == "Language set: ru"


async def test_markup_in_an_answer_arrives_escaped_and_telegram_accepts_it(
        bot_api: FakeBotApi, engine: FakeEngine, polling_bot: Any) -> None:
    question = "Is <b>patent</b> & visa the same? 5 < 6 > 4 &amp; \"quotes\""
    bot_api.push(message_update(1003, USER, question))
    await eventually(lambda: len(bot_api.sent()) == 1, what="the answer")

    assert bot_api.rejected() == []  # no "can't parse entities"
    sent = bot_api.sent()[0]
    assert "<b>patent</b>" not in sent["text"] and "&lt;b&gt;patent&lt;/b&gt;" in sent["text"]
    shown = visible(sent)
    assert shown.startswith(f"You asked: {question}")
    # the source and review date travel with the answer; the source title is escaped inside the link
    assert '<a href="https://mrc.example/a?b=1&amp;c=2">MRC &lt;Guide&gt; &amp; FAQ</a>' in sent["text"]
    assert "2024-05-01" in shown
    assert sent["link_preview_options"] == {"is_disabled": True}
    callbacks = [b["callback_data"] for row in sent["reply_markup"]["inline_keyboard"] for b in row]
    assert callbacks == ["fb:up:e1", "fb:down:e1", "human:ask"]


async def test_a_5000_character_answer_is_split_at_paragraphs_with_buttons_on_the_last_part(
        bot_api: FakeBotApi, engine: FakeEngine, polling_bot: Any) -> None:
    assert len(LONG_ANSWER) > 5000
    bot_api.push(message_update(1004, USER, "long"))
    await eventually(lambda: engine.sent == {1}, what="the long answer")

    parts = bot_api.sent()
    assert len(parts) >= 2 and bot_api.rejected() == []
    assert all(len(p["text"]) <= 4096 for p in parts)
    assert all("reply_markup" not in p for p in parts[:-1]) and "reply_markup" in parts[-1]
    paragraphs = LONG_ANSWER.split("\n\n")
    received = [visible(p).split("\n\n") for p in parts]
    assert [para for part in received for para in part] == paragraphs  # nothing lost, none cut


async def test_attachments_reach_the_engine_as_kinds_only(bot_api: FakeBotApi, engine: FakeEngine,
                                                          polling_bot: Any) -> None:
    photo = [{"file_id": "p", "file_unique_id": "pu", "width": 1, "height": 1}]
    contents: list[dict[str, Any]] = [
        {"voice": {"file_id": "v", "file_unique_id": "vu", "duration": 3}},
        {"photo": photo, "caption": "my passport number is 123"},
        {"document": {"file_id": "d", "file_unique_id": "du"}},
        {"sticker": {"file_id": "s", "file_unique_id": "su", "type": "regular", "width": 1, "height": 1,
                     "is_animated": False, "is_video": False}},
        {"video": {"file_id": "m", "file_unique_id": "mu", "width": 1, "height": 1, "duration": 1}},
        {"location": {"latitude": 41.3, "longitude": 69.2}},
    ]
    for i, content in enumerate(contents):
        bot_api.push(message_update(1100 + i, USER, **content))
    await eventually(lambda: len(bot_api.sent()) == len(contents), what="six replies")
    assert [m.attachment for m in engine.messages()] == ["voice", "photo", "file", "sticker", "video", "location"]
    # a caption is read as text (a photo of a contract with a question under it is a question)
    assert [m.text for m in engine.messages()] == [None, "my passport number is 123", None, None, None, None]
    assert engine.messages()[0].attachment_note == "[voice, 3 s]"
    assert engine.messages()[-1].location_country == "UZ"  # Tashkent: emergency numbers for Uzbekistan


async def test_replies_to_one_chat_keep_their_order(bot_api: FakeBotApi, engine: FakeEngine,
                                                    polling_bot: Any) -> None:
    bot_api.push(*(message_update(1200 + i, USER, f"question {i}") for i in range(10)))
    await eventually(lambda: len(bot_api.sent()) == 10, what="ten answers")
    assert [visible(p).split("\n")[0] for p in bot_api.sent()] == [f"You asked: question {i}" for i in range(10)]


async def test_a_429_from_send_message_is_retried_after_retry_after(bot_api: FakeBotApi, engine: FakeEngine,
                                                                    make_app: Any) -> None:
    clock = ManualClock()
    limiter = ClockedLimiter(clock)
    app = make_app(engine, rate_limiter=limiter)
    await start_polling(app, poll_timeout=0.2)
    try:
        bot_api.fail_next("sendMessage", retry_after=1)
        bot_api.push(message_update(1300, USER, "hello"))
        await eventually(lambda: clock.waiting[:1] == [1.0], what="the limiter waiting out retry_after")
        assert bot_api.sent() == []  # not asked again during the pause
        clock.advance(1.0)
        await eventually(lambda: len(bot_api.sent()) == 1, what="the retried answer")

        attempts = bot_api.calls_to("sendMessage", ok=None)
        assert [c["ok"] for c in attempts] == [False, True]
        assert limiter.sent_at == [(USER, 0.0), (USER, 1.0)]
        await eventually(lambda: engine.sent == {1}, what="mark_sent")
        assert engine.mark_sent_calls == [[1]]
    finally:
        await stop_telegram(app)


async def test_a_429_longer_than_we_wait_leaves_the_reply_for_the_delivery_loop(
        bot_api: FakeBotApi, engine: FakeEngine, make_app: Any) -> None:
    """The webhook answers at once; nothing is sent during the pause; the loop delivers after it."""
    clock = ManualClock()
    limiter = ClockedLimiter(clock, max_retry_after=0.5)
    app = make_app(engine, rate_limiter=limiter)
    await app.initialize()
    await app.start()
    api = FastAPI()
    api.include_router(telegram_webhook_route(app, "s"))
    try:
        bot_api.fail_next("sendMessage", retry_after=2)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://h") as client:
            # simulated time stands still: a request that sat out the pause would never come back
            response = await asyncio.wait_for(
                client.post("/telegram/webhook", json=message_update(1400, USER, "hello"),
                            headers={"X-Telegram-Bot-Api-Secret-Token": "s"}), timeout=30)
        assert response.status_code == 200
        assert bot_api.sent() == [] and engine.sent == set()
        rounds = engine.claims
        await eventually(lambda: engine.claims >= rounds + 3, what="three rounds of the delivery loop")
        assert [c["ok"] for c in bot_api.calls_to("sendMessage", ok=None)] == [False]  # no hammering
        clock.advance(2.0)
        await eventually(lambda: engine.sent == {1}, what="delivery after the pause")
        attempts = bot_api.calls_to("sendMessage", ok=None)
        assert [c["ok"] for c in attempts] == [False, True]
        assert limiter.sent_at == [(USER, 0.0), (USER, 2.0)]
    finally:
        await app.stop()
        await app.shutdown()


async def test_the_per_chat_limit_spaces_messages_to_one_chat(bot_api: FakeBotApi, engine: FakeEngine,
                                                              make_app: Any) -> None:
    clock = ManualClock()
    limiter = ClockedLimiter(clock, chat_per_second=5, chat_burst=1)
    app = make_app(engine, rate_limiter=limiter)
    await start_polling(app, poll_timeout=0.2)
    try:
        bot_api.push(*(message_update(1500 + i, USER, f"q{i}") for i in range(4)))
        bot_api.push(message_update(1600, USER + 1, "other chat"))
        await clock.run_until(lambda: len(bot_api.sent()) == 5, what="five answers")
        times = [at for chat, at in limiter.sent_at if chat == USER]
        # four messages at 5 per second without a burst: one every 0.2 s of (simulated) time
        assert times == pytest.approx([0.0, 0.2, 0.4, 0.6])
    finally:
        await stop_telegram(app)


async def test_polling_removes_a_webhook_and_asks_only_for_messages_and_buttons(bot_api: FakeBotApi,
                                                                        polling_bot: Any) -> None:
    assert bot_api.calls_to("deleteWebhook"), "start_polling must remove a webhook"
    await eventually(lambda: bool(bot_api.calls_to("getUpdates")), what="a poll")
    assert bot_api.calls_to("getUpdates")[0]["params"]["allowed_updates"] == ["message", "callback_query"]


async def test_a_button_press_and_the_next_message_reach_the_engine_in_order(
        bot_api: FakeBotApi, engine: FakeEngine, polling_bot: Any) -> None:
    """Answering the button is a network call; the message behind it must not overtake it."""
    for i in range(5):
        bot_api.push(callback_update(1700 + 2 * i, USER, "lang:ru", query_id=f"o{i}"),
                     message_update(1701 + 2 * i, USER, f"after {i}"))
    await eventually(lambda: len(bot_api.sent()) == 10, what="ten replies")
    kinds = ["button" if m.callback else "text" for m in engine.messages()]
    assert kinds == ["button", "text"] * 5
