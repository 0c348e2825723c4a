"""``hamroh bench publish``: from "approve" to "served", at 50 and at 10,000 entries.

What a worker does, measured in one process: the live content sits in a fresh SQLite database;
a :class:`bot.content.LiveContentWatcher` polls its version every ``content.poll_seconds`` as each
server process does; a thread asks questions without pause, as visitors would. Each publication
changes one entry's Russian answer (the real model embeds the changed text), and the figures are:

* publish: embedding the changed text and committing the revision;
* publish-to-served: from the start of the publication until the worker serves the new text
  (publish + up to one poll interval + reading what changed + building the new index);
* answer latency (search of one question, about 20 a second) outside swaps and while a swap is
  being built.

The 10,000 entries are synthetic: each shipped entry cloned with its questions tagged (so every
clone is a distinct document), keeping English and Russian (memory: a swap holds two
knowledge bases at once, and the 2-core reference machine is shared), with the real vectors of its
texts slightly perturbed (no model run for 10,000 entries, realistic neighbourhoods). Printed
figures, never assertions.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bot.content import LiveContentWatcher, bump_content_version, import_with, publish_revision
from bot.services import load_content, open_embedder, open_knowledge_base
from bot.settings import Settings
from knowledge_base import Embedder, EmbeddingCache, Entry, KnowledgeBase
from storage import create_engine, session_factory, upgrade

__all__ = ["run"]

QUESTION = "можно ли сменить работодателя по тому же патенту"
TARGET = "change-employer"
SYNTH_LANGS = ("en", "ru")


def _ms(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q)) if values else float("nan")


class _PerturbedEmbedder:
    """Vectors of a clone's tagged texts: its source text's vector, slightly perturbed."""

    def __init__(self, real: Embedder, cache: EmbeddingCache, seed: int = 7) -> None:
        self._real = real
        self._cache = cache
        self._rng = np.random.default_rng(seed)

    @property
    def model_id(self) -> str:
        return self._real.model_id

    @property
    def dim(self) -> int:
        return self._real.dim

    def _vectors(self, texts: Sequence[str], kind: str, fn: Any) -> np.ndarray:
        base = [t.rsplit(" syn", 1)[0] for t in texts]
        vectors = self._cache.embed(base, kind, fn)
        noisy = vectors + self._rng.normal(scale=0.02, size=vectors.shape).astype(np.float32)
        return (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float32)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._vectors(texts, "query", lambda t: self._real.embed_queries(t))

    def embed_passages(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        return self._vectors(texts, "passage", lambda t: self._real.embed_passages(t))


def _clone(entry: Entry, n: int) -> Entry:
    tag = f"syn{n}"
    translations = {lang: tr.model_copy(update={"questions": [f"{q} {tag}" for q in tr.questions]})
                    for lang, tr in entry.translations.items() if lang in SYNTH_LANGS}
    return entry.model_copy(update={"id": f"{entry.id}-{tag}", "translations": translations})


async def _populate(settings: Settings, sessions: Any, embedder: Embedder, n_entries: int, tmp: Path) -> None:
    shipped = sorted(settings.path(settings.content_dir).glob("*.yml"))
    chosen = tmp / "content"
    chosen.mkdir()
    keep = [p for p in shipped if p.stem == TARGET] + [p for p in shipped if p.stem != TARGET]
    for path in keep[:min(n_entries, len(shipped))]:
        shutil.copy(path, chosen / path.name)
    await import_with(sessions, settings, chosen, embedder)
    extra = n_entries - len(keep[:n_entries])
    if extra <= 0:
        return
    real = load_content(settings).published
    cache = EmbeddingCache(settings.path(settings.index.dir) / "embeddings.npz", embedder.model_id)
    fake = _PerturbedEmbedder(embedder, cache)
    started = time.perf_counter()
    batch = 250
    for lo in range(0, extra, batch):
        async with sessions() as db, db.begin():
            for n in range(lo, min(extra, lo + batch)):
                await publish_revision(session=db, entry=_clone(real[n % len(real)], n), by="bench",
                                       note="synthetic", embedder=fake, index_config=settings.index, bump=False)
        done = min(extra, lo + batch)
        if done % 2000 < batch:
            print(f"  {done}/{extra} synthetic entries written ({time.perf_counter() - started:.0f} s)", flush=True)
    async with sessions() as db, db.begin():
        await bump_content_version(session=db)


async def _measure(settings: Settings, embedder: Embedder, base: KnowledgeBase, n_entries: int,
                   publications: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="hamroh-bench-publish-"))
    url = f"sqlite+aiosqlite:///{tmp}/bench.db"
    try:
        await asyncio.to_thread(upgrade, url)
        engine = create_engine(url)
        sessions = session_factory(engine)
        t0 = time.perf_counter()
        await _populate(settings, sessions, embedder, n_entries, tmp)
        populate_s = time.perf_counter() - t0
        state: dict[str, KnowledgeBase] = {"kb": base}
        watcher = LiveContentWatcher(settings, sessions, lambda: state["kb"], lambda kb: state.__setitem__("kb", kb),
                                     interval=settings.content.poll_seconds, withdraw_every=10**9)
        t0 = time.perf_counter()
        await watcher.refresh()
        first_build_s = time.perf_counter() - t0
        served_entries = len(state["kb"].entries)

        samples: list[tuple[float, float]] = []
        stop = threading.Event()

        def ask() -> None:
            # about 20 questions a second: a busy worker, not one that does nothing but search
            while not stop.is_set():
                kb = state["kb"]
                s = time.perf_counter()
                kb.search(QUESTION, "ru")
                samples.append((s, time.perf_counter() - s))
                stop.wait(0.05)

        asker = threading.Thread(target=ask, daemon=True)
        asker.start()
        polling = asyncio.create_task(watcher.run())
        await asyncio.sleep(3)
        publish_s: list[float] = []
        served_s: list[float] = []
        windows: list[tuple[float, float]] = []
        loads: list[float] = []
        builds: list[float] = []
        for i in range(publications):
            current = state["kb"].get(TARGET)
            assert current is not None
            ru = current.translations["ru"]
            changed = current.model_copy(update={"translations": {
                **current.translations, "ru": ru.model_copy(update={"answer": ru.answer + f"\nПравка {i + 1}.\n"})}})
            start = time.perf_counter()
            async with sessions() as db, db.begin():
                await publish_revision(session=db, entry=changed, by="bench", note=f"bench {i}", embedder=embedder,
                                       index_config=settings.index)
            committed = time.perf_counter()
            while True:
                served = state["kb"].get(TARGET)
                if served is not None and served.translations["ru"].answer.endswith(f"Правка {i + 1}.\n"):
                    break
                await asyncio.sleep(0.01)
            done = time.perf_counter()
            publish_s.append(committed - start)
            served_s.append(done - start)
            windows.append((committed, done))
            loads.append(watcher.last_load_seconds)
            builds.append(watcher.last_build_seconds)
            await asyncio.sleep(1.5)
        stop.set()
        asker.join(30)
        polling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await polling
        await engine.dispose()

        def in_swap(at: float) -> bool:
            return any(a <= at <= b for a, b in windows)

        during = [lat for at, lat in samples if in_swap(at)]
        steady = [lat for at, lat in samples if not in_swap(at)]
        return {"entries": served_entries, "populate_s": populate_s, "first_build_s": first_build_s,
                "publish_p50": _ms(publish_s, 50), "publish_p95": _ms(publish_s, 95),
                "served_p50": _ms(served_s, 50), "served_p95": _ms(served_s, 95),
                "load_p50": _ms(loads, 50), "build_p50": _ms(builds, 50), "build_p95": _ms(builds, 95),
                "steady_p50": _ms(steady, 50), "steady_p95": _ms(steady, 95), "steady_n": len(steady),
                "during_p50": _ms(during, 50), "during_p95": _ms(during, 95), "during_n": len(during),
                "publications": publications}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(settings: Settings, *, sizes: Sequence[int] = (50, 10_000), publications: int = 10) -> int:
    embedder = open_embedder(settings)
    base = open_knowledge_base(settings, embedder=embedder)
    embedder.embed_queries(["warm-up"])
    rows = []
    for n in sizes:
        print(f"publish bench: {n} entries, {publications} publications of one changed Russian answer "
              f"(poll every {settings.content.poll_seconds:g} s)", flush=True)
        rows.append(asyncio.run(_measure(settings, embedder, base, n, publications)))
        r = rows[-1]
        print(f"  served entries {r['entries']}; database filled in {r['populate_s']:.1f} s; "
              f"first index from the database {r['first_build_s']:.1f} s", flush=True)
    print()
    print("| entries | publish p50 / p95 (ms) | publish-to-served p50 / p95 (ms) | read changes p50 (ms) "
          "| index build p50 / p95 (ms) | answer p50 / p95 outside swaps (ms) | answer p50 / p95 during swaps (ms) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['entries']} | {r['publish_p50']:.0f} / {r['publish_p95']:.0f} | {r['served_p50']:.0f} / "
              f"{r['served_p95']:.0f} | {r['load_p50']:.0f} | {r['build_p50']:.0f} / {r['build_p95']:.0f} | "
              f"{r['steady_p50']:.1f} / {r['steady_p95']:.1f} (n={r['steady_n']}) | "
              f"{r['during_p50']:.1f} / {r['during_p95']:.1f} (n={r['during_n']}) |")
    return 0
