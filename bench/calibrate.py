"""Calibrate search by measurement: channel weights, the answerability model, decision thresholds.

Three steps, each printing what to put under ``search:`` in config.yml:

    python -m bench.calibrate weights [--holdout 5]
    python -m bench.calibrate answerability [--holdout 5 --holdout-topics 5 --max-other 0.10]
    python -m bench.calibrate thresholds ../shared/eval/retrieval-dev.yaml [--max-wrong 0.02] [--min-none 0.9]

``weights``: the reciprocal-rank-fusion weights of the dense, BM25 and character n-gram rankings, per
language, chosen on the knowledge base's own example questions held out K-fold (each fold removed
from the index and asked; ``hamroh kb eval --holdout K``). The channels are searched once per fold
and the fusion replayed under a small grid; a language keeps its own weights only when they beat the
global ones on the folds they were not chosen on (cross-fitted), so a handful of lucky questions
cannot pick them.

``answerability``: a logistic model on features of the top entry (dense cosine and gaps, the rank
fusion's margin, agreement of the three channels, how much of the question's vocabulary the entry
uses, per-script offsets), fitted on held-out questions whose top entry is right (positives) or
wrong, plus the questions of whole topics removed from the index (``--holdout-topics K``: the top
entry is then always another topic's). The threshold is the lowest probability at which confident
answers with another entry stay under ``--max-other`` of the removed topics' questions; figures are
reported cross-fitted (the model that judges a fold never saw it) next to the in-sample ones.

``thresholds``: the original grid over the decision thresholds on an evaluation file, replayed on
cached searches.
"""

from __future__ import annotations

import argparse
import itertools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.settings import Settings, load_settings
from knowledge_base import (
    ChannelWeights,
    DecisionThresholds,
    KnowledgeBase,
    evaluate,
    fuse,
    held_out_item,
    holdout_pairs,
    holdout_topic_pairs,
    load_eval_items,
    question_folds,
)

__all__ = ["cross_fitted_rule", "main", "rule_vector"]

BM25_GRID = (0.0, 0.1, 0.3, 0.6, 1.0)
CHAR_GRID = (0.0, 0.3, 0.6, 1.0, 1.5, 2.0, 3.0, 4.0)
#: with score fusion the weights multiply a cosine (char) and a share of the best BM25 score
SCORE_BM25_GRID = (0.0, 0.02, 0.05)
SCORE_CHAR_GRID = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5)


def _open(settings: Settings, *, strict: bool) -> KnowledgeBase:
    from bot.services import load_content, open_embedder, open_knowledge_base

    if strict:
        return open_knowledge_base(settings)
    return KnowledgeBase.open(load_content(settings).published, open_embedder(settings), settings.index,
                              settings.search, root=settings.root, fallbacks=settings.fallback_chains,
                              default_lang=settings.default_language)


# --------------------------------------------------------------------------- weights
@dataclass
class _Q:
    fold: int
    lang: str
    topic: str
    dense: dict[int, float]
    lexical: dict[int, float]
    chars: dict[int, float]


_MODE = ["rrf"]


def _fuse_top(q: _Q, w: ChannelWeights, rrf_k: int) -> int | None:
    fused = fuse(_MODE[0], rrf_k, w.dense, w.bm25, w.char, q.dense, q.lexical, q.chars)
    if not fused:
        return None
    return min(fused, key=lambda e: (-fused[e], -q.dense.get(e, 0.0)))


def _r1(qs: Sequence[_Q], w: ChannelWeights, rrf_k: int, topics: Sequence[str]) -> float:
    if not qs:
        return 0.0
    hits = 0
    for q in qs:
        top = _fuse_top(q, w, rrf_k)
        hits += top is not None and topics[top] == q.topic
    return hits / len(qs)


