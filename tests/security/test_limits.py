"""Findings 2 and 3: limits on /api/ask, login (per address, per account), web chat HTTP and WebSockets,
counted on storage every worker shares, with Retry-After."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from bot.app import create_app
from bot.channels.web import create_web_router
from bot.settings import load_settings
from storage import RateLimiter, create_engine, session_factory
from tests.bot.web.fake_engine import FakeConversation
from tests.handoff.handoff_support import PASSWORD, Browser, build_console, make_account

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


class FakeKnowledgeBase:
    """Enough of a knowledge base for /api/ask: every question has no verified answer."""

    embedder = None
    entries: tuple[object, ...] = ()
    manifest = None

    def __init__(self) -> None:
        self.questions: list[str] = []

    def search(self, question: str, lang: str | None, profile: object) -> SimpleNamespace:
        self.questions.append(question)
        return SimpleNamespace(decision="handoff", answer=None, candidates=[])


def ask_app(tmp_path: Path, **overrides: object) -> tuple[TestClient, FakeKnowledgeBase]:
    """The real app around a fake knowledge base, without its lifespan (no model loaded)."""
    kb = FakeKnowledgeBase()
    settings = load_settings(ROOT / "config.yml", root=str(tmp_path), **overrides)
    return TestClient(create_app(settings, kb=kb)), kb  # type: ignore[arg-type]


def test_api_ask_is_limited_per_address_with_retry_after(tmp_path: Path) -> None:
    client, kb = ask_app(tmp_path, rate_limits={"ask": "3 per minute"})
    codes = [client.post("/api/ask", json={"question": "how do I register?", "lang": "en"}) for _ in range(5)]
    assert [r.status_code for r in codes] == [200, 200, 200, 429, 429]
    assert 1 <= int(codes[-1].headers["retry-after"]) <= 60
    assert len(kb.questions) == 3  # a refused question costs no search


def test_openapi_schema_is_not_public(tmp_path: Path) -> None:
    client, _ = ask_app(tmp_path)
    assert client.get("/openapi.json").status_code == 404


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_many_addresses_cannot_guess_one_account(sessions, console_cfg, outbound) -> None:
    app = build_console(sessions, console_cfg.model_copy(update={"login_per_account": "5 per 15 minutes"}), outbound)
    await make_account(sessions, "amina")
    codes = []
    for i in range(8):  # each guess from a new forwarded address: the (username, address) bucket never fills
        browser = Browser(app, ip=f"198.51.100.{i + 1}")
        try:
            codes.append((await browser.login("amina", "wrong password")).status_code)
        finally:
            await browser.aclose()
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
    attacker = Browser(app, ip="198.51.100.200")
    try:
        right = await attacker.login("amina", PASSWORD)  # even the right password is refused now
        assert right.status_code == 429 and int(right.headers["retry-after"]) >= 1
    finally:
        await attacker.aclose()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_one_address_cannot_spray_usernames(sessions, console_cfg, outbound) -> None:
    app = build_console(sessions, console_cfg.model_copy(update={"login_per_address": "10 per 15 minutes"}), outbound)
    browser = Browser(app, ip="198.51.100.7")
    try:
        codes = [(await browser.login(f"user{i}", "Winter2027!")).status_code for i in range(14)]
    finally:
        await browser.aclose()
    assert codes[:10] == [401] * 10 and set(codes[10:]) == {429}


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
async def test_database_limits_are_shared_by_workers(db_url: str) -> None:
    # two "workers": two engines and limiters on the same database count against one limit
    engines = [create_engine(db_url), create_engine(db_url)]
    try:
        limiters = [RateLimiter.from_uri("database", {"ask": "5 per minute"}, key_secret="k",
                                         sessions=session_factory(e)) for e in engines]
        waits = await asyncio.gather(*(limiters[i % 2].hit("ask", "203.0.113.9") for i in range(8)))
    finally:
        for e in engines:
            await e.dispose()
    assert sum(1 for w in waits if w == 0) == 5
    assert all(w >= 1 for w in waits if w)


async def test_redis_limits_when_configured() -> None:
    limiter = RateLimiter.from_uri("redis://127.0.0.1:6379/0", {"ask": "2 per minute"}, key_secret="k-redis-test")
    try:
        if not await limiter.storage.check():
            pytest.skip("no Redis on 127.0.0.1:6379")
    except Exception as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"no Redis: {type(exc).__name__}")
    address = f"203.0.113.{id(limiter) % 200}"
    await limiter.clear("ask", address)
    assert [await limiter.hit("ask", address) == 0 for _ in range(3)] == [True, True, False]
    await limiter.clear("ask", address)


def _web_client(**kwargs) -> TestClient:  # type: ignore[no-untyped-def]
    app = FastAPI()
    app.include_router(create_web_router(FakeConversation(), key_secret="k" * 32, poll_interval=0.05, **kwargs))
    return TestClient(app)


def test_web_chat_http_is_limited_per_address() -> None:
    limiter = RateLimiter.from_uri("memory://", {"web_http": "4 per minute"}, key_secret="k")
    with _web_client(limiter=limiter) as client:
        codes = [client.post("/api/chat/session", json={}).status_code for _ in range(6)]
        limited = client.post("/api/chat/send", json={"type": "message", "id": "m1", "text": "hi"})
    assert codes == [200] * 4 + [429] * 2
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1


def test_websockets_per_address_are_capped() -> None:
    with _web_client(ws_open_per_address=3) as client, contextlib.ExitStack() as stack:
        for _ in range(3):
            ws = stack.enter_context(client.websocket_connect("/ws/chat"))
            ws.send_json({"type": "hello"})
            assert "ready" in ws.receive_text()
        with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/ws/chat") as extra:
            extra.receive_text()
        assert refused.value.code == 1013
