"""Evaluation of language identification and dialogue acts on a labelled YAML file.

The files are those of ``shared/eval`` (a YAML list of items with ``text``, ``lang`` and optionally
``expect``). Language is measured on the text alone, with no hint, because that is the hard case: a
first message. ``hamroh nlu eval FILE [--json]`` prints :func:`format_report` or the dict itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from ._data import NluDataError
from ._types import ACTS
from ._understand import Understander

__all__ = ["evaluate_file", "evaluate_items", "format_report"]


def _load_items(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise NluDataError(f"{path}: cannot be read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise NluDataError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(data, list):
        raise NluDataError(f"{path}: expected a YAML list of items")
    items = []
    for i, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("text"), str) or "lang" not in item:
            raise NluDataError(f"{path}: item {i} needs 'text' and 'lang'")
        if "expect" in item and item["expect"] not in ACTS:
            raise NluDataError(f"{path}: item {i}: unknown expect {item['expect']!r}")
        items.append(item)
    return items


def evaluate_file(path: str | Path, understander: Understander, *, details: bool = False) -> dict[str, Any]:
    """Language accuracy (overall and per language) and, when items have ``expect``, act metrics.

    Returns ``{"language": {"n", "accuracy", "per_language": {LANG: {"n", "accuracy"}}},
    "acts": {"n", "crisis_recall", "false_crisis_rate", "accuracy", "per_act"}}``; ``acts`` is
    present only if some item has ``expect``. ``accuracy`` of acts is over non-crisis items.
    With ``details`` a ``"mistakes"`` list names each wrong item.
    """
    return evaluate_items(_load_items(path), understander, details=details)


def evaluate_items(
    items: Iterable[Mapping[str, Any]], understander: Understander, *, details: bool = False
) -> dict[str, Any]:
    """:func:`evaluate_file` on items already loaded."""
    lang_n: Counter[str] = Counter()
    lang_ok: Counter[str] = Counter()
    act_n: Counter[str] = Counter()
    act_ok: Counter[str] = Counter()
    crisis_predicted_on_safe = 0
    mistakes: list[dict[str, Any]] = []
    for item in items:
        text, lang = str(item["text"]), str(item["lang"])
        result = understander.understand(text)
        lang_n[lang] += 1
        lang_ok[lang] += result.lang == lang
        if result.lang != lang:
            mistakes.append({"text": text, "field": "lang", "expected": lang, "got": result.lang})
        expect = item.get("expect")
        if expect is None:
            continue
        act_n[expect] += 1
        act_ok[expect] += result.act == expect
        if expect != "crisis" and result.act == "crisis":
            crisis_predicted_on_safe += 1
        if result.act != expect:
            mistakes.append({"text": text, "field": "act", "expected": expect, "got": result.act})
    total = sum(lang_n.values())
    report: dict[str, Any] = {
        "language": {
            "n": total,
            "accuracy": _ratio(sum(lang_ok.values()), total),
            "per_language": {
                lang: {"n": n, "accuracy": _ratio(lang_ok[lang], n)} for lang, n in sorted(lang_n.items())
            },
        }
    }
    if act_n:
        safe_n = sum(n for act, n in act_n.items() if act != "crisis")
        safe_ok = sum(ok for act, ok in act_ok.items() if act != "crisis")
        report["acts"] = {
            "n": sum(act_n.values()),
            "crisis_recall": _ratio(act_ok["crisis"], act_n["crisis"]) if act_n["crisis"] else None,
            "false_crisis_rate": _ratio(crisis_predicted_on_safe, safe_n) if safe_n else None,
            "accuracy": _ratio(safe_ok, safe_n) if safe_n else None,
            "per_act": {act: {"n": act_n[act], "accuracy": _ratio(act_ok[act], act_n[act])} for act in ACTS
                        if act_n[act]},
        }  # fmt: skip
    if details:
        report["mistakes"] = mistakes
    return report


def _ratio(num: int, den: int) -> float:
    return round(num / den, 4) if den else 0.0


def format_report(report: Mapping[str, Any]) -> str:
    """A plain-text table of :func:`evaluate_file`'s result, for the terminal."""
    lines = []
    language = report["language"]
    lines.append(f"Language identification (no hint): {language['accuracy']:.3f} on {language['n']} items")
    lines.append(f"  {'lang':<6}{'n':>5}{'accuracy':>10}")
    for lang, row in language["per_language"].items():
        lines.append(f"  {lang:<6}{row['n']:>5}{row['accuracy']:>10.3f}")
    acts = report.get("acts")
    if acts:
        lines.append("")
        lines.append(f"Dialogue acts: {acts['n']} items")
        for key, label in (
            ("crisis_recall", "crisis recall"),
            ("false_crisis_rate", "false-crisis rate"),
            ("accuracy", "accuracy of other acts"),
        ):
            value = acts[key]
            lines.append(f"  {label:<24}{'n/a' if value is None else f'{value:.3f}':>8}")
        lines.append(f"  {'act':<12}{'n':>5}{'accuracy':>10}")
        for act, row in acts.get("per_act", {}).items():
            lines.append(f"  {act:<12}{row['n']:>5}{row['accuracy']:>10.3f}")
    mistakes = report.get("mistakes")
    if mistakes:
        lines.append("")
        lines.append("Mistakes:")
        for m in mistakes:
            lines.append(f"  [{m['field']}] expected {m['expected']}, got {m['got']}: {m['text']}")
    return "\n".join(lines)