def _best(qs: Sequence[_Q], rrf_k: int, topics: Sequence[str]) -> tuple[ChannelWeights, float]:
    best: tuple[float, float, ChannelWeights] | None = None
    grid = itertools.product(*((BM25_GRID, CHAR_GRID) if _MODE[0] == "rrf" else (SCORE_BM25_GRID, SCORE_CHAR_GRID)))
    for b, c in grid:
        w = ChannelWeights(dense=1.0, bm25=b, char=c)
        r1 = _r1(qs, w, rrf_k, topics)
        # ties: the lighter lexical weights
        key = (round(r1, 4), -b - c)
        if best is None or key > best[:2]:
            best = (key[0], key[1], w)
    assert best is not None
    return best[2], best[0]


def cmd_weights(settings: Settings, args: argparse.Namespace) -> int:
    _MODE[0] = args.fusion or settings.search.fusion
    kb = _open(settings, strict=args.strict)
    topics = [e.topic for e in kb.entries]
    vectors = kb.vectors()
    qs: list[_Q] = []
    for f, rows in enumerate(question_folds(kb, args.holdout, args.seed, grouped=args.grouped)):
        masked = kb.masked(rows=rows)
        for row in rows:
            item = held_out_item(kb, row)
            dense, lexical, chars = masked.channels(item.text, vectors[row])
            qs.append(_Q(f, item.lang, item.topic, dense, lexical, chars))
    rrf_k = settings.search.rrf_k
    shipped = settings.search
    default = ChannelWeights(dense=shipped.dense_weight, bm25=shipped.bm25_weight, char=shipped.char_weight)
    by_lang: dict[str, list[_Q]] = defaultdict(list)
    for q in qs:
        by_lang[q.lang].append(q)
    glob, glob_r1 = _best(qs, rrf_k, topics)
    if args.keep_global:
        glob, glob_r1 = default, _r1(qs, default, rrf_k, topics)
    print(f"{len(qs)} held-out questions in {args.holdout} folds{' (grouped)' if args.grouped else ''}; "
          f"fusion {_MODE[0]}, rrf_k {rrf_k}")
    label = "global (configured)" if args.keep_global else "global best"
    print(f"{label}: dense {glob.dense} bm25 {glob.bm25} char {glob.char}: R@1 {glob_r1:.3f} "
          f"(shipped before: {_r1(qs, default, rrf_k, topics):.3f})")
    chosen: dict[str, ChannelWeights] = {}
    print(f"{'lang':<6}{'n':>6}{'before':>8}{'global':>8}{'own':>8}{'own (cross-fitted)':>20}  weights")
    for lang, lq in sorted(by_lang.items()):
        own, own_r1 = _best(lq, rrf_k, topics)
        # cross-fitted: pick on the other folds, score on this one
        hits = 0
        for f in range(args.holdout):
            train = [q for q in lq if q.fold != f]
            test = [q for q in lq if q.fold == f]
            w, _ = _best(train, rrf_k, topics)
            hits += round(_r1(test, w, rrf_k, topics) * len(test))
        cross = hits / len(lq)
        g = _r1(lq, glob, rrf_k, topics)
        keep = cross > g + 0.01 and len(lq) >= 50
        if keep:
            chosen[lang] = own
        print(f"{lang:<6}{len(lq):>6}{_r1(lq, default, rrf_k, topics):>8.3f}{g:>8.3f}{own_r1:>8.3f}{cross:>20.3f}  "
              f"bm25 {own.bm25} char {own.char}{'  <- kept' if keep else ''}")
    total = sum(_r1([q], chosen.get(q.lang, glob), rrf_k, topics) for q in qs) / len(qs)
    print(f"with the kept per-language weights: R@1 {total:.3f}")
    print("\nsearch:")
    print(f"  fusion: {_MODE[0]}")
    print(f"  dense_weight: {glob.dense}\n  bm25_weight: {glob.bm25}\n  char_weight: {glob.char}")
    if chosen:
        print("  channel_weights:")
        for lang, w in sorted(chosen.items()):
            print(f"    {lang}: {{dense: {w.dense}, bm25: {w.bm25}, char: {w.char}}}")
    return 0


# --------------------------------------------------------------------------- answerability
FEATURES = ("dense", "gap", "margin", "agree", "coverage", "coverage_all", "char", "oos_gap", "support", "second",
            "same_lang", "bm25_rr", "char_rr")
