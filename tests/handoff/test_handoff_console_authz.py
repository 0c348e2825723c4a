"""Authorization over every console route and role: nothing allowed that should not be.

The route table below must name every route of the console; a new route without an entry
fails ``test_every_route_is_covered``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import func, select

from handoff import Reason, Role, Status, claim, create_console_app, disable_account, open_ticket, reply
from handoff.tables import AuditEntry, Counsellor, Ticket, TicketMessage, TicketNote
from tests.handoff.handoff_support import Browser, RecordingOutbound, build_console, make_account

pytestmark = pytest.mark.integration


@dataclass
class World:
    app: object
    outbound: RecordingOutbound
    ids: dict[str, int]


async def _world(sessions, settings) -> World:
    actors = {
        "counsellor": await make_account(sessions, "c-tj", Role.COUNSELLOR, "tj"),
        "holder": await make_account(sessions, "holder-tj", Role.COUNSELLOR, "tj"),
        "supervisor": await make_account(sessions, "s-tj", Role.SUPERVISOR, "tj"),
        "supervisor_bd": await make_account(sessions, "s-bd", Role.SUPERVISOR, "bd"),
        "admin": await make_account(sessions, "a-all", Role.ADMIN, None),
        "admin_bd": await make_account(sessions, "a-bd", Role.ADMIN, "bd"),
        "disabled": await make_account(sessions, "gone-tj", Role.SUPERVISOR, "tj"),
    }
    outbound = RecordingOutbound()
    async with sessions() as db, db.begin():
        common = {"session": db, "settings": settings, "lang": "tg", "profile": {}}
        open_tj = await open_ticket(user_key="u-open", mrc_id="tj", reason=Reason.CRISIS, **common)
        held_tj = await open_ticket(user_key="u-held", mrc_id="tj", reason=Reason.USER_ASKED, **common)
        open_bd = await open_ticket(user_key="u-bd", mrc_id="bd", reason=Reason.NO_ANSWER, **{**common, "lang": "bn"})
        await claim(session=db, ticket_id=held_tj.id, actor=actors["holder"])
        outbound.fail_next = 1
        failed = await reply(session=db, ticket_id=held_tj.id, actor=actors["holder"], text="x", outbound=outbound)
        held_bd = await open_ticket(user_key="u-bd2", mrc_id="bd", reason=Reason.USER_ASKED, **{**common, "lang": "bn"})
        await claim(session=db, ticket_id=held_bd.id, actor=actors["supervisor_bd"])
        bd_failed = await reply(
            session=db, ticket_id=held_bd.id, actor=actors["supervisor_bd"], text="y", outbound=outbound
        )
    ids = {name: actor.id for name, actor in actors.items()}
    ids |= {
        "open_tj": open_tj.id,
        "held_tj": held_tj.id,
        "open_bd": open_bd.id,
        "held_bd": held_bd.id,
        "msg_tj": failed.message.id,
        "msg_bd": bd_failed.message.id,
    }
    return World(build_console(sessions, settings, outbound), outbound, ids)


# (method, route path, concrete path template, form) — {name} placeholders come from World.ids.
ROUTES = [
    ("GET", "/", "/", None),
    ("GET", "/queue/rows", "/queue/rows", None),
    ("GET", "/alerts", "/alerts", None),
    ("GET", "/events", "/events?seconds=1", None),
    ("POST", "/claim-next", "/claim-next", {}),
    ("GET", "/tickets/{ticket_id}", "/tickets/{T}", None),
    ("GET", "/tickets/{ticket_id}/answers", "/tickets/{T}/answers?q=visa", None),
    ("GET", "/tickets/{ticket_id}/export", "/tickets/{T}/export", None),
    ("POST", "/tickets/{ticket_id}/claim", "/tickets/{T}/claim", {}),
    ("POST", "/tickets/{ticket_id}/release", "/tickets/{T}/release", {}),
    ("POST", "/tickets/{ticket_id}/reply", "/tickets/{T}/reply", {"text": "hello", "client_key": "k"}),
    ("POST", "/tickets/{ticket_id}/messages/{message_id}/retry", "/tickets/{T}/messages/{M}/retry", {}),
    ("GET", "/tickets/{ticket_id}/media/{message_id}", "/tickets/{T}/media/{M}", None),
    ("POST", "/tickets/{ticket_id}/notes", "/tickets/{T}/notes", {"text": "note"}),
    ("POST", "/tickets/{ticket_id}/resolve", "/tickets/{T}/resolve", {}),
    ("POST", "/tickets/{ticket_id}/transfer", "/tickets/{T}/transfer", {"to_mrc": "iq", "note": "n"}),
    ("GET", "/stats", "/stats", None),
    ("GET", "/stats.csv", "/stats.csv", None),
    ("GET", "/audit", "/audit", None),
    ("GET", "/accounts", "/accounts", None),
    (
        "POST",
        "/accounts",
        "/accounts",
        {
            "username": "newbie",
            "display_name": "N",
            "role": "counsellor",
            "mrc_id": "tj",
            "password": "long enough password",
        },
    ),
    ("POST", "/accounts/{account_id}/disable", "/accounts/{A}/disable", {}),
    ("POST", "/accounts/{account_id}/enable", "/accounts/{A}/enable", {}),
]
PUBLIC = {("GET", "/login"), ("POST", "/login"), ("POST", "/logout")}  # and the static files (a mount)


def _api_routes(routes):
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # FastAPI's included routers
            yield from _api_routes(route.original_router.routes)


def test_every_route_is_covered(settings):
    app = create_console_app(settings, None, RecordingOutbound())  # type: ignore[arg-type]
    routes = {(m, r.path) for r in _api_routes(app.routes) for m in r.methods}
    assert len(routes) > 20
    covered = {(m, p) for m, p, _, _ in ROUTES} | PUBLIC
    assert routes == covered


def _denied_cases(role: str, ids: dict[str, int]):
    """Requests the role must not be able to make, with the ticket/account they target."""
    T_OTHER, M_OTHER = ids["held_bd"], ids["msg_bd"]
    cases = []
    for method, _route, template, form in ROUTES:
        targets = []
        if "{T}" in template:
            # Another MRC's tickets, by id, for every MRC-bound role.
            if role in ("counsellor", "supervisor"):
                targets += [(ids["open_bd"], M_OTHER), (T_OTHER, M_OTHER)]
            if role in ("admin", "admin_bd"):
                targets += [(ids["open_tj"], ids["msg_tj"]), (ids["held_tj"], ids["msg_tj"])]
            if role == "counsellor" and any(
                k in template for k in ("release", "reply", "retry", "resolve", "transfer")
            ):
                targets.append((ids["held_tj"], ids["msg_tj"]))  # held by a colleague
            if role == "supervisor" and "reply" in template:
                targets.append((ids["held_tj"], ids["msg_tj"]))  # supervisors do not answer for others
        elif "{A}" in template:
            if role in ("counsellor", "supervisor"):
                targets.append((ids["counsellor"], 0))
            if role == "admin_bd":
                targets.append((ids["counsellor"], 0))  # an account of another MRC
        else:
            route_denied = {
                "counsellor": {"/stats", "/stats.csv", "/audit", "/accounts"},
                "supervisor": {"/accounts"},
                "admin": {"/queue/rows", "/alerts", "/events", "/claim-next", "/stats", "/stats.csv"},
                "admin_bd": {"/queue/rows", "/alerts", "/events", "/claim-next", "/stats", "/stats.csv"},
            }[role]
            if template.split("?")[0] in route_denied and not (
                method == "POST" and template == "/accounts" and role.startswith("admin")
            ):
                targets.append((0, 0))
        for t, m in targets:
            path = "/console" + template.replace("{T}", str(t)).replace("{M}", str(m)).replace("{A}", str(t))
            cases.append((method, path, form))
    return cases


async def _snapshot(sessions):
    async with sessions() as db:
        return (
            await db.scalar(select(func.count()).select_from(TicketNote)),
            await db.scalar(select(func.count()).select_from(TicketMessage)),
            tuple(
                (
                    await db.execute(
                        select(Ticket.id, Ticket.status, Ticket.claimed_by_id, Ticket.mrc_id).order_by(Ticket.id)
                    )
                ).all()
            ),
            tuple((await db.execute(select(Counsellor.id, Counsellor.disabled_at).order_by(Counsellor.id))).all()),
        )


LOGINS = {"counsellor": "c-tj", "supervisor": "s-tj", "admin": "a-all", "admin_bd": "a-bd"}


@pytest.mark.parametrize("role", list(LOGINS))
async def test_role_cannot_do_what_it_should_not(role, sessions, settings):
    world = await _world(sessions, settings)
    browser = Browser(world.app)
    try:
        assert (await browser.login(LOGINS[role])).status_code == 303
        before = await _snapshot(sessions)
        sent_before = len(world.outbound.sent)
        cases = _denied_cases(role, world.ids)
        assert cases
        for method, path, form in cases:
            if method == "GET":
                response = await browser.get(path)
            else:
                response = await browser.post(path, form)
            assert response.status_code in (403, 404), f"{role} {method} {path} -> {response.status_code}"
        assert await _snapshot(sessions) == before
        assert len(world.outbound.sent) == sent_before
    finally:
        await browser.aclose()


async def test_other_mrcs_ticket_by_id_is_not_found(sessions, settings):
    """Guessing ids reveals nothing: another MRC's ticket answers exactly like a missing one."""
    world = await _world(sessions, settings)
    browser = Browser(world.app)
    try:
        await browser.login("c-tj")
        other = await browser.get(f"/console/tickets/{world.ids['open_bd']}")
        missing = await browser.get("/console/tickets/999999")
        assert other.status_code == missing.status_code == 404
        assert "u-bd" not in other.text
    finally:
        await browser.aclose()


