"""Live query embeddings through ONNX Runtime: the same fp32 weights, a leaner engine.

Why: on the 2-core machines MRCs run, one short query through PyTorch costs 25 ms, most of it
framework overhead rather than arithmetic; ONNX Runtime runs the very same graph and weights in
about 7.5 ms, and its vectors equal PyTorch's (cosine 1.00000 measured), so an index built with
PyTorch keeps matching. That time is paid on every message, twice over under load, so it decides
both the search latency and how many messages a second the server can take.

The graph is exported once by ``hamroh model install`` from the sentence-transformers directory:
transformer, mean pooling and L2 normalisation in one graph, so the engine only tokenises. Only
the offline ``local`` model is exported; hub models keep PyTorch.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import EmbedderError

__all__ = ["ONNX_FILE", "ONNX_INT8_FILE", "OnnxQueryEngine", "export_onnx", "externalize_weights",
           "has_external_weights", "onnx_path", "quantize_onnx", "require_graph"]

ONNX_FILE = "onnx/model.onnx"
#: the same graph with int8 weights for the matrix products (dynamic quantisation: activations are
#: quantised on the fly, per query), a quarter of the weights' memory
ONNX_INT8_FILE = "onnx/model_int8.onnx"


def onnx_path(model_dir: Path, *, int8: bool = False) -> Path:
    return Path(model_dir) / (ONNX_INT8_FILE if int8 else ONNX_FILE)


def require_graph(model_dir: Path, *, int8: bool = False) -> Path:
    """The exported graph's path, or an error that says how to make it."""
    path = onnx_path(model_dir, int8=int8)
    if not path.exists():
        raise EmbedderError(f"no ONNX graph at {path}: run 'hamroh model install' "
                            "(or set model.query_engine: torch in config.yml)")
    return path


def _check_mean_pooling(model_dir: Path) -> None:
    """The exported graph pools by mean; refuse a model directory that says otherwise."""
    cfg_path = model_dir / "1_Pooling" / "config.json"
    try:
        cfg = json.loads(cfg_path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{cfg_path}: unreadable pooling config ({exc}); rebuild with 'hamroh model install --force'"
                         ) from exc
    # sentence-transformers 6 writes {"pooling_mode": "mean"}; earlier versions one flag per mode
    mean = cfg.get("pooling_mode") == "mean" if "pooling_mode" in cfg else cfg.get("pooling_mode_mean_tokens")
    if not mean or any(cfg.get(k) for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens")):
        raise ValueError(f"{cfg_path}: only mean pooling can be exported to ONNX; set model.query_engine: torch")


def has_external_weights(graph: Path) -> bool:
    """Whether the graph's weights live in a file beside it (``<graph>.data``)."""
    return Path(f"{graph}.data").exists()


def externalize_weights(graph: Path) -> Path:
    """Move the graph's weights into ``<graph>.data`` beside it, atomically; returns the data file.

    Why: ONNX Runtime memory-maps weights kept outside the graph instead of copying them onto its
    heap, and the token embedding table (250,000 tokens x 384, 384 MB of the 470) is only read at
    the rows of the tokens a query has. Measured: the session's resident memory goes from 463 MB
    to about 100 MB, with the very same vectors. The pages read stay shared with the page cache
    (every worker of a machine reads the one file) and the kernel can drop them under pressure.
    """
    import onnx

    graph = Path(graph)
    data = Path(f"{graph}.data")
    model = onnx.load(str(graph))  # with its weights, wherever they are now
    staging = Path(tempfile.mkdtemp(dir=graph.parent, prefix=".externalize-"))
    try:
        onnx.save_model(model, str(staging / graph.name), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=data.name, size_threshold=1024)
        del model
        # the data first: a graph that names it must never be in place before it
        os.replace(staging / data.name, data)
        os.replace(staging / graph.name, graph)
    finally:
        for left in staging.iterdir():
            left.unlink()
        staging.rmdir()
    return data


def export_onnx(model_dir: Path) -> Path:
    """Export transformer + mean pooling + normalisation to ``model_dir/onnx/model.onnx`` atomically.

    A half-written file would fail to load at the next start, so the graph goes to a temporary
    file in the same directory and is renamed into place only when complete.
    """
    import torch
    from sentence_transformers import SentenceTransformer

    model_dir = Path(model_dir)
    _check_mean_pooling(model_dir)
    st = SentenceTransformer(str(model_dir), device="cpu")
    st.eval()
    bert = st[0].auto_model

    class _Pooled(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            hidden = self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=-1)

    sample = st.tokenizer(["query: a sample question"], return_tensors="pt")
    target = onnx_path(model_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".onnx.tmp")
    os.close(fd)
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes about HF's python-side branches: shapes are dynamic
            torch.onnx.export(
                _Pooled(bert).eval(), (sample["input_ids"], sample["attention_mask"]), tmp,
                input_names=["input_ids", "attention_mask"], output_names=["embedding"],
                dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                              "embedding": {0: "batch"}},
                opset_version=17, dynamo=False)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    externalize_weights(target)
    return target


