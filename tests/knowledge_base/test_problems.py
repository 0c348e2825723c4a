"""The validator's findings are written once, by code, in every language MRC staff edit in."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from knowledge_base import PROBLEM_LANGUAGES, Problem, problem_catalogue, render_problem, validate_entry

#: the languages the console's editor must be able to explain a problem in
SHIPPED = {"en", "ru", "uz", "ky", "tg", "bn", "ur", "ar"}
SOURCES = [Path(__file__).resolve().parents[2] / p for p in ("knowledge_base", "bot/content")]


def _names(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_code_has_every_shipped_language_with_the_same_values() -> None:
    assert set(PROBLEM_LANGUAGES) >= SHIPPED
    for code, texts in problem_catalogue().items():
        assert set(texts) >= SHIPPED, code
        english = _names(texts["en"][0]) | _names(texts["en"][1])
        for lang, (message, fix) in texts.items():
            assert message.strip() and fix.strip(), (code, lang)
            # a translation names exactly the values the English names (an id, a URL, a number)
            assert _names(message) | _names(fix) == english, (code, lang)
            if lang != "en":
                assert (message, fix) != texts["en"], (code, lang)  # written, not copied


def test_every_code_the_code_raises_is_in_the_catalogue() -> None:
    used: set[str] = set()
    for root in SOURCES:
        for path in root.rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            used |= set(re.findall(r'Problem\.of\([^,]+,\s*[^,]+,\s*"([a-z_]+)"', text))
            used |= set(re.findall(r'PydanticCustomError\(\s*"([a-z_]+)"', text))
            used |= set(re.findall(r'^\s+"[a-z_]+": \("([a-z_]+)", \{', text, re.M))
    assert len(used) > 20
    assert used <= set(problem_catalogue())


def test_the_cli_stays_english_and_the_editor_gets_its_language(topics: dict) -> None:  # type: ignore[type-arg]
    raw = {"id": "Bad Id", "topic": "ru-patent", "status": "published", "reviewed_on": "2026-01-01",
           "review_by": "2026-06-01", "sources": [{"title": "Law", "url": "ftp:/nowhere"}],
           "translations": {"en": {"title": "Title", "answer": "short", "questions": ["q"]}}}
    _, problems = validate_entry(raw, file="x.yml", topics=topics)
    by_field = {p.field: p for p in problems}
    assert "Fix:" in str(by_field["id"]) and "lowercase" in str(by_field["id"])
    assert by_field["id"].in_language("ru")[0].startswith("в идентификаторе могут быть только")
    assert by_field["sources.0.url"].in_language("tg")[0] == "суроғаи пурраи веб лозим аст, ки бо https:// оғоз шавад"
    message, _ = by_field["translations.en.answer"].in_language("ar")
    assert "40" in message  # the value it names, inserted as it is
    assert by_field["translations.en.answer"].in_language("xx") == by_field["translations.en.answer"].in_language("en")


def test_a_problem_without_a_code_keeps_its_text() -> None:
    assert Problem("f", "x", "said", "do").in_language("ru") == ("said", "do")
    with pytest.raises(KeyError):
        render_problem("no_such_code", "en", {})


@pytest.fixture
def topics() -> dict:  # type: ignore[type-arg]
    from knowledge_base import load_topics

    return load_topics()