SCRIPTS = ("Latn", "Cyrl", "Arab", "Beng", "Sinh", "Taml")


_USED: list[str] = list(FEATURES)


def _vector(features: dict[str, float]) -> list[float]:
    return [features.get(n, 0.0) for n in _USED] + [features.get(f"script:{s}", 0.0) for s in SCRIPTS]


def _names() -> list[str]:
    return list(_USED) + [f"script:{s}" for s in SCRIPTS]


def _fit(x: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=2000)
    model.fit(x, y)
    return model.coef_[0], float(model.intercept_[0])


def _prob(x: np.ndarray, coef: np.ndarray, bias: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(x @ coef + bias)))


def rule_vector(features: dict[str, float]) -> list[float]:
    """The answerability features in the model's order (``FEATURES`` then the scripts)."""
    return _vector(features)


def cross_fitted_rule(xq: np.ndarray, yq: np.ndarray, xt: np.ndarray, at: np.ndarray, fq: np.ndarray,
                      ft: np.ndarray, *, max_other: float, c: float = 10.0,
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Probabilities and thresholds for every row, each fold's from a model fitted on the other folds.

    ``xq``/``yq``: held-out questions' features and whether their top entry is right; ``xt``/``at``:
    removed topics' questions' features and whether the rest of the decision would answer them. A
    fold's threshold is the lowest keeping the other folds' removed-topic answers under ``max_other``.
    Returns (question probabilities, their thresholds, removed-topic probabilities, their thresholds).
    """
    x = np.vstack([xq, xt])
    y = np.concatenate([yq, np.zeros(len(xt), dtype=np.int64)])
    folds = np.concatenate([fq, ft])
    pq, tq = np.zeros(len(xq)), np.zeros(len(xq))
    pt, tt = np.zeros(len(xt)), np.zeros(len(xt))
    for f in sorted(set(folds.tolist())):
        coef, bias = _fit(x[folds != f], y[folds != f], c)
        p_train_t = _prob(xt[ft != f], coef, bias)
        thr = 1.0
        for cand in np.arange(0.0, 1.0001, 0.01):
            if np.mean(at[ft != f] & (p_train_t >= cand)) <= max_other:
                thr = float(cand)
                break
        pq[fq == f] = _prob(xq[fq == f], coef, bias)
        pt[ft == f] = _prob(xt[ft == f], coef, bias)
        tq[fq == f] = thr
        tt[ft == f] = thr
    return pq, tq, pt, tt


def cmd_answerability(settings: Settings, args: argparse.Namespace) -> int:
    if args.features:
        _USED[:] = [f for f in args.features.split(",") if f]
    # the rule is fitted with the gate off: every candidate answer, its features, its outcome
    settings = settings.model_copy(update={"search": settings.search.model_copy(update={
        "answerability": {"bias": 10.0},  # always "answerable": features computed, gate open
        "thresholds": settings.search.thresholds.model_copy(update={"answerable_min": 0.0})})})
    kb = _open(settings, strict=args.strict)
    rows_q: list[dict[str, Any]] = []
    for f, _, item, res in holdout_pairs(kb, args.holdout, seed=args.seed, grouped=args.grouped):
        rows_q.append({"fold": f, "lang": item.lang, "features": res.features, "answered": res.decision == "answer",
                       "right": res.top_topic == item.topic})
    rows_t: list[dict[str, Any]] = []
    for f, _, item, res in holdout_topic_pairs(kb, args.holdout_topics, seed=args.seed):
        rows_t.append({"fold": f, "lang": item.lang, "features": res.features, "answered": res.decision == "answer",
                       "right": False})
    xq = np.array([_vector(r["features"]) for r in rows_q], dtype=np.float64)
    xt = np.array([_vector(r["features"]) for r in rows_t], dtype=np.float64)
    yq = np.array([r["right"] for r in rows_q], dtype=np.int64)
    aq = np.array([r["answered"] for r in rows_q])
    at = np.array([r["answered"] for r in rows_t])
    x = np.vstack([xq, xt])
    y = np.concatenate([yq, np.zeros(len(xt), dtype=np.int64)])
    folds = np.concatenate([[r["fold"] for r in rows_q], [r["fold"] for r in rows_t]])
    print(f"{len(xq)} held-out questions (top entry right: {yq.mean():.1%}), {len(xt)} questions of removed topics")
    print(f"gate off: answered right {np.mean(aq & (yq == 1)):.1%}, wrong {np.mean(aq & (yq == 0)):.1%}, "
          f"removed topics answered with another entry {np.mean(at):.1%}")

    def choose(pt: np.ndarray) -> float:
        """The lowest threshold keeping removed-topic answers under the cap."""
        for thr in np.arange(0.0, 1.0001, 0.01):
            if np.mean(at & (pt >= thr)) <= args.max_other:
                return float(thr)
        return 1.0

    # cross-fitted: the model and its threshold for fold f come from the other folds
    pq_cf, thr_cf, pt_cf, thr_t_cf = cross_fitted_rule(xq, yq, xt, at, folds[:len(xq)], folds[len(xq):],
                                                       max_other=args.max_other, c=args.c)
    print(f"cross-fitted: answered right {np.mean(aq & (yq == 1) & (pq_cf >= thr_cf)):.1%}, "
          f"wrong {np.mean(aq & (yq == 0) & (pq_cf >= thr_cf)):.1%}, removed topics answered with another entry "
          f"{np.mean(at & (pt_cf >= thr_t_cf)):.1%}")
    coef, bias = _fit(x, y, args.c)
    pq, pt = _prob(xq, coef, bias), _prob(xt, coef, bias)

    thr = choose(pt)
    print(f"in-sample (all folds): threshold {thr:.2f}: answered right {np.mean(aq & (yq == 1) & (pq >= thr)):.1%}, "
          f"wrong {np.mean(aq & (yq == 0) & (pq >= thr)):.1%}, removed topics answered with another entry "
          f"{np.mean(at & (pt >= thr)):.1%}")
    if args.dev:
        items = load_eval_items(args.dev)
        results = [kb.search(it.text, it.lang) for it in items]
        for label, (cf, bf, tf) in (("in-sample model", (coef, bias, thr)),):
            right = wrong = none_answered = answerable = 0
            for it, res in zip(items, results, strict=True):
                p = float(_prob(np.array([_vector(res.features)]), cf, bf)[0]) if res.features else 0.0
                answered = res.decision == "answer" and p >= tf
                if it.topic == "none":
                    none_answered += answered
                    wrong += answered
                    continue
                answerable += 1
                right += answered and res.top_topic == it.topic
                wrong += answered and res.top_topic != it.topic
            print(f"dev set ({args.dev}), {label}: answered right {right / answerable:.1%}, "
                  f"wrong {wrong / len(items):.1%}, 'none' answered {none_answered}")
    print("\nsearch:\n  answerability:")
    print(f"    bias: {bias:.3f}")
    for name, w in zip(_names(), coef, strict=True):
        print(f"    {name}: {w:.3f}")
    print(f"  thresholds:\n    answerable_min: {thr:.2f}")
    return 0


# --------------------------------------------------------------------------- thresholds
def cmd_thresholds(settings: Settings, args: argparse.Namespace) -> int:
    kb = _open(settings, strict=args.strict)
    items = load_eval_items(args.file)
    if args.covered_only:
        covered = {e.topic for e in kb.entries}
        items = [i for i in items if i.topic == "none" or i.topic in covered]
    cached = {i: kb.search(item.text, item.lang) for i, item in enumerate(items)}
    grid = itertools.product([0.78, 0.80, 0.82, 0.84, 0.86],  # handoff_below
                             [0.84, 0.86, 0.88, 0.90],  # answer_min
                             [0.0, 0.01, 0.02, 0.03, 0.05],  # answer_gap
                             [0.0, 0.03, 0.06, 0.1],  # answer_margin
                             [-0.02, 0.0, 0.02, 0.04])  # out_of_scope_margin
    best = None
    rows = []
    for h, a, g, m, o in grid:
        if h > a:
            continue
        kb.config = kb.config.model_copy(update={"thresholds": DecisionThresholds(
            handoff_below=h, answer_min=a, answer_gap=g, answer_margin=m, out_of_scope_margin=o,
            clarify_within=settings.search.thresholds.clarify_within,
            answerable_min=settings.search.thresholds.answerable_min)})
        report = evaluate(items, lambda it: kb._decide(cached[items.index(it)].hits, it.lang,
                                                     cached[items.index(it)].out_of_scope,
                                                     cached[items.index(it)].features))
        ok = report["wrong_answer_rate"] <= args.max_wrong and report["none_handoff_rate"] >= args.min_none
        score = (report["decisions"]["answer"], h + a + g + m + o)
        rows.append((ok, score, (h, a, g, m, o), report))
        if ok and (best is None or score > best[0]):
            best = (score, (h, a, g, m, o), report)
    print(f"{len(rows)} settings tried, {sum(r[0] for r in rows)} admissible")
    if best is None:
        print("no setting meets the constraints")
        return 1
    # Generalise: among settings answering nearly as often as the best (within --slack), take the
    # most cautious one, so unseen phrasings meet higher bars before they get a confident answer.
    near = [r for r in rows if r[0] and r[1][0] >= best[0][0] - args.slack]
    cautious = max(near, key=lambda r: (r[2][0] + r[2][1] + 4 * r[2][2] + r[2][3] + r[2][4], r[1][0]))
    best = (cautious[1], cautious[2], cautious[3])
    _, (h, a, g, m, o), report = best
    print(f"best: handoff_below={h} answer_min={a} answer_gap={g} answer_margin={m} out_of_scope_margin={o}")
    print(f"  answer {report['decisions']['answer']:.1%} clarify {report['decisions']['clarify']:.1%} "
          f"handoff {report['decisions']['handoff']:.1%} wrong {report['wrong_answer_rate']:.1%} "
          f"none->handoff {report['none_handoff_rate']:.1%} R@1 {report['overall']['recall_at_1']:.3f}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.calibrate", description=__doc__.split("\n\n")[0])
    p.add_argument("--strict", action="store_true", help="refuse content with validation errors (as the server)")
    sub = p.add_subparsers(dest="step", required=True)
    w = sub.add_parser("weights", help="channel weights per language on held-out folds")
    w.add_argument("--holdout", type=int, default=5)
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--grouped", action="store_true", help="hold out the n-th question in every language at once")
    w.add_argument("--fusion", choices=["rrf", "score"], help="default: search.fusion of the configuration")
    w.add_argument("--keep-global", action="store_true",
                   help="keep the configured global weights; only decide which languages get their own")
    w.set_defaults(func=cmd_weights)
    a = sub.add_parser("answerability", help="the answerability model and its threshold")
    a.add_argument("--holdout", type=int, default=5)
    a.add_argument("--holdout-topics", type=int, default=5)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--grouped", action="store_true", help="hold out the n-th question in every language at once")
    a.add_argument("--max-other", type=float, default=0.10,
                   help="cap on confident answers with another entry for removed topics' questions")
    a.add_argument("--dev", help="also report the fitted rule on this evaluation file (e.g. retrieval-dev.yaml)")
    a.add_argument("--features", help=f"comma-separated subset of {','.join(FEATURES)}")
    a.add_argument("--c", type=float, default=10.0, help="inverse L2 strength of the logistic model")
    a.set_defaults(func=cmd_answerability)
    t = sub.add_parser("thresholds", help="the decision thresholds on an evaluation file")
    t.add_argument("file")
    t.add_argument("--max-wrong", type=float, default=0.02)
    t.add_argument("--min-none", type=float, default=0.9)
    t.add_argument("--slack", type=float, default=0.05, help="answer-rate loss accepted for caution")
    t.add_argument("--covered-only", action="store_true", help="only items whose topic has an entry, and 'none'")
    t.set_defaults(func=cmd_thresholds)
    args = p.parse_args(argv)
    return int(args.func(load_settings(), args))


if __name__ == "__main__":
    raise SystemExit(main())
