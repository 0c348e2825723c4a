"""The editing workflow: drafts, four-eyes review, publication, rollback, withdrawal of expired entries.

Why here (``bot``): it joins the knowledge base's live content (``knowledge_base``) with console
accounts, roles and the audit log (``handoff``), and only ``bot`` may import both. Every function
takes a keyword-only ``session``; the caller owns the transaction, so a refused step leaves nothing
half-written and each action commits together with its audit entry.

Rules, each an exception with a sentence an editor can act on:
* counsellors and admins do not edit; editors, reviewers and supervisors draft;
* a reviewer (or supervisor) who did not write the draft approves or sends it back with a comment;
  a ``safety: sensitive`` entry needs a supervisor;
* a save names the entry version it started from; if someone saved in between, it is refused
  (the refused text is returned to the editor, never written over the other person's);
* approving a translation stamps its own review (reviewer, date, the English revision checked);
  an English change leaves every other translation "needs re-review" (serving its reviewed text),
  or, marked as a change of facts, suspended (readers fall back along their language chain).
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handoff import Actor, AuditAction, audit, can_edit_content, can_review_content
from knowledge_base import Embedder, Entry, IndexConfig, Problem, english_revision, entry_data, validate_entry
from storage import utcnow

from ._repo import bump_content_version, publish_revision
from .tables import KbDraft, KbEntry, KbRevision

__all__ = [
    "DraftInvalid",
    "EditConflict",
    "NotPermitted",
    "Publisher",
    "StaleDraft",
    "WorkflowError",
    "approve",
    "current_data",
    "extend_review",
    "reject",
    "rollback",
    "save_draft",
    "withdraw_expired",
    "word_diff",
]

ENTRY_SCOPE = "entry"


class WorkflowError(Exception):
    """A refused step; ``str()`` is the sentence shown to the editor."""


class NotPermitted(WorkflowError):
    pass


class EditConflict(WorkflowError):
    """Someone saved the entry after this editor opened it. ``data`` is the refused text (kept)."""

    def __init__(self, message: str, data: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.data = dict(data)


class StaleDraft(WorkflowError):
    pass


class DraftInvalid(WorkflowError):
    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{p.field}: {p.message} ({p.fix})" for p in self.problems[:5]))


@dataclass(frozen=True)
class Publisher:
    """What publishing needs: the model that embeds changed texts and the index's text settings."""

    embedder: Embedder
    index_config: IndexConfig


def _today() -> dt.date:
    return utcnow().date()


async def _entry_row(session: AsyncSession, entry_id: str, *, lock: bool = False) -> KbEntry | None:
    row: KbEntry | None = await session.get(KbEntry, entry_id, with_for_update=lock, populate_existing=lock)
    return row


async def _revision(session: AsyncSession, entry_id: str, number: int) -> KbRevision | None:
    found: KbRevision | None = await session.scalar(
        select(KbRevision).where(KbRevision.entry_id == entry_id, KbRevision.number == number))
    return found


async def current_data(*, session: AsyncSession, entry_id: str) -> tuple[int, dict[str, Any] | None]:
    """The entry's version (what a save must name) and its published data (None: not published yet)."""
    row = await _entry_row(session, entry_id)
    if row is None:
        return 0, None
    revision = await _revision(session, entry_id, row.current_revision) if row.current_revision else None
    return row.version, (dict(revision.data) if revision else None)


def _check(data: Mapping[str, Any], entry_id: str) -> Entry:
    entry, problems = validate_entry(dict(data), file=f"entry {entry_id}")
    errors = [p for p in problems if p.severity == "error"]
    if entry is None or errors:
        raise DraftInvalid(errors or problems)
    return entry


def _is_sensitive(*datas: Mapping[str, Any] | None) -> bool:
    return any(d is not None and d.get("safety") == "sensitive" for d in datas)


