"""CSRF on every form, security headers on every page, sign-in throttling that locks nobody out."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from handoff import Reason, Role, claim, open_ticket
from handoff.tables import Counsellor, Ticket, TicketMessage, TicketNote
from tests.handoff.handoff_support import Browser, RecordingOutbound, build_console, make_account
from tests.handoff.test_handoff_console_authz import ROUTES

pytestmark = pytest.mark.integration


async def _setup(sessions, settings):
    sup = await make_account(sessions, "sup", Role.SUPERVISOR, "tj")
    await make_account(sessions, "root", Role.ADMIN, None)
    victim = await make_account(sessions, "victim", Role.COUNSELLOR, "tj")
    async with sessions() as db, db.begin():
        ticket = await open_ticket(
            session=db, settings=settings, user_key="u", mrc_id="tj", reason=Reason.USER_ASKED, lang="ru"
        )
        await claim(session=db, ticket_id=ticket.id, actor=sup)
    outbound = RecordingOutbound()
    return build_console(sessions, settings, outbound), outbound, ticket.id, victim.id


async def _state(sessions):
    async with sessions() as db:
        return (
            await db.scalar(select(func.count()).select_from(TicketNote)),
            await db.scalar(select(func.count()).select_from(TicketMessage)),
            await db.scalar(select(func.count()).select_from(Counsellor).where(Counsellor.disabled_at.is_not(None))),
            tuple((await db.execute(select(Ticket.status, Ticket.claimed_by_id))).all()),
        )


@pytest.mark.parametrize("token", ["missing", "wrong", "other-origin"])
async def test_posts_without_a_valid_csrf_token_are_refused(token, sessions, settings):
    app, outbound, ticket_id, victim_id = await _setup(sessions, settings)
    posts = [(path, form) for method, _, path, form in ROUTES if method == "POST"] + [("/logout", {})]
    for login in ("sup", "root"):
        browser = Browser(app)
        try:
            await browser.login(login)
            before = await _state(sessions)
            for template, form in posts:
                path = "/console" + template.replace("{T}", str(ticket_id)).replace("{M}", "1").replace(
                    "{A}", str(victim_id)
                )
                data = dict(form or {})
                headers = {}
                if token == "wrong":
                    data["csrf_token"] = "forged"
                elif token == "other-origin":
                    data["csrf_token"] = browser.csrf
                    headers["Origin"] = "https://evil.example"
                response = await browser.client.post(path, data=data, headers=headers)
                assert response.status_code == 403, f"{login} POST {path} with {token} token -> {response.status_code}"
            assert await _state(sessions) == before
            assert (await browser.get("/console/audit")).status_code == 200  # still signed in: logout was refused
        finally:
            await browser.aclose()
    assert outbound.sent == []


async def test_login_form_needs_its_token_too(sessions, settings):
    app, *_ = await _setup(sessions, settings)
    browser = Browser(app)
    try:
        await browser.get("/console/login")
        response = await browser.client.post("/console/login", data={"username": "sup", "password": "x" * 20})
        assert response.status_code == 403
        assert "hamroh_console" not in browser.client.cookies
    finally:
        await browser.aclose()


HEADERS = {
    "content-security-policy": "frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
    "x-frame-options": "DENY",
}


async def test_security_headers_on_console_pages(sessions, settings):
    app, _, ticket_id, _ = await _setup(sessions, settings)
    browser = Browser(app)
    try:
        pages = [await browser.get("/console/login")]
        await browser.login("sup")
        for path in (
            "/console/",
            f"/console/tickets/{ticket_id}",
            "/console/stats",
            "/console/tickets/99999",
            "/console/alerts",
            f"/console/tickets/{ticket_id}/export",
        ):
            pages.append(await browser.get(path))
        for page in pages:
            for name, expected in HEADERS.items():
                assert expected in page.headers.get(name, ""), f"{page.request.url}: {name}={page.headers.get(name)}"
        csp = pages[0].headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        static = await browser.get("/console/static/console.css")
        assert static.status_code == 200 and "max-age" in static.headers["cache-control"]
        assert static.headers["x-content-type-options"] == "nosniff"
    finally:
        await browser.aclose()


async def test_session_cookie_is_httponly_and_scoped(sessions, settings):
    app, *_ = await _setup(sessions, settings)
    secure_app = build_console(sessions, settings.model_copy(update={"cookie_secure": True}), RecordingOutbound())
    for console, secure in ((app, False), (secure_app, True)):
        browser = Browser(console, scheme="https" if secure else "http")
        try:
            await browser.get("/console/login")
            response = await browser.post(
                "/console/login", {"username": "sup", "password": "correct horse battery staple"}
            )
            cookies = response.headers.get_list("set-cookie")
            assert response.status_code == 303, response.text[:300]
            cookie = next((v for v in cookies if v.startswith("hamroh_console=")), str(cookies))
            assert "HttpOnly" in cookie and "Path=/console" in cookie and "SameSite=lax" in cookie
            assert ("Secure" in cookie) is secure
        finally:
            await browser.aclose()


async def test_throttling_slows_the_guesser_not_the_counsellor(sessions, settings):
    app, *_ = await _setup(sessions, settings)
    victim_browser = Browser(app, ip="10.0.0.5")  # the counsellor's usual browser
    attacker = Browser(app, ip="10.0.0.9")
    same_office = Browser(app, ip="10.0.0.5")  # a colleague's machine behind the same NAT address
    try:
        assert (await victim_browser.login("victim")).status_code == 303
        await victim_browser.post("/console/logout")
        for _ in range(settings.login_max_failures):
            assert (await attacker.login("victim", "wrong password!")).status_code == 401
        # The guesser is now blocked, even with the right password...
        assert (await attacker.login("victim")).status_code == 429
        # ...and so is a cookie-less browser at the same address after its own failures,
        for _ in range(settings.login_max_failures):
            await same_office.login("victim", "wrong again!!")
        assert (await same_office.login("victim")).status_code == 429
        # but the counsellor signs in from their usual browser, and from anywhere else.
        assert (await victim_browser.login("victim")).status_code == 303
        elsewhere = Browser(app, ip="192.168.1.20")
        try:
            assert (await elsewhere.login("victim")).status_code == 303
        finally:
            await elsewhere.aclose()
        # Other accounts are untouched by the attack.
        assert (await attacker.login("sup")).status_code == 303
    finally:
        for b in (victim_browser, attacker, same_office):
            await b.aclose()


async def test_wrong_password_and_unknown_user_look_the_same(sessions, settings):
    app, *_ = await _setup(sessions, settings)
    browser = Browser(app)
    try:
        wrong = await browser.login("sup", "not the password")
        unknown = await browser.login("nobody-here", "not the password")
        assert wrong.status_code == unknown.status_code == 401
        assert "Wrong username or password" in wrong.text and "Wrong username or password" in unknown.text
    finally:
        await browser.aclose()


async def test_next_parameter_cannot_send_users_elsewhere(sessions, settings):
    app, *_ = await _setup(sessions, settings)
    browser = Browser(app)
    try:
        await browser.get("/console/login")
        for target in ("https://evil.example/", "//evil.example/x", "/other-app"):
            response = await browser.post(
                "/console/login",
                {"username": "sup", "password": "correct horse battery staple", "next": target},
            )
            assert response.headers["location"] == "/console/"
            await browser.get("/console/login")
    finally:
        await browser.aclose()
