"""Content tests: throw-away databases (SQLite and PostgreSQL) and a tiny deterministic embedder."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pytest


class HashEmbedder:
    """Same text, same vector; counts what it embeds (publishing must embed only changed texts)."""

    model_id = "test-hash-16"
    dim = 16

    def __init__(self) -> None:
        self.embedded: list[str] = []

    def _vec(self, text: str) -> np.ndarray:
        raw = np.frombuffer(hashlib.sha256(text.encode()).digest()[:16], dtype=np.uint8).astype(np.float32) - 127.5
        return raw / np.linalg.norm(raw)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded.extend(texts)
        return np.stack([self._vec("q" + t) for t in texts]) if texts else np.zeros((0, 16), np.float32)

    def embed_passages(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        self.embedded.extend(texts)
        return np.stack([self._vec("p" + t) for t in texts]) if texts else np.zeros((0, 16), np.float32)


@pytest.fixture
def hash_embedder() -> HashEmbedder:
    return HashEmbedder()
