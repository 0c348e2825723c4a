"""Finding 5: no client address and no message text in any log line, uvicorn's included, at DEBUG."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
import websockets
from fastapi import FastAPI
from sqlalchemy import text

from bot.channels.web import create_web_router
from bot.logsafe import install_log_redaction, redact
from bot.net import free_port
from storage import create_engine
from tests.bot.web.fake_engine import FakeConversation
from tests.handoff.handoff_support import Browser, build_console, make_account

pytestmark = pytest.mark.integration

MARK_TEXT = "MARKER-my-passport-4AB123"
MARK_IP = "203.0.113.77"


class Collect(logging.Handler):
    """Formats every record as a file handler would (message and traceback)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def logs() -> Iterator[Collect]:
    install_log_redaction()
    handler = Collect()
    touched = [logging.getLogger(n) for n in ("", "uvicorn", "uvicorn.error", "uvicorn.access", "sqlalchemy")]
    levels = [lg.level for lg in touched]
    for lg in touched:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    yield handler
    for lg, level in zip(touched, levels, strict=True):
        lg.removeHandler(handler)
        lg.setLevel(level)


def leaks(lines: list[str]) -> list[str]:
    # the test's own WebSocket client (websockets.client) is not the server: its lines are left out
    return [line[:160] for line in lines if (MARK_TEXT in line or MARK_IP in line)
            and not line.startswith("websockets.client")]


def test_redact_keeps_times_and_versions() -> None:
    assert redact(f"client {MARK_IP}:5123 and 2001:db8::7 at 12:30:45 v1.2.3") == \
        "client <address>:5123 and <address> at 12:30:45 v1.2.3"


def test_web_chat_over_a_real_server_logs_no_address_or_text(logs: Collect) -> None:
    fake = FakeConversation()
    app = FastAPI()
    app.include_router(create_web_router(fake, key_secret="k" * 32, poll_interval=0.05))

    @app.get("/boom")
    async def boom() -> None:  # an unhandled error whose message quotes a person's text
        raise RuntimeError(f"could not store {MARK_TEXT!r}")

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="debug", access_log=True,
                            proxy_headers=True, forwarded_allow_ips="*", log_config=None, ws="websockets-sansio")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        asyncio.run(_converse(port))
    finally:
        server.should_exit = True
        thread.join(10)
    assert any("WebSocket" in line for line in logs.lines), "uvicorn's WebSocket line should be there"
    assert any("RuntimeError" in line for line in logs.lines), "the failure is still visible"
    assert leaks(logs.lines) == []


async def _converse(port: int) -> None:
    for _ in range(100):
        try:
            async with httpx.AsyncClient() as client:
                await client.get(f"http://127.0.0.1:{port}/static/web/none")
            break
        except httpx.ConnectError:
            await asyncio.sleep(0.05)
    headers = {"X-Forwarded-For": MARK_IP}
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/chat", additional_headers=headers) as ws:
        await ws.send('{"type":"hello"}')
        await ws.send('{"type":"message","id":"msg-00001","text":"' + MARK_TEXT + '"}')
        for _ in range(3):
            await asyncio.wait_for(ws.recv(), 5)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
        await client.post("/api/chat/send", json={"type": "message", "id": "msg-00002", "text": MARK_TEXT})
        await client.get("/boom")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_console_sign_in_and_notes_log_no_address_or_text(sessions, console_cfg, outbound,
                                                                logs: Collect) -> None:
    app = build_console(sessions, console_cfg, outbound)
    await make_account(sessions, "amina")
    browser = Browser(app, ip=MARK_IP)
    try:
        await browser.login(MARK_TEXT, "wrong")  # the username field holds a person's text
        await browser.login("amina")
        await browser.post("/console/tickets/1/notes", {"text": MARK_TEXT})
    finally:
        await browser.aclose()
    assert leaks(logs.lines) == []


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_database_errors_do_not_carry_parameters(db_url: str, logs: Collect) -> None:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as connection:
            with pytest.raises(Exception) as failed:
                try:
                    await connection.execute(text("SELECT CAST(:v AS integer)"), {"v": MARK_TEXT})
                except Exception:
                    logging.getLogger("hamroh.test").exception("the console route failed")
                    raise
    finally:
        await engine.dispose()
    # asyncpg's own message quotes the value; hide_parameters keeps SQLAlchemy from adding the rest,
    # and the log line keeps the traceback without any message
    assert "[SQL parameters hidden" in str(failed.value)
    assert any("withheld" in line for line in logs.lines)
    assert leaks(logs.lines) == []

