"""Findings 7-10: malformed input, erased text left on disk, reused ticket ids, hosts and origins."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bot.channels.web import create_web_router
from bot.settings import SettingsError, load_settings
from handoff import delete_user_data, open_ticket
from storage import checkpoint_after_erasure, clean_text, create_engine, session_factory, upgrade_async
from tests.bot.web.fake_engine import FakeConversation
from tests.handoff.handoff_support import Browser, build_console

from .test_limits import ask_app

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DEEP = "[" * 5000 + "]" * 5000  # under the 16 KB frame limit, far past the decoder's depth


def test_clean_text_replaces_and_never_drops() -> None:
    assert clean_text("visa\x00 \ud800 ok \ud83d\ude00") == "visa\ufffd \ufffd ok 😀"


def test_api_ask_with_a_lone_surrogate_is_answered(tmp_path: Path) -> None:
    client, kb = ask_app(tmp_path)
    body = '{"question": "registration \\ud800 deadline\\u0000?", "lang": "en"}'
    response = client.post("/api/ask", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200
    assert kb.questions == ["registration \ufffd deadline\ufffd?"]
    assert client.post("/api/ask", content=DEEP, headers={"content-type": "application/json"}).status_code in (400, 422)


def _web(fake: FakeConversation, **kwargs) -> TestClient:  # type: ignore[no-untyped-def]
    app = FastAPI()
    app.include_router(create_web_router(fake, key_secret="k" * 32, poll_interval=0.05, **kwargs))
    return TestClient(app)


def test_web_chat_keeps_a_message_with_a_lone_surrogate_and_refuses_deep_json() -> None:
    fake = FakeConversation()
    with _web(fake) as client:
        frame = '{"type":"message","id":"msg-0001","text":"help \\ud800\\u0000 me"}'
        sent = client.post("/api/chat/send", content=frame, headers={"content-type": "application/json"})
        deep = client.post("/api/chat/send", content=DEEP, headers={"content-type": "application/json"})
    assert sent.status_code == 200
    assert [m.text for m in fake.handled] == ["help \ufffd\ufffd me"]
    assert deep.status_code == 400


def test_web_chat_echoes_only_allowed_origins_and_checks_the_host() -> None:
    with _web(FakeConversation(), allowed_origins=("https://mrc.example.org",),
              trusted_hosts=("bot.mrc.example.org",)) as client:
        evil = client.post("/api/chat/session", json={}, headers={"origin": "https://evil.example"})
        assert "access-control-allow-origin" not in evil.headers
        good = client.post("/api/chat/session", json={}, headers={"origin": "https://mrc.example.org"})
        assert good.headers["access-control-allow-origin"] == "https://mrc.example.org"
        assert client.get("/", headers={"host": "evil.example"}).status_code == 400
        assert client.get("/", headers={"host": "bot.mrc.example.org"}).status_code == 200
    with _web(FakeConversation()) as client:  # no trusted hosts: still no header injection into the CSP
        assert client.get("/", headers={"host": "a; script-src *"}).status_code == 400


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
async def test_console_login_and_notes_with_nul_are_not_a_500(sessions, console_cfg, outbound) -> None:
    app = build_console(sessions, console_cfg, outbound)
    browser = Browser(app)
    try:
        response = await browser.login("amina\x00", "pass\x00word")
        assert response.status_code == 401
    finally:
        await browser.aclose()


async def test_sqlite_erasure_leaves_no_text_in_the_files(tmp_path: Path, console_cfg) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/hamroh.db"
    await upgrade_async(url)
    marker = "MARKER-passport-4AB123-" * 20
    engine = create_engine(url)
    try:
        sessions = session_factory(engine)
        async with sessions() as db, db.begin():
            await open_ticket(session=db, settings=console_cfg, user_key="u1", mrc_id="tj", reason="user_asked",
                              lang="ru", first_message=marker)
        async with sessions() as db, db.begin():
            await delete_user_data(session=db, user_key="u1")
        await checkpoint_after_erasure(engine)
        files = [p for p in tmp_path.iterdir() if p.name.startswith("hamroh.db")]
        assert all(marker[:23].encode() not in p.read_bytes() for p in files), [p.name for p in files]
        assert stat.S_IMODE(os.stat(tmp_path / "hamroh.db").st_mode) == 0o600  # not world-readable
    finally:
        await engine.dispose()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_ticket_ids_are_not_reused_after_erasure(sessions, console_cfg) -> None:
    async with sessions() as db, db.begin():
        first = await open_ticket(session=db, settings=console_cfg, user_key="a", mrc_id="tj", reason="user_asked",
                                  lang="ru", first_message="x")
        first_id = first.id
    async with sessions() as db, db.begin():
        from handoff import AuditAction, audit

        await audit(db, None, AuditAction.VIEW, ticket_id=first_id)
        await delete_user_data(session=db, user_key="a")
    async with sessions() as db, db.begin():
        second = await open_ticket(session=db, settings=console_cfg, user_key="b", mrc_id="tj", reason="user_asked",
                                   lang="ru", first_message="y")
    assert second.id != first_id


def test_a_bad_time_zone_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(ROOT / "config.yml", root=str(tmp_path),
                      mrcs=[{"id": "x", "name": "X", "country": "UZ", "timezone": "Asia/Nowhere"}])
    message = str(err.value)
    assert "mrcs.0" in message and "Asia/Nowhere" in message and "input_value" not in message


def test_counsellor_command_does_not_create_an_empty_database(tmp_path: Path, monkeypatch) -> None:
    from bot.cli import main

    monkeypatch.setenv("HAMROH_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/none.db")
    monkeypatch.setenv("HAMROH_CONFIG", str(ROOT / "config.yml"))
    assert main(["counsellor", "list"]) == 1
    assert not (tmp_path / "none.db").exists()

