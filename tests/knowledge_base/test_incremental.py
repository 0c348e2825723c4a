"""A live swap derives the new knowledge base from the one serving, and answers exactly as a build
from scratch of the same content would (the same ranked entries, scores, features and decision)."""

from __future__ import annotations

from typing import Any

import bm25s
import numpy as np
import pytest

from knowledge_base import EmbeddingCache, Entry, KnowledgeBase, LiveContent, build_live_knowledge_base
from knowledge_base._lexical import bm25_postings
from knowledge_base._live import derive_index, embed_revision

NEW_QUESTION = "нужна ли справка о пчеловодстве для зелёного трактора"


def _cache(settings: Any, kb: KnowledgeBase) -> EmbeddingCache:
    return EmbeddingCache(settings.path(settings.index.dir) / "embeddings.npz", kb.embedder.model_id)


def _edited(kb: KnowledgeBase, settings: Any, cache: EmbeddingCache) -> tuple[list[Entry], Entry, str, str]:
    """The shipped entries with one Russian question reworded, one English answer changed, one entry
    withdrawn and one new entry (a copy of another under a new id), their texts embedded as a
    publication would."""
    entries = sorted(kb.entries, key=lambda e: e.id)
    target = next(e for e in entries if "ru" in e.translations and len(e.translations["ru"].questions) > 1)
    ru = target.translations["ru"]
    old_question = ru.questions[0]
    changed = target.model_copy(update={"translations": {
        **target.translations, "ru": ru.model_copy(update={"questions": [NEW_QUESTION, *ru.questions[1:]]})}})
    other = next(e for e in entries if e.id != target.id)
    en = other.translations["en"]
    answered = other.model_copy(update={"translations": {
        **other.translations, "en": en.model_copy(update={"answer": en.answer + "\n\nCall the hotline first."})}})
    gone = next(e for e in entries if e.id not in (target.id, other.id))
    model = next(e for e in entries if e.id not in (target.id, other.id, gone.id))
    added = model.model_copy(update={"id": model.id + "-copy"})
    for entry in (changed, answered, added):
        embed_revision(entry, cache, kb.embedder, settings.index)
    out = [changed if e.id == target.id else answered if e.id == other.id else e
           for e in entries if e.id != gone.id] + [added]
    return sorted(out, key=lambda e: e.id), changed, old_question, gone.id


def _queries(kb: KnowledgeBase, old_question: str) -> list[tuple[str, str | None]]:
    asked: list[tuple[str, str | None]] = [(NEW_QUESTION, "ru"), (old_question, "ru"),
                                           ("Call the hotline first", "en"), ("patent", None)]
    for entry in sorted(kb.entries, key=lambda e: e.id)[::4]:
        for lang, tr in entry.translations.items():
            asked.append((tr.questions[-1], lang))
    return asked


def _same_answers(a: KnowledgeBase, b: KnowledgeBase, queries: list[tuple[str, str | None]]) -> None:
    vectors = a.embedder.embed_queries([q for q, _ in queries])
    for (query, lang), qvec in zip(queries, vectors, strict=True):
        got, want = a.search(query, lang, qvec=qvec), b.search(query, lang, qvec=qvec)
        assert [h.entry.id for h in got.hits] == [h.entry.id for h in want.hits], query
        assert got == want, query  # scores of every channel, ranks, features, decision


@pytest.mark.slow
def test_a_derived_swap_answers_exactly_as_a_rebuild(kb: KnowledgeBase, settings: Any) -> None:
    cache = _cache(settings, kb)
    entries, changed, old_question, gone = _edited(kb, settings, cache)
    queries = _queries(kb, old_question)
    before = [kb.search(q, lang) for q, lang in queries[:4]]
    live = LiveContent(version=2, entries=entries, cache=cache)

    assert derive_index(kb, entries, cache, kb.embedder, settings.index) is not None
    derived = build_live_knowledge_base(live, kb.embedder, settings.index, settings.search, previous=kb)
    scratch = build_live_knowledge_base(live, kb.embedder, settings.index, settings.search, _oos_vectors=kb._oos)

    assert derived._lexicon.reused > derived._lexicon.computed > 0  # only the edited documents were redone
    assert derived.index.size == scratch.index.size and derived.rows == scratch.rows
    assert np.array_equal(derived.index.vectors(), scratch.index.vectors())
    _same_answers(derived, scratch, queries)
    # the reworded question is found, its old wording no longer matches a row of the entry exactly
    top = derived.search(NEW_QUESTION, "ru")
    assert top.hits[0].entry.id == changed.id and top.hits[0].dense > 0.99
    old_hit = next(h for h in kb.search(old_question, "ru").hits if h.entry.id == changed.id)
    new_hit = next((h for h in derived.search(old_question, "ru").hits if h.entry.id == changed.id), None)
    assert old_hit.dense > 0.99 and (new_hit is None or new_hit.dense < old_hit.dense)
    assert derived.get(gone) is None and all(h.entry.id != gone for q, _ in queries[:8]
                                             for h in derived.search(q, "en").hits)
    # the knowledge base still serving was not touched
    assert [kb.search(q, lang) for q, lang in queries[:4]] == before
    assert kb.get(gone) is not None


