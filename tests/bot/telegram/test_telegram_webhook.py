"""Webhook mode behind our own ASGI app: authenticated, handled before the 200, redelivery-safe."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from bench.fake_telegram import FakeBotApi, callback_update, message_update
from bot.channels.telegram import start_webhook, stop_telegram, telegram_webhook_route

from .fake_engine import FakeEngine

pytestmark = pytest.mark.integration

SECRET = "webhook-Secret_0123456789"
USER = 740_555_001


@pytest.fixture
async def webhook(make_app: Any, engine: FakeEngine) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    app = make_app(engine)
    await start_webhook(app, url="https://mrc.example/telegram/webhook", secret_token=SECRET)
    api = FastAPI()
    api.include_router(telegram_webhook_route(app, SECRET))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://hamroh") as client:
        yield client, app
    await stop_telegram(app)


def post(client: httpx.AsyncClient, body: Any, secret: str | None = SECRET, *, raw: bytes | None = None) -> Any:
    headers = {"content-type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    content = raw if raw is not None else json.dumps(body).encode()
    return client.post("/telegram/webhook", content=content, headers=headers)


async def test_start_webhook_registers_the_secret_and_the_update_types(bot_api: FakeBotApi, webhook: Any) -> None:
    assert bot_api.webhook is not None
    assert bot_api.webhook["url"] == "https://mrc.example/telegram/webhook"
    assert bot_api.webhook["secret_token"] == SECRET
    assert bot_api.webhook["allowed_updates"] == ["message", "callback_query"]


@pytest.mark.parametrize("secret", [None, "", "wrong-secret", SECRET + "x", SECRET[:-1], "ünïcode"])
async def test_a_missing_or_wrong_secret_is_refused_and_nothing_is_processed(
        bot_api: FakeBotApi, engine: FakeEngine, webhook: Any, secret: str | None) -> None:
    client, _ = webhook
    if secret == "ünïcode":
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret.encode("latin-1")}
        response = await client.post("/telegram/webhook", content=b"{}", headers=headers)  # type: ignore[arg-type]
    else:
        response = await post(client, message_update(1, USER, "hello"), secret)
    assert response.status_code == 403
    assert engine.calls == [] and bot_api.sent() == []


async def test_an_update_is_handled_and_answered_before_the_200(bot_api: FakeBotApi, engine: FakeEngine,
                                                                webhook: Any) -> None:
    client, _ = webhook
    response = await post(client, message_update(2001, USER, "hello & <welcome>"))
    assert response.status_code == 200
    # no waiting: recorded by the engine, sent and marked sent before the response
    assert [m.text for m in engine.messages()] == ["hello & <welcome>"]
    assert len(bot_api.sent(USER)) == 1 and engine.sent == {1}
    assert "hello &amp; &lt;welcome&gt;" in bot_api.sent(USER)[0]["text"]

    response = await post(client, callback_update(2002, USER, "fb:up:e1", query_id="77"))
    assert response.status_code == 200
    assert [c["params"]["callback_query_id"] for c in bot_api.calls_to("answerCallbackQuery")] == ["77"]


@pytest.mark.parametrize("raw", [b"", b"{", b"not json", b"\xff\xfe", b"[]", b"42", b'"text"', b"null",
                                 b'{"message": {}}', b'{"update_id": "7"}', b'{"update_id": true}',
                                 b'{"update_id": 1, "message": "x"}', b'{"update_id": 1, "message": {}}',
                                 b'{"update_id": 1, "callback_query": [1, 2]}'])
async def test_malformed_bodies_get_400_without_reaching_the_engine(engine: FakeEngine, webhook: Any,
                                                                    raw: bytes) -> None:
    client, _ = webhook
    response = await post(client, None, raw=raw)
    assert response.status_code == 400
    assert engine.calls == []


async def test_an_oversized_body_is_refused(engine: FakeEngine, webhook: Any) -> None:
    client, _ = webhook
    response = await post(client, None, raw=b'{"update_id": 1, "x": "' + b"a" * (2 << 20) + b'"}')
    assert response.status_code == 413 and engine.calls == []


async def test_an_engine_failure_answers_500_so_telegram_redelivers_and_it_is_answered_once(
        bot_api: FakeBotApi, engine: FakeEngine, webhook: Any) -> None:
    client, _ = webhook
    engine.fail_handle = 1
    update = message_update(2100, USER, "hello")
    assert (await post(client, update)).status_code == 500
    assert bot_api.sent() == []
    assert (await post(client, update)).status_code == 200
    assert (await post(client, update)).status_code == 200  # a further redelivery: nothing new
    assert len(bot_api.sent(USER)) == 1


async def test_a_poison_update_is_given_up_after_the_bounded_attempts(engine: FakeEngine, make_app: Any) -> None:
    app = make_app(engine, max_webhook_attempts=2)
    await app.initialize()
    try:
        api = FastAPI()
        api.include_router(telegram_webhook_route(app, SECRET))
        engine.fail_handle = 10
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://h") as client:
            codes = [(await post(client, message_update(2200, USER, "x"))).status_code for _ in range(3)]
        assert codes == [500, 200, 500]  # two attempts, then a 200 so Telegram stops; a new count after
    finally:
        await app.shutdown()


async def test_concurrent_redeliveries_are_answered_once(bot_api: FakeBotApi, engine: FakeEngine,
                                                         webhook: Any) -> None:
    client, _ = webhook
    updates = [message_update(2300 + i, USER + i % 5, f"q{i}") for i in range(50)]
    responses = await asyncio.gather(*(post(client, u) for u in updates * 3))
    assert {r.status_code for r in responses} == {200}
    texts = [p["text"].split("\n")[0] for p in bot_api.sent()]
    assert sorted(texts) == sorted(f"You asked: q{i}" for i in range(50))


async def test_before_initialisation_the_route_asks_for_a_redelivery(engine: FakeEngine, make_app: Any) -> None:
    app = make_app(engine)
    api = FastAPI()
    api.include_router(telegram_webhook_route(app, SECRET))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://h") as client:
        response = await post(client, message_update(2400, USER, "hello"))
    assert response.status_code == 503 and engine.calls == []


@pytest.mark.parametrize("secret", ["", "has space", "x" * 257, "ключ"])
def test_an_unusable_secret_fails_fast(make_app: Any, engine: FakeEngine, secret: str) -> None:
    with pytest.raises(ValueError, match="webhook secret"):
        telegram_webhook_route(make_app(engine), secret)
