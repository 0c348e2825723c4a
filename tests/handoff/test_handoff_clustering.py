"""Content gaps: questions grouped by meaning, biggest group first."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from handoff import cluster_embeddings, cluster_gaps
from handoff._stats import GapQuestion
from tests.handoff.handoff_support import KeywordEmbedder

pytestmark = pytest.mark.unit


def test_near_duplicates_group_and_distinct_topics_split():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16))
    rows = np.vstack([c + 0.05 * rng.normal(size=(n, 16)) for c, n in zip(centres, (5, 3, 1), strict=True)])
    groups = cluster_embeddings(rows, threshold=0.8)
    assert [len(g) for g in groups] == [5, 3, 1]
    assert groups[0] == [0, 1, 2, 3, 4]


def test_empty_input_gives_no_clusters():
    assert cluster_embeddings(np.zeros((0, 4)), 0.8) == []
    assert cluster_gaps([], None, 0.8) == []


def test_gaps_keep_examples_languages_and_fall_back_to_wording_without_a_model():
    now = datetime.now(UTC)
    questions = [
        GapQuestion("Visa for Russia?", "en", now),
        GapQuestion("виза visa сколько стоит", "ru", now),
        GapQuestion("visa for russia?", "en", now),
        GapQuestion("salary not paid", "bn", now),
    ]
    semantic = cluster_gaps(questions, KeywordEmbedder(), 0.8)
    assert semantic[0].size == 3 and semantic[0].langs == ["en", "ru"]
    assert semantic[1].examples == ["salary not paid"]
    wording = cluster_gaps(questions, None, 0.8)
    assert [g.size for g in wording] == [2, 1, 1]
