"""`hamroh counsellor add|disable|list` through handoff.cli, against a migrated database."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from handoff import AccountError, Actor, Reason, claim, open_ticket
from handoff._auth import create_session
from handoff.cli import add_counsellor, disable_counsellor, format_counsellors, list_counsellors
from handoff.tables import ConsoleSession, Counsellor, Ticket
from storage import create_engine, session_factory
from tests.handoff.handoff_support import PASSWORD, make_settings

pytestmark = pytest.mark.integration


def test_add_list_disable(db_url):
    info = add_counsellor(
        db_url, username="Dilnoza", display_name="Dilnoza R.", password=PASSWORD, mrc_id="tj", known_mrc_ids=["tj"]
    )
    assert info.username == "dilnoza" and info.active
    add_counsellor(db_url, username="boss", display_name="Boss", password=PASSWORD, role="supervisor")
    table = format_counsellors(list_counsellors(db_url))
    assert "dilnoza" in table and "(all)" in table and "active" in table
    disabled = disable_counsellor(db_url, username="dilnoza")
    assert not disabled.active
    assert [a.username for a in list_counsellors(db_url, include_disabled=False)] == ["boss"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"username": "x y"}, "not valid"),
        ({"mrc_id": None}, "needs an MRC"),
        ({"mrc_id": "tjj"}, "unknown MRC 'tjj'"),
        ({"password": "short"}, "at least 12"),
        ({"role": "god"}, "not one of"),
    ],
)
def test_add_explains_what_to_fix(db_url, kwargs, message):
    values = {"username": "aziz", "display_name": "Aziz", "password": PASSWORD, "mrc_id": "tj", "known_mrc_ids": ["tj"]}
    with pytest.raises(AccountError, match=message):
        add_counsellor(db_url, **{**values, **kwargs})


def test_duplicate_and_unknown_accounts(db_url):
    add_counsellor(db_url, username="aziz", display_name="Aziz", password=PASSWORD, mrc_id="tj")
    with pytest.raises(AccountError, match="already exists"):
        add_counsellor(db_url, username="AZIZ", display_name="Aziz 2", password=PASSWORD, mrc_id="tj")
    with pytest.raises(AccountError, match="no account named 'nobody'"):
        disable_counsellor(db_url, username="nobody")


def test_unmigrated_database_says_to_run_upgrade(tmp_path):
    with pytest.raises(AccountError, match="hamroh db upgrade"):
        list_counsellors(f"sqlite+aiosqlite:///{tmp_path}/empty.db")


def test_disabling_ends_sessions_and_frees_claimed_tickets(db_url):
    add_counsellor(db_url, username="leaver", display_name="Leaver", password=PASSWORD, mrc_id="tj")
    settings = make_settings()

    async def sign_in_and_claim() -> None:
        engine = create_engine(db_url)
        try:
            async with session_factory(engine)() as db, db.begin():
                me = await db.scalar(select(Counsellor).where(Counsellor.username == "leaver"))
                await create_session(session=db, settings=settings, counsellor=me)
                ticket = await open_ticket(
                    session=db, settings=settings, user_key="u", mrc_id="tj", reason=Reason.USER_ASKED, lang="tg"
                )
                await claim(session=db, ticket_id=ticket.id, actor=Actor.of(me))
        finally:
            await engine.dispose()

    async def remaining() -> tuple[int, str]:
        engine = create_engine(db_url)
        try:
            async with session_factory(engine)() as db:
                sessions = len((await db.scalars(select(ConsoleSession))).all())
                status = await db.scalar(select(Ticket.status))
                return sessions, status
        finally:
            await engine.dispose()

    asyncio.run(sign_in_and_claim())
    assert asyncio.run(remaining()) == (1, "claimed")
    disable_counsellor(db_url, username="leaver")
    assert asyncio.run(remaining()) == (0, "open")