async def save_draft(*, session: AsyncSession, actor: Actor, entry_id: str, data: Mapping[str, Any],
                     expected_version: int, scope: str = ENTRY_SCOPE, facts_changed: bool = False) -> KbDraft:
    """Propose a change for review. Raises :class:`EditConflict` when the entry moved on since
    ``expected_version`` (the version the editor's form was opened at)."""
    if not can_edit_content(actor):
        raise NotPermitted(f"your role ({actor.role.value}) cannot edit content; an editor or reviewer can")
    if data.get("id") != entry_id:
        raise DraftInvalid([Problem.of(f"entry {entry_id}", "id", "id_locked")])
    entry = _check(data, entry_id)
    row = await _entry_row(session, entry_id, lock=True)
    version = row.version if row is not None else 0
    if version != expected_version:
        last = await session.scalar(select(KbDraft).where(KbDraft.entry_id == entry_id)
                                    .order_by(KbDraft.id.desc()).limit(1))
        who = f" by {last.author} at {last.created_at:%H:%M} UTC" if last is not None else ""
        raise EditConflict(f"'{entry_id}' was saved{who} after you opened it (you started from version "
                           f"{expected_version}, it is now {version}). Your text was not saved over theirs; "
                           "it is kept below: reload the entry, apply your change again and save.", data)
    current = None
    if row is not None and row.current_revision:
        revision = await _revision(session, entry_id, row.current_revision)
        current = dict(revision.data) if revision else None
    if scope != ENTRY_SCOPE:
        if scope not in entry.translations:
            raise DraftInvalid([Problem.of(f"entry {entry_id}", f"translations.{scope}", "no_translation")])
        if current is not None:
            others = {k: v for k, v in data.items() if k != "translations"}
            was = {k: v for k, v in current.items() if k != "translations"}
            tr_others = {k: v for k, v in data["translations"].items() if k != scope}
            tr_was = {k: v for k, v in current["translations"].items() if k != scope}
            if others != was or tr_others != tr_was:
                raise DraftInvalid([Problem.of(f"entry {entry_id}", "scope", "draft_scope", scope=scope)])
    if row is None:
        row = KbEntry(id=entry_id, version=0, current_revision=0, layout=None)
        session.add(row)
    row.version = version + 1
    row.updated_at = utcnow()
    draft = KbDraft(entry_id=entry_id, scope=scope, base_version=row.version, base_revision=row.current_revision,
                    data=entry_data(entry), facts_changed=facts_changed, author=actor.username, status="pending",
                    comment="", created_at=utcnow())
    session.add(draft)
    await session.flush()
    await audit(session, actor, AuditAction.CONTENT_DRAFT,
                detail=f"{entry_id} draft {draft.id} ({scope}{', facts changed' if facts_changed else ''})")
    return draft


async def _pending(session: AsyncSession, draft_id: int) -> KbDraft:
    draft = await session.get(KbDraft, draft_id, with_for_update=True)
    if draft is None:
        raise WorkflowError(f"no draft {draft_id}")
    if draft.status != "pending":
        raise StaleDraft(f"draft {draft_id} was already {draft.status}")
    return draft


def _stamp(tr: dict[str, Any], reviewer: str, today: dt.date, against: str) -> None:
    tr["reviewed_by"] = reviewer[:40]
    tr["reviewed_on"] = today.isoformat()
    if against:
        tr["source_version"] = against


async def approve(*, session: AsyncSession, actor: Actor, draft_id: int, publisher: Publisher,
                  comment: str = "") -> KbRevision:
    """Four-eyes approval, then publication (embedding only the texts that changed)."""
    draft = await _pending(session, draft_id)
    row = await _entry_row(session, draft.entry_id, lock=True)
    current_rev = await _revision(session, draft.entry_id, row.current_revision) if row and row.current_revision \
        else None
    current = dict(current_rev.data) if current_rev else None
    if draft.author == actor.username:
        raise NotPermitted("you wrote this draft: another reviewer must approve it (four eyes)")
    sensitive = _is_sensitive(draft.data, current)
    if not can_review_content(actor, sensitive=sensitive):
        raise NotPermitted("this entry is marked sensitive: a supervisor must approve it" if sensitive
                           else f"your role ({actor.role.value}) cannot approve; a reviewer or supervisor can")
    today = _today()
    data: dict[str, Any] = {k: v for k, v in draft.data.items()}
    data["translations"] = {k: dict(v) for k, v in draft.data["translations"].items()}
    suspended = set(current_rev.suspended) if current_rev else set()
    if draft.scope != ENTRY_SCOPE:
        if current is None:
            raise StaleDraft("the entry is not published yet: draft the whole entry")
        merged = {k: v for k, v in current.items()}
        merged["translations"] = {k: dict(v) for k, v in current["translations"].items()}
        merged["translations"][draft.scope] = data["translations"][draft.scope]
        data = merged
        changed = {draft.scope}
    else:
        if current is not None and draft.base_revision != (row.current_revision if row else 0):
            raise StaleDraft(f"'{draft.entry_id}' was published again after this draft was written; "
                             "send it back so the author re-applies the change on the current text")
        before = (current or {}).get("translations", {})
        changed = {lang for lang, tr in data["translations"].items() if before.get(lang) != tr}
    en_before = english_revision(Entry.model_validate(current)) if current else ""
    en_after = english_revision(Entry.model_validate(data))
    for lang in changed:
        _stamp(data["translations"][lang], actor.username, today, en_after if lang != "en" else "")
    if "en" in changed and en_before != en_after and draft.facts_changed:
        suspended |= {lang for lang in data["translations"] if lang != "en"} - changed
    suspended -= changed
    entry = _check(data, draft.entry_id)
    draft.status = "approved"
    draft.reviewer = actor.username
    draft.comment = comment[:2000]
    draft.decided_at = utcnow()
    revision = await publish_revision(session=session, entry=entry, by=actor.username,
                                      note=f"draft {draft.id} by {draft.author}", embedder=publisher.embedder,
                                      index_config=publisher.index_config, suspended=suspended)
    await audit(session, actor, AuditAction.CONTENT_APPROVE,
                detail=f"{draft.entry_id} draft {draft.id} by {draft.author}")
    await audit(session, actor, AuditAction.CONTENT_PUBLISH,
                detail=f"{draft.entry_id} revision {revision.number} ({revision.embedded} texts embedded)")
    return revision


