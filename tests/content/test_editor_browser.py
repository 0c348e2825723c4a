"""Done-when of issue 16, in real headless Chromium against a real ``hamroh serve --workers 2``.

An editor changes the Russian answer of an entry; a second account (a reviewer) sees the
word-level diff and approves; within 10 s both workers answer the next question with the new
text, without a restart, while web-chat visitors keep writing (no error, no lost reply).
Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from .live_server import ROOT, ChatLoad, serve_two_workers

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
PASSWORD = "correct horse battery staple"
MARK = "Новое правило с сегодняшнего дня: сохраняйте чек об оплате патента не меньше года."
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]

pytestmark = [
    pytest.mark.browser, pytest.mark.integration, pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium"),
]
playwright_api = pytest.importorskip("playwright.async_api", reason="the playwright package is not installed")


def _account(env: dict[str, str], name: str, role: str) -> None:
    subprocess.run([sys.executable, "-m", "bot.cli", "counsellor", "add", name, "--name", name.title(), "--role", role,
                    "--password-stdin"], cwd=ROOT, env=env, input=PASSWORD + "\n", text=True, check=True,
                   capture_output=True)


async def _login(browser: object, base: str, name: str) -> object:
    context = await browser.new_context()  # type: ignore[attr-defined]
    page = await context.new_page()
    await page.goto(f"{base}/console/login")
    await page.fill("input[name=username]", name)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/console/content")
    return page


async def test_editor_change_reviewed_and_served_by_both_workers_within_10_s(tmp_path: Path) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with serve_two_workers(tmp_path) as server:
        _account(server.env, "edna", "editor")
        _account(server.env, "rita", "reviewer")
        start = server.workers()
        pids = server.process.pid
        async with playwright_api.async_playwright() as p:
            browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            try:
                with ChatLoad(server.base) as load:
                    editor = await _login(browser, server.base, "edna")
                    await editor.goto(f"{server.base}/console/content/entry/change-employer?lang=ru")
                    answer = editor.locator("#tr-ru-answer")
                    await answer.fill(MARK + "\n\n" + await answer.input_value())
                    await editor.screenshot(path=str(ARTIFACTS / "content-editor-ru.png"), full_page=True)
                    await editor.click("#save-translation")
                    await editor.wait_for_url("**/console/content/drafts/*")

                    reviewer = await _login(browser, server.base, "rita")
                    await reviewer.click("#drafts-waiting a")
                    await reviewer.wait_for_url("**/console/content/drafts/*")
                    inserted = await reviewer.locator("ins.diff").all_inner_texts()
                    assert any("сохраняйте чек об оплате патента" in t for t in inserted), inserted
                    await reviewer.screenshot(path=str(ARTIFACTS / "content-review-diff.png"), full_page=True)
                    await reviewer.click("#approve")
                    await reviewer.wait_for_url("**/console/content/entry/change-employer*")
                    approved = time.monotonic()
                    assert "Published revision" in await reviewer.inner_text("main")

                    while True:
                        seen = server.workers()
                        if len(seen) == 2 and all((v or 0) > max(v or 0 for v in start.values())
                                                  for v in seen.values()):
                            break
                        assert time.monotonic() - approved < 10, f"workers at {seen} 10 s after approval"
                        time.sleep(0.2)
                    swapped_in = time.monotonic() - approved
                    answers = [server.ask() for _ in range(10)]
                    time.sleep(1)
            finally:
                await browser.close()
        assert all(MARK in str(a["answer"]) for a in answers), answers[0]
        assert load.errors == [], load.errors[:3]
        assert load.sent > 0 and load.replied == load.sent
        assert server.process.poll() is None and server.process.pid == pids
        print(f"both workers served the approved text {swapped_in:.1f} s after approval; "
              f"{load.sent} web-chat messages during the test, {load.replied} replies, 0 errors")
