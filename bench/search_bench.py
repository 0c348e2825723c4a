"""``hamroh bench search``: latency, memory and build time at 10k entries; a 1M-vector scale run.

Printed figures, never assertions. Content is expanded synthetically: each real entry is cloned
with its real vectors slightly perturbed (so the index has realistic neighbourhoods without
embedding a million texts) and its texts tagged so BM25 sees distinct documents.
"""

from __future__ import annotations

import gc
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from bot.services import load_content, open_embedder, open_knowledge_base
from bot.settings import Settings
from knowledge_base import FaissIndex, IndexConfig, KnowledgeBase

__all__ = ["run"]


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q))


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def _perturb(vectors: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    noisy = vectors + rng.normal(scale=sigma, size=vectors.shape).astype(np.float32)
    return noisy / np.linalg.norm(noisy, axis=1, keepdims=True)


def _real_vectors(kb: KnowledgeBase) -> np.ndarray:
    return kb.index.vectors()


def _expand(kb: KnowledgeBase, n_entries: int, rng: np.random.Generator, index_config: IndexConfig,
            cache_dir: Path | None = None) -> KnowledgeBase:
    real = kb.entries
    vectors = _real_vectors(kb)
    rows_by_entry: dict[int, list[int]] = {}
    for i, row in enumerate(kb.rows):
        rows_by_entry.setdefault(row.entry, []).append(i)
    entries: list[Any] = []
    rows: list[Any] = []
    chunks: list[np.ndarray] = []
    for n in range(n_entries):
        src_idx = n % len(real)
        src = real[src_idx]
        tag = f"syn{n}"
        translations = {lang: tr.model_copy(update={"questions": [f"{q} {tag}" for q in tr.questions]})
                        for lang, tr in src.translations.items()}
        entries.append(src.model_copy(update={"id": f"{src.id}-{tag}", "translations": translations}))
        src_rows = rows_by_entry[src_idx]
        chunks.append(_perturb(vectors[src_rows], rng, 0.02) if n >= len(real) else vectors[src_rows])
        rows.extend(type(kb.rows[0])(n, kb.rows[r].lang, kb.rows[r].kind) for r in src_rows)
    all_vectors = np.concatenate(chunks)
    del chunks
    cfg = kb.config
    t0 = time.perf_counter()
    index = FaissIndex.build(all_vectors, approximate_above=index_config.approximate_above,
                             hnsw_m=index_config.hnsw_m, ef_construction=index_config.hnsw_ef_construction,
                             ef_search=index_config.hnsw_ef_search, storage=index_config.storage,
                             approximate_storage=index_config.approximate_storage)
    del all_vectors
    build = time.perf_counter() - t0
    # the out-of-scope examples' vectors come from the real index's cache: no model call here
    big = KnowledgeBase(entries, kb.embedder, index, rows, cfg, fallbacks=kb.fallbacks, cache_dir=cache_dir)
    big.bench_build_seconds = build  # type: ignore[attr-defined]
    return big


def _latency(kb: KnowledgeBase, questions: list[tuple[str, str]], n: int) -> list[float]:
    times = []
    for i in range(n):
        text, lang = questions[i % len(questions)]
        text = f"{text} {i}"  # defeat the query cache: every search embeds its question
        t0 = time.perf_counter()
        kb.search(text, lang)
        times.append(time.perf_counter() - t0)
    return times


def _scale(settings: Settings, base_vectors: np.ndarray, n: int, rng: np.random.Generator,
           queries: int) -> dict[str, Any]:
    # points on the manifold the real vectors span: mixtures of two real vectors plus small noise
    a = base_vectors[rng.integers(0, len(base_vectors), n)]
    b = base_vectors[rng.integers(0, len(base_vectors), n)]
    w = rng.uniform(0.0, 1.0, size=(n, 1)).astype(np.float32)
    data = _perturb(w * a + (1 - w) * b, rng, 0.015)
    t0 = time.perf_counter()
    approx = FaissIndex.build(data, approximate_above=1, hnsw_m=settings.index.hnsw_m,
                              ef_construction=settings.index.hnsw_ef_construction,
                              ef_search=settings.index.hnsw_ef_search,
                              approximate_storage=settings.index.approximate_storage)
    build = time.perf_counter() - t0
    exact = FaissIndex.build(data, approximate_above=n + 1)
    qs = _perturb(base_vectors[rng.integers(0, len(base_vectors), queries)], rng, 0.015)
    _, truth = exact.search(qs, 10)
    times, found = [], []
    for i in range(queries):
        t0 = time.perf_counter()
        _, ids = approx.search(qs[i:i + 1], 10)
        times.append(time.perf_counter() - t0)
        found.append(len(set(ids[0]) & set(truth[i])) / 10)
    return {"vectors": n, "build_s": build, "p50_ms": _pct(times, 50), "p95_ms": _pct(times, 95),
            "recall_at_10": float(np.mean(found))}


def run(settings: Settings, *, entries: int = 10_000, scale_vectors: int = 1_000_000, queries: int = 500,
        rebuild: bool = True) -> int:
    rng = np.random.default_rng(7)
    random.seed(7)
    rss0 = _rss_mb()
    embedder = open_embedder(settings)
    t0 = time.perf_counter()
    kb = open_knowledge_base(settings, embedder=embedder, rebuild=rebuild)
    real_build = time.perf_counter() - t0
    questions = [(q, lang) for e in load_content(settings).published for lang, tr in e.translations.items()
                 for q in tr.questions]
    random.shuffle(questions)
    small = _latency(kb, questions, min(queries, 200))
    rss_small = _rss_mb()
    big = _expand(kb, entries, rng, settings.index, settings.path(settings.index.dir))
    gc.collect()
    _latency(big, questions, 20)  # warm-up
    lat = _latency(big, questions, queries)
    rss_big = _rss_mb()
    print("hamroh bench search (2 cores; single in-process searches incl. query embedding)")
    print(f"{'corpus':<34}{'vectors':>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'build s':>9}{'RSS MB':>9}")
    print(f"{f'shipped content ({len(kb.entries)} entries)':<34}{kb.index.size:>10}{_pct(small, 50):>9.1f}"
          f"{_pct(small, 95):>9.1f}{_pct(small, 99):>9.1f}{real_build:>9.1f}{rss_small:>9.0f}")
    print(f"{f'synthetic {entries} entries ({big.index.kind})':<34}{big.index.size:>10}{_pct(lat, 50):>9.1f}"
          f"{_pct(lat, 95):>9.1f}{_pct(lat, 99):>9.1f}{big.bench_build_seconds:>9.1f}{rss_big:>9.0f}")  # type: ignore[attr-defined]
    print(f"(process RSS before loading the model: {rss0:.0f} MB; vectors kept as {settings.index.storage}, "
          f"HNSW above {settings.index.approximate_above} vectors as {settings.index.approximate_storage}, "
          f"M={settings.index.hnsw_m})")
    base = _real_vectors(kb)
    del big
    gc.collect()
    if scale_vectors:
        s = _scale(settings, base, scale_vectors, rng, min(queries, 1000))
        print(f"\nscale run: HNSW M={settings.index.hnsw_m} efC={settings.index.hnsw_ef_construction} "
              f"efSearch={settings.index.hnsw_ef_search}")
        print(f"{'vectors':>10}{'build s':>9}{'p50 ms':>9}{'p95 ms':>9}{'recall@10':>11}")
        print(f"{s['vectors']:>10}{s['build_s']:>9.1f}{s['p50_ms']:>9.2f}{s['p95_ms']:>9.2f}"
              f"{s['recall_at_10']:>11.3f}")
    return 0