@pytest.mark.slow
def test_many_changes_fall_back_to_a_build_with_the_same_answers(kb: KnowledgeBase, settings: Any) -> None:
    cache = _cache(settings, kb)
    entries = sorted(kb.entries, key=lambda e: e.id)
    kept = entries[: len(entries) // 2]
    assert derive_index(kb, kept, cache, kb.embedder, settings.index) is None
    live = LiveContent(version=3, entries=kept, cache=cache)
    rebuilt = build_live_knowledge_base(live, kb.embedder, settings.index, settings.search, previous=kb)
    scratch = build_live_knowledge_base(live, kb.embedder, settings.index, settings.search, _oos_vectors=kb._oos)
    _same_answers(rebuilt, scratch, _queries(rebuilt, kept[0].translations["en"].questions[0])[:30])


@pytest.mark.slow
def test_an_hnsw_index_takes_the_changed_rows_and_skips_the_old_ones(kb: KnowledgeBase, settings: Any) -> None:
    """HNSW cannot remove rows: the derived index skips them. Its answers are HNSW's approximation
    of a rebuild's, so the test asks for the same best entry, not the same ranking."""
    config = settings.index.model_copy(update={"approximate_above": 0})
    cache = _cache(settings, kb)
    start = LiveContent(version=1, entries=sorted(kb.entries, key=lambda e: e.id), cache=cache)
    hnsw = build_live_knowledge_base(start, kb.embedder, config, settings.search, _oos_vectors=kb._oos)
    assert hnsw.index.kind == "hnsw"
    entries, changed, old_question, gone = _edited(hnsw, settings, cache)
    live = LiveContent(version=2, entries=entries, cache=cache)
    derived = build_live_knowledge_base(live, kb.embedder, config, settings.search, previous=hnsw)
    scratch = build_live_knowledge_base(live, kb.embedder, config, settings.search, _oos_vectors=kb._oos)
    assert derived.index.kind == "hnsw" and len(derived.index.excluded) > 0  # type: ignore[attr-defined]
    assert len(hnsw.index.excluded) == 0  # type: ignore[attr-defined]  # the serving index untouched
    top = derived.search(NEW_QUESTION, "ru")
    assert top.hits[0].entry.id == changed.id and top.hits[0].dense > 0.99
    assert all(h.dense < 0.99 for h in derived.search(old_question, "ru").hits if h.entry.id == changed.id)
    queries = _queries(hnsw, old_question)
    vectors = kb.embedder.embed_queries([q for q, _ in queries])
    for (query, lang), qvec in zip(queries, vectors, strict=True):
        got, want = derived.search(query, lang, qvec=qvec), scratch.search(query, lang, qvec=qvec)
        assert got.hits[0].entry.id == want.hits[0].entry.id, query
        assert all(h.entry.id != gone for h in got.hits)
    # enough edits and the next swap builds the graph afresh
    assert derive_index(derived, entries, cache, kb.embedder, config, max_changed=0.0) is None


@pytest.mark.slow
def test_an_answer_edit_keeps_the_lexical_postings_and_answers_as_a_rebuild(kb: KnowledgeBase, settings: Any) -> None:
    cache = _cache(settings, kb)
    entries = sorted(kb.entries, key=lambda e: e.id)
    target = entries[3]
    en = target.translations["en"]
    edited = target.model_copy(update={"translations": {
        **target.translations, "en": en.model_copy(update={"answer": en.answer + "\n\nBring your passport."})}})
    embed_revision(edited, cache, kb.embedder, settings.index)
    entries = [edited if e.id == target.id else e for e in entries]
    live = LiveContent(version=2, entries=entries, cache=cache)
    derived = build_live_knowledge_base(live, kb.embedder, settings.index, settings.search, previous=kb)
    scratch = build_live_knowledge_base(live, kb.embedder, settings.index, settings.search, _oos_vectors=kb._oos)
    # the documents BM25 and the n-grams index (titles, questions) did not change: nothing rebuilt
    assert derived._char is kb._char and derived._bm25.scores["data"] is kb._bm25.scores["data"]
    _same_answers(derived, scratch, [*_queries(kb, "patent")[:30], ("passport and patent", "en")])


def test_an_unchanged_swap_and_an_int8_index(kb: KnowledgeBase, settings: Any) -> None:
    cache = _cache(settings, kb)
    entries = sorted(kb.entries, key=lambda e: e.id)
    derived = derive_index(kb, entries, cache, kb.embedder, settings.index)
    assert derived is not None and derived[0].size == kb.index.size
    # int8 storage learns its ranges from all the vectors: a changed vector changes every code
    assert derive_index(kb, entries, cache, kb.embedder, settings.index.model_copy(update={"storage": "int8"})) \
        is None


def test_bm25_postings_are_bm25s_own(kb: KnowledgeBase) -> None:
    """The cached-postings BM25 builds the very score matrix bm25s's ``index`` would."""
    lexicon = kb._lexicon
    texts = [" ".join(d.texts) for d in kb._docs]
    postings = [lexicon.docs[t] for t in texts]
    ours = bm25_postings(postings, len(lexicon.tokens), k1=1.5, b=0.75, method="lucene", idf_method="lucene")
    reference = bm25s.BM25()
    ids = [[int(lexicon.tokens[tok]) for tok in kb._lexicon._tokenize(t)] for t in texts]
    reference.index(bm25s.tokenization.Tokenized(ids=ids, vocab=dict(lexicon.tokens)), show_progress=False)
    mine = bm25s.BM25()
    mine.scores = ours.as_bm25s()
    mine.nonoccurrence_array = None
    for query in ("patent", "работодатель патент", "BMET registration", "visa overstay fine"):
        tokens = [lexicon.tokens[t] for t in kb._lexicon._tokenize(query) if t in lexicon.tokens]
        if tokens:
            assert np.array_equal(mine.get_scores_from_ids(tokens), reference.get_scores_from_ids(tokens)), query
