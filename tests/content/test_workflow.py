"""The editing workflow on SQLite and PostgreSQL: four eyes, roles, re-review flags, rollback,
withdrawal of expired entries, the audit trail and concurrent edits."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.content import (
    DraftInvalid,
    EditConflict,
    NotPermitted,
    Publisher,
    WorkflowError,
    approve,
    current_data,
    extend_review,
    import_content,
    load_live,
    reject,
    rollback,
    save_draft,
    withdraw_expired,
    word_diff,
)
from bot.content.tables import KbEntry, KbTranslation
from handoff import Actor, Role, create_account
from handoff.tables import AuditEntry
from knowledge_base import IndexConfig, english_revision, served_entry
from storage import create_engine, session_factory

CONTENT = Path(__file__).resolve().parents[2] / "knowledge_base" / "content"
ENTRY = "change-employer"
SENSITIVE = "death-abroad"
T = TypeVar("T")


class Desk:
    """A migrated database with two entries imported and one account per role."""

    def __init__(self, url: str, embedder: Any, tmp: Path) -> None:
        self.url = url
        self.embedder = embedder
        self.publisher = Publisher(embedder, IndexConfig())
        src = tmp / "content"
        src.mkdir()
        for name in (ENTRY, SENSITIVE):
            shutil.copy(CONTENT / f"{name}.yml", src / f"{name}.yml")
        self.actors: dict[str, Actor] = {}

        async def setup(db: AsyncSession) -> None:
            await import_content(session=db, directory=src, embedder=embedder, index_config=IndexConfig())
            for name, role in (("edna", Role.EDITOR), ("eddie", Role.EDITOR), ("rita", Role.REVIEWER),
                               ("rob", Role.REVIEWER), ("sam", Role.SUPERVISOR), ("cora", Role.COUNSELLOR),
                               ("adam", Role.ADMIN)):
                info = await create_account(session=db, username=name, display_name=name.title(),
                                            password="correct horse battery", role=role,
                                            mrc_id="tashkent" if role is Role.COUNSELLOR else None)
                self.actors[name] = Actor(info.id, info.username, info.display_name, Role(info.role), info.mrc_id)

        self.run(setup)
        embedder.embedded.clear()

    def run(self, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
        async def go() -> T:
            engine = create_engine(self.url)
            try:
                async with session_factory(engine)() as db, db.begin():
                    return await fn(db)
            finally:
                await engine.dispose()

        return asyncio.run(go())

    def data(self, entry_id: str = ENTRY) -> tuple[int, dict[str, Any]]:
        version, data = self.run(lambda db: current_data(session=db, entry_id=entry_id))
        assert data is not None
        return version, copy.deepcopy(data)

    def draft(self, who: str, data: dict[str, Any], version: int, scope: str = "entry", **kw: Any) -> int:
        draft = self.run(lambda db: save_draft(session=db, actor=self.actors[who], entry_id=data["id"], data=data,
                                               expected_version=version, scope=scope, **kw))
        return draft.id

    def approve(self, who: str, draft_id: int) -> Any:
        return self.run(lambda db: approve(session=db, actor=self.actors[who], draft_id=draft_id,
                                           publisher=self.publisher))

    def served(self, entry_id: str = ENTRY) -> Any:
        live = self.run(lambda db: load_live(session=db, model_id=self.embedder.model_id))
        return next((e for e in live.entries if e.id == entry_id), None)

    def audit(self) -> list[tuple[str, str, str]]:
        rows = self.run(lambda db: _all(db, select(AuditEntry).order_by(AuditEntry.id)))
        return [(r.actor_username, r.action, r.detail) for r in rows]

    def states(self, entry_id: str = ENTRY) -> dict[str, str]:
        rows = self.run(lambda db: _all(db, select(KbTranslation).where(KbTranslation.entry_id == entry_id)))
        return {r.lang: r.state for r in rows}


async def _all(db: AsyncSession, query: Any) -> list[Any]:
    return list((await db.scalars(query)).all())


@pytest.fixture
def desk(db_url: str, hash_embedder: Any, tmp_path: Path) -> Desk:
    return Desk(db_url, hash_embedder, tmp_path)


NEW_RU = ("Если вы потеряли работу, у вас есть 15 дней, чтобы найти нового работодателя по тому же патенту. "
          "Сохраните договор и квитанции.\n")


def test_counsellor_and_admin_cannot_edit(desk: Desk) -> None:
    version, data = desk.data()
    data["translations"]["ru"]["answer"] = NEW_RU
    for who in ("cora", "adam"):
        with pytest.raises(NotPermitted, match="cannot edit"):
            desk.draft(who, data, version, scope="ru")


def test_four_eyes_then_the_new_russian_text_serves_with_its_own_review(desk: Desk) -> None:
    version, data = desk.data()
    before_en = english_revision(served_entry(data))  # type: ignore[arg-type]
    data["translations"]["ru"]["answer"] = NEW_RU
    draft = desk.draft("rita", data, version, scope="ru")  # a reviewer may draft too...
    with pytest.raises(NotPermitted, match="four eyes"):
        desk.approve("rita", draft)  # ...but never approve their own change
    with pytest.raises(NotPermitted):
        desk.approve("eddie", draft)  # an editor does not approve
    revision = desk.approve("rob", draft)
    served = desk.served()
    assert served.translations["ru"].answer == NEW_RU
    assert served.translations["ru"].reviewed_by == "rob"
    assert served.translations["ru"].reviewed_on == dt.datetime.now(dt.UTC).date()
    assert served.translations["ru"].source_version == before_en
    # only the changed text was embedded
    assert desk.embedder.embedded == [NEW_RU] and revision.embedded == 1
    actions = [(who, action) for who, action, _ in desk.audit() if action.startswith("content_")]
    assert ("rita", "content_draft") in actions
    assert ("rob", "content_approve") in actions and ("rob", "content_publish") in actions


def test_sensitive_entry_needs_a_supervisor(desk: Desk) -> None:
    version, data = desk.data(SENSITIVE)
    data["translations"]["en"]["answer"] += "Call your embassy first.\n"
    draft = desk.draft("edna", data, version)
    with pytest.raises(NotPermitted, match="supervisor"):
        desk.approve("rita", draft)
    desk.approve("sam", draft)
    assert desk.served(SENSITIVE).translations["en"].answer.endswith("Call your embassy first.\n")


def test_english_change_flags_translations_which_keep_serving_their_reviewed_text(desk: Desk) -> None:
    version, data = desk.data()
    old_ru = data["translations"]["ru"]["answer"]
    data["translations"]["en"]["summary"] = data["translations"]["en"]["summary"].replace("3 working days",
                                                                                         "5 working days")
    desk.approve("rita", desk.draft("edna", data, version))
    states = desk.states()
    assert states["en"] == "reviewed"
    assert {lang for lang, s in states.items() if s == "needs_review"} == set(data["translations"]) - {"en"}
    assert desk.served().translations["ru"].answer == old_ru
    # a re-reviewed Russian translation is current again
    version, data = desk.data()
    desk.approve("rob", desk.draft("edna", data, version, scope="ru"))
    assert desk.states()["ru"] == "reviewed"


def test_change_of_facts_suspends_other_translations_until_re_reviewed(desk: Desk) -> None:
    version, data = desk.data()
    data["translations"]["en"]["answer"] = data["translations"]["en"]["answer"].replace("3 working days",
                                                                                       "5 working days")
    desk.approve("rita", desk.draft("edna", data, version, facts_changed=True))
    served = desk.served()
    assert set(served.translations) == {"en"}  # readers of ru, uz... fall back along their chain
    assert desk.states()["ru"] == "suspended"


def test_rollback_serves_the_earlier_text_again(desk: Desk) -> None:
    version, data = desk.data()
    original = data["translations"]["ru"]["answer"]
    data["translations"]["ru"]["answer"] = NEW_RU
    first = desk.approve("rob", desk.draft("edna", data, version, scope="ru"))
    assert desk.served().translations["ru"].answer == NEW_RU
    with pytest.raises(NotPermitted):
        desk.run(lambda db: rollback(session=db, actor=desk.actors["edna"], entry_id=ENTRY,
                                     to_revision=first.number - 1, publisher=desk.publisher))
    desk.embedder.embedded.clear()
    back = desk.run(lambda db: rollback(session=db, actor=desk.actors["rita"], entry_id=ENTRY,
                                        to_revision=first.number - 1, publisher=desk.publisher))
    assert back.number == first.number + 1
    assert desk.served().translations["ru"].answer == original
    assert desk.embedder.embedded == []  # the old revision's vectors were kept
    assert any(a == "content_rollback" for _, a, _ in desk.audit())


def test_expired_entry_is_withdrawn_and_a_reviewer_can_extend_it(desk: Desk) -> None:
    _, data = desk.data()
    after = dt.date.fromisoformat(data["review_by"]) + dt.timedelta(days=1)
    gone = desk.run(lambda db: withdraw_expired(session=db, today=after))
    assert ENTRY in gone
    assert desk.served() is None
    assert any(a == "content_withdraw" and ENTRY in d for _, a, d in desk.audit())
    row = desk.run(lambda db: db.get(KbEntry, ENTRY))
    assert row is not None and row.withdrawn_reason and "passed" in row.withdrawn_reason
    new_date = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=90)
    desk.run(lambda db: extend_review(session=db, actor=desk.actors["rita"], entry_id=ENTRY, review_by=new_date,
                                      publisher=desk.publisher))
    assert desk.served().review_by == new_date


def test_second_concurrent_save_is_refused_and_its_text_kept(desk: Desk) -> None:
    version, data = desk.data()
    mine = copy.deepcopy(data)
    theirs = copy.deepcopy(data)
    mine["translations"]["ru"]["answer"] = NEW_RU
    theirs["translations"]["ru"]["answer"] = NEW_RU.replace("15", "30")
    desk.draft("edna", mine, version, scope="ru")
    with pytest.raises(EditConflict) as err:
        desk.draft("eddie", theirs, version, scope="ru")
    assert "edna" in str(err.value) and "not saved over" in str(err.value)
    assert err.value.data["translations"]["ru"]["answer"] == theirs["translations"]["ru"]["answer"]


def test_reject_needs_a_comment_and_records_it(desk: Desk) -> None:
    version, data = desk.data()
    data["translations"]["ru"]["answer"] = NEW_RU
    draft = desk.draft("edna", data, version, scope="ru")
    with pytest.raises(WorkflowError, match="comment"):
        desk.run(lambda db: reject(session=db, actor=desk.actors["rita"], draft_id=draft, comment=" "))
    rejected = desk.run(lambda db: reject(session=db, actor=desk.actors["rita"], draft_id=draft,
                                          comment="Cite the article for the 15 days"))
    assert rejected.status == "rejected" and "15 days" in rejected.comment
    assert desk.served().translations["ru"].answer != NEW_RU
    assert any(a == "content_reject" for _, a, _ in desk.audit())


def test_invalid_draft_is_refused_naming_the_field(desk: Desk) -> None:
    version, data = desk.data()
    data["translations"]["ru"]["answer"] = "Коротко."
    with pytest.raises(DraftInvalid) as err:
        desk.draft("edna", data, version, scope="ru")
    assert err.value.problems[0].field == "translations.ru.answer"
    assert desk.data()[0] == version  # nothing saved


def test_word_diff_marks_changed_words() -> None:
    assert word_diff("a b c", "a x c") == [("=", "a "), ("-", "b"), ("+", "x"), ("=", " c")]


def test_a_worker_reloads_only_the_revisions_published_since(desk: Desk) -> None:
    first = desk.run(lambda db: load_live(session=db, model_id=desk.embedder.model_id))
    assert first.fetched == 2 and len(first.entries) == 2
    version, data = desk.data()
    data["translations"]["ru"]["answer"] = NEW_RU
    desk.approve("rob", desk.draft("edna", data, version, scope="ru"))
    second = desk.run(lambda db: load_live(session=db, model_id=desk.embedder.model_id, previous=first))
    assert second.fetched == 1 and second.version > first.version
    assert next(e for e in second.entries if e.id == ENTRY).translations["ru"].answer == NEW_RU
    assert {e.id for e in second.entries} == {ENTRY, SENSITIVE}
