"""Retrieval evaluation on files in the format of ``../shared/eval/retrieval-dev.yaml``.

The figures are the ones a migrant feels: is the right answer first (Recall@1), among the buttons
(Recall@3), how often do we answer confidently with the wrong topic, and do off-topic questions go
to a counsellor instead of getting a curated answer.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ._search import SearchResult

if TYPE_CHECKING:
    from ._search import KnowledgeBase

__all__ = ["EvalItem", "evaluate", "format_report", "format_topics_report", "held_out_item", "holdout_pairs",
           "holdout_questions", "holdout_topic_pairs", "holdout_topics", "load_eval_items", "question_folds", "score",
           "topic_folds"]


@dataclass(frozen=True)
class EvalItem:
    text: str
    lang: str
    topic: str


def load_eval_items(path: Path) -> list[EvalItem]:
    """Read an evaluation file; a malformed item is reported with its position."""
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(raw, list):
        raise ValueError(f"{path}: expected a YAML list of items with text, lang and topic")
    items = []
    for i, item in enumerate(raw, 1):
        if not isinstance(item, dict) or not all(k in item for k in ("text", "lang", "topic")):
            raise ValueError(f"{path}: item {i} needs the fields text, lang and topic")
        items.append(EvalItem(str(item["text"]), str(item["lang"]), str(item["topic"])))
    return items


def _metrics(ranks: list[int | None]) -> dict[str, float]:
    n = len(ranks)
    if not n:
        return {"n": 0, "recall_at_1": 0.0, "recall_at_3": 0.0, "mrr": 0.0}
    return {
        "n": n,
        "recall_at_1": round(sum(1 for r in ranks if r == 0) / n, 4),
        "recall_at_3": round(sum(1 for r in ranks if r is not None and r < 3) / n, 4),
        "mrr": round(sum(1.0 / (r + 1) for r in ranks if r is not None) / n, 4),
    }


def evaluate(items: Iterable[EvalItem], search: Callable[[EvalItem], SearchResult]) -> dict[str, Any]:
    """Run every item through ``search`` and compute the report (see the eval README)."""
    return score((item, search(item)) for item in items)


def score(pairs: Iterable[tuple[EvalItem, SearchResult]]) -> dict[str, Any]:
    """The report for items already searched (held-out folds search each in their own index)."""
    per_lang: dict[str, list[int | None]] = defaultdict(list)
    overall: list[int | None] = []
    decisions = {"answer": 0, "clarify": 0, "handoff": 0}
    wrong = 0
    none_total = none_handoff = 0
    failures: list[dict[str, Any]] = []
    count = 0
    right = 0
    for item, result in pairs:
        count += 1
        decisions[result.decision] += 1
        if item.topic == "none":
            none_total += 1
            none_handoff += result.decision == "handoff"
            if result.decision == "answer":
                wrong += 1
                failures.append({"text": item.text, "expected": "none", "got": result.top_topic,
                                 "decision": result.decision})
            continue
        topics = result.ranked_topics()
        rank = topics.index(item.topic) if item.topic in topics else None
        per_lang[item.lang].append(rank)
        overall.append(rank)
        answered_wrong = result.decision == "answer" and result.answer is not None and \
            result.answer.topic != item.topic
        wrong += answered_wrong
        right += result.decision == "answer" and result.answer is not None and result.answer.topic == item.topic
        if rank != 0 or answered_wrong or result.decision != "answer":
            failures.append({"text": item.text, "lang": item.lang, "expected": item.topic,
                             "got": topics[:3], "decision": result.decision, "reason": result.reason})
    return {
        "overall": _metrics(overall),
        "per_language": {lang: _metrics(r) for lang, r in sorted(per_lang.items())},
        "decisions": {k: round(v / count, 4) if count else 0.0 for k, v in decisions.items()},
        "wrong_answer_rate": round(wrong / count, 4) if count else 0.0,
        #: answered confidently with the expected topic, as a share of the items that have one
        "answered_right": round(right / len(overall), 4) if overall else 0.0,
        "none_handoff_rate": round(none_handoff / none_total, 4) if none_total else 1.0,
        "items": count,
        "failures": failures,
    }


def format_report(report: dict[str, Any]) -> str:
    lines = [f"{'lang':<6}{'n':>5}{'R@1':>8}{'R@3':>8}{'MRR':>8}"]
    for lang, m in report["per_language"].items():
        lines.append(f"{lang:<6}{m['n']:>5}{m['recall_at_1']:>8.3f}{m['recall_at_3']:>8.3f}{m['mrr']:>8.3f}")
    m = report["overall"]
    lines.append(f"{'ALL':<6}{m['n']:>5}{m['recall_at_1']:>8.3f}{m['recall_at_3']:>8.3f}{m['mrr']:>8.3f}")
    d = report["decisions"]
    lines.append(f"decisions: answer {d['answer']:.1%}  clarify {d['clarify']:.1%}  handoff {d['handoff']:.1%}")
    lines.append(f"answered right {report.get('answered_right', 0.0):.1%}   "
                 f"wrong-answer rate {report['wrong_answer_rate']:.1%}   "
                 f"handoff on 'none' {report['none_handoff_rate']:.1%}   ({report['items']} items)")
    return "\n".join(lines)


# --------------------------------------------------------------------------- held-out evaluation
def question_folds(kb: KnowledgeBase, k: int, seed: int = 0, *, grouped: bool = False) -> list[list[int]]:
    """The knowledge base's example questions (index rows) dealt into ``k`` folds, shuffled by ``seed``.

    ``grouped``: the n-th question of an entry leaves in every language at once. Translations are
    written side by side, so the n-th questions are often near-translations of each other; kept
    apart, a held-out question still finds its own translation in the index, which flatters recall
    (and the dense match then comes from another language, which a real user's question does not
    have).
    """
    rows = [i for i, r in enumerate(kb.rows) if r.kind == "question" and kb.entries[r.entry].status == "published"]
    if not grouped:
        random.Random(seed).shuffle(rows)
        return [sorted(rows[f::k]) for f in range(k)]
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i in rows:
        groups[(kb.rows[i].entry, kb.rows[i].n)].append(i)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    return [sorted(i for key in keys[f::k] for i in groups[key]) for f in range(k)]


def topic_folds(kb: KnowledgeBase, k: int, seed: int = 0) -> list[list[str]]:
    """The topics dealt into ``k`` folds (every entry of a topic leaves the index together)."""
    topics = sorted({e.topic for e in kb.entries if e.status == "published"})
    random.Random(seed).shuffle(topics)
    return [sorted(topics[f::k]) for f in range(min(k, len(topics)))]


def held_out_item(kb: KnowledgeBase, row: int) -> EvalItem:
    """Row ``row`` of the index as an evaluation item: its question, language and topic."""
    r = kb.rows[row]
    entry = kb.entries[r.entry]
    return EvalItem(entry.translations[r.lang].questions[r.n], r.lang, entry.topic)


def holdout_pairs(kb: KnowledgeBase, k: int, *, seed: int = 0, grouped: bool = False,
                  fold_kb: Callable[[KnowledgeBase], KnowledgeBase] | None = None, reembed: bool = False,
                  ) -> Iterator[tuple[int, int, EvalItem, SearchResult]]:
    """(fold, row, item, result) for every example question, asked of the index without its fold.

    A question's own vector (embedded with the query prefix when the index was built) is its query:
    nothing is embedded again. ``reembed``: each question goes through the live query engine
    instead, as a user's would (to judge another engine, e.g. the int8 graph, on the same folds).
    """
    vectors = kb.vectors()
    for f, rows in enumerate(question_folds(kb, k, seed, grouped=grouped)):
        masked = kb.masked(rows=rows)
        if fold_kb is not None:
            masked = fold_kb(masked)
        for row in rows:
            item = held_out_item(kb, row)
            yield f, row, item, masked.search(item.text, item.lang, qvec=None if reembed else vectors[row])


def holdout_topic_pairs(kb: KnowledgeBase, k: int, *, seed: int = 0,
                        fold_kb: Callable[[KnowledgeBase], KnowledgeBase] | None = None,
                        ) -> Iterator[tuple[int, int, EvalItem, SearchResult]]:
    """(fold, row, item, result) for the questions of every topic, asked with the topic's entries removed."""
    vectors = kb.vectors()
    for f, topics in enumerate(topic_folds(kb, k, seed)):
        hidden = [i for i, e in enumerate(kb.entries) if e.topic in topics]
        masked = kb.masked(entries=hidden)
        if fold_kb is not None:
            masked = fold_kb(masked)
        hidden_set = set(hidden)
        for row, r in enumerate(kb.rows):
            if r.kind == "question" and r.entry in hidden_set:
                item = held_out_item(kb, row)
                yield f, row, item, masked.search(item.text, item.lang, qvec=vectors[row])


