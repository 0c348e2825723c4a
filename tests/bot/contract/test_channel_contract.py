"""One contract for every channel: Telegram (real python-telegram-bot against the fake Bot API) and
the web chat (its HTTP transport), each over its test fake and the real engine on SQLite and
PostgreSQL.

What a person on either channel relies on: everything the engine says for their message reaches
them once, in order; a message their phone sends twice is answered once; a counsellor's reply
arrives without them writing again; a pressed button reaches the engine as its payload; nothing
they were sent stays pending once it is delivered.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bench.fake_telegram import TOKEN, FakeBotApi, callback_update, message_update
from bot.channels.telegram import build_telegram_application, start_polling, stop_telegram
from bot.channels.web import create_web_router
from bot.engine import Outgoing
from tests.bot.telegram.support import KEY_SECRET, fast_limiter
from tests.plugins.databases import empty_database

from .engines import RecordingPort, fake_telegram, fake_web, real_engine

pytestmark = pytest.mark.filterwarnings("ignore:.*attribute `retry_after` will be of type")

USER = 551_000_777


def _visible(text: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", text))


def _gist(text: str) -> str:
    """The start of a reply's first line, as any channel shows it (markup and spacing aside)."""
    first = next((line for line in _visible(text).splitlines() if line.strip()), "")
    return " ".join(first.split())[:24]


