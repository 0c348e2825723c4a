"""The web chat on a 360x740 phone in real Chromium, against the real application (engine, model,
index, understanding): what a migrant sees first, a cry for help before consent, a long answer
that starts short, a reload that keeps the conversation, right-to-left scripts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from pydantic import SecretStr

from bot.net import free_port

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
PHONE = {"width": 360, "height": 740}

pytestmark = [
    pytest.mark.browser, pytest.mark.integration, pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="Debian's chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")


@pytest.fixture(scope="module")
def server(settings, kb, tmp_path_factory) -> Iterator[str]:  # type: ignore[no-untyped-def]
    from bot.app import create_app
    from storage import upgrade

    path = tmp_path_factory.mktemp("realweb") / "hamroh.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)
    local = settings.model_copy(update={"database_url": url, "session_secret": SecretStr("s" * 40)})
    app = create_app(local, kb=kb, channels=True)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(600):
        if srv.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run"])
        yield chromium
        chromium.close()


def _page(browser: Any, url: str, locale: str = "en-GB") -> Any:
    context = browser.new_context(locale=locale, viewport=PHONE)
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto(url)
    page.locator(".hamroh-k-consent").wait_for()
    return page


def _send(page: Any, text: str) -> None:
    page.fill("#hamroh-input", text)
    page.keyboard.press("Enter")


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


def test_consent_is_above_the_fold_and_a_cry_for_help_gets_a_number_to_tap(browser: Any, server: str) -> None:
    page = _page(browser, server, locale="ru-RU")
    agree = page.locator(".hamroh-k-consent button").first
    box = agree.bounding_box()
    assert box is not None and box["y"] + box["height"] <= PHONE["height"]  # visible without scrolling
    tools = [page.locator(".hamroh-tools .hamroh-tool").nth(i).bounding_box() for i in range(2)]
    assert all(t is not None for t in tools) and abs(tools[0]["y"] - tools[1]["y"]) < 2  # a one-line footer
    _shot(page, "web-real-consent-360.png")
    _send(page, "помогите хозяин бьёт меня и забрал паспорт я в москве")
    crisis = page.locator(".hamroh-k-crisis").last
    crisis.wait_for()
    tel = crisis.locator("a.hamroh-tel")
    assert tel.count() >= 1 and tel.first.get_attribute("href") == "tel:112"
    _shot(page, "web-real-crisis-360.png")
    page.context.close()


def test_a_long_answer_starts_short_and_more_details_opens_the_rest(browser: Any, server: str) -> None:
    page = _page(browser, server)
    page.locator(".hamroh-k-consent button", has_text="I agree").click()
    page.locator(".hamroh-k-welcome").wait_for()
    _send(page, "how do I get a work patent in Russia and keep it valid")
    answer = page.locator(".hamroh-k-answer").last
    answer.wait_for()
    short = answer.locator(".hamroh-text").inner_text()
    assert len(short) < 900 and answer.locator(".hamroh-src a").count() >= 1
    assert "2026-" not in answer.inner_text()  # a date people read, not an ISO date
    answer.get_by_role("button", name="More details").click()
    page.locator(".hamroh-k-answer").nth(1).wait_for()
    longer = page.locator(".hamroh-k-answer").last.locator(".hamroh-text").inner_text()
    assert len(longer) > len(short)
    _shot(page, "web-real-more-details-360.png")
    # a reload keeps the conversation: it comes back from the server, this visitor's own
    page.reload()
    page.locator(".hamroh-k-answer").first.wait_for()
    assert page.locator(".hamroh-me").count() >= 1 and page.locator(".hamroh-k-consent").count() == 0
    _shot(page, "web-real-after-reload-360.png")
    page.context.close()


@pytest.mark.parametrize("lang", ["ar", "ur", "ckb", "ps", "prs"])
def test_right_to_left_languages_read_right_to_left(browser: Any, server: str, lang: str) -> None:
    page = _page(browser, server)
    page.locator(".hamroh-k-consent button", has_text={"ar": "العربية", "ur": "اردو", "ckb": "کوردی",
                                                        "ps": "پښتو", "prs": "دری"}[lang]).click()
    welcome = page.locator(".hamroh-k-welcome")
    welcome.wait_for()
    assert welcome.get_attribute("dir") == "rtl" and welcome.get_attribute("lang") == lang
    _shot(page, f"web-real-rtl-{lang}-360.png")
    page.context.close()
