"""A newcomer's ordinary conversation on Telegram, through the real engine, model and index: a
question before consent answered after it, "More details", the menu, a voice note, Uzbek in
Cyrillic, and the command menu registered per language."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bench.fake_telegram import FakeBotApi, callback_update, message_update, telegram_html_problem
from bot.channels.telegram import start_polling, stop_telegram
from storage.scratch import copy_sqlite

from .support import eventually

pytestmark = [pytest.mark.integration, pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:.*attribute `retry_after` will be of type"),
              pytest.mark.filterwarnings("ignore:.*attribute `duration` will be of type")]

USER = 700_111


def _text(params: dict[str, Any]) -> str:
    problem, text = telegram_html_problem(params["text"])
    assert problem is None, problem
    return text


def _buttons(params: dict[str, Any]) -> list[str]:
    return [b["callback_data"] for row in params.get("reply_markup", {}).get("inline_keyboard", []) for b in row]


async def test_a_newcomers_conversation_on_telegram(bot_api: FakeBotApi, make_app: Any, settings, kb, embedder,
                                                    sqlite_template_db: Path, tmp_path: Path) -> None:
    from bot.services import build_engine, open_understander
    from storage import create_engine, session_factory

    local = settings.model_copy(update={"session_secret": SecretStr("s" * 40)})
    db = create_engine(copy_sqlite(sqlite_template_db, tmp_path / "hamroh.db"))
    engine = build_engine(local, session_factory(db), lambda: kb, open_understander(local, embedder))
    app = make_app(engine)
    await start_polling(app, poll_timeout=0.2)
    try:
        assert any(c["params"].get("language_code") == "uz" for c in bot_api.calls_to("setMyCommands"))
        sent = lambda: bot_api.sent(USER)  # noqa: E731
        # a question before consent, the phone set to Russian: the notice comes in Tajik
        bot_api.push(message_update(1, USER, "Барои патент дар Русия кадом ҳуҷҷатҳо лозиманд?", language_code="ru"))
        await eventually(lambda: len(sent()) == 1, timeout=30, what="the consent notice")
        assert "consent:tg" in _buttons(sent()[0])
        bot_api.push(callback_update(2, USER, "consent:tg", query_id="c2"))
        await eventually(lambda: len(sent()) >= 3, timeout=30, what="welcome and the kept question's answer")
        kept = sent()[-1]
        assert any(p.startswith(("more:", "entry:")) for p in _buttons(kept))  # answered, or a choice to make
        if any(p.startswith("more:") for p in _buttons(kept)):
            more = next(p for p in _buttons(kept) if p.startswith("more:"))
            n = len(sent())
            bot_api.push(callback_update(3, USER, more, query_id="c3"))
            await eventually(lambda: len(sent()) > n, timeout=30, what="the details")
            assert len(_text(sent()[-1])) > len(_text(kept)) / 2
        n = len(sent())
        bot_api.push(message_update(4, USER, "/menu"))
        await eventually(lambda: len(sent()) > n, timeout=30, what="the menu")
        assert any(p.startswith("menu:") for p in _buttons(sent()[-1]))
        n = len(sent())
        bot_api.push(message_update(5, USER, voice={"file_id": "v", "file_unique_id": "vu", "duration": 14}))
        await eventually(lambda: len(sent()) > n, timeout=30, what="the voice note's reply")
        assert "human:att" in _buttons(sent()[-1])
        n = len(sent())
        bot_api.push(message_update(6, USER, "Россияда патент олиш учун қандай ҳужжатлар керак?"))
        await eventually(lambda: len(sent()) > n, timeout=30, what="the Uzbek answer")
        reply = _text(sent()[-1])
        assert sum("а" <= ch <= "я" or ch in "ўқғҳ" for ch in reply.lower()) > sum(ch.isascii() and ch.isalpha()
                                                                                   for ch in reply)
        assert bot_api.rejected() == []
    finally:
        await stop_telegram(app)
        await db.dispose()
