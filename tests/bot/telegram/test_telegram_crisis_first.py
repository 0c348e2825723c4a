"""A crisis as the very first Telegram message, through the real engine, model and understanding:
the crisis reply with a number to dial comes before any consent, a crisis ticket is open, and the
MRC's counsellor group gets the alert through the bot."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from bench.fake_telegram import FakeBotApi, message_update, telegram_html_problem
from bot.channels.telegram import TelegramGroupNotifier, start_polling, stop_telegram
from handoff.tables import Ticket
from storage.scratch import copy_sqlite

from .support import eventually

pytestmark = [pytest.mark.integration, pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:.*attribute `retry_after` will be of type")]

GROUP = -1001234567
#: (user, first message, phone's language, the language the reply must be in, a number to dial)
CRISES = [
    (800_001, "помогите хозяин бьёт меня и забрал паспорт, я в Москве", "en", "ru", "112"),
    (800_002, "Rossiyada ishxonada meni urishyapti, pasportimni olib qo'yishdi, yordam bering", "ru", "uz", "112"),
    (800_003, "please help my sponsor locked me in the house in Dubai and beats me", "ru", "en", "999"),
    (800_004, "আমাকে সৌদি আরবে মালিক মারধর করছে, পাসপোর্ট কেড়ে নিয়েছে, বাঁচান", "en", "bn", "911"),
]


def _text(params: dict[str, Any]) -> str:
    problem, text = telegram_html_problem(params["text"])
    assert problem is None, problem
    return text


async def test_a_crisis_as_the_first_message_is_answered_before_consent_and_alerts_the_group(
        bot_api: FakeBotApi, make_app: Any, settings, kb, embedder, sqlite_template_db: Path,
        tmp_path: Path) -> None:
    from bot.services import build_engine, open_understander
    from storage import create_engine, session_factory

    local = settings.model_copy(update={
        "session_secret": SecretStr("s" * 40),
        "console": settings.console.model_copy(update={"telegram_group_chat_id": str(GROUP)})})
    db = create_engine(copy_sqlite(sqlite_template_db, tmp_path / "hamroh.db"))
    sessions = session_factory(db)
    notifier = TelegramGroupNotifier()
    engine = build_engine(local, sessions, lambda: kb, open_understander(local, embedder), notifier=notifier)
    app = make_app(engine)
    notifier.application = app
    await start_polling(app, poll_timeout=0.2)
    try:
        started = time.monotonic()
        for i, (user, text, phone_lang, _, _) in enumerate(CRISES):
            bot_api.push(message_update(9000 + i, user, text, language_code=phone_lang))
        for user, _, _, _, number in CRISES:
            await eventually(lambda u=user: len(bot_api.sent(u)) >= 2, timeout=60, what=f"the replies to {user}")
            texts = [_text(p) for p in bot_api.sent(user)]
            consent, crisis = texts[0], texts[-1]
            assert "/delete" in consent  # the notice, in the message's language, not the phone's
            assert number in crisis, (user, crisis)
        await eventually(lambda: len(bot_api.sent(GROUP)) >= len(CRISES), timeout=30, what="the group alerts")
        alert_seconds = time.monotonic() - started
        assert all("crisis" in _text(p).lower() for p in bot_api.sent(GROUP))
        async with sessions() as s:
            tickets = (await s.execute(select(Ticket))).scalars().all()
        assert len(tickets) == len(CRISES) and all(t.priority == 0 for t in tickets)
        assert {t.lang for t in tickets} == {lang for *_, lang, _ in CRISES}
        print(f"group alerts for {len(CRISES)} crises within {alert_seconds:.2f} s of the first message")
    finally:
        await stop_telegram(app)
        await db.dispose()
