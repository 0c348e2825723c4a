"""Helpers for the content pages' console tests: a database with two shipped entries and accounts,
and the editor's translation form as a browser would submit it."""

from __future__ import annotations

import html
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.content import import_with
from handoff import Role, create_account
from knowledge_base import KnowledgeBase
from storage import create_engine, session_factory

CONTENT = Path(__file__).resolve().parents[2] / "knowledge_base" / "content"
PASSWORD = "correct horse battery"


async def content_database(db_url: str, settings: Any, kb: KnowledgeBase, tmp_path: Path,
                           accounts: Iterable[tuple[str, Role, str | None]],
                           ) -> tuple[AsyncEngine, async_sessionmaker[AsyncSession]]:
    """change-employer and death-abroad imported, and the accounts (username, role, MRC) with
    :data:`PASSWORD`; the caller disposes of the engine."""
    engine = create_engine(db_url)
    sessions = session_factory(engine)
    src = tmp_path / "content"
    src.mkdir()
    for name in ("change-employer", "death-abroad"):
        shutil.copy(CONTENT / f"{name}.yml", src / f"{name}.yml")
    await import_with(sessions, settings, src, kb.embedder)
    async with sessions() as db, db.begin():
        for name, role, mrc_id in accounts:
            await create_account(session=db, username=name, display_name=name.title(), password=PASSWORD,
                                 role=role, mrc_id=mrc_id)
    return engine, sessions


def translation_form(page: str) -> dict[str, str]:
    """The inputs and text areas of the translation form, as a browser would submit them."""
    form = page.split('id="translation-form"', 1)[1].split("</form>", 1)[0]
    fields = {m.group(1): m.group(2) for m in re.finditer(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form)}
    for m in re.finditer(r'<textarea name="([^"]+)"[^>]*>(.*?)</textarea>', form, re.S):
        fields[m.group(1)] = m.group(2)
    return {k: html.unescape(v) for k, v in fields.items()}
