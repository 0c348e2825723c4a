"""One contract for the ``VectorIndex`` seam, run against each kind of index the knowledge base builds
(exact below ``approximate_above`` vectors, HNSW above): the nearest row of a stored vector is itself,
ids come back as given, and what is saved loads back the same."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from knowledge_base import FaissIndex, IndexManifest, VectorIndex

pytestmark = pytest.mark.unit


def _rows(n: int = 300, dim: int = 16) -> np.ndarray:
    vectors = np.random.default_rng(7).standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture(params=["flat", "hnsw", "flat-float16", "hnsw-int8"])
def index(request: pytest.FixtureRequest) -> FaissIndex:
    kind, _, storage = request.param.partition("-")
    approximate_above = 10**9 if kind == "flat" else 1
    # the kinds config.yml can choose: index.storage for the exact index, index.approximate_storage
    # for HNSW (int8 by default: a million vectors in a quarter of float32's memory)
    built = FaissIndex.build(_rows(), np.arange(1000, 1300), approximate_above=approximate_above,
                             storage=storage if kind == "flat" and storage else "float32",
                             approximate_storage=storage if kind == "hnsw" and storage else None)
    assert built.kind == kind and built.storage == (storage or "float32")
    return built


def test_it_is_a_vector_index(index: FaissIndex) -> None:
    assert isinstance(index, VectorIndex)
    assert index.size == 300 and index.vectors().shape == (300, 16)


def test_a_stored_vector_finds_itself_first_under_its_own_id(index: FaissIndex) -> None:
    rows = _rows()
    scores, ids = index.search(rows[[0, 150, 299]], 3)
    assert ids.shape == scores.shape == (3, 3)
    assert ids[:, 0].tolist() == [1000, 1150, 1299]
    assert np.all(scores[:, 0] >= scores[:, 1])


def test_what_is_saved_loads_back_the_same(index: FaissIndex, tmp_path: Path) -> None:
    manifest = IndexManifest(model_id="test", dim=16, content_hash="abc", vectors=300, kind=index.kind,
                             built_at=time.time(), build_seconds=0.0)
    index.save(tmp_path, manifest)
    loaded, read, _ = FaissIndex.load(tmp_path, expect_model="test", expect_dim=16, expect_hash="abc")
    assert isinstance(loaded, VectorIndex) and read.kind == index.kind
    query = _rows()[[42]]
    assert loaded.search(query, 5)[1].tolist() == index.search(query, 5)[1].tolist()
