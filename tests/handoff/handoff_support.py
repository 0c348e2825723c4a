"""Helpers and fixtures for handoff tests: databases, settings, accounts, fake ports, a browser-like client.

A uniquely named module (not conftest) so test modules can import helpers from it unambiguously.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import date
from functools import lru_cache

import numpy as np
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

import handoff.tables  # noqa: F401 - registers the tables
from handoff import (
    Actor,
    ConsoleSettings,
    CuratedAnswer,
    MrcSettings,
    OutboundMessage,
    Role,
    hash_password,
)
from handoff.tables import Counsellor
from storage import create_engine, session_factory

PASSWORD = "correct horse battery staple"


def make_settings(**overrides: object) -> ConsoleSettings:
    values: dict[str, object] = {
        "mrcs": [
            MrcSettings(
                id="tj",
                name="MRC Tajikistan",
                country="TJ",
                timezone="Asia/Dushanbe",
                languages=("tg", "ru", "uz"),
                office_hours={"mon-fri": "09:00-13:00, 14:00-18:00"},
            ),
            MrcSettings(
                id="bd",
                name="MRC Bangladesh",
                country="BD",
                timezone="Asia/Dhaka",
                languages=("bn", "en"),
                office_hours={"sun-thu": "09:00-17:00"},
            ),
            MrcSettings(
                id="iq",
                name="MRC Iraq",
                country="IQ",
                timezone="Asia/Baghdad",
                languages=("ar", "ckb", "en", "bn"),
                office_hours={"sun-thu": "08:00-16:00"},
            ),
        ],
        "session_secret": "s" * 48,
        "cookie_secure": False,
        "idle_claim_minutes": 30,
    }
    values.update(overrides)
    return ConsoleSettings.model_validate(values)


@pytest.fixture
def settings() -> ConsoleSettings:
    return make_settings()


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(db_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(engine)


@lru_cache(maxsize=1)
def password_hash() -> str:
    return hash_password(PASSWORD)


async def make_account(
    sessions: async_sessionmaker[AsyncSession],
    username: str,
    role: Role = Role.COUNSELLOR,
    mrc_id: str | None = "tj",
    display_name: str | None = None,
) -> Actor:
    """Insert an account directly (hashing once per run keeps tests fast)."""
    async with sessions() as db, db.begin():
        counsellor = Counsellor(
            username=username,
            display_name=display_name or username.title(),
            password_hash=password_hash(),
            role=role.value,
            mrc_id=mrc_id,
        )
        db.add(counsellor)
        await db.flush()
        return Actor.of(counsellor)


class RecordingOutbound:
    """An OutboundPort that records every call; can be told to fail."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, OutboundMessage]] = []
        self.fail_next = 0

    async def send(self, user_key: str, message: OutboundMessage) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError("channel unreachable")
        self.sent.append((user_key, message))


class FakeAnswers:
    """An AnswerSearch over a handful of curated entries, per language."""

    def __init__(self) -> None:
        self.entries = [
            CuratedAnswer(
                entry_id="ru-registration-tj",
                title="Регистрация в России",
                text="Встаньте на миграционный учёт в течение 15 дней.",
                source_title="МВД России",
                source_url="https://xn--b1aew.xn--p1ai/",
                reviewed_on=date(2026, 11, 1),
            ),
            CuratedAnswer(
                entry_id="tg-hotline",
                title="Хати боварӣ",
                text="Ба рақами хати боварии МРС занг занед.",
                source_title="MRC Tajikistan",
                source_url="https://example.org/mrc-tj",
                reviewed_on=date(2026, 10, 20),
            ),
        ]
        self.calls: list[tuple[str, str]] = []

    def search(self, query: str, lang: str, limit: int = 5) -> list[CuratedAnswer]:
        self.calls.append((query, lang))
        wanted = "ru-" if lang == "ru" else "tg-"
        return [e for e in self.entries if e.entry_id.startswith(wanted)][:limit]


class KeywordEmbedder:
    """A deterministic QueryEmbedder: questions sharing a topic word land close together."""

    TOPICS: Sequence[str] = ("visa", "passport", "salary", "ticket")

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        rows = np.zeros((len(texts), len(self.TOPICS) + 1), dtype=np.float32)
        for i, text in enumerate(texts):
            hits = [j for j, word in enumerate(self.TOPICS) if word in text.lower()]
            for j in hits or [len(self.TOPICS)]:
                rows[i, j] = 1.0
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.fixture
def outbound() -> RecordingOutbound:
    return RecordingOutbound()


@pytest.fixture
def answers() -> FakeAnswers:
    return FakeAnswers()


# --- console helpers ------------------------------------------------------------------------------

import re  # noqa: E402

import httpx  # noqa: E402
from fastapi import FastAPI  # noqa: E402

from handoff import create_console_app  # noqa: E402

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def mounted(app: FastAPI) -> FastAPI:
    """The console as bot serves it: mounted at /console in a parent app."""
    parent = FastAPI()
    parent.mount("/console", app)
    return parent


class Browser:
    """An httpx client that signs in like a browser and keeps the current CSRF token."""

    def __init__(self, app: FastAPI, ip: str = "10.0.0.1", scheme: str = "http", root_path: str = "") -> None:
        # root_path: the prefix a reverse proxy serves the app under (uvicorn's --root-path)
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(ip, 50000), root_path=root_path),
            base_url=f"{scheme}://testserver",
            follow_redirects=False,
        )
        self.csrf = ""

    async def aclose(self) -> None:
        await self.client.aclose()

    def _remember(self, response: httpx.Response) -> httpx.Response:
        found = CSRF.search(response.text)
        if found:
            self.csrf = found.group(1)
        return response

    async def get(self, path: str, **kw) -> httpx.Response:
        return self._remember(await self.client.get(path, **kw))

    async def post(self, path: str, data: dict | None = None, csrf: bool = True, **kw) -> httpx.Response:
        form = dict(data or {})
        if csrf:
            form.setdefault("csrf_token", self.csrf)
        return await self.client.post(path, data=form, **kw)

    async def login(self, username: str, password: str = PASSWORD) -> httpx.Response:
        await self.get("/console/login")
        response = await self.post("/console/login", {"username": username, "password": password})
        location = response.headers.get("location") if response.status_code == 303 else None
        for _ in range(3):  # follow to a page that carries the session's CSRF token
            if not location:
                break
            page = await self.get(location)
            location = page.headers.get("location") if page.status_code == 303 else None
        return response


def build_console(sessions, settings, outbound, answers=None, embedder=None, notifier=None, media=None) -> FastAPI:
    return mounted(create_console_app(settings, sessions, outbound, answers, embedder, notifier, media=media))
