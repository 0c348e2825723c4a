"""One contract for every ``ChatPort``: the real engine on SQLite and PostgreSQL, and both fakes.

What a channel relies on, whoever implements the port: an update is recorded once by its message
id; a redelivery brings no new replies; stored replies are pending until marked sent, for their
own person only; a lease keeps a reply away from a second delivery loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.engine import IncomingMessage

from .engines import Implementation, fake_telegram, fake_web, real_engine


class ChatPortContract:
    """The shared tests; a subclass provides the ``impl`` fixture."""

    @staticmethod
    def _msg(impl: Implementation, user: str, mid: str, **kw: object) -> IncomingMessage:
        return IncomingMessage(channel=impl.channel, user_key=user, message_id=mid, **kw)  # type: ignore[arg-type]

    async def _consented(self, impl: Implementation, user: str) -> list[int]:
        """The stored replies' ids of a first message and a language choice (the consent)."""
        first = await impl.port.handle(self._msg(impl, user, f"{user}-hi", text="hello", client_lang="en"))
        outs = await impl.port.handle(self._msg(impl, user, f"{user}-lang", callback="lang:en"))
        assert [o.id for o in outs if o.id is not None], f"{impl.name}: choosing a language stores the welcome"
        return [o.id for o in [*first, *outs] if o.id is not None]

    async def test_a_redelivered_update_brings_no_new_replies(self, impl: Implementation) -> None:
        ids = await self._consented(impl, "u1")
        again = await impl.port.handle(self._msg(impl, "u1", "u1-lang", callback="lang:en"))
        assert again, "the welcome is not sent yet, so the redelivery returns it"
        assert {o.id for o in again} <= set(ids), "a redelivery returns only the replies not sent yet"
        await impl.port.mark_sent(ids)
        assert await impl.port.handle(self._msg(impl, "u1", "u1-lang", callback="lang:en")) == []

    async def test_stored_replies_are_pending_until_sent_and_only_for_their_person(self, impl: Implementation) -> None:
        mine = await self._consented(impl, "u1")
        theirs = await self._consented(impl, "u2")
        pending = [o.id for o in await impl.port.pending(impl.channel)]
        assert set(mine) | set(theirs) <= set(pending) and pending == sorted(pending), "oldest first"
        assert {o.id for o in await impl.port.pending(impl.channel, user_keys=["u1"])} == set(mine)
        assert await impl.port.pending(impl.channel, user_keys=[]) == []
        await impl.port.mark_sent(mine)
        assert {o.id for o in await impl.port.pending(impl.channel)} == set(theirs)

    async def test_a_counsellor_reply_waits_in_the_outbox_for_its_person(self, impl: Implementation) -> None:
        await impl.port.mark_sent(await self._consented(impl, "u1"))
        await impl.queue_counsellor("u1", "Bring your passport on Monday.")
        [out] = await impl.port.pending(impl.channel, user_keys=["u1"])
        assert out.user_key == "u1" and "Bring your passport on Monday." in out.reply.text
        assert out.reply.kind == "counsellor"

    async def test_claim_leaves_out_what_the_caller_is_already_sending(self, impl: Implementation) -> None:
        ids = await self._consented(impl, "u1")
        claimed = await impl.port.claim_pending(impl.channel, exclude=ids[:1])
        assert ids[0] not in {o.id for o in claimed}


class TestFakes(ChatPortContract):
    @pytest.fixture(params=["web", "telegram"])
    def impl(self, request: pytest.FixtureRequest) -> Implementation:
        return fake_web() if request.param == "web" else fake_telegram()


@pytest.mark.integration
class TestRealEngine(ChatPortContract):
    @pytest.fixture
    async def impl(self, db_url: str, settings: object, kb: object) -> AsyncIterator[Implementation]:
        implementation = real_engine(db_url, settings, kb, "web")
        yield implementation
        await implementation.close()

    async def test_a_second_claimer_gets_nothing_while_the_lease_holds(self, impl: Implementation) -> None:
        """Only the real outbox leases (the fakes serve one process); two replicas never both send."""
        await self._consented(impl, "u1")
        first = await impl.port.claim_pending(impl.channel, lease_seconds=60)
        assert first and await impl.port.claim_pending(impl.channel, lease_seconds=60) == []
