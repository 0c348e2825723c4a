"""Concurrent query embeddings are coalesced into fewer model calls, each caller gets its own rows,
and a model failure reaches every waiting caller instead of hanging them."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from knowledge_base._embedder import _MicroBatcher

pytestmark = pytest.mark.unit


class SlowModel:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[int] = []
        self.fail = fail
        self._lock = threading.Lock()

    def __call__(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            self.calls.append(len(texts))
        time.sleep(0.05)  # a model call takes time; others queue meanwhile
        if self.fail:
            raise RuntimeError("model exploded")
        return np.array([[float(len(t)), float(t.count("x"))] for t in texts], dtype=np.float32)


def test_concurrent_callers_share_model_calls_and_get_their_own_rows() -> None:
    model = SlowModel()
    batcher = _MicroBatcher(model)
    texts = [["x" * i, "y" * (i + 1)] for i in range(24)]
    with ThreadPoolExecutor(max_workers=24) as pool:
        results = list(pool.map(batcher, texts))
    for pair, rows in zip(texts, results, strict=True):
        assert rows.tolist() == [[float(len(pair[0])), float(len(pair[0]))], [float(len(pair[1])), 0.0]]
    assert sum(model.calls) == 48 and len(model.calls) < 24


def test_a_lone_caller_is_served_at_once() -> None:
    model = SlowModel()
    assert _MicroBatcher(model)(["hello"]).shape == (1, 2)
    assert model.calls == [1]


def test_a_model_failure_reaches_every_waiting_caller() -> None:
    batcher = _MicroBatcher(SlowModel(fail=True))
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(batcher, [f"q{i}"]) for i in range(8)]
        for future in futures:
            with pytest.raises(RuntimeError, match="exploded"):
                future.result(timeout=10)
