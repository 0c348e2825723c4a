"""Console behaviour over HTTP (no browser): what a counsellor or supervisor sees and gets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from handoff import Reason, Role, Status, open_ticket
from handoff.tables import AuditEntry, Counsellor, Ticket, TicketMessage
from tests.handoff.handoff_support import (
    Browser,
    FakeAnswers,
    KeywordEmbedder,
    RecordingOutbound,
    build_console,
    make_account,
)

pytestmark = pytest.mark.integration


async def _ticket(sessions, settings, user, reason=Reason.USER_ASKED, **kw):
    async with sessions() as db, db.begin():
        return await open_ticket(
            session=db,
            settings=settings,
            user_key=user,
            mrc_id=kw.pop("mrc", "tj"),
            reason=reason,
            lang=kw.pop("lang", "ru"),
            **kw,
        )


async def test_double_submitted_reply_reaches_the_user_once(sessions, settings):
    await make_account(sessions, "c1")
    ticket = await _ticket(sessions, settings, "u1")
    outbound = RecordingOutbound()
    browser = Browser(build_console(sessions, settings, outbound, FakeAnswers()))
    try:
        await browser.login("c1")
        assert (await browser.post(f"/console/tickets/{ticket.id}/claim")).status_code == 303
        page = await browser.get(f"/console/tickets/{ticket.id}")
        key = page.text.split('name="client_key" value="')[1].split('"')[0]
        form = {"text": "Здравствуйте! Чем помочь?", "client_key": key}
        first = await browser.post(f"/console/tickets/{ticket.id}/reply", form)
        second = await browser.post(f"/console/tickets/{ticket.id}/reply", form)
        assert "notice=replied" in first.headers["location"]
        assert "notice=duplicate" in second.headers["location"]
        assert [m.text for _, m in outbound.sent] == ["Здравствуйте! Чем помочь?"]
        page = await browser.get(f"/console/tickets/{ticket.id}")
        assert page.text.count("Здравствуйте! Чем помочь?") == 1
    finally:
        await browser.aclose()


async def test_failed_delivery_is_shown_and_can_be_retried(sessions, settings):
    await make_account(sessions, "c2")
    ticket = await _ticket(sessions, settings, "u2")
    outbound = RecordingOutbound()
    outbound.fail_next = 1
    browser = Browser(build_console(sessions, settings, outbound))
    try:
        await browser.login("c2")
        await browser.post(f"/console/tickets/{ticket.id}/claim")
        response = await browser.post(f"/console/tickets/{ticket.id}/reply", {"text": "hello", "client_key": "a"})
        assert "delivery_failed" in response.headers["location"]
        page = await browser.get(f"/console/tickets/{ticket.id}")
        assert "not delivered" in page.text and "Retry delivery" in page.text
        async with sessions() as db:
            message_id = await db.scalar(select(TicketMessage.id).where(TicketMessage.ticket_id == ticket.id))
        retry = await browser.post(f"/console/tickets/{ticket.id}/messages/{message_id}/retry")
        assert "notice=replied" in retry.headers["location"]
        again = await browser.post(f"/console/tickets/{ticket.id}/messages/{message_id}/retry")
        assert "notice=replied" in again.headers["location"]
        assert [m.text for _, m in outbound.sent] == ["hello"]  # retried once, never twice
    finally:
        await browser.aclose()


async def test_user_text_is_escaped_everywhere(sessions, settings):
    await make_account(sessions, "c3", Role.SUPERVISOR)
    evil = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    ticket = await _ticket(
        sessions,
        settings,
        "u3",
        reason=Reason.NO_ANSWER,
        first_message=evil,
        question_text=evil,
        profile={"origin": "<b>TJ</b>"},
        crisis_kind="<i>x</i>",
    )
    browser = Browser(build_console(sessions, settings, RecordingOutbound()))
    try:
        await browser.login("c3")
        for path in ("/console/", f"/console/tickets/{ticket.id}", "/console/stats", "/console/queue/rows"):
            page = await browser.get(path)
            assert page.status_code == 200
            assert "<script>alert" not in page.text and "<img src=x" not in page.text and "<b>TJ" not in page.text
        page = await browser.get(f"/console/tickets/{ticket.id}")
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    finally:
        await browser.aclose()


async def test_queue_puts_crisis_on_top_and_filters(sessions, settings):
    await make_account(sessions, "c4")
    now = datetime.now(UTC)
    old = await _ticket(sessions, settings, "old", now=now - timedelta(days=10), lang="tg")
    crisis = await _ticket(sessions, settings, "crisis", reason=Reason.CRISIS, crisis_kind="locked in", lang="uz")
    await _ticket(sessions, settings, "other-mrc", mrc="bd", lang="bn", reason=Reason.CRISIS)
    browser = Browser(build_console(sessions, settings, RecordingOutbound()))
    try:
        await browser.login("c4")
        page = (await browser.get("/console/")).text
        rows = page.split('<tbody id="queue-rows">')[1]
        assert rows.index(f'data-ticket="{crisis.id}"') < rows.index(f'data-ticket="{old.id}"')
        assert 'class="crisis"' in rows and "locked in" in rows and "overdue" in rows
        assert rows.count("data-ticket=") == 2  # the other MRC's crisis is not shown
        only_tg = (await browser.get("/console/queue/rows?lang=tg")).text
        assert f'data-ticket="{old.id}"' in only_tg and f'data-ticket="{crisis.id}"' not in only_tg
        crisis_only = (await browser.get("/console/queue/rows?priority=crisis")).text
        assert crisis_only.count("data-ticket=") == 1
        by_reason = (await browser.get("/console/queue/rows?reason=user_asked&age=60")).text
        assert f'data-ticket="{old.id}"' in by_reason and by_reason.count("data-ticket=") == 1
        alerts = (await browser.get("/console/alerts")).json()
        assert alerts == {"open": 2, "crisis": 1, "newest_crisis": crisis.id, "mine": 0}
        claimed = await browser.post("/console/claim-next")
        assert claimed.headers["location"] == f"/console/tickets/{crisis.id}?notice=claimed"
    finally:
        await browser.aclose()


async def test_curated_answer_can_be_inserted_without_javascript(sessions, settings):
    await make_account(sessions, "c5")
    ticket = await _ticket(sessions, settings, "u5", lang="ru")
    answers = FakeAnswers()
    outbound = RecordingOutbound()
    browser = Browser(build_console(sessions, settings, outbound, answers))
    try:
        await browser.login("c5")
        await browser.post(f"/console/tickets/{ticket.id}/claim")
        page = await browser.get(f"/console/tickets/{ticket.id}?q=регистрация&insert=ru-registration-tj")
        assert answers.calls[-1] == ("регистрация", "ru")  # searched in the user's language
        reply_box = page.text.split('id="reply-text"')[1].split("</textarea>")[0]
        assert "Встаньте на миграционный учёт" in reply_box and "Source: МВД России" in reply_box
        assert "reviewed 2026-11-01" in reply_box
        fragment = await browser.get(f"/console/tickets/{ticket.id}/answers?q=регистрация")
        assert 'data-insert="ru-registration-tj"' in fragment.text
    finally:
        await browser.aclose()


async def test_stats_show_volume_times_and_content_gaps(sessions, settings):
    await make_account(sessions, "boss", Role.SUPERVISOR, None)
    c = await make_account(sessions, "c6")
    now = datetime.now(UTC)
    questions = [
        "visa for russia?",
        "how long is the VISA valid",
        "visa extension cost",
        "lost my passport",
        "passport renewal abroad",
        "salary not paid",
    ]
    for i, q in enumerate(questions):
        await _ticket(
            sessions, settings, f"gap{i}", reason=Reason.NO_ANSWER, question_text=q, now=now - timedelta(hours=i)
        )
    await _ticket(sessions, settings, "bd-user", mrc="bd", lang="bn", reason=Reason.CRISIS)
    browser = Browser(build_console(sessions, settings, RecordingOutbound(), embedder=KeywordEmbedder()))
    try:
        await browser.login("c6")
        assert (await browser.get("/console/stats")).status_code == 403
        await browser.login("boss")
        page = (await browser.get("/console/stats?days=30")).text
        gaps = page.split('id="gaps"')[1]
        rows = gaps.split("<tr>")[2:]
        assert rows[0].count("<li") == 3 and "visa" in rows[0].lower()
        assert rows[1].count("<li") == 2 and "passport" in rows[1]
        assert "No verified answer" in page and "Crisis" in page
        only_bd = (await browser.get("/console/stats?mrc=bd")).text
        assert "No verified answer" not in only_bd
        csv = await browser.get("/console/stats.csv?days=30")
        assert csv.status_code == 200 and "reason,No verified answer,6" in csv.text
        async with sessions() as db:
            actions = set((await db.scalars(select(AuditEntry.action))).all())
        assert {"stats_view", "export"} <= actions
    finally:
        await browser.aclose()
    assert c.mrc_id == "tj"


async def test_admin_manages_accounts_in_the_console(sessions, settings):
    await make_account(sessions, "root", Role.ADMIN, None)
    browser = Browser(build_console(sessions, settings, RecordingOutbound()))
    try:
        await browser.login("root")
        bad = await browser.post(
            "/console/accounts",
            {"username": "zarina", "display_name": "Zarina", "role": "admin", "mrc_id": "tj", "password": "short"},
        )
        assert bad.status_code == 400 and "at least 12" in bad.text
        # an admin reads no conversation, so may not mint an account that does (and sign in as it)
        reader = await browser.post(
            "/console/accounts",
            {"username": "spy", "display_name": "Spy", "role": "supervisor", "mrc_id": "tj",
             "password": "a long enough password"},
        )
        assert reader.status_code == 400 and "hamroh counsellor add" in reader.text
        async with sessions() as db:
            details = (await db.scalars(select(AuditEntry.detail))).all()
        assert any("refused" in (d or "") and "supervisor" in (d or "") for d in details)
        ok = await browser.post(
            "/console/accounts",
            {
                "username": "zarina",
                "display_name": "Zarina",
                "role": "admin",
                "mrc_id": "tj",
                "password": "a long enough password",
            },
        )
        assert ok.status_code == 303
        newcomer = Browser(build_console(sessions, settings, RecordingOutbound()))
        try:
            assert (await newcomer.login("zarina", "a long enough password")).status_code == 303
            async with sessions() as db:
                zid = await db.scalar(select(Counsellor.id).where(Counsellor.username == "zarina"))
            await browser.get("/console/accounts")
            assert (await browser.post(f"/console/accounts/{zid}/disable")).status_code == 303
            kicked = await newcomer.get("/console/accounts")
            assert kicked.status_code == 303 and "/login" in kicked.headers["location"]
        finally:
            await newcomer.aclose()
    finally:
        await browser.aclose()


async def test_resolve_returns_the_user_to_the_bot(sessions, settings):
    await make_account(sessions, "c7")
    ticket = await _ticket(sessions, settings, "u7")
    outbound = RecordingOutbound()
    browser = Browser(build_console(sessions, settings, outbound))
    try:
        await browser.login("c7")
        await browser.post(f"/console/tickets/{ticket.id}/claim")
        await browser.post(f"/console/tickets/{ticket.id}/resolve", {"topic": "registration"})
        async with sessions() as db:
            t = await db.get(Ticket, ticket.id)
            assert t.status == Status.RESOLVED and t.topic == "registration"
            assert await db.scalar(select(func.count()).select_from(TicketMessage)) == 0
        # the person is told, in their language, that their request was closed
        assert [(key, m.kind, m.lang) for key, m in outbound.sent] == [("u7", "resolved", "ru")]
    finally:
        await browser.aclose()
