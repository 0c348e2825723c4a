"""Finding 6: an admin (who reads no conversation) created a supervisor in their own MRC, signed in
as it and read transcripts. An admin may now create admins only; reading accounts come from the
server's CLI (the console audits a refused attempt: tests/handoff/test_handoff_console_flow.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from handoff import Role, RoleNotGrantable, create_account
from handoff.tables import Counsellor
from tests.handoff.handoff_support import make_account

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
@pytest.mark.parametrize("role", [Role.SUPERVISOR, Role.COUNSELLOR])
async def test_an_admin_cannot_create_an_account_that_reads_conversations(sessions, role: Role) -> None:
    admin = await make_account(sessions, "it-admin", Role.ADMIN, "tj")
    async with sessions() as db:
        with pytest.raises(RoleNotGrantable, match="hamroh counsellor add"):
            await create_account(session=db, username="reader", display_name="Reader",
                                 password="a long enough password", role=role, mrc_id="tj", actor=admin)
    async with sessions() as db:
        assert (await db.scalar(select(Counsellor).where(Counsellor.username == "reader"))) is None
    # the server's operator (no console actor) still creates them
    async with sessions() as db, db.begin():
        await create_account(session=db, username="reader", display_name="Reader",
                             password="a long enough password", role=role, mrc_id="tj")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_try_at_another_mrcs_conversation_is_refused_and_audited(sessions, console_cfg) -> None:
    from handoff import Reason, open_ticket
    from handoff.tables import AuditEntry
    from tests.handoff.handoff_support import Browser, RecordingOutbound, build_console

    await make_account(sessions, "bd-counsellor", Role.COUNSELLOR, "bd")
    async with sessions() as db, db.begin():
        ticket = await open_ticket(session=db, settings=console_cfg, user_key="someone", mrc_id="tj",
                                   reason=Reason.USER_ASKED, lang="tg")
    browser = Browser(build_console(sessions, console_cfg, RecordingOutbound()))
    try:
        await browser.login("bd-counsellor")
        response = await browser.get(f"/console/tickets/{ticket.id}")
        assert response.status_code == 404
    finally:
        await browser.aclose()
    async with sessions() as db:
        rows = (await db.execute(select(AuditEntry.action, AuditEntry.actor_username, AuditEntry.ticket_id))).all()
    assert ("view_denied", "bd-counsellor", ticket.id) in [tuple(r) for r in rows]