def holdout_questions(kb: KnowledgeBase, k: int, *, seed: int = 0, grouped: bool = False,
                      reembed: bool = False) -> dict[str, Any]:
    """``kb eval --holdout K``: K-fold over the example questions, each fold removed from the index."""
    report = score((item, result) for _, _, item, result in holdout_pairs(kb, k, seed=seed, grouped=grouped,
                                                                         reembed=reembed))
    report["holdout"] = {"folds": k, "seed": seed, "grouped": grouped, "reembed": reembed}
    return report


def holdout_topics(kb: KnowledgeBase, k: int, *, seed: int = 0) -> dict[str, Any]:
    """``kb eval --holdout-topics K``: whole topics removed in turn, their questions asked.

    Every confident answer here is an answer with another entry: the question's own topic is gone.
    """
    per_lang: dict[str, dict[str, int]] = defaultdict(lambda: {"n": 0, "answer": 0, "clarify": 0, "handoff": 0})
    per_topic: dict[str, dict[str, int]] = defaultdict(lambda: {"n": 0, "answer": 0})
    answered: dict[str, int] = defaultdict(int)
    total = {"n": 0, "answer": 0, "clarify": 0, "handoff": 0}
    for _, _, item, result in holdout_topic_pairs(kb, k, seed=seed):
        for bucket in (total, per_lang[item.lang]):
            bucket["n"] += 1
            bucket[result.decision] += 1
        per_topic[item.topic]["n"] += 1
        per_topic[item.topic]["answer"] += result.decision == "answer"
        if result.decision == "answer" and result.answer is not None:
            answered[f"{item.topic} -> {result.answer.topic}"] += 1

    def shares(b: dict[str, int]) -> dict[str, float]:
        n = b["n"] or 1
        return {"n": b["n"], "answered_other": round(b["answer"] / n, 4), "clarify": round(b["clarify"] / n, 4),
                "handoff": round(b["handoff"] / n, 4)}

    return {
        "holdout_topics": {"folds": k, "seed": seed, "topics": len(per_topic)},
        "overall": shares(total),
        "per_language": {lang: shares(b) for lang, b in sorted(per_lang.items())},
        "per_topic": {t: round(b["answer"] / (b["n"] or 1), 4) for t, b in sorted(per_topic.items())},
        "confusions": dict(sorted(answered.items(), key=lambda kv: -kv[1])[:15]),
    }


def format_topics_report(report: dict[str, Any]) -> str:
    lines = [f"{'lang':<6}{'n':>6}{'answered other':>16}{'clarify':>9}{'handoff':>9}"]
    rows = [*report["per_language"].items(), ("ALL", report["overall"])]
    for lang, m in rows:
        lines.append(f"{lang:<6}{m['n']:>6}{m['answered_other']:>16.1%}{m['clarify']:>9.1%}{m['handoff']:>9.1%}")
    h = report["holdout_topics"]
    lines.append(f"{h['topics']} topics in {h['folds']} folds (seed {h['seed']}): a confident answer here is an "
                 "answer with another entry")
    for pair, n in report["confusions"].items():
        lines.append(f"  {n:>4}  {pair}")
    return "\n".join(lines)