def quantize_onnx(model_dir: Path) -> Path:
    """Write the int8 query graph beside the fp32 one (ONNX Runtime dynamic quantisation), atomically.

    The MatMul weights and the token embedding table are quantised (per channel); layer norms and
    pooling stay fp32. The table is most of the model (250,000 tokens x 384): with it the graph is
    113 MB instead of 470 MB, and the vectors stay as close to the fp32 ones (measured on 400 of the
    knowledge base's questions: mean cosine 0.9975 either way).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source = require_graph(model_dir)
    target = onnx_path(model_dir, int8=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".onnx.tmp")
    os.close(fd)
    try:
        quantize_dynamic(str(source), tmp, op_types_to_quantize=["MatMul", "Gather"], per_channel=True,
                         weight_type=QuantType.QInt8)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    externalize_weights(target)
    return target


_MADV_RANDOM = 1


def _read_mapped_weights_on_demand(data: Path) -> int:
    """Tell the kernel the memory-mapped weights file is read at random; returns the bytes advised.

    Why: a query reads a few rows of the token table (1.5 KB each), but a page fault on a mapped
    file reads ahead up to 128 KB around it, so a few thousand distinct tokens made the whole 366 MB
    table resident. With ``MADV_RANDOM`` each row costs its own page or two (measured: 300 queries
    of 20 random tokens, 396 MB of the file resident before, 71 MB after). Linux only; elsewhere
    (or if ``/proc`` is unreadable) nothing happens and only the memory saving is smaller.
    """
    import ctypes

    try:
        target = os.path.realpath(data)
        libc = ctypes.CDLL(None, use_errno=True)
        libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        advised = 0
        with open("/proc/self/maps") as maps:
            for line in maps:
                parts = line.split(maxsplit=5)
                if len(parts) == 6 and parts[5].strip() == target:
                    lo, hi = (int(x, 16) for x in parts[0].split("-"))
                    if libc.madvise(lo, hi - lo, _MADV_RANDOM) == 0:
                        advised += hi - lo
        return advised
    except (OSError, AttributeError, ValueError):
        return 0


class OnnxQueryEngine:
    """Texts to normalised vectors with ONNX Runtime; loaded on first use, callable from any thread.

    ``threads`` is ONNX Runtime's intra-op pool (0: one per core). Callers in the server go through
    the embedder's micro-batcher, which runs one batch at a time, so the pool never competes with
    itself.
    """

    def __init__(self, model_dir: Path, *, prefix: str = "query: ", threads: int = 0, int8: bool = False) -> None:
        self._dir = Path(model_dir)
        self._int8 = int8
        self._prefix = prefix
        self._threads = threads
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None

    def _load(self) -> tuple[Any, Any]:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    import onnxruntime as ort
                    from tokenizers import Tokenizer

                    path = require_graph(self._dir, int8=self._int8)
                    max_len = int(json.loads((self._dir / "sentence_bert_config.json").read_text())
                                  .get("max_seq_length", 512))
                    tokenizer = Tokenizer.from_file(str(self._dir / "tokenizer.json"))
                    tokenizer.enable_truncation(max_length=max_len)
                    pad_id = tokenizer.token_to_id("<pad>")
                    tokenizer.enable_padding(pad_id=1 if pad_id is None else pad_id, pad_token="<pad>")
                    options = ort.SessionOptions()
                    options.intra_op_num_threads = self._threads
                    options.inter_op_num_threads = 1
                    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                    options.log_severity_level = 3
                    self._tokenizer = tokenizer
                    self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                    if has_external_weights(path):
                        _read_mapped_weights_on_demand(Path(f"{path}.data"))
        return self._session, self._tokenizer

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        session, tokenizer = self._load()
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        encodings = tokenizer.encode_batch([self._prefix + t for t in texts])
        ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
        (vectors,) = session.run(["embedding"], {"input_ids": ids, "attention_mask": mask})
        return np.asarray(vectors, dtype=np.float32)
