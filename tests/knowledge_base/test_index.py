"""The index is saved atomically and rebuilt only when content or model change."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from knowledge_base import FaissIndex, IndexManifest, IndexMismatch, read_manifest


def _manifest(h: str, n: int) -> IndexManifest:
    return IndexManifest("m", 8, h, n, "flat", time.time(), 0.0)


@pytest.mark.unit
def test_save_switches_atomically_and_load_checks_the_manifest(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(50, 8)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    FaissIndex.build(vecs).save(tmp_path, _manifest("old", 50))
    FaissIndex.build(vecs[:10]).save(tmp_path, _manifest("new", 10))
    index, manifest, _ = FaissIndex.load(tmp_path, expect_model="m", expect_dim=8, expect_hash="new")
    assert index.size == 10 and manifest.content_hash == "new"
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 1, "old versions are cleaned up"
    with pytest.raises(IndexMismatch):
        FaissIndex.load(tmp_path, expect_model="m", expect_dim=8, expect_hash="old")
    with pytest.raises(IndexMismatch):
        FaissIndex.load(tmp_path, expect_model="other", expect_dim=8, expect_hash="new")


@pytest.mark.unit
@pytest.mark.parametrize("storage", ["float16", "int8"])
@pytest.mark.parametrize("above", [10_000, 100])
def test_smaller_vectors_find_the_same_neighbours_and_survive_a_reload(tmp_path: Path, storage: str,
                                                                       above: int) -> None:
    rng = np.random.default_rng(1)
    vecs = rng.normal(size=(600, 32)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    exact_scores, exact = FaissIndex.build(vecs).search(vecs[:20], 5)
    small = FaissIndex.build(vecs, storage=storage, approximate_above=above)
    assert small.storage == storage and small.kind == ("flat" if above > 600 else "hnsw")
    small.save(tmp_path, IndexManifest("m", 32, "h", 600, small.kind, time.time(), 0.0))
    loaded, _, _ = FaissIndex.load(tmp_path, expect_model="m", expect_dim=32, expect_hash="h")
    scores, ids = loaded.search(vecs[:20], 5)
    assert loaded.storage == storage
    assert (ids[:, 0] == exact[:, 0]).all()
    assert np.abs(scores - exact_scores).max() < (0.002 if storage == "float16" else 0.03)
    with pytest.raises(ValueError, match=r"index\.storage"):
        FaissIndex.build(vecs, storage="int4")


@pytest.mark.unit
def test_hnsw_above_the_threshold_finds_the_exact_neighbours(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    vecs = rng.normal(size=(3000, 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    approx = FaissIndex.build(vecs, approximate_above=1000)
    exact = FaissIndex.build(vecs, approximate_above=10**9)
    assert approx.kind == "hnsw" and exact.kind == "flat"
    _, a = approx.search(vecs[:100], 10)
    _, e = exact.search(vecs[:100], 10)
    recall = np.mean([len(set(a[i]) & set(e[i])) / 10 for i in range(100)])
    assert recall >= 0.95


@pytest.mark.integration
@pytest.mark.slow
def test_killing_a_rebuild_leaves_the_old_index_serving(repo_root: Path, tmp_path: Path, embedder) -> None:
    # a few real entries: the point is where the build dies, not how long it takes
    content = tmp_path / "content"
    content.mkdir()
    for path in sorted((repo_root / "knowledge_base/content").glob("*.yml"))[:4]:
        shutil.copy(path, content / path.name)
    env = dict(os.environ, HAMROH_INDEX__DIR=str(tmp_path / "index"), HAMROH_CONTENT_DIR=str(content))
    cmd = [sys.executable, "-m", "bot.cli", "kb", "build"]
    subprocess.run(cmd, env=env, check=True, capture_output=True, cwd=repo_root)
    old, _ = read_manifest(tmp_path / "index")
    # change the content so a rebuild is needed, then kill rebuilds at several points
    first = sorted(content.glob("*.yml"))[0]
    first.write_text(first.read_text(encoding="utf-8").replace("questions:\n", "questions:\n      - \"new q\"\n", 1),
                     encoding="utf-8")
    for delay in (0.5, 2.0, 4.0):
        proc = subprocess.Popen([*cmd, "--rebuild"], env=env, cwd=repo_root,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        manifest, version = read_manifest(tmp_path / "index")
        assert manifest.content_hash in (old.content_hash,) or (version / "index.faiss").exists()
        index = FaissIndex.load(tmp_path / "index", expect_model=manifest.model_id, expect_dim=manifest.dim,
                                expect_hash=manifest.content_hash)[0]
        assert index.size == manifest.vectors
    # an uninterrupted build afterwards replaces it
    subprocess.run(cmd, env=env, check=True, capture_output=True, cwd=repo_root)
    new, _ = read_manifest(tmp_path / "index")
    assert new.content_hash != old.content_hash


@pytest.mark.unit
def test_the_approximate_index_keeps_its_own_storage_and_old_id_maps_still_load(tmp_path: Path) -> None:
    # index.storage serves the exact index of a small knowledge base, index.approximate_storage the
    # HNSW graph of a large one (int8 by default: what lets 10,000 entries fit the memory budget)
    import faiss

    rng = np.random.default_rng(2)
    vecs = rng.normal(size=(400, 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    small = FaissIndex.build(vecs, approximate_above=1000, storage="float16", approximate_storage="int8")
    large = FaissIndex.build(vecs, approximate_above=100, storage="float16", approximate_storage="int8")
    assert (small.kind, small.storage) == ("flat", "float16")
    assert (large.kind, large.storage) == ("hnsw", "int8")
    assert large.vectors().shape == (400, 16)
    assert np.abs(large.vectors() - vecs).max() < 0.05
    # an index written before ids were mapped without the reverse table (IndexIDMap2) still serves
    old = faiss.IndexIDMap2(faiss.IndexFlatIP(16))
    old.add_with_ids(vecs, np.arange(500, 900, dtype=np.int64))
    FaissIndex(old, "flat").save(tmp_path, IndexManifest("m", 16, "h", 400, "flat", time.time(), 0.0))
    loaded, _, _ = FaissIndex.load(tmp_path, expect_model="m", expect_dim=16, expect_hash="h")
    assert loaded.search(vecs[[7]], 1)[1][0, 0] == 507
    assert np.allclose(loaded.vectors(), vecs)
