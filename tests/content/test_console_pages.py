"""The content pages of the console, signed in as editor, reviewer and counsellor."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select

from bot.console import build_console
from bot.content.tables import KbDraft
from handoff import Role
from handoff.tables import AuditEntry
from knowledge_base import KnowledgeBase
from tests.content.console_support import PASSWORD, content_database, translation_form
from tests.handoff.handoff_support import Browser, RecordingOutbound, mounted

NEW_RU = "Новый текст ответа: сохраните договор, квитанции об оплате патента и расчётный лист.\n"


@pytest_asyncio.fixture
async def console(db_url: str, settings: Any, kb: KnowledgeBase, tmp_path: Path) -> AsyncIterator[Any]:
    accounts = [("edna", Role.EDITOR, None), ("rita", Role.REVIEWER, None), ("cora", Role.COUNSELLOR, "tashkent")]
    engine, sessions = await content_database(db_url, settings, kb, tmp_path, accounts)
    app = mounted(build_console(settings, sessions, lambda: kb, kb.embedder, RecordingOutbound()))
    yield app, sessions
    await engine.dispose()


async def _browser(app: Any, who: str) -> Browser:
    browser = Browser(app, ip=f"10.1.0.{len(who)}")
    await browser.login(who, PASSWORD)
    return browser


@pytest.mark.asyncio
async def test_editor_drafts_reviewer_sees_diff_and_publishes(console: Any) -> None:
    app, sessions = console
    edna = await _browser(app, "edna")
    page = await edna.get("/console/content")
    assert page.status_code == 200 and "change-employer" in page.text and "Drafts waiting for review" in page.text
    ur = await edna.get("/console/content/entry/change-employer?lang=ur")
    assert 'lang="ur" dir="rtl"' in ur.text  # the Urdu tab is written right to left
    ru = await edna.get("/console/content/entry/change-employer?lang=ru")
    assert "Telegram" in ru.text and "Web chat" in ru.text  # the preview
    form = translation_form(ru.text)
    assert form["scope"] == "ru"
    # invalid: the error stands next to the field, nothing saved
    bad = await edna.post("/console/content/entry/change-employer", {**form, "tr-ru-answer": "Коротко."})
    assert bad.status_code == 422
    assert re.search(r'id="tr-ru-answer".*?class="field-error"', bad.text, re.S)
    saved = await edna.post("/console/content/entry/change-employer", {**form, "tr-ru-answer": NEW_RU})
    assert saved.status_code == 303 and "/content/drafts/" in saved.headers["location"]
    draft_path = saved.headers["location"].split("/console", 1)[1].split("?", 1)[0]
    # a second editor working from the same version is refused, their text kept on the page
    late = await edna.post("/console/content/entry/change-employer", {**form, "tr-ru-answer": NEW_RU + "Ещё.\n"})
    assert late.status_code == 409 and "not saved over" in late.text and "Ещё." in late.text
    # the author cannot approve their own change
    own = await edna.get(f"/console{draft_path}")
    assert 'id="approve"' not in own.text
    refused = await edna.post(f"/console{draft_path}/approve", {"comment": ""})
    assert "four eyes" in refused.headers["location"].replace("+", " ").replace("%3A", ":")

    rita = await _browser(app, "rita")
    review = await rita.get(f"/console{draft_path}")
    assert '<ins class="diff">' in review.text and 'id="approve"' in review.text
    done = await rita.post(f"/console{draft_path}/approve", {"comment": "checked against the law"})
    assert done.status_code == 303
    entry = await rita.get("/console/content/entry/change-employer?lang=ru")
    assert "rollback-1" in entry.text  # history offers the first revision back
    diff = await rita.get("/console/content/entry/change-employer/diff?a=1&b=2")
    assert diff.status_code == 200 and "<del class=\"diff\">" in diff.text and "translations.ru.answer" in diff.text
    tried = await rita.get("/console/content/entry/change-employer?lang=ru&q=можно+ли+сменить+работодателя")
    assert 'id="rank"' in tried.text
    async with sessions() as db:
        actions = {(a.actor_username, a.action) for a in (await db.scalars(select(AuditEntry))).all()}
    assert {("edna", "content_view"), ("edna", "content_draft"), ("rita", "content_approve"),
            ("rita", "content_publish")} <= actions
    await edna.aclose()
    await rita.aclose()


@pytest.mark.asyncio
async def test_a_russian_speaking_editor_reads_errors_in_russian_next_to_the_field(console: Any) -> None:
    app, _ = console
    edna = await _browser(app, "edna")
    russian = {"Accept-Language": "ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7"}
    page = await edna.get("/console/content/entry/change-employer?lang=ru", headers=russian)
    form = {**translation_form(page.text), "tr-ru-answer": "Коротко."}
    bad = await edna.post("/console/content/entry/change-employer", form, headers=russian)
    assert bad.status_code == 422
    # beside the Russian answer, in Russian (the editor's language), with the value it names
    assert re.search(r'id="tr-ru-answer".*?<span class="field-error" lang="ru" dir="ltr" role="alert">'
                     r"текст короче допустимого \(минимум знаков: 40\)\. напишите подробнее</span>", bad.text, re.S)
    # the same mistake for a browser without a language the catalogue has: English
    plain = await edna.post("/console/content/entry/change-employer", form, headers={"Accept-Language": "de, fr"})
    assert 'lang="en"' in plain.text and "shorter than 40 characters. write more" in plain.text
    # Arabic reads right to left
    arabic = await edna.post("/console/content/entry/change-employer", form, headers={"Accept-Language": "ar-EG"})
    assert '<span class="field-error" lang="ar" dir="rtl" role="alert">عدد الأحرف أقل من 40' in arabic.text
    await edna.aclose()


@pytest.mark.asyncio
async def test_counsellor_cannot_open_content_pages(console: Any) -> None:
    app, _ = console
    cora = await _browser(app, "cora")
    assert (await cora.get("/console/content")).status_code == 403
    assert (await cora.get("/console/content/entry/change-employer")).status_code == 403
    await cora.aclose()
    await asyncio.sleep(0)


@pytest.mark.asyncio
async def test_draft_an_entry_from_gap_questions_prefills_the_english_questions(console: Any) -> None:
    app, _ = console
    edna = await _browser(app, "edna")
    page = await edna.get("/console/content/new", params={"id": "pension-transfer",
                                                          "question": ["can I move my pension home", "pension abroad"]})
    assert page.status_code == 200 and "pension-transfer" in page.text
    assert re.search(r'name="tr-en-questions"[^>]*>can I move my pension home\npension abroad</textarea>', page.text)
    await edna.aclose()


@pytest.mark.asyncio
async def test_content_posts_need_the_console_csrf_token(console: Any) -> None:
    app, sessions = console
    edna = await _browser(app, "edna")
    page = await edna.get("/console/content/entry/change-employer?lang=ru")
    form = translation_form(page.text)
    refused = await edna.post("/console/content/entry/change-employer",
                              {**form, "tr-ru-answer": NEW_RU, "csrf_token": "forged"})
    assert refused.status_code == 403
    async with sessions() as db:
        assert (await db.scalars(select(KbDraft))).all() == []  # nothing saved
    await edna.aclose()
