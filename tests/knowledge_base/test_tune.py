"""`hamroh model tune`: pairs that leave nothing held out in, batches without false negatives, and a
few steps of tuning that pull a question towards its own entry's text."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from knowledge_base import Entry, Source, Translation, TunePair, TuneSettings, training_pairs, tune_model
from knowledge_base._tune import TUNE_MARKER, batches


def _entry(entry_id: str, topic: str, questions: dict[str, list[str]]) -> Entry:
    # model_construct: only the fields the pairs read, without the content rules' lengths
    translations = {lang: Translation.model_construct(title=f"{entry_id} {lang} title",
                                                      answer=f"{entry_id} {lang} answer", questions=qs,
                                                      summary=f"{entry_id} {lang} summary")
                    for lang, qs in questions.items()}
    return Entry.model_construct(id=entry_id, topic=topic, status="published", reviewed_on=dt.date(2026, 1, 1),
                                 review_by=dt.date(2027, 1, 1), sources=[Source(title="src", url="https://example.org/x")],
                                 translations=translations)


def test_held_out_questions_are_neither_anchors_nor_positives() -> None:
    entries = [_entry("a", "ta", {"en": ["qa0", "qa1", "qa2"], "ru": ["ra0"]}),
               _entry("b", "tb", {"en": ["qb0"]})]
    settings = TuneSettings(pairs_per_question=20)
    pairs = training_pairs(entries, settings, exclude={("a", "en", 1)}, exclude_topics={"tb"})
    texts = {p.anchor for p in pairs} | {p.positive for p in pairs}
    assert "query: qa1" not in texts
    assert not any("qb0" in t or t.startswith("query: b ") for t in texts)
    assert {p.anchor for p in pairs} == {"query: qa0", "query: qa2", "query: ra0"}
    # a Russian question learns its English title too; answers and summaries carry the passage prefix
    assert "query: a en title" in {p.positive for p in pairs if p.anchor == "query: ra0"}
    assert "passage: a en answer" in {p.positive for p in pairs if p.anchor == "query: qa0"}


def test_a_batch_never_holds_two_pairs_of_one_topic() -> None:
    pairs = [TunePair(f"q{i}", f"p{i}", f"t{i % 7}") for i in range(70)]
    out = batches(pairs, 5, seed=3)
    assert out and all(len(b) == 5 and len({p.group for p in b}) == 5 for b in out)
    assert out == batches(pairs, 5, seed=3)


@pytest.mark.integration
@pytest.mark.slow
def test_a_few_steps_pull_questions_towards_their_own_entry(tmp_path) -> None:
    from sentence_transformers import SentenceTransformer

    from tests.conftest import MODEL_DIR

    if not (MODEL_DIR / "modules.json").exists():
        pytest.skip(f"offline model not built at {MODEL_DIR}")
    # made-up topics whose questions the base model cannot tell apart by meaning
    topics = {"blue": ["Where is form K7 filed?", "What about paper K7?"],
              "green": ["Where is form Z9 filed?", "What about paper Z9?"],
              "red": ["Where is form M4 filed?", "What about paper M4?"],
              "gold": ["Where is form Q2 filed?", "What about paper Q2?"]}
    passages = {t: f"passage: The {t} office handles it." for t in topics}
    pairs = [TunePair("query: " + q, passages[t], t) for t, qs in topics.items() for q in qs] * 3
    settings = TuneSettings(batch_size=4, max_seq_length=32, learning_rate=1e-4, warmup=0.0, freeze_layers=8)

    def margin(model_dir: object) -> float:
        model = SentenceTransformer(str(model_dir), device="cpu")
        names = list(topics)
        q = model.encode(["query: " + qs[0] for qs in topics.values()], normalize_embeddings=True)
        p = model.encode([passages[t] for t in names], normalize_embeddings=True)
        sims = q @ p.T
        # how far each question's own passage leads the best other one
        return float(np.mean([sims[i, i] - np.max(np.delete(sims[i], i)) for i in range(len(names))]))

    out = tmp_path / "tuned"
    report = tune_model(MODEL_DIR, out, pairs, settings)
    assert report.steps == 6 and report.last_loss < report.first_loss
    assert margin(out) > margin(MODEL_DIR) + 0.01
    marker = json.loads((out / TUNE_MARKER).read_text())
    assert marker["model_id"].startswith("local:multilingual-e5-small-tuned")
    # the saved model serves as long texts as the base model
    assert SentenceTransformer(str(out), device="cpu").max_seq_length == \
        SentenceTransformer(str(MODEL_DIR), device="cpu").max_seq_length
