"""Every link, asset and form on every console page leads to a route the console serves.

The console is served as bot serves it (with the content pages) at /console, behind a proxy that
adds a prefix (``root_path`` /hamroh, as uvicorn's ``--root-path`` does). A supervisor walks every
page reachable from the queue, an admin the accounts page: each ``href``, ``src``, form ``action``
and fragment URL must stay under /hamroh/console and reach a route. A link or asset must open (200,
or 303 to another console page); a form's action must be a route (a GET form is not 404; a POST
without a token is refused as a stale form, 403, rather than not found). A broken ``url_for`` (a
renamed route, a lost mount prefix, a hand-built path) fails here, not in a counsellor's browser.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import select

import bot.console
from bot.console import build_console, console_settings
from handoff import (
    Actor,
    MediaFile,
    MediaRef,
    Reason,
    Role,
    add_note,
    append_user_message,
    claim,
    open_ticket,
    record_reply,
    transfer,
)
from handoff.tables import Counsellor
from knowledge_base import KnowledgeBase
from tests.content.console_support import PASSWORD, content_database, translation_form
from tests.handoff.handoff_support import Browser, RecordingOutbound

PROXY = "/hamroh"  # the prefix a reverse proxy serves the app under
CONSOLE = f"{PROXY}/console"


class _Media:
    """A channel that has every file: a voice note's link must open, not just resolve."""

    async def fetch(self, file_id: str) -> MediaFile:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"OggS"

        return MediaFile(chunks(), size=4)


