"""Retrieval evaluation on files in the format of ``../shared/eval/retrieval-dev.yaml``.

The figures are the ones a migrant feels: is the right answer first (Recall@1), among the buttons
(Recall@3), how often do we answer confidently with the wrong topic, and do off-topic questions go
to a counsellor instead of getting a curated answer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ._search import SearchResult

__all__ = ["EvalItem", "evaluate", "format_report", "load_eval_items"]


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
    per_lang: dict[str, list[int | None]] = defaultdict(list)
    overall: list[int | None] = []
    decisions = {"answer": 0, "clarify": 0, "handoff": 0}
    wrong = 0
    none_total = none_handoff = 0
    failures: list[dict[str, Any]] = []
    count = 0
    for item in items:
        count += 1
        result = search(item)
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
        if rank != 0 or answered_wrong or result.decision != "answer":
            failures.append({"text": item.text, "lang": item.lang, "expected": item.topic,
                             "got": topics[:3], "decision": result.decision, "reason": result.reason})
    return {
        "overall": _metrics(overall),
        "per_language": {lang: _metrics(r) for lang, r in sorted(per_lang.items())},
        "decisions": {k: round(v / count, 4) if count else 0.0 for k, v in decisions.items()},
        "wrong_answer_rate": round(wrong / count, 4) if count else 0.0,
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
    lines.append(f"wrong-answer rate {report['wrong_answer_rate']:.1%}   "
                 f"handoff on 'none' {report['none_handoff_rate']:.1%}   ({report['items']} items)")
    return "\n".join(lines)