async def reject(*, session: AsyncSession, actor: Actor, draft_id: int, comment: str) -> KbDraft:
    """Send a draft back to its author with a comment saying what to change."""
    draft = await _pending(session, draft_id)
    if draft.author == actor.username:
        raise NotPermitted("you wrote this draft: another reviewer decides on it")
    if not can_review_content(actor, sensitive=_is_sensitive(draft.data)):
        raise NotPermitted(f"your role ({actor.role.value}) cannot send drafts back; a reviewer can")
    if not comment.strip():
        raise WorkflowError("say what the author should change: the comment is required")
    draft.status = "rejected"
    draft.reviewer = actor.username
    draft.comment = comment.strip()[:2000]
    draft.decided_at = utcnow()
    await audit(session, actor, AuditAction.CONTENT_REJECT,
                detail=f"{draft.entry_id} draft {draft.id} by {draft.author}")
    return draft


async def rollback(*, session: AsyncSession, actor: Actor, entry_id: str, to_revision: int,
                   publisher: Publisher) -> KbRevision:
    """Publish an earlier revision again (as a new revision: history is never rewritten)."""
    row = await _entry_row(session, entry_id, lock=True)
    target = await _revision(session, entry_id, to_revision)
    if row is None or target is None:
        raise WorkflowError(f"'{entry_id}' has no revision {to_revision}")
    current = await _revision(session, entry_id, row.current_revision)
    if not can_review_content(actor, sensitive=_is_sensitive(target.data, current.data if current else None)):
        raise NotPermitted("rolling back needs a reviewer (a supervisor for a sensitive entry)")
    entry = Entry.model_validate(target.data)
    revision = await publish_revision(session=session, entry=entry, by=actor.username,
                                      note=f"rollback to revision {to_revision}", embedder=publisher.embedder,
                                      index_config=publisher.index_config, suspended=target.suspended,
                                      known_vectors=target.vectors)
    await audit(session, actor, AuditAction.CONTENT_ROLLBACK,
                detail=f"{entry_id} to revision {to_revision} (now revision {revision.number})")
    return revision


async def withdraw_expired(*, session: AsyncSession, today: dt.date | None = None) -> list[str]:
    """Stop serving entries whose ``review_by`` has passed; the dashboard lists them for re-check."""
    today = today or _today()
    rows = (await session.scalars(select(KbEntry).where(KbEntry.withdrawn_at.is_(None), KbEntry.current_revision > 0)
                                  .with_for_update())).all()
    withdrawn = []
    for row in rows:
        revision = await _revision(session, row.id, row.current_revision)
        if revision is None:
            continue
        review_by = dt.date.fromisoformat(str(revision.data["review_by"]))
        if review_by < today:
            row.withdrawn_at = utcnow()
            row.withdrawn_reason = f"review date {review_by} passed"
            row.version += 1
            withdrawn.append(row.id)
            await audit(session, None, AuditAction.CONTENT_WITHDRAW, detail=f"{row.id}: review date {review_by} passed")
    if withdrawn:
        await bump_content_version(session=session)
    return withdrawn


async def extend_review(*, session: AsyncSession, actor: Actor, entry_id: str, review_by: dt.date,
                        publisher: Publisher) -> KbRevision:
    """After a real re-check of the sources: move ``review_by`` on and serve the entry again."""
    row = await _entry_row(session, entry_id, lock=True)
    current = await _revision(session, entry_id, row.current_revision) if row else None
    if row is None or current is None:
        raise WorkflowError(f"'{entry_id}' is not published")
    if not can_review_content(actor, sensitive=_is_sensitive(current.data)):
        raise NotPermitted("extending a review needs a reviewer (a supervisor for a sensitive entry)")
    today = _today()
    if review_by <= today:
        raise WorkflowError("the new review date must be in the future")
    data = dict(current.data)
    data["reviewed_on"] = today.isoformat()
    data["review_by"] = review_by.isoformat()
    entry = _check(data, entry_id)
    revision = await publish_revision(session=session, entry=entry, by=actor.username,
                                      note=f"review extended to {review_by}", embedder=publisher.embedder,
                                      index_config=publisher.index_config, suspended=current.suspended)
    await audit(session, actor, AuditAction.CONTENT_PUBLISH, detail=f"{entry_id} re-checked, review by {review_by}")
    return revision


_WORD = re.compile(r"\s+|[^\s]+")


def word_diff(before: str, after: str) -> list[tuple[str, str]]:
    """(op, text) runs: op is ``=``, ``-`` (only in ``before``) or ``+`` (only in ``after``)."""
    a, b = _WORD.findall(before), _WORD.findall(after)
    out: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            out.append(("=", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(("-", "".join(a[i1:i2])))
        if j2 > j1:
            out.append(("+", "".join(b[j1:j2])))
    return out
