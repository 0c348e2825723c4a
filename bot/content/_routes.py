"""Console pages for content: dashboard, entry list, the editor, review with a word-level diff, history.

Mounted into the counsellor console (``bot.console`` includes :func:`content_router`), so sign-in,
sessions, CSRF tokens, security headers and error pages are the console's own. Every page that
shows content or unanswered questions is audited (``content_view``), as every console read is.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, cast

import jinja2
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.datastructures import FormData

from handoff import (
    Actor,
    AuditAction,
    NotAllowed,
    audit,
    can_edit_content,
    can_review_content,
    cluster_gaps,
    csrf_guard,
    gap_questions,
    page_context,
    redirect,
    signed_in,
)
from knowledge_base import (
    LANGUAGES,
    PROBLEM_LANGUAGES,
    Entry,
    KnowledgeBase,
    Problem,
    QueryError,
    load_topics,
    validate_entry,
)
from languages import REGISTRY, is_rtl
from storage import clean_text, utcnow

from ..i18n import Translator
from ..settings import Settings
from ._workflow import (
    DraftInvalid,
    EditConflict,
    Publisher,
    WorkflowError,
    approve,
    extend_review,
    reject,
    rollback,
    save_draft,
    word_diff,
)
from .tables import KbDraft, KbEntry, KbRevision, KbTranslation

__all__ = ["content_router", "editor_language"]

#: written right to left (the editor's text areas and previews follow), from the language registry
RTL = frozenset(code for code in REGISTRY if is_rtl(code))
_TEMPLATES = Path(__file__).with_name("templates")
_EXPIRING_DAYS = 30


@lru_cache(maxsize=8)
def _source(name: str) -> str:
    """A page's template; ``{% include "_x.html" %}`` of this package is inlined (the console's
    environment, which renders it, only knows its own templates)."""
    text = (_TEMPLATES / name).read_text(encoding="utf-8")
    for part in _TEMPLATES.glob("_*.html"):
        text = text.replace('{% include "' + part.name + '" %}', part.read_text(encoding="utf-8"))
    return text


def editor_language(request: Request, preference: str | None = None) -> str:
    """The language a console user reads validation errors in: their account's preference (accounts
    store none yet: pass it once they do), else the first language of the browser's
    ``Accept-Language`` the catalogue is written in, else English.

    Why the browser's: MRC staff set their browser to the language they read; the console's own
    labels stay English, but a legal rule broken in a Tajik answer is best explained in Tajik.
    """
    if preference in PROBLEM_LANGUAGES:
        return preference
    offered: list[tuple[float, int, str]] = []
    for i, part in enumerate(request.headers.get("accept-language", "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        primary = tag.strip().split("-")[0].lower()
        if q > 0 and primary in PROBLEM_LANGUAGES:
            offered.append((-q, i, primary))
    return min(offered)[2] if offered else "en"


def _render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render with the console's own environment and page context (links by route name, the
    account, the CSRF token), so pages extend its ``base.html``."""
    env: jinja2.Environment = request.app.state.console.env
    page = env.from_string(_source(name)).render(
        **page_context(request),
        notice=request.query_params.get("notice", ""),
        RTL=RTL,
        error_lang=editor_language(request),
        can_review_content=can_review_content,
        **context,
    )
    return HTMLResponse(page, status_code=status_code)


async def _editor(who: Annotated[Any, Depends(signed_in)]) -> Actor:
    if not can_edit_content(who.actor):
        raise NotAllowed("content is edited by editors, reviewers and supervisors")
    return who.actor


Editor = Annotated[Actor, Depends(_editor)]


def _field(form: FormData, name: str, limit: int = 10_000) -> str:
    value = form.get(name)
    return clean_text(value[:limit]).replace("\r\n", "\n") if isinstance(value, str) else ""


def _block(text: str) -> str:
    """A multi-line answer as the YAML keeps it: trailing spaces off, one final newline."""
    lines = [line.rstrip() for line in text.strip("\n").split("\n")]
    return "\n".join(lines).strip() + "\n" if "\n" in text.strip() else text.strip()


def _translation_from_form(form: FormData, lang: str, base: Mapping[str, Any] | None) -> dict[str, Any]:
    tr: dict[str, Any] = dict(base or {})
    for key in ("title", "short_title"):
        value = _field(form, f"tr-{lang}-{key}", 300).strip()
        if value:
            tr[key] = value
        else:
            tr.pop(key, None)
    for key in ("summary", "answer"):
        value = _block(_field(form, f"tr-{lang}-{key}"))
        if value.strip():
            tr[key] = value
        else:
            tr.pop(key, None)
    tr["questions"] = [q.strip() for q in _field(form, f"tr-{lang}-questions").split("\n") if q.strip()]
    return tr


