"""One contract for the knowledge-base search seam the console uses (``handoff.AnswerSearch``),
run against every implementation: the real knowledge base (``bot.console.KnowledgeBaseAnswers``),
the "no knowledge base" stand-in and the handoff tests' fake (so the fake cannot drift from the
real thing the console tests stand for).
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.console import KnowledgeBaseAnswers
from handoff import AnswerSearch, CuratedAnswer, NoAnswerSearch
from tests.handoff.handoff_support import FakeAnswers

pytestmark = pytest.mark.integration


@pytest.fixture(params=["knowledge-base", "knowledge-base-not-loaded", "none", "fake"])
def answers(request: pytest.FixtureRequest) -> AnswerSearch:
    if request.param == "knowledge-base":
        kb = request.getfixturevalue("kb")
        return KnowledgeBaseAnswers(lambda: kb)
    if request.param == "knowledge-base-not-loaded":
        return KnowledgeBaseAnswers(lambda: None)  # the app opens the knowledge base after start-up
    if request.param == "none":
        return NoAnswerSearch()
    return FakeAnswers()


def test_it_is_an_answer_search(answers: Any) -> None:
    assert isinstance(answers, AnswerSearch)


@pytest.mark.parametrize(("query", "lang"), [
    ("my employer took my passport", "en"),
    ("работодатель забрал паспорт", "ru"),
    ("шиноснома", "tg"),
])
@pytest.mark.parametrize("limit", [1, 3])
def test_answers_are_curated_sourced_and_at_most_limit(answers: AnswerSearch, query: str, lang: str,
                                                       limit: int) -> None:
    found = answers.search(query, lang, limit)
    assert isinstance(found, list) and len(found) <= limit
    for answer in found:
        assert isinstance(answer, CuratedAnswer)
        assert answer.entry_id and answer.title.strip() and answer.text.strip()
        assert answer.source_url.startswith(("https://", "http://"))
        assert answer.source_url in answer.as_reply()  # a counsellor never inserts an unsourced answer
    assert len({a.entry_id for a in found}) == len(found)


@pytest.mark.parametrize("query", ["", "   ", "\x00\x01", "?" * 5000, "a" * 20_000])
def test_junk_gets_no_answers_or_some_but_never_an_error(answers: AnswerSearch, query: str) -> None:
    assert isinstance(answers.search(query, "en", 5), list)


def test_a_language_without_content_is_no_error(answers: AnswerSearch) -> None:
    assert isinstance(answers.search("passport", "xx", 5), list)
