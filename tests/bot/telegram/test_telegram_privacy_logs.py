"""No message text, raw Telegram id or bot token in any log record, even at DEBUG."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from bench.fake_telegram import TOKEN, FakeBotApi, callback_update, message_update
from bot.channels.telegram import telegram_webhook_route

from .fake_engine import FakeEngine
from .support import eventually, key_of

pytestmark = [pytest.mark.integration,
              pytest.mark.filterwarnings("ignore:.*attribute `retry_after` will be of type")]

USER = 748_291_653
SECRET_TEXT = "my passport 4AB123 was taken by the employer"


def leaks(records: list[logging.LogRecord], needles: list[str]) -> list[str]:
    found = []
    for record in records:
        if record.name.startswith("uvicorn"):  # the fake Bot API server's own logs
            continue
        rendered = record.getMessage() + (record.exc_text or "")
        if record.exc_info and record.exc_info[1] is not None:
            rendered += repr(record.exc_info[1])
        found += [f"{record.name}: {needle[:20]}" for needle in needles if needle in rendered]
    return found


async def test_a_conversation_with_failures_logs_no_texts_ids_or_token(
        bot_api: FakeBotApi, engine: FakeEngine, make_app: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("telegram", "telegram.Bot", "telegram.ext.ExtBot", "telegram.ext.Application", "httpx",
                 "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)  # an operator chasing a problem turns DEBUG on
    app = make_app(engine)
    await app.initialize()
    await app.start()
    api = FastAPI()
    api.include_router(telegram_webhook_route(app, "s3cret"))
    headers = {"X-Telegram-Bot-Api-Secret-Token": "s3cret"}
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://h") as client:
            engine.fail_handle = 1  # its exception quotes the text, as a database error would
            await client.post("/telegram/webhook", json=message_update(1, USER, SECRET_TEXT), headers=headers)
            await client.post("/telegram/webhook", json=message_update(1, USER, SECRET_TEXT), headers=headers)
            bot_api.fail_next("sendMessage", status=400, description=f"Bad Request: can't parse {SECRET_TEXT}")
            await client.post("/telegram/webhook", json=message_update(2, USER, SECRET_TEXT + " 2"), headers=headers)
            bot_api.fail_next("sendMessage", retry_after=1)
            await client.post("/telegram/webhook", json=callback_update(3, USER, "lang:ru"), headers=headers)
            engine.add_counsellor_reply(key_of(USER), str(USER), SECRET_TEXT + " counsellor")
            await eventually(lambda: len(engine.sent) >= 4, what="all replies")
    finally:
        await app.stop()
        await app.shutdown()

    assert caplog.records, "the scenario should have logged something"
    assert any("failed" in r.getMessage() for r in caplog.records)  # failures are still visible
    assert leaks(caplog.records, [SECRET_TEXT, "4AB123", str(USER), TOKEN, TOKEN.split(":")[1]]) == []
    # the pseudonym is what identifies the person in the logs
    assert any(key_of(USER)[:12] in r.getMessage() for r in caplog.records)