class Driver(Protocol):
    port: RecordingPort
    channel: str

    async def say(self, text: str, *, again: bool = False) -> None: ...
    async def press(self, payload: str) -> None: ...
    async def seen(self, at_least: int) -> list[str]: ...
    def user_key(self) -> str: ...
    async def call(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any: ...


class TelegramDriver:
    def __init__(self, port: RecordingPort, bot_api: FakeBotApi) -> None:
        self.port, self.channel, self.api = port, "telegram", bot_api
        self._ids = itertools.count(1)
        self._last: dict[str, Any] | None = None

    async def say(self, text: str, *, again: bool = False) -> None:
        update = self._last if again and self._last else message_update(next(self._ids), USER, text,
                                                                        language_code="en")
        self._last = update
        await self._handled(update)

    async def press(self, payload: str) -> None:
        await self._handled(callback_update(next(self._ids), USER, payload))

    async def _handled(self, update: dict[str, Any]) -> None:
        """Push one update and wait until the engine has it (the bot polls in the background)."""
        before = len(self.port.handled)
        self.api.push(update)
        deadline = time.monotonic() + 60  # the first real search loads the model's session
        while len(self.port.handled) == before and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    async def seen(self, at_least: int) -> list[str]:
        deadline = time.monotonic() + 30
        while len(self.api.sent(USER)) < at_least and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # and nothing more arrives
        return [_visible(p["text"]) for p in self.api.sent(USER)]

    def user_key(self) -> str:
        return self.port.handled[-1].user_key

    async def call(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        return await fn(*args)


class WebDriver:
    """The widget's HTTP transport: send frames, read the replies, acknowledge them on the next poll."""

    def __init__(self, port: RecordingPort, client: TestClient) -> None:
        self.port, self.channel, self.client = port, "web", client
        self._ids = itertools.count(1)
        self._last: dict[str, Any] | None = None
        self._frames: list[dict[str, Any]] = []
        self._unacked: list[int] = []

    def _post(self, frame: dict[str, Any]) -> None:
        body = self.client.post("/api/chat/send", json=frame).json()
        self._take(body.get("frames", []))

    def _take(self, frames: list[dict[str, Any]]) -> None:
        for f in frames:
            if f.get("type") == "reply":
                self._frames.append(f)
                if f.get("id") is not None:
                    self._unacked.append(f["id"])

    async def say(self, text: str, *, again: bool = False) -> None:
        frame = self._last if again and self._last else {"type": "message", "id": f"client-{next(self._ids):04d}",
                                                         "text": text, "lang": "en"}
        self._last = frame
        await asyncio.to_thread(self._post, frame)

    async def press(self, payload: str) -> None:
        frame = {"type": "button", "id": f"client-{next(self._ids):04d}", "payload": payload}
        await asyncio.to_thread(self._post, frame)

    async def seen(self, at_least: int) -> list[str]:
        deadline = time.monotonic() + 10
        while True:
            ack = ",".join(str(i) for i in self._unacked)
            self._unacked = []
            body = (await asyncio.to_thread(self.client.get, f"/api/chat/poll?wait=0.3&ack={ack}")).json()
            self._take(body.get("frames", []))
            if len(self._frames) >= at_least or time.monotonic() > deadline:
                break
        if self._unacked:  # acknowledge what the last poll brought, as the widget does
            await asyncio.to_thread(self.client.get, "/api/chat/poll?ack=" + ",".join(map(str, self._unacked)))
            self._unacked = []
        # a reply of the person's own message can come back by the poll too (not acknowledged in
        # time): the widget shows an outbox id once, and so does this driver
        unique = {f["id"] if f.get("id") is not None else f"n{i}": f for i, f in enumerate(self._frames)}
        return [_visible(f["text"]) for f in unique.values()]

    def user_key(self) -> str:
        return self.port.handled[-1].user_key

    async def call(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Run ``fn`` on the server's event loop (a PostgreSQL pool belongs to the loop that made it)."""
        portal = self.client.portal
        assert portal is not None
        return await asyncio.to_thread(portal.call, fn, *args)


@pytest.fixture(scope="module")
def bot_api_server() -> Iterator[FakeBotApi]:
    server = FakeBotApi()
    server.start()
    yield server
    server.stop()


_IMPLEMENTATIONS = [
    pytest.param((channel, kind), id=f"{channel}-{kind}", marks=marks)
    for channel in ("telegram", "web")
    for kind, marks in (("fake", ()), ("sqlite", (pytest.mark.integration,)),
                        ("postgres", (pytest.mark.integration, pytest.mark.postgres)))]


@pytest.fixture(params=_IMPLEMENTATIONS)
def implementation(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str, str | None]:
    """(channel, kind, database URL): the database is prepared here, outside the event loop."""
    channel, kind = request.param
    return channel, kind, empty_database(kind, request, tmp_path) if kind != "fake" else None


@pytest.fixture
async def driver(request: pytest.FixtureRequest, implementation: tuple[str, str, str | None],
                 bot_api_server: FakeBotApi) -> AsyncIterator[Driver]:
    channel, _kind, url = implementation
    impl = (real_engine(url, request.getfixturevalue("settings"), request.getfixturevalue("kb"), channel)
            if url is not None else fake_web() if channel == "web" else fake_telegram())
    port = RecordingPort(impl.port)
    port.queue_counsellor = impl.queue_counsellor  # type: ignore[attr-defined]
    if channel == "telegram":
        bot_api_server.reset()
        app = build_telegram_application(TOKEN, port, key_secret=KEY_SECRET, base_url=bot_api_server.base_url,
                                         rate_limiter=fast_limiter(), delivery_interval=0.05)
        await start_polling(app, poll_timeout=0.2)
        try:
            yield TelegramDriver(port, bot_api_server)
        finally:
            await stop_telegram(app)
            await impl.close()
    else:
        api = FastAPI()
        api.include_router(create_web_router(port, key_secret=KEY_SECRET, poll_interval=0.05))
        with TestClient(api) as client:
            web = WebDriver(port, client)
            yield web
            await web.call(impl.close)


async def _pending_for(port: RecordingPort, channel: str, user_key: str) -> list[Outgoing]:
    return await port.pending(channel, user_keys=[user_key])


def _said(outs: list[Outgoing]) -> list[str]:
    return [_gist(o.reply.text) for o in outs]


async def test_what_the_engine_says_reaches_the_person_once_and_in_order(driver: Driver) -> None:
    await driver.say("hello")
    await driver.press("lang:en")
    await driver.say("how do I get a work patent")
    expected = _said(driver.port.returned)
    seen = [_gist(text) for text in await driver.seen(len(expected))]
    assert seen == expected


async def test_a_message_sent_twice_is_answered_once(driver: Driver) -> None:
    await driver.say("hello")
    await driver.press("lang:en")
    await driver.say("how do I register in Russia")
    await driver.say("how do I register in Russia", again=True)
    once = {o.id for o in driver.port.returned if o.id is not None}
    seen = await driver.seen(len(driver.port.returned))
    assert len(seen) == len({*once} | {i for i, o in enumerate(driver.port.returned) if o.id is None}), seen


async def test_a_button_press_reaches_the_engine_as_its_payload(driver: Driver) -> None:
    await driver.say("hello")
    await driver.press("lang:en")
    await driver.seen(2)
    assert driver.port.handled[-1].callback == "lang:en" and driver.port.handled[-1].channel == driver.channel


async def test_a_counsellor_reply_arrives_without_writing_and_nothing_stays_pending(driver: Driver) -> None:
    await driver.say("hello")
    await driver.press("lang:en")
    before = len(await driver.seen(len(driver.port.returned)))
    await driver.call(driver.port.queue_counsellor, driver.user_key(), "Bring your passport on Monday.")  # type: ignore[attr-defined]
    seen = await driver.seen(before + 1)
    assert len(seen) == before + 1 and "Bring your passport on Monday." in seen[-1]
    assert await driver.call(_pending_for, driver.port, driver.channel, driver.user_key()) == []
