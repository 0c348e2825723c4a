"""The console's URLs come from its own routes, under wherever it is served.

bot mounts the console at /console, and a reverse proxy may serve the whole app under a prefix
(uvicorn's ``--root-path``). Links, form actions, assets and redirects must carry both, and a
route of the parent app with the same name as a console route (``login``, ``static``) must not
take a console link elsewhere.
"""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from handoff import Reason, create_console_app, crisis_alert_text, open_ticket
from tests.handoff.handoff_support import Browser, RecordingOutbound, make_account

pytestmark = pytest.mark.integration

CONSOLE = "/hamroh/console"


def _parent_with_namesakes(console: FastAPI) -> FastAPI:
    parent = FastAPI()

    @parent.get("/login", name="login")
    async def other_login() -> PlainTextResponse:
        return PlainTextResponse("the parent's own sign-in")

    @parent.get("/static/{path:path}", name="static")
    async def other_static(path: str) -> PlainTextResponse:
        return PlainTextResponse("the parent's own files")

    parent.mount("/console", console)
    return parent


async def test_links_forms_assets_and_redirects_carry_the_mount_and_the_proxy_prefix(sessions, settings):
    await make_account(sessions, "c1")
    async with sessions() as db, db.begin():
        ticket = await open_ticket(session=db, settings=settings, user_key="u1", mrc_id="tj",
                                   reason=Reason.USER_ASKED, lang="ru", first_message="Помогите")
    app = _parent_with_namesakes(create_console_app(settings, sessions, RecordingOutbound()))
    browser = Browser(app, root_path="/hamroh")

    login = await browser.get(f"{CONSOLE}/login")
    assert f'action="{CONSOLE}/login"' in login.text
    css = re.search(r'href="([^"]+console\.css[^"]*)"', login.text)
    assert css and css.group(1).startswith(f"{CONSOLE}/static/console.css?v=")
    asset = await browser.get(css.group(1))
    assert asset.status_code == 200 and "text/css" in asset.headers["content-type"]

    signed = await browser.post(f"{CONSOLE}/login", {"username": "c1", "password": "correct horse battery staple"})
    assert signed.status_code == 303 and signed.headers["location"] == f"{CONSOLE}/"
    assert signed.cookies and all(c.path == CONSOLE for c in browser.client.cookies.jar)
    queue = await browser.get(f"{CONSOLE}/")
    assert f'href="{CONSOLE}/tickets/{ticket.id}"' in queue.text
    assert f'data-base="{CONSOLE}"' in queue.text  # console.js builds its fragment URLs on it

    claimed = await browser.post(f"{CONSOLE}/tickets/{ticket.id}/claim")
    assert claimed.headers["location"] == f"{CONSOLE}/tickets/{ticket.id}?notice=claimed"
    page = await browser.get(claimed.headers["location"])
    assert f'action="{CONSOLE}/tickets/{ticket.id}/reply"' in page.text

    out = await browser.post(f"{CONSOLE}/logout")
    assert out.headers["location"] == f"{CONSOLE}/login"
    # signed out, a page sends the browser to sign in and back to that page afterwards
    again = await browser.get(f"{CONSOLE}/tickets/{ticket.id}")
    assert again.status_code == 303 and again.headers["location"].startswith(f"{CONSOLE}/login?next=")
    await browser.aclose()


async def test_crisis_alert_links_the_ticket_under_the_public_url(sessions, settings):
    async with sessions() as db, db.begin():
        ticket = await open_ticket(session=db, settings=settings, user_key="u2", mrc_id="tj",
                                   reason=Reason.CRISIS, lang="ru", crisis_kind="violence")
    public = settings.model_copy(update={"public_url": "https://mrc.example/hamroh/console/"})
    assert crisis_alert_text(ticket, public).endswith(f"\nhttps://mrc.example/hamroh/console/tickets/{ticket.id}")
    assert "http" not in crisis_alert_text(ticket, settings)  # no public address: no link
