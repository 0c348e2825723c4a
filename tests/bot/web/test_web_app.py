"""The web chat as ``hamroh serve`` runs it: ``create_app(channels=True)`` with the real engine.

Why: the router is tested on its own elsewhere; this proves the application actually mounts it
(page at ``/``, widget files, WebSocket, HTTP fallback) with the same user keys as the rest of the
application, and that an app built without channels does not expose the chat.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

from bot.app import create_app
from bot.privacy import user_key
from bot.tables import BotUser

from .test_web_api import exchange, hello, replies

pytestmark = pytest.mark.integration

KEY_SECRET = "app-test-user-key-secret-0123456789"


@pytest.fixture
def served(settings: Any, kb: Any, db_url: str) -> Iterator[TestClient]:
    local = settings.model_copy(update={"database_url": db_url, "telegram_bot_token": None,
                                        "user_key_secret": SecretStr(KEY_SECRET),
                                        "session_secret": SecretStr("s" * 40)})
    with TestClient(create_app(local, kb=kb, channels=True)) as client:
        yield client


def test_serve_mounts_the_web_chat_page_and_widget(served: TestClient) -> None:
    page = served.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'src="static/web/hamroh-chat.js" data-hamroh-url="http://testserver"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    for name in ("hamroh-chat.js", "hamroh-chat.css", "i18n/languages.json", "i18n/ar.json"):
        assert served.get(f"/static/web/{name}").status_code == 200, name
    assert served.get("/health").json()["status"] == "ok"  # the rest of the app is still there


def test_serve_runs_a_web_conversation_on_the_real_engine(served: TestClient) -> None:
    served.post("/api/chat/session")
    with served.websocket_connect("/ws/chat") as ws:
        hello(ws)
        consent = replies(exchange(ws, {"type": "command", "id": "a-start-01", "command": "start", "lang": "ru"}))
        assert [r["kind"] for r in consent] == ["consent"] and consent[0]["id"] is None
        welcome = replies(exchange(ws, {"type": "button", "id": "a-lang-001", "payload": "lang:en"}))[0]
        assert welcome["kind"] == "welcome"
    sid = served.cookies["hamroh_web"].split(".")[0]
    frames = served.post("/api/chat/send", json={"type": "command", "id": "a-human-01", "command": "human",
                                                 "ack": [welcome["id"]]}).json()["frames"]
    assert frames[-1] == {"type": "handled", "id": "a-human-01"}
    # stored under the application's pseudonymous key of the session, never the session id itself
    assert _user_keys(served) == {user_key("web", sid, KEY_SECRET)}


def _user_keys(client: TestClient) -> set[str]:
    sessions = client.app.state.sessions  # type: ignore[attr-defined]

    async def keys() -> set[str]:
        async with sessions() as s:
            return set((await s.scalars(select(BotUser.user_key))).all())

    assert client.portal is not None
    return client.portal.call(keys)


def test_without_channels_there_is_no_web_chat(settings: Any, kb: Any) -> None:
    with TestClient(create_app(settings.model_copy(update={"telegram_bot_token": None}), kb=kb)) as client:
        assert client.get("/").status_code == 404
        assert client.get("/static/web/hamroh-chat.js").status_code == 404