def _countries(value: str) -> list[str]:
    return [c.strip().upper() for c in value.replace(";", ",").split(",") if c.strip()]


def _entry_from_form(form: FormData, current: Mapping[str, Any] | None, scope: str) -> dict[str, Any]:
    """The form as entry data. A translation save changes that language only; an entry save
    changes metadata, sources and every language shown."""
    data: dict[str, Any] = {k: v for k, v in (current or {}).items()}
    translations = {k: dict(v) for k, v in (current or {}).get("translations", {}).items()}
    if scope != "entry":
        translations[scope] = _translation_from_form(form, scope, translations.get(scope))
        data["translations"] = translations
        return data
    for key in ("id", "topic", "status", "stage", "safety", "reviewed_on", "review_by"):
        value = _field(form, key, 200).strip()
        if value:
            data[key] = value
    data["origin"] = _countries(_field(form, "origin", 400))
    data["destination"] = _countries(_field(form, "destination", 400))
    sources = []
    for i in range(int(_field(form, "source-count", 4) or 0) + 1):
        title, url = _field(form, f"source-{i}-title", 400).strip(), _field(form, f"source-{i}-url", 600).strip()
        if not title and not url:
            continue
        old = (current or {}).get("sources", [])
        src: dict[str, Any] = dict(old[i]) if i < len(old) else {}
        src["title"], src["url"] = title, url
        titles = {}
        for line in _field(form, f"source-{i}-titles", 4000).split("\n"):
            lang, _, text = line.partition(":")
            if lang.strip() and text.strip():
                titles[lang.strip()] = text.strip()
        if titles:
            src["titles"] = titles
        else:
            src.pop("titles", None)
        if form.get(f"source-{i}-general"):
            src["general"] = True
        else:
            src.pop("general", None)
        sources.append(src)
    data["sources"] = sources
    for lang in LANGUAGES:
        if form.get(f"tr-{lang}-answer") is not None and (_field(form, f"tr-{lang}-answer").strip()
                                                            or lang in translations):
            translations[lang] = _translation_from_form(form, lang, translations.get(lang))
    data["translations"] = translations
    return data


def _errors(problems: list[Problem], lang: str | None = None) -> dict[str, str]:
    """The first problem of each field, in ``lang`` (the catalogue's; English when it has none)."""
    out: dict[str, str] = {}
    for p in problems:
        message, fix = p.in_language(lang)
        out.setdefault(p.field, f"{message}. {fix}")
    return out


async def _revisions(db: AsyncSession, entry_id: str) -> list[KbRevision]:
    return list((await db.scalars(select(KbRevision).where(KbRevision.entry_id == entry_id)
                                  .order_by(KbRevision.number.desc()))).all())


def _preview(kb: KnowledgeBase | None, settings: Settings, entry: Entry, lang: str) -> dict[str, Any] | None:
    """The answer exactly as the engine renders it: web chat (plain text, buttons) and Telegram
    (escaped HTML, split at 4,096 characters, footer with sources and the review date)."""
    if kb is None or lang not in entry.translations:
        return None
    from bot.channels.telegram import render_reply
    from bot.engine import answer_reply

    translator = Translator(settings.fallback_chains)

    class _One:
        def get(self, entry_id: str) -> Entry:
            return entry

        def answer_for(self, e: Entry, code: str | None) -> Any:
            assert kb is not None
            return kb.answer_for(e, code)

    reply = answer_reply(cast(KnowledgeBase, _One()), translator, entry.id, lang)
    details = answer_reply(cast(KnowledgeBase, _One()), translator, entry.id, lang, details=True)
    telegram = render_reply(details, translate=lambda code, key: translator(code, key))
    return {"web": reply, "details": details, "telegram": [m.text for m in telegram],
            "telegram_chars": [len(m.text) for m in telegram]}


def _try(kb: KnowledgeBase | None, entry_id: str, question: str, lang: str | None) -> dict[str, Any] | None:
    if kb is None or not question.strip():
        return None
    try:
        result = kb.search(question, lang or None, limit=20)
    except QueryError as exc:
        return {"error": str(exc)}
    ranked = [(h.entry.id, round(h.fused, 3)) for h in result.hits]
    rank = next((i + 1 for i, (eid, _) in enumerate(ranked) if eid == entry_id), None)
    answered = result.answer.entry_id if result.answer else None
    return {"rank": rank, "decision": str(result.decision), "answered": answered, "top": ranked[:5],
            "question": question}


