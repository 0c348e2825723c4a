"""The shipped knowledge base: every topic of the content spec in every language it requires,
sourced, dated, short enough for one Telegram message, and never seeded with evaluation items."""

from __future__ import annotations

import datetime as dt
import unicodedata
from pathlib import Path

import pytest
import yaml

from knowledge_base import load_entries, load_topics

pytestmark = pytest.mark.unit
CONTENT = Path(__file__).resolve().parents[2] / "knowledge_base" / "content"
EVAL_DIR = Path(__file__).resolve().parents[3] / "shared" / "eval"
TELEGRAM_LIMIT = 4096


@pytest.fixture(scope="module")
def report():
    return load_entries(CONTENT)


def test_content_validates_without_errors(report) -> None:
    assert [str(p) for p in report.errors] == []


def test_every_topic_is_covered_in_every_required_language(report) -> None:
    covered: dict[str, set[str]] = {}
    for entry in report.published:
        covered.setdefault(entry.topic, set()).update(entry.translations)
    missing = {tid: sorted(set(t.languages) - covered.get(tid, set())) for tid, t in load_topics().items()}
    assert {tid: langs for tid, langs in missing.items() if langs} == {}


def test_entries_are_sourced_dated_and_not_expired(report) -> None:
    today = dt.date.today()
    for entry in report.published:
        assert entry.sources, entry.id
        assert all(s.url.startswith("https://") or s.url.startswith("http://") for s in entry.sources), entry.id
        assert entry.reviewed_on <= today < entry.review_by, f"{entry.id} is past its review date"


def test_answer_with_title_and_source_fits_one_telegram_message(report) -> None:
    for entry in report.published:
        source = entry.sources[0]
        for lang, tr in entry.translations.items():
            rendered = f"{tr.title}\n\n{tr.answer}\n\n{source.title}: {source.url}\nReviewed {entry.reviewed_on}"
            assert len(rendered) <= TELEGRAM_LIMIT, (entry.id, lang, len(rendered))
            assert len(tr.questions) >= 4, (entry.id, lang)


def _norm(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in text if ch.isalnum())


@pytest.mark.skipif(not EVAL_DIR.exists(), reason="../shared/eval is not beside the repository")
def test_no_evaluation_item_was_copied_into_content(report) -> None:
    eval_texts = set()
    for path in EVAL_DIR.glob("*.yaml"):
        for item in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            eval_texts.add(_norm(item["text"]))
    copied = [(e.id, q) for e in report.entries for tr in e.translations.values() for q in tr.questions
              if _norm(q) in eval_texts]
    assert copied == []
