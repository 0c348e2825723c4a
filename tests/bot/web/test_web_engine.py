"""The web channel on the real conversation engine, database and knowledge base.

Why again with the real engine: the fake mirrors its contract, but only the real one proves that
the channel's scoped message ids, acknowledgements and ``pending("web")`` polling fit the outbox
as the engine actually stores it: consent stores nothing, a resend is answered once, a counsellor's
reply (written through handoff's ``OutboundPort``) reaches the open chat, "delete" erases.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select

from bot.channels.web import create_web_router
from bot.services import build_engine
from bot.tables import BotUser, OutboxItem
from handoff import OutboundMessage
from nlu import Entities, LanguageHint, Understanding
from storage import create_engine, session_factory

from .conftest import SECRET
from .test_web_api import consent, exchange, hello, replies

pytestmark = pytest.mark.integration

QUESTION = "How do I register with the Protector of Emigrants in Pakistan before going abroad for work?"


class QuestionUnderstander:
    """Everything is a question in the chosen language (the real NLU is tested in tests/nlu)."""

    def understand(self, text: str, hint: LanguageHint | None = None) -> Understanding:
        lang = (hint.current or hint.chosen) if hint else "en"
        return Understanding(lang or "en", "Latn", "question", None, Entities(), 0.9, True)


@pytest.fixture
def real(db_url: str, settings: Any, kb: Any) -> Iterator[tuple[TestClient, Any, Any]]:
    database = create_engine(db_url)
    sessions = session_factory(database)
    local = settings.model_copy(update={"session_secret": SecretStr("s" * 40)})
    engine = build_engine(local, sessions, lambda: kb, QuestionUnderstander())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await database.dispose()  # in the app's own loop, where the connections live

    app = FastAPI(lifespan=lifespan)
    app.include_router(create_web_router(engine, key_secret=SECRET, poll_interval=0.05))
    with TestClient(app) as client:
        yield client, engine, sessions


def _count(client: TestClient, sessions: Any, table: Any, **where: Any) -> int:
    async def count() -> int:
        async with sessions() as s:
            query = select(func.count()).select_from(table)
            for column, value in where.items():
                query = query.where(getattr(table, column) == value)
            return int(await s.scalar(query))

    assert client.portal is not None
    return client.portal.call(count)


def test_web_conversation_on_the_real_engine(real: tuple[TestClient, Any, Any]) -> None:
    client, engine, sessions = real
    client.post("/api/chat/session")
    with client.websocket_connect("/ws/chat") as ws:
        hello(ws)
        start = replies(exchange(ws, {"type": "command", "id": "r-start-01", "command": "start", "lang": "ru"}))
        assert start[0]["kind"] == "consent" and start[0]["id"] is None and start[0]["lang"] == "ru"
        assert _count(client, sessions, BotUser) == 0  # nothing stored before consent
        ws.send_json({"type": "ack", "ids": []})
        welcome = replies(exchange(ws, {"type": "button", "id": "r-lang-001", "payload": "lang:en"}))[0]
        assert welcome["kind"] == "welcome" and isinstance(welcome["id"], int)
        ws.send_json({"type": "ack", "ids": [welcome["id"]]})
        frames = replies(exchange(ws, {"type": "message", "id": "r-q-000001", "text": QUESTION}))
        answer = frames[0]
        assert answer["kind"] in ("answer", "clarify")
        if answer["kind"] == "answer":
            assert answer["source_url"].startswith("http") and answer["reviewed_on"]
            payloads = [b["payload"] for row in answer["buttons"] for b in row]
            assert f"fb:up:{answer['entry_id']}" in payloads and f"fb:down:{answer['entry_id']}" in payloads
            assert answer["sources"] and answer["reviewed_label"]  # one source block, a readable date
    user_key = next(iter(_users(client, sessions)))
    with client.websocket_connect("/ws/chat") as ws:  # reconnect, resend: answered once
        hello(ws)
        again = replies(exchange(ws, {"type": "message", "id": "r-q-000001", "text": QUESTION}))
        assert {f["id"] for f in again} <= {answer["id"]}
        ws.send_json({"type": "ack", "ids": [answer["id"]]})
        assert exchange(ws, {"type": "message", "id": "r-q-000001", "text": QUESTION}) == [
            {"type": "handled", "id": "r-q-000001"}]
        assert _count(client, sessions, OutboxItem, sent_at=None) == 0

        assert client.portal is not None
        client.portal.call(engine.send, user_key, OutboundMessage(text="I can help with the registration.",
                                                                  ticket_id=1, counsellor_name="Dilnoza"))
        live = ws.receive_json()
        assert live["type"] == "reply" and live["kind"] == "counsellor"
        assert "I can help with the registration." in live["text"] and "Dilnoza" in live["text"]
        ws.send_json({"type": "ack", "ids": [live["id"]]})
        exchange(ws, {"type": "command", "id": "r-del-0001", "command": "delete"})
        deleted = replies(exchange(ws, {"type": "button", "id": "r-del-0002", "payload": "delete:yes"}))[0]
        assert deleted["kind"] == "deleted"
    assert _count(client, sessions, BotUser) == 0 and _count(client, sessions, OutboxItem) == 0


def test_http_fallback_on_the_real_engine(real: tuple[TestClient, Any, Any]) -> None:
    client, engine, sessions = real

    def send(frame: dict[str, Any]) -> list[dict[str, Any]]:
        response = client.post("/api/chat/send", json=frame)
        assert response.status_code == 200
        return list(response.json()["frames"])

    assert replies(send({"type": "command", "id": "h-start-01", "command": "start"}))[0]["kind"] == "consent"
    welcome = replies(send({"type": "button", "id": "h-lang-001", "payload": "lang:en"}))[0]
    answer = replies(send({"type": "message", "id": "h-q-000001", "text": QUESTION, "ack": [welcome["id"]]}))[0]
    assert answer["kind"] in ("answer", "clarify")
    assert send({"type": "message", "id": "h-q-000001", "text": QUESTION}) == [
        replies([answer])[0] | {"in_reply_to": "h-q-000001"}, {"type": "handled", "id": "h-q-000001"}]
    polled = client.get(f"/api/chat/poll?ack={answer['id']}").json()["frames"]
    assert polled == [] and _count(client, sessions, OutboxItem, sent_at=None) == 0
    user_key = next(iter(_users(client, sessions)))
    assert client.portal is not None
    client.portal.call(engine.send, user_key, OutboundMessage(text="Hello from the centre.", ticket_id=1,
                                                              counsellor_name="Dilnoza"))
    frames = client.get("/api/chat/poll?wait=5").json()["frames"]
    assert [f["kind"] for f in frames] == ["counsellor"]


def _users(client: TestClient, sessions: Any) -> set[str]:
    async def keys() -> set[str]:
        async with sessions() as s:
            return set((await s.scalars(select(BotUser.user_key))).all())

    assert client.portal is not None
    return client.portal.call(keys)


def test_consent_helper_matches_the_real_engine(real: tuple[TestClient, Any, Any]) -> None:
    client, _, sessions = real
    with client.websocket_connect("/ws/chat") as ws:
        hello(ws)
        welcome = consent(ws)
    assert welcome["kind"] == "welcome" and len(_users(client, sessions)) == 1