def content_router(settings: Settings, sessions: async_sessionmaker[AsyncSession],
                   kb: Callable[[], KnowledgeBase | None],
                   publisher: Callable[[], Publisher | None]) -> APIRouter:
    """The content pages under ``/content`` of the console."""
    router = APIRouter(dependencies=[Depends(csrf_guard)])

    @router.get("/content", name="content")
    async def dashboard(request: Request, me: Editor) -> Response:
        today = utcnow().date()
        async with sessions() as db, db.begin():
            entries = list((await db.scalars(select(KbEntry).order_by(KbEntry.id))).all())
            current = {r.entry_id: r for r in (await db.scalars(
                select(KbRevision).join(KbEntry, (KbEntry.id == KbRevision.entry_id)
                                        & (KbEntry.current_revision == KbRevision.number)))).all()}
            drafts = list((await db.scalars(select(KbDraft).where(KbDraft.status == "pending")
                                            .order_by(KbDraft.id))).all())
            mine = list((await db.scalars(select(KbDraft).where(KbDraft.author == me.username,
                                                                  KbDraft.status == "rejected")
                                          .order_by(KbDraft.id.desc()).limit(20))).all())
            rereview = list((await db.scalars(select(KbTranslation).where(
                KbTranslation.state.in_(("needs_review", "suspended"))).order_by(KbTranslation.entry_id,
                                                                                KbTranslation.lang))).all())
            console = request.app.state.console
            questions = await gap_questions(session=db, actor=me, days=console.settings.content_gap_days,
                                            limit=console.settings.content_gap_max_questions)
            await audit(db, me, AuditAction.CONTENT_VIEW, detail="dashboard")
        rows, expiring, homepages = [], [], []
        for row in entries:
            rev = current.get(row.id)
            if rev is None:
                continue
            data = rev.data
            review_by = dt.date.fromisoformat(str(data["review_by"]))
            rows.append({"id": row.id, "topic": data["topic"], "safety": data.get("safety", "normal"),
                         "review_by": review_by, "langs": sorted(data["translations"]), "version": row.version,
                         "withdrawn": row.withdrawn_at is not None, "revision": rev.number,
                         "status": data.get("status")})
            if review_by <= today + dt.timedelta(days=_EXPIRING_DAYS) or row.withdrawn_at is not None:
                expiring.append({"id": row.id, "review_by": review_by, "expired": review_by < today,
                                 "withdrawn": row.withdrawn_at is not None})
            entry = Entry.model_validate(data)
            for src in (*entry.sources, *(s for tr in entry.translations.values() for s in tr.sources)):
                if src.is_homepage and not src.general:
                    homepages.append({"id": row.id, "url": src.url, "title": src.title})
        gaps = await asyncio.to_thread(cluster_gaps, questions, console.embedder,
                                       console.settings.content_gap_threshold)
        return _render(request, "content_dashboard.html", rows=rows, drafts=drafts, mine=mine, rereview=rereview,
                       expiring=sorted(expiring, key=lambda e: e["review_by"]), homepages=homepages,
                       gaps=gaps[:20])

    async def _entry_page(request: Request, me: Actor, entry_id: str, *, form_data: Mapping[str, Any] | None = None,
                          errors: Mapping[str, str] | None = None, message: str = "",
                          status_code: int = 200, prefill: list[str] | None = None) -> Response:
        async with sessions() as db, db.begin():
            row = await db.get(KbEntry, entry_id)
            revisions = await _revisions(db, entry_id)
            states = {t.lang: t for t in (await db.scalars(
                select(KbTranslation).where(KbTranslation.entry_id == entry_id))).all()}
            drafts = list((await db.scalars(select(KbDraft).where(KbDraft.entry_id == entry_id)
                                            .order_by(KbDraft.id.desc()).limit(20))).all())
            await audit(db, me, AuditAction.CONTENT_VIEW, detail=f"entry {entry_id}"[:300])
        current = next((r for r in revisions if row is not None and r.number == row.current_revision), None)
        data = dict(form_data) if form_data is not None else (dict(current.data) if current else None)
        if data is None:
            topics = load_topics()
            data = {"id": entry_id, "topic": next(iter(topics)), "status": "published", "origin": [],
                    "destination": [], "stage": "any", "reviewed_on": utcnow().date().isoformat(),
                    "review_by": (utcnow().date() + dt.timedelta(days=90)).isoformat(), "safety": "normal",
                    "sources": [], "translations": {"en": {"title": "", "answer": "", "questions": prefill or []}}}
        entry = None
        try:
            entry = Entry.model_validate(data)
        except ValueError:
            entry = None
        langs = list(data.get("translations", {}))
        lang = request.query_params.get("lang") or ("ru" if "ru" in langs else langs[0] if langs else "en")
        question = request.query_params.get("q", "")
        live = kb()
        preview = await asyncio.to_thread(_preview, live, settings, entry, lang) if entry is not None else None
        tried = await asyncio.to_thread(_try, live, entry_id, question, lang) if question else None
        return _render(request, "content_entry.html", status_code=status_code, entry_id=entry_id, data=data,
                       version=row.version if row is not None else 0, revisions=revisions, states=states,
                       drafts=drafts, lang=lang, langs=langs, all_langs=LANGUAGES, errors=errors or {},
                       message=message, preview=preview, tried=tried, topics=sorted(load_topics()),
                       withdrawn=row.withdrawn_at is not None if row is not None else False,
                       withdrawn_reason=row.withdrawn_reason if row is not None else None)

    @router.get("/content/entry/{entry_id}", name="content_entry")
    async def entry_page(request: Request, entry_id: str, me: Editor) -> Response:
        return await _entry_page(request, me, entry_id)

    @router.get("/content/new", name="content_new")
    async def new_entry(request: Request, me: Editor) -> Response:
        entry_id = request.query_params.get("id", "").strip() or "new-entry"
        prefill = [q for q in request.query_params.getlist("question") if q.strip()][:20]
        return await _entry_page(request, me, entry_id, prefill=prefill)

    @router.post("/content/entry/{entry_id}", name="content_save")
    async def save(request: Request, entry_id: str, me: Editor) -> Response:
        form = await request.form()
        scope = _field(form, "scope", 16) or "entry"
        try:
            expected = int(_field(form, "version", 12) or "0")
        except ValueError:
            expected = -1
        async with sessions() as db, db.begin():
            row = await db.get(KbEntry, entry_id)
            current = None
            if row is not None and row.current_revision:
                rev = await db.scalar(select(KbRevision).where(KbRevision.entry_id == entry_id,
                                                               KbRevision.number == row.current_revision))
                current = dict(rev.data) if rev else None
        data = _entry_from_form(form, current, scope)
        data.setdefault("id", entry_id)
        try:
            async with sessions() as db, db.begin():
                draft = await save_draft(session=db, actor=me, entry_id=entry_id, data=data,
                                         expected_version=expected, scope=scope,
                                         facts_changed=bool(form.get("facts_changed")))
        except DraftInvalid as exc:
            return await _entry_page(request, me, entry_id, form_data=data,
                                     errors=_errors(exc.problems, editor_language(request)),
                                     message="Not saved: correct the fields marked below.", status_code=422)
        except EditConflict as exc:
            return await _entry_page(request, me, entry_id, form_data=exc.data, message=str(exc), status_code=409)
        except WorkflowError as exc:
            return await _entry_page(request, me, entry_id, form_data=data, message=str(exc), status_code=400)
        return redirect(request, "content_draft", {"draft_id": draft.id}, notice="Draft saved: a reviewer will see it.")

    @router.get("/content/drafts/{draft_id}", name="content_draft")
    async def draft_page(request: Request, draft_id: int, me: Editor) -> Response:
        async with sessions() as db, db.begin():
            draft = await db.get(KbDraft, draft_id)
            if draft is None:
                raise NotAllowed("no such draft")
            base = await db.scalar(select(KbRevision).where(KbRevision.entry_id == draft.entry_id,
                                                            KbRevision.number == draft.base_revision))
            await audit(db, me, AuditAction.CONTENT_VIEW, detail=f"draft {draft_id} of {draft.entry_id}"[:300])
        before = dict(base.data) if base else {}
        changes = _changes(before, draft.data, draft.scope)
        return _render(request, "content_draft.html", draft=draft, changes=changes,
                       sensitive=draft.data.get("safety") == "sensitive" or before.get("safety") == "sensitive")

    @router.post("/content/drafts/{draft_id}/approve", name="content_approve")
    async def approve_draft(request: Request, draft_id: int, me: Editor) -> Response:
        form = await request.form()
        pub = publisher()
        if pub is None:
            return redirect(request, "content_draft", {"draft_id": draft_id},
                            notice="The model is still loading; try again.")
        try:
            async with sessions() as db, db.begin():
                draft = await db.get(KbDraft, draft_id)
                revision = await approve(session=db, actor=me, draft_id=draft_id, publisher=pub,
                                         comment=_field(form, "comment", 2000))
                entry_id = revision.entry_id
        except WorkflowError as exc:
            return redirect(request, "content_draft", {"draft_id": draft_id}, notice=str(exc))
        del draft
        return redirect(request, "content_entry", {"entry_id": entry_id},
                         notice=f"Published revision {revision.number}: every worker serves it within seconds.")

    @router.post("/content/drafts/{draft_id}/reject", name="content_reject")
    async def reject_draft(request: Request, draft_id: int, me: Editor) -> Response:
        form = await request.form()
        try:
            async with sessions() as db, db.begin():
                draft = await reject(session=db, actor=me, draft_id=draft_id, comment=_field(form, "comment", 2000))
        except WorkflowError as exc:
            return redirect(request, "content_draft", {"draft_id": draft_id}, notice=str(exc))
        return redirect(request, "content_entry", {"entry_id": draft.entry_id}, notice="Sent back to the author.")

    @router.post("/content/entry/{entry_id}/rollback", name="content_rollback")
    async def rollback_entry(request: Request, entry_id: str, me: Editor) -> Response:
        form = await request.form()
        pub = publisher()
        try:
            number = int(_field(form, "revision", 12))
            if pub is None:
                raise WorkflowError("the model is still loading; try again in a minute")
            async with sessions() as db, db.begin():
                revision = await rollback(session=db, actor=me, entry_id=entry_id, to_revision=number, publisher=pub)
        except (WorkflowError, ValueError) as exc:
            return redirect(request, "content_entry", {"entry_id": entry_id}, notice=str(exc))
        return redirect(request, "content_entry", {"entry_id": entry_id},
                         notice=f"Rolled back: revision {revision.number} serves the text of revision {number}.")

    @router.post("/content/entry/{entry_id}/extend", name="content_extend")
    async def extend(request: Request, entry_id: str, me: Editor) -> Response:
        form = await request.form()
        pub = publisher()
        try:
            review_by = dt.date.fromisoformat(_field(form, "review_by", 20))
            if pub is None:
                raise WorkflowError("the model is still loading; try again in a minute")
            async with sessions() as db, db.begin():
                await extend_review(session=db, actor=me, entry_id=entry_id, review_by=review_by, publisher=pub)
        except (WorkflowError, ValueError) as exc:
            return redirect(request, "content_entry", {"entry_id": entry_id}, notice=str(exc))
        return redirect(request, "content_entry", {"entry_id": entry_id},
                        notice=f"Re-checked; serves until {review_by}.")

    @router.get("/content/entry/{entry_id}/diff", name="content_diff")
    async def diff(request: Request, entry_id: str, me: Editor) -> Response:
        try:
            a, b = int(request.query_params.get("a", "0")), int(request.query_params.get("b", "0"))
        except ValueError:
            a = b = 0
        async with sessions() as db, db.begin():
            revs = {r.number: r for r in await _revisions(db, entry_id)}
            await audit(db, me, AuditAction.CONTENT_VIEW, detail=f"history {entry_id} {a}..{b}"[:300])
        if a not in revs or b not in revs:
            raise NotAllowed("no such revision")
        changes = _changes(revs[a].data, revs[b].data, "entry")
        return _render(request, "content_diff.html", entry_id=entry_id, a=revs[a], b=revs[b], changes=changes)

    return router


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, path + "."))
        elif isinstance(value, list):
            if value and all(isinstance(v, str) for v in value):
                out[path] = "\n".join(value)
            else:
                for i, item in enumerate(value):
                    if isinstance(item, Mapping):
                        out.update(_flatten(item, f"{path}.{i}."))
                    else:
                        out[f"{path}.{i}"] = str(item)
        else:
            out[path] = "" if value is None else str(value)
    return out


def _changes(before: Mapping[str, Any], after: Mapping[str, Any], scope: str) -> list[dict[str, Any]]:
    """Each changed field with its word-level diff (only the draft's language for a translation draft)."""
    a, b = _flatten(before), _flatten(after)
    keys = [k for k in dict.fromkeys([*a, *b]) if a.get(k, "") != b.get(k, "")]
    if scope != "entry":
        keys = [k for k in keys if k.startswith(f"translations.{scope}.")]
    out = []
    for key in keys:
        lang = key.split(".")[1] if key.startswith("translations.") else "en"
        out.append({"field": key, "rtl": lang in RTL, "diff": word_diff(a.get(key, ""), b.get(key, ""))})
    return out


def validate_form(data: Mapping[str, Any], lang: str | None = None) -> dict[str, str]:
    """Problems of a form's entry data, by field, in ``lang`` (the same validator as ``kb validate``)."""
    _, problems = validate_entry(dict(data), file=f"entry {data.get('id')}")
    return _errors(problems, lang)
