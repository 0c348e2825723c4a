"""Latency of ``nlu`` on top of the one embedding it needs: the budget is p95 <= 15 ms.

    .venv/bin/python -m bench.nlu_bench [--repeat 3] [--files FILE ...]

Runs every message of the evaluation files (``shared/eval`` and ``tests/nlu/data/heldout.yaml``)
plus odd inputs (empty, emoji, 10,000 characters) through ``Understander.understand`` and prints
p50/p95/max of: the whole call, the embedding inside it, and the difference — nlu's own cost
(language identification, rules, nearest-example scoring, entities). Repeated messages hit the
embedder's query cache, which is why the embedding column is reported separately. Figures, never
assertions. The model directory comes from ``HAMROH_MODEL_DIR`` (default
``data/models/multilingual-e5-small``).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml

import nlu

__all__ = ["main", "run"]

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FILES = (
    ROOT.parent / "shared" / "eval" / "retrieval-dev.yaml",
    ROOT.parent / "shared" / "eval" / "dialogue-acts-dev.yaml",
    ROOT / "tests" / "nlu" / "data" / "heldout.yaml",
)
ODD = ("", "😀😀", "a" * 10_000, "помогите " * 1_000, "Привет hello سلام হ্যালো", "\x00\x01junk\ufffe")


class _TimedEmbedder:
    """Wraps the real embedder and records how long each call took."""

    def __init__(self, inner: nlu.QueryEmbedder) -> None:
        self.inner = inner
        self.last = 0.0

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        start = time.perf_counter()
        out = self.inner.embed_queries(texts)
        self.last += time.perf_counter() - start
        return out


def _open_embedder() -> nlu.QueryEmbedder:
    model_dir = Path(os.environ.get("HAMROH_MODEL_DIR", ROOT / "data" / "models" / "multilingual-e5-small"))
    from knowledge_base import SplitEngineEmbedder

    # No query cache: every message pays a real embedding, as a new message does in production.
    return SplitEngineEmbedder(model_dir, cache_size=0)


def _messages(files: Sequence[Path]) -> list[str]:
    texts: list[str] = []
    for path in files:
        if path.exists():
            texts += [str(item["text"]) for item in yaml.safe_load(path.read_text(encoding="utf-8"))]
    return texts + list(ODD)


def _row(name: str, values_s: Sequence[float]) -> str:
    ms = np.asarray(values_s) * 1000.0
    return f"{name:<22}{np.percentile(ms, 50):>9.2f}{np.percentile(ms, 95):>9.2f}{ms.max():>9.2f}"


def run(files: Sequence[Path] = DEFAULT_FILES, repeat: int = 3) -> int:
    """Measure and print the table; returns a process exit code."""
    embedder = _TimedEmbedder(_open_embedder())
    understander = nlu.Understander(embedder, cache_dir=ROOT / "data" / "cache")
    start = time.perf_counter()
    understander.warm_up()
    warm = time.perf_counter() - start
    messages = _messages(files)
    total: list[float] = []
    embedding: list[float] = []
    own: list[float] = []
    rules_only = 0
    for _ in range(repeat):
        for text in messages:
            embedder.last = 0.0
            start = time.perf_counter()
            understander.understand(text, nlu.LanguageHint(chosen="ru", current="ru"))
            elapsed = time.perf_counter() - start
            total.append(elapsed)
            embedding.append(embedder.last)
            own.append(elapsed - embedder.last)
            rules_only += embedder.last == 0.0
    print(f"nlu bench: {len(messages)} messages x {repeat}, warm-up {warm:.1f} s "
          f"({rules_only / len(total):.0%} settled by rules without embedding)")
    print(f"{'ms':<22}{'p50':>9}{'p95':>9}{'max':>9}")
    print(_row("understand (total)", total))
    print(_row("  embedding", embedding))
    print(_row("  nlu on top", own))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--files", nargs="*", type=Path, default=list(DEFAULT_FILES))
    args = parser.parse_args(argv)
    return run(args.files, args.repeat)


if __name__ == "__main__":
    raise SystemExit(main())
