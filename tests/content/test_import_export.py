"""The YAML baseline into the database and back: byte for byte, idempotent, validated once."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from bot.content import export_live, import_content
from knowledge_base import ContentInvalid, IndexConfig, load_entries
from storage import create_engine, session_factory

CONTENT = Path(__file__).resolve().parents[2] / "knowledge_base" / "content"


async def _import(url: str, directory: Path, embedder: object) -> object:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as db, db.begin():
            return await import_content(session=db, directory=directory, embedder=embedder,  # type: ignore[arg-type]
                                        index_config=IndexConfig())
    finally:
        await engine.dispose()


def test_shipped_content_round_trips_byte_for_byte(db_url: str, hash_embedder: object, tmp_path: Path) -> None:
    report = asyncio.run(_import(db_url, CONTENT, hash_embedder))
    shipped = sorted(CONTENT.glob("*.yml"))
    assert len(report.added) == len(shipped)  # type: ignore[attr-defined]
    written = asyncio.run(export_live(db_url, tmp_path / "out"))
    assert sorted(p.name for p in written) == [p.name for p in shipped]
    for path in shipped:
        assert (tmp_path / "out" / path.name).read_bytes() == path.read_bytes(), path.name
    exported = load_entries(tmp_path / "out")
    assert not exported.errors


def test_import_is_idempotent_and_picks_up_a_changed_file(db_url: str, hash_embedder: object, tmp_path: Path) -> None:
    src = tmp_path / "content"
    shutil.copytree(CONTENT, src)
    asyncio.run(_import(db_url, src, hash_embedder))
    again = asyncio.run(_import(db_url, src, hash_embedder))
    assert again.added == [] and again.updated == []  # type: ignore[attr-defined]
    path = src / "change-employer.yml"
    path.write_text(path.read_text(encoding="utf-8").replace("Changing employer", "Changing your employer"),
                    encoding="utf-8")
    changed = asyncio.run(_import(db_url, src, hash_embedder))
    assert changed.updated == ["change-employer"]  # type: ignore[attr-defined]
    asyncio.run(export_live(db_url, tmp_path / "out"))
    assert (tmp_path / "out" / "change-employer.yml").read_bytes() == path.read_bytes()


def test_invalid_file_refuses_the_whole_import_naming_file_and_field(db_url: str, hash_embedder: object,
                                                                     tmp_path: Path) -> None:
    src = tmp_path / "content"
    src.mkdir()
    text = (CONTENT / "change-employer.yml").read_text(encoding="utf-8")
    (src / "change-employer.yml").write_text(text.replace("review_by: 2027-03-07", "review_by: soon"),
                                             encoding="utf-8")
    with pytest.raises(ContentInvalid) as err:
        asyncio.run(_import(db_url, src, hash_embedder))
    assert "change-employer.yml" in str(err.value) and "review_by" in str(err.value)
