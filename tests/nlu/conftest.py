"""Fixtures for nlu tests: a fake embedder for unit tests, the real model for integration tests.

The real model comes from the project-wide ``embedder`` fixture (tests/conftest.py), which reads
``HAMROH_MODEL_DIR`` (default ``data/models/multilingual-e5-small`` under the repository root) and
skips with the reason when the model is not built. Its example embeddings are computed once per
session, in the ``understander`` fixture.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

import nlu

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
HELDOUT = HERE / "data" / "heldout.yaml"
SHARED_EVAL = Path(os.environ.get("HAMROH_SHARED_EVAL", ROOT.parent / "shared" / "eval"))


class HashingEmbedder:
    """A deterministic stand-in for the real model: hashed character trigrams, L2-normalised.

    Similar strings get similar vectors, which is enough to exercise the few-shot code path in
    unit tests without loading a model.
    """

    dim = 256

    def __init__(self) -> None:
        self.calls = 0

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            padded = f"  {text.lower()}  "
            for i in range(len(padded) - 2):
                digest = hashlib.blake2b(padded[i : i + 3].encode(), digest_size=4).digest()
                out[row, int.from_bytes(digest, "little") % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


class BrokenEmbedder:
    """An embedder that fails, as a model may at run time (out of memory, corrupt weights)."""

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        raise RuntimeError("model exploded")


@pytest.fixture(scope="session")
def fake_understander() -> nlu.Understander:
    return nlu.Understander(HashingEmbedder())


@pytest.fixture(scope="session")
def understander(embedder) -> nlu.Understander:  # type: ignore[no-untyped-def]
    """The real thing: the project's embedder, the training examples embedded once and cached
    under data/cache (generated, like the index), as the server does."""
    model = nlu.Understander(embedder, cache_dir=ROOT / "data" / "cache")
    model.warm_up()
    return model