ALLOWED_PAGES = {
    "counsellor": ["/", "/queue/rows", "/alerts", "/tickets/{open_tj}", "/tickets/{held_tj}/export"],
    "supervisor": ["/", "/stats", "/stats.csv", "/audit", "/tickets/{open_tj}"],
    "admin": ["/accounts", "/audit"],
    "admin_bd": ["/accounts", "/audit"],
}


@pytest.mark.parametrize("role", list(LOGINS))
async def test_role_reaches_its_own_pages(role, sessions, settings):
    world = await _world(sessions, settings)
    browser = Browser(world.app)
    try:
        await browser.login(LOGINS[role])
        for page in ALLOWED_PAGES[role]:
            response = await browser.get("/console" + page.format(**world.ids))
            assert response.status_code == 200, f"{role} GET {page} -> {response.status_code}"
    finally:
        await browser.aclose()


async def test_anonymous_is_sent_to_sign_in(sessions, settings):
    world = await _world(sessions, settings)
    browser = Browser(world.app)
    try:
        for method, _route, template, form in ROUTES:
            path = "/console" + template.replace("{T}", str(world.ids["open_tj"])).replace(
                "{M}", str(world.ids["msg_tj"])
            ).replace("{A}", str(world.ids["counsellor"]))
            response = await (browser.get(path) if method == "GET" else browser.post(path, form, csrf=False))
            # fragments, the event stream and a voice note's player cannot follow a redirect: 401
            fragment = path.endswith(("/alerts", "/rows")) or any(p in path for p in ("/answers", "/events", "/media/"))
            if method == "GET" and not fragment:
                assert response.status_code == 303 and "/console/login" in response.headers["location"], path
            else:
                assert response.status_code in (401, 403), f"{method} {path} -> {response.status_code}"
        assert (await browser.get("/console/login")).status_code == 200
    finally:
        await browser.aclose()