class _Targets(HTMLParser):
    """The URLs a page points at: (kind, method, url); kind is "link" (a, link, script, img,
    audio: must open) or "form"; data-fragment (fetched by console.js) counts as a link."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.found.append(("form", (a.get("method") or "get").lower(), a.get("action", "")))
        else:
            self.found.extend(("link", "get", a[key]) for key in ("href", "src") if key in a)
        if "data-fragment" in a:
            self.found.append(("link", "get", a["data-fragment"]))


def _targets(page: str) -> Iterator[tuple[str, str, str]]:
    parser = _Targets()
    parser.feed(page)
    for kind, method, url in parser.found:
        if url.startswith(("data:", "#", "mailto:", "tel:")) or urlsplit(url).scheme in ("http", "https"):
            continue  # not the console's (a source's web page, the empty favicon)
        yield kind, method, url


@pytest_asyncio.fixture
async def console(db_url: str, settings: Any, kb: KnowledgeBase, tmp_path: Path,
                  monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    accounts = [(name, role, None) for name, role in (("sam", Role.SUPERVISOR), ("ada", Role.ADMIN),
                                                      ("edna", Role.EDITOR), ("rita", Role.REVIEWER))]
    engine, sessions = await content_database(db_url, settings, kb, tmp_path, accounts)
    monkeypatch.setattr(bot.console, "media_source", lambda _settings: _Media())
    parent = FastAPI()
    parent.mount("/console", build_console(settings, sessions, lambda: kb, kb.embedder, RecordingOutbound()))
    yield parent, sessions, console_settings(settings)
    await engine.dispose()


async def _seed_tickets(sessions: Any, console_settings: Any) -> None:
    """Tickets that show every control of the ticket page: one open (claim), one claimed by the
    supervisor with a voice note, a reply not yet delivered (retry), a note (resolve, transfer),
    and one transferred (the referral's link to the new ticket)."""
    async with sessions() as db, db.begin():
        me = Actor.of(await db.scalar(select(Counsellor).where(Counsellor.username == "sam")))
        common = {"session": db, "settings": console_settings, "reason": Reason.USER_ASKED, "lang": "ru"}
        await open_ticket(user_key="web:open", mrc_id="tashkent", first_message="Здравствуйте", **common)
        worked = await open_ticket(user_key="web:worked", mrc_id="tashkent", first_message="Помогите", **common)
        await append_user_message(session=db, ticket_id=worked.id, text="", attachment_kind="voice",
                                  attachment=MediaRef("voice-1", "audio/ogg"))
        await claim(session=db, ticket_id=worked.id, actor=me)
        await record_reply(session=db, ticket_id=worked.id, actor=me, text="Мы вам поможем.")
        await add_note(session=db, ticket_id=worked.id, actor=me, text="called back")
        moved = await open_ticket(user_key="web:moved", mrc_id="tashkent", first_message="Я в Ираке", **common)
        await claim(session=db, ticket_id=moved.id, actor=me)
        await transfer(session=db, settings=console_settings, ticket_id=moved.id, actor=me, to_mrc_id="erbil",
                       note="works in Erbil")


async def _seed_content(app: FastAPI) -> None:
    """A published second revision (history: rollback, diff) and a draft waiting for review."""
    edna, rita = await _browser(app, "edna"), await _browser(app, "rita")
    path = f"{CONSOLE}/content/entry/change-employer"
    for text in ("Первая правка ответа: сохраните договор и квитанции об оплате патента.\n",
                 "Вторая правка ответа: сохраните договор, квитанции и расчётный лист.\n"):
        form = translation_form((await edna.get(f"{path}?lang=ru")).text)
        saved = await edna.post(path, {**form, "tr-ru-answer": text})
        assert saved.status_code == 303, saved.text
        draft = saved.headers["location"].split("?", 1)[0]
        assert draft.startswith(f"{CONSOLE}/content/drafts/")  # the redirect is under the prefix too
        if text.startswith("Первая"):
            await rita.get(draft)
            assert (await rita.post(f"{draft}/approve", {"comment": "checked"})).status_code == 303
    await edna.aclose()
    await rita.aclose()


async def _browser(app: FastAPI, who: str) -> Browser:
    browser = Browser(app, ip=f"10.2.0.{len(who)}", root_path=PROXY)
    await browser.get(f"{CONSOLE}/login")
    signed = await browser.post(f"{CONSOLE}/login", {"username": who, "password": PASSWORD})
    assert signed.status_code == 303 and signed.headers["location"].startswith(f"{CONSOLE}/"), signed.text
    await browser.get(signed.headers["location"])  # the page carries the session's CSRF token
    return browser


async def _walk(browser: Browser, *starts: str) -> tuple[set[str], list[str]]:
    """Every page reachable from ``starts`` by the console's own links; returns the paths reached
    (pages, assets, form actions) and what is wrong. Each path is tried once per method (a route
    matches the path, never the query)."""
    todo, reached, wrong = list(starts), {urlsplit(start).path for start in starts}, []
    tried: set[tuple[str, str]] = set()
    while todo:
        url = todo.pop()
        page = await browser.get(url)
        moved = page.headers.get("location", "") if page.status_code == 303 else ""
        if moved.startswith(f"{CONSOLE}/"):  # the queue sends an admin to the accounts, a stranger to sign in
            if urlsplit(moved).path not in reached:
                reached.add(urlsplit(moved).path)
                todo.append(moved)
            continue
        if page.status_code != 200:
            wrong.append(f"{url}: {page.status_code}")
            continue
        if not page.headers.get("content-type", "").startswith("text/html"):
            continue
        for kind, method, target in _targets(page.text):
            path = urlsplit(target).path
            if not path.startswith(f"{CONSOLE}/"):
                wrong.append(f"{url}: {kind} {target!r} is not under {CONSOLE}/")
            elif kind == "link":
                if path not in reached:
                    reached.add(path)
                    todo.append(target)
            elif (method, path) not in tried:
                tried.add((method, path))
                reached.add(path)
                if method == "post":
                    answered = await browser.post(path, {}, csrf=False)  # no token: nothing changes
                    if answered.status_code != 403:
                        wrong.append(f"{url}: form {path} answered {answered.status_code}, not 403 (stale form)")
                else:
                    answered = await browser.get(path)
                    if answered.status_code == 404 or answered.status_code >= 500:
                        wrong.append(f"{url}: form {path} answered {answered.status_code}")
    return reached, wrong


@pytest.mark.asyncio
async def test_every_link_and_form_of_every_page_resolves_under_the_mount_and_proxy_prefix(console: Any) -> None:
    app, sessions, settings = console
    await _seed_tickets(sessions, settings)
    await _seed_content(app)

    sam = await _browser(app, "sam")
    # the transferred ticket is off the queue (its referral links to the new ticket): start there too
    pages, wrong = await _walk(sam, f"{CONSOLE}/", f"{CONSOLE}/tickets/3")
    await sam.aclose()
    assert wrong == []
    # the walk reached every kind of page a supervisor has (and the links each of them offers)
    expected = {"/", "/stats", "/stats.csv", "/audit", "/content", "/content/entry/change-employer",
                "/content/entry/change-employer/diff", "/tickets/1", "/tickets/2", "/tickets/3", "/tickets/4",
                "/tickets/2/export", "/tickets/2/answers", "/tickets/1/claim", "/tickets/2/reply", "/tickets/2/notes",
                "/tickets/2/resolve", "/tickets/2/transfer", "/tickets/2/release", "/claim-next", "/logout"}
    missing = {p for p in expected if f"{CONSOLE}{p}" not in pages}
    assert not missing, sorted(pages)
    assert any(re.fullmatch(rf"{CONSOLE}/tickets/2/media/\d+", p) for p in pages)  # the voice note opens
    assert any(re.fullmatch(rf"{CONSOLE}/tickets/2/messages/\d+/retry", p) for p in pages)
    assert any(re.fullmatch(rf"{CONSOLE}/content/drafts/\d+/approve", p) for p in pages)
    assert f"{CONSOLE}/content/entry/change-employer/rollback" in pages
    assert {p for p in pages if "/static/" in p} == {f"{CONSOLE}/static/console.css", f"{CONSOLE}/static/console.js"}

    ada = await _browser(app, "ada")
    pages, wrong = await _walk(ada, f"{CONSOLE}/")  # an admin's home is the accounts page
    await ada.aclose()
    assert wrong == []
    assert {f"{CONSOLE}/accounts", f"{CONSOLE}/audit"} <= pages
    assert any(re.fullmatch(rf"{CONSOLE}/accounts/\d+/disable", p) for p in pages)

    # signed out: the sign-in page's own form and assets
    anonymous = Browser(app, ip="10.2.0.99", root_path=PROXY)
    pages, wrong = await _walk(anonymous, f"{CONSOLE}/login")
    await anonymous.aclose()
    assert wrong == [] and f"{CONSOLE}/static/console.css" in pages
