"""End to end with the real ConversationEngine on SQLite: consent, language, question, counsellor reply.

The knowledge base and NLU are replaced by the smallest stand-ins (no model to load): this test is
about the Telegram channel keeping the engine's promises — nothing stored before consent, each
update answered once, a counsellor's reply delivered once by the delivery loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from bench.fake_telegram import FakeBotApi, callback_update, message_update, telegram_html_problem
from bot.channels.telegram import start_polling, stop_telegram, telegram_webhook_route
from storage.scratch import copy_sqlite

from .support import eventually, key_of

pytestmark = [pytest.mark.integration,
              pytest.mark.filterwarnings("ignore:.*attribute `retry_after` will be of type")]

USER = 741_300_222
SECRET = "real-engine-secret"


class QuestionUnderstander:
    """Every text is a Russian question; no model, no lexicons."""

    def understand(self, text: str, hint: Any = None) -> Any:
        from nlu import Understanding

        return Understanding(lang="ru", script="Cyrl", act="question", confidence=1.0, lang_confident=True)


@pytest.fixture
async def real_engine(sqlite_template_db: Path, tmp_path: Path) -> AsyncIterator[Any]:
    from bot.engine import ConversationEngine, EngineOptions
    from bot.i18n import Translator
    from handoff import ConsoleSettings, MrcSettings
    from storage import create_engine, session_factory

    db = create_engine(copy_sqlite(sqlite_template_db, tmp_path / "hamroh.db"))
    console = ConsoleSettings(mrcs=(MrcSettings(id="tj", name="MRC Tajikistan", country="TJ"),),
                              session_secret="s" * 40)
    engine = ConversationEngine(sessions=session_factory(db), kb=lambda: None, understander=QuestionUnderstander(),
                                translator=Translator(), options=EngineOptions(languages=("en", "ru", "tg"),
                                                                               default_mrc="tj"),
                                console=console)
    yield engine
    await db.dispose()


def shown(params: dict[str, Any]) -> str:
    problem, text = telegram_html_problem(params["text"])
    assert problem is None, problem
    return text


def buttons(params: dict[str, Any]) -> list[str]:
    return [b["callback_data"] for row in params.get("reply_markup", {}).get("inline_keyboard", []) for b in row]


async def test_a_conversation_through_the_real_engine(bot_api: FakeBotApi, real_engine: Any, make_app: Any) -> None:
    from handoff import OutboundMessage

    app = make_app(real_engine)
    await start_polling(app, poll_timeout=0.2)
    try:
        # /start → consent notice with the language buttons; nothing is stored yet
        bot_api.push(message_update(1, USER, "/start", language_code="ru"))
        await eventually(lambda: len(bot_api.sent()) == 1, what="the consent notice")
        consent = bot_api.sent()[0]
        assert buttons(consent) == ["consent:ru", "decline", "lang:en", "lang:ru", "lang:tg"]
        assert await real_engine.pending("telegram") == []

        # choosing a language is the consent; the answer is stored, sent and marked sent
        bot_api.push(callback_update(2, USER, "lang:ru", query_id="q2"))
        await eventually(lambda: len(bot_api.sent()) == 2, what="the welcome")
        assert bot_api.calls_to("answerCallbackQuery")

        # a question without a verified answer → says so and offers the menu; redelivered twice → once
        question = message_update(3, USER, "Мой <b>патент</b> & виза?")
        bot_api.push(question, question)
        await eventually(lambda: len(bot_api.sent()) == 3, what="the answer")
        bot_api.push(question)
        await asyncio.sleep(0.4)
        assert len(bot_api.sent()) == 3
        assert "menu" in buttons(bot_api.sent()[2]) and "human:noans" not in buttons(bot_api.sent()[2])
        # a second miss in a row → a counsellor is offered
        bot_api.push(message_update(30, USER, "а регистрация?"))
        await eventually(lambda: len(bot_api.sent()) == 4, what="the counsellor offer")
        assert "human:noans" in buttons(bot_api.sent()[3])

        # "talk to a counsellor" opens a ticket; the counsellor's reply comes through the delivery loop
        bot_api.push(callback_update(4, USER, "human:noans", query_id="q4"))
        await eventually(lambda: len(bot_api.sent()) == 5, what="the ticket confirmation")
        assert "back" in buttons(bot_api.sent()[4])  # the person can go back to the bot
        await real_engine.send(key_of(USER), OutboundMessage(text="Принесите паспорт <и> договор & визу.",
                                                             ticket_id=1, counsellor_name="Aziza", lang="ru"))
        await eventually(lambda: len(bot_api.sent()) == 6, what="the counsellor's reply")
        await asyncio.sleep(0.3)
        assert len(bot_api.sent()) == 6
        assert shown(bot_api.sent()[5]).endswith("Принесите паспорт <и> договор & визу.")
        assert await real_engine.pending("telegram") == []
        assert bot_api.rejected() == [] and all(p["chat_id"] == USER for p in bot_api.sent())
    finally:
        await stop_telegram(app)


async def test_webhook_redeliveries_through_the_real_engine_are_answered_once(
        bot_api: FakeBotApi, real_engine: Any, make_app: Any) -> None:
    app = make_app(real_engine)
    await app.initialize()
    await app.start()
    api = FastAPI()
    api.include_router(telegram_webhook_route(app, SECRET))
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://h") as client:
            assert (await client.post("/telegram/webhook", json=callback_update(10, USER, "lang:en"),
                                      headers=headers)).status_code == 200
            updates = [message_update(11 + i, USER, f"question {i}") for i in range(5)]
            responses = await asyncio.gather(*(client.post("/telegram/webhook", json=u, headers=headers)
                                               for u in updates * 3))
            assert {r.status_code for r in responses} == {200}
            wrong = await client.post("/telegram/webhook", json=message_update(99, USER, "x"),
                                      headers={"X-Telegram-Bot-Api-Secret-Token": "nope"})
            assert wrong.status_code == 403
        assert len(bot_api.sent(USER)) == 1 + 5
        assert await real_engine.pending("telegram") == []
    finally:
        await app.stop()
        await app.shutdown()
