"""Finding 1: console cookies Secure and HSTS behind HTTPS; the keys in config.yml; warnings."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.app import warn_insecure
from bot.console import console_settings
from bot.settings import load_settings
from tests.handoff.handoff_support import Browser, build_console, make_account

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _cookies(response) -> list[str]:  # type: ignore[no-untyped-def]
    return response.headers.get_list("set-cookie")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_https_behind_a_proxy_gets_secure_cookies_and_hsts(sessions, console_cfg, outbound) -> None:
    # cookie_secure off (what bot passed for every install), but the request came over HTTPS (as
    # uvicorn reports it when a trusted proxy says X-Forwarded-Proto: https)
    app = build_console(sessions, console_cfg.model_copy(update={"cookie_secure": False}), outbound)
    await make_account(sessions, "amina")
    browser = Browser(app, scheme="https")
    try:
        page = await browser.get("/console/login")
        assert page.headers.get("strict-transport-security", "").startswith("max-age=")
        assert all("secure" in c.lower() for c in _cookies(page)), _cookies(page)
        signed = await browser.login("amina")
        assert signed.status_code == 303
        assert _cookies(signed) and all("secure" in c.lower() for c in _cookies(signed) if "max-age=0" not in
                                        c.lower() and "expires=thu, 01 jan 1970" not in c.lower())
    finally:
        await browser.aclose()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_plain_http_on_a_laptop_stays_without_hsts(sessions, console_cfg, outbound) -> None:
    app = build_console(sessions, console_cfg.model_copy(update={"cookie_secure": False}), outbound)
    browser = Browser(app, scheme="http")
    try:
        page = await browser.get("/console/login")
        assert "strict-transport-security" not in page.headers
        assert not any("secure" in c.lower() for c in _cookies(page))
    finally:
        await browser.aclose()


def test_config_keys_reach_the_console(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HAMROH_SESSION_SECRET", "x" * 40)
    monkeypatch.setenv("HAMROH_CONSOLE__PUBLIC_URL", "https://bot.mrc.example.org/console")
    monkeypatch.setenv("HAMROH_CONSOLE__POLL_SECONDS", "30")
    monkeypatch.setenv("HAMROH_CONSOLE__TELEGRAM_GROUP_CHAT_ID", "-1001234567890")
    settings = load_settings(ROOT / "config.yml", root=str(tmp_path))
    console = console_settings(settings)
    assert console.cookie_secure is True  # an https public_url means HTTPS: Secure and HSTS always
    assert console.public_url == "https://bot.mrc.example.org/console"
    assert console.poll_seconds == 30
    assert console.telegram_group_chat_id == "-1001234567890"
    forced = load_settings(ROOT / "config.yml", root=str(tmp_path), console={"cookie_secure": True})
    assert console_settings(forced).cookie_secure is True


def test_a_production_start_with_insecure_settings_warns_naming_the_key(caplog: pytest.LogCaptureFixture,
                                                                        tmp_path: Path) -> None:
    settings = load_settings(ROOT / "config.yml", root=str(tmp_path), server={"host": "0.0.0.0"},
                             web={"allowed_origins": ["*"]})
    with caplog.at_level(logging.WARNING):
        found = warn_insecure(settings)
    text = "\n".join(found)
    assert "console.cookie_secure" in text and "web.allowed_origins" in text and "web.trusted_hosts" in text
    assert any("web.allowed_origins" in r.getMessage() for r in caplog.records)
    safe = load_settings(ROOT / "config.yml", root=str(tmp_path), server={"host": "0.0.0.0"},
                         console={"public_url": "https://mrc.example.org/console"},
                         web={"allowed_origins": ["https://mrc.example.org"], "trusted_hosts": ["bot.mrc.example.org"]})
    assert warn_insecure(safe) == []
