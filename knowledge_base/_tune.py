"""Domain fine-tuning of the local encoder on the knowledge base's own questions (``hamroh model tune``).

Why: multilingual-e5-small covers some of our languages poorly (Tajik, Kyrgyz) and orders close
entries by general meaning, not by what the knowledge base distinguishes (registration vs entry and
stay rules). Contrastive tuning on the entries' own example questions teaches it that a question and
its entry's title, summary, answer and other phrasings belong together.

How: MultipleNegativesRankingLoss (in-batch negatives) on pairs "question -> a text of its entry",
prefixed as the index embeds them ("query: " for questions and titles, "passage: " for summaries and
answers). A batch never holds two pairs of the same topic: another pair's positive is a negative, and
the same topic's text would be a false one. Deterministic for a seed (and a thread count).

Only what the caller allows is trained on: ``exclude`` takes (entry id, language, n) questions and
``exclude_topics`` whole topics out, as the held-out evaluation needs (a fold's questions leave the
tuning as well as the index). The word embeddings stay frozen: they are most of the model (250,000
tokens x 384) and cover languages and words the knowledge base's questions never show.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ._entries import Entry

__all__ = ["TUNE_MARKER", "TunePair", "TuneReport", "TuneSettings", "batches", "training_pairs", "tune_model"]

#: written into a tuned model's directory: what it was tuned on, and a model id of its own, so an index
#: or a vector cache built with the base model never passes for the tuned one's
TUNE_MARKER = "hamroh_tune.json"


@dataclass(frozen=True)
class TunePair:
    anchor: str
    positive: str
    #: pairs of one group never share a batch (their texts would be false negatives for each other)
    group: str


@dataclass(frozen=True)
class TuneSettings:
    seed: int = 0
    epochs: int = 1
    batch_size: int = 32
    #: long answers are cut here in training only; the saved model keeps the base's limit
    max_seq_length: int = 96
    learning_rate: float = 3e-5
    warmup: float = 0.1
    #: pairs per kept question and epoch, each with another of its entry's texts
    pairs_per_question: int = 1
    #: transformer layers left frozen from the bottom (0: all twelve train)
    freeze_layers: int = 0
    max_steps: int = 0
    query_prefix: str = "query: "
    passage_prefix: str = "passage: "


@dataclass(frozen=True)
class TuneReport:
    pairs: int
    steps: int
    seconds: float
    first_loss: float
    last_loss: float
    output: str


def training_pairs(entries: Sequence[Entry], settings: TuneSettings, *,
                   exclude: Collection[tuple[str, str, int]] = (), exclude_topics: Collection[str] = (),
                   ) -> list[TunePair]:
    """Question -> text-of-its-entry pairs from published entries, without the excluded questions.

    A question's positives: its translation's title, summary and answer, its entry's other kept
    questions in the same language, and the English title (a fixed point across languages).
    An excluded question is neither an anchor nor anybody's positive.
    """
    rng = random.Random(settings.seed)
    excluded = set(exclude)
    qp, pp = settings.query_prefix, settings.passage_prefix
    pairs: list[TunePair] = []
    for entry in sorted(entries, key=lambda e: e.id):
        if entry.status != "published" or entry.topic in exclude_topics:
            continue
        english = entry.translations.get("en")
        for lang, tr in sorted(entry.translations.items()):
            kept = [(n, q) for n, q in enumerate(tr.questions) if (entry.id, lang, n) not in excluded]
            texts = [qp + tr.title, pp + tr.answer]
            if tr.summary:
                texts.append(pp + tr.summary)
            if english is not None and lang != "en":
                texts.append(qp + english.title)
            for n, q in kept:
                candidates = texts + [qp + other for m, other in kept if m != n]
                for _ in range(settings.pairs_per_question):
                    pairs.append(TunePair(qp + q, rng.choice(candidates), entry.topic))
    return pairs


def batches(pairs: Sequence[TunePair], size: int, seed: int) -> list[list[TunePair]]:
    """Shuffled batches in which no group (topic) appears twice; a last short batch is dropped."""
    order = list(pairs)
    random.Random(seed).shuffle(order)
    out: list[list[TunePair]] = []
    while len(order) >= size:
        batch: list[TunePair] = []
        groups: set[str] = set()
        rest: list[TunePair] = []
        for pair in order:
            if len(batch) < size and pair.group not in groups:
                batch.append(pair)
                groups.add(pair.group)
            else:
                rest.append(pair)
        if len(batch) < size:
            break  # fewer groups left than a batch needs: more steps would only repeat them
        out.append(batch)
        order = rest
    return out


def tune_model(base_dir: Path, output: Path, pairs: Sequence[TunePair], settings: TuneSettings, *,
               progress: Callable[[int, int, float], None] | None = None, save: bool = True) -> TuneReport:
    """Fine-tune the sentence-transformers model at ``base_dir`` on ``pairs``; write it to ``output``.

    ``output`` is replaced atomically enough for a development tool: written beside, then renamed.
    """
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    start = time.perf_counter()
    random.seed(settings.seed)
    np.random.seed(settings.seed)
    torch.manual_seed(settings.seed)
    model = SentenceTransformer(str(base_dir), device="cpu")
    served_length = model.max_seq_length
    model.max_seq_length = settings.max_seq_length
    bert: Any = model[0].auto_model
    for p in bert.embeddings.parameters():
        p.requires_grad = False
    for layer in bert.encoder.layer[:settings.freeze_layers]:
        for p in layer.parameters():
            p.requires_grad = False
    params = [p for p in model.parameters() if p.requires_grad]
    loss_fn = MultipleNegativesRankingLoss(model)
    plan = [b for epoch in range(settings.epochs)
            for b in batches(pairs, settings.batch_size, settings.seed + epoch)]
    if settings.max_steps:
        plan = plan[:settings.max_steps]
    if not plan:
        raise ValueError(f"{len(pairs)} pairs make no batch of {settings.batch_size} with distinct topics")
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=0.01)
    warm = max(1, int(len(plan) * settings.warmup))

    def rate(step: int) -> float:
        return (step + 1) / warm if step < warm else max(0.0, (len(plan) - step) / max(1, len(plan) - warm))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, rate)
    model.train()
    losses: list[float] = []
    for step, batch in enumerate(plan):
        features = [model.preprocess([p.anchor for p in batch]), model.preprocess([p.positive for p in batch])]
        loss = loss_fn(features, torch.empty(0))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        if progress:
            progress(step + 1, len(plan), losses[-1])
    model.eval()
    model.max_seq_length = served_length
    report = TuneReport(pairs=len(pairs), steps=len(plan), seconds=round(time.perf_counter() - start, 1),
                        first_loss=round(float(np.mean(losses[:5])), 4),
                        last_loss=round(float(np.mean(losses[-5:])), 4), output=str(output))
    if save:
        save_tuned(model, Path(base_dir), Path(output), settings, report)
    return report


def save_tuned(model: Any, base_dir: Path, output: Path, settings: TuneSettings, report: TuneReport) -> None:
    """Write the model and its marker; a previous directory at ``output`` is replaced only when done."""
    tmp = output.with_name(output.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save(str(tmp))
    marker = {"base": str(base_dir), "settings": asdict(settings), "report": asdict(report),
              "model_id": f"local:multilingual-e5-small-tuned(seed {settings.seed}, {report.pairs} pairs, "
                          f"{report.steps} steps, {int(time.time())})"}
    (tmp / TUNE_MARKER).write_text(json.dumps(marker, indent=2), encoding="utf-8")
    shutil.rmtree(output, ignore_errors=True)
    tmp.rename(output)