async def test_disabled_account_loses_its_session_and_cannot_sign_in(sessions, settings):
    world = await _world(sessions, settings)
    browser = Browser(world.app)
    try:
        assert (await browser.login("gone-tj")).status_code == 303
        assert (await browser.get("/console/")).status_code == 200
        async with sessions() as db, db.begin():
            await disable_account(session=db, username="gone-tj")
        page = await browser.get(f"/console/tickets/{world.ids['open_tj']}")
        assert page.status_code == 303 and "/login" in page.headers["location"]
        assert (await browser.post(f"/console/tickets/{world.ids['open_tj']}/notes", {"text": "x"})).status_code in (
            401,
            403,
        )
        again = Browser(world.app)
        try:
            assert (await again.login("gone-tj")).status_code == 401
        finally:
            await again.aclose()
        async with sessions() as db:
            assert await db.scalar(select(func.count()).select_from(TicketNote)) == 0
    finally:
        await browser.aclose()


async def test_logout_ends_the_session_on_the_server(sessions, settings):
    world = await _world(sessions, settings)
    browser = Browser(world.app)
    try:
        await browser.login("c-tj")
        cookie = browser.client.cookies.get("hamroh_console")
        assert cookie
        response = await browser.post("/console/logout")
        assert response.status_code == 303
        thief = Browser(world.app)  # someone who copied the cookie before logout
        thief.client.cookies.set("hamroh_console", cookie, path="/console")
        try:
            stolen = await thief.get("/console/")
            assert stolen.status_code == 303 and "/login" in stolen.headers["location"]
        finally:
            await thief.aclose()
        async with sessions() as db:
            actions = (await db.scalars(select(AuditEntry.action))).all()
        assert "logout" in actions
    finally:
        await browser.aclose()


async def test_supervisor_can_take_over_what_counsellor_cannot(sessions, settings):
    world = await _world(sessions, settings)
    browser = Browser(world.app)
    try:
        await browser.login("s-tj")
        held = world.ids["held_tj"]
        response = await browser.post(f"/console/tickets/{held}/resolve", {"topic": "wages"})
        assert response.status_code == 303
        async with sessions() as db:
            assert (await db.get(Ticket, held)).status == Status.RESOLVED
    finally:
        await browser.aclose()
