"""What keeps a large knowledge base within the server's memory budget must not change what it answers:
rows read back as given, and a query graph whose weights sit beside it embeds exactly as before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from knowledge_base._search import _Row, _RowTable


@pytest.mark.unit
def test_the_row_table_reads_back_every_row_as_given() -> None:
    rows = [_Row(0, "en", "question", 0), _Row(0, "en", "question", 1), _Row(0, "tg", "title"),
            _Row(3, "ckb", "answer"), _Row(70_000, "ru", "summary"), _Row(12, "en", "question", 37)]
    table = _RowTable(rows)
    assert len(table) == len(rows)
    assert list(table) == rows
    assert [table[i] for i in range(len(rows))] == rows
    assert table[-1] == rows[-1] and table[1:3] == rows[1:3]
    with pytest.raises(IndexError):
        table[len(rows)]
    assert list(_RowTable([])) == []


@pytest.mark.unit
def test_weights_moved_beside_the_graph_give_the_same_vectors(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    from knowledge_base import externalize_weights, has_external_weights

    rng = np.random.default_rng(3)
    table = rng.normal(size=(5000, 64)).astype(np.float32)
    weight = rng.normal(size=(64, 32)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["rows"]), helper.make_node("MatMul", ["rows", "w"], ["out"])],
        "tiny", [helper.make_tensor_value_info("ids", TensorProto.INT64, [None])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [None, 32])],
        initializer=[numpy_helper.from_array(table, "table"), numpy_helper.from_array(weight, "w")])
    path = tmp_path / "model.onnx"
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    ids = np.array([3, 4999, 0], dtype=np.int64)

    def run() -> np.ndarray:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return np.asarray(session.run(["out"], {"ids": ids})[0])

    before = run()
    assert not has_external_weights(path)
    data = externalize_weights(path)
    assert has_external_weights(path) and data == Path(f"{path}.data")
    assert path.stat().st_size < 10_000 < data.stat().st_size
    assert np.array_equal(run(), before)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [], "no staging left behind"
