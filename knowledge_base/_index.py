"""The vector index: FAISS inner product over normalised vectors, saved atomically.

Why atomic: the index is rebuilt while the service keeps answering; a build killed halfway (power
cut at an MRC, a deploy) must leave the previous index in place. Each build writes a fresh
version directory and then switches a one-line ``CURRENT`` pointer with ``os.replace``.
Why a manifest: a stale index (content edited, model changed) must never serve answers, so load
checks model, dimension and content hash and the caller rebuilds on any mismatch.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import faiss
import numpy as np

__all__ = ["FaissIndex", "IndexManifest", "IndexMismatch", "VectorIndex", "read_manifest"]

_POINTER = "CURRENT"


class IndexMismatch(RuntimeError):
    """The saved index does not belong to this content or model; rebuild it."""


@dataclass(frozen=True)
class IndexManifest:
    model_id: str
    dim: int
    content_hash: str
    vectors: int
    kind: str
    built_at: float
    build_seconds: float


@runtime_checkable
class VectorIndex(Protocol):
    """What the knowledge base needs from a vector store once it is built or loaded (the seam a
    store other than FAISS would implement); building and loading stay with the implementation."""

    #: what kind of index answers ("flat", "hnsw"), for reports
    kind: str

    @property
    def size(self) -> int: ...

    def vectors(self) -> np.ndarray: ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...

    def save(self, directory: Path, manifest: IndexManifest, extra: dict[str, bytes] | None = None) -> Path: ...


_OMP_DEFAULT: list[int] = []


def _omp_threads_for(n_queries: int) -> None:
    """One OpenMP thread for a handful of queries, all of them for batches.

    A single query gains nothing from faiss's OpenMP team, and that team's spinning threads fight
    torch's own (a second OpenMP runtime) for the two cores: measured, it multiplied search latency
    under load. Batches (builds, benchmarks' exact ground truth) keep every thread.
    """
    if not _OMP_DEFAULT:
        _OMP_DEFAULT.append(max(1, faiss.omp_get_max_threads()))
    faiss.omp_set_num_threads(1 if n_queries <= 4 else _OMP_DEFAULT[0])


#: how stored vectors are kept: 4, 2 or 1 byte(s) a dimension (faiss scalar quantisers)
_STORAGE = {"float16": "QT_fp16", "int8": "QT_8bit"}


class FaissIndex:
    """Exact (flat) inner product below ``approximate_above`` vectors, HNSW above it.

    ``storage`` keeps the vectors as float32, float16 or int8 (per-dimension ranges learnt from the
    vectors themselves). Why: at 10,000 entries the index holds a million vectors, 1.5 GB as
    float32 against a 1.5 GB budget for the whole server; float16 halves that with cosines within
    0.001 of exact, int8 quarters it. ``approximate_storage`` (default: ``storage``) is how the HNSW
    kind keeps them: a small knowledge base can afford float16 while a million vectors need int8.

    Ids are mapped by ``IndexIDMap``, not ``IndexIDMap2``: the reverse map of the latter (an id to
    position hash table, ~50 MB at a million vectors) serves only reconstruction by id, which
    nothing here asks for (``vectors()`` reads positions). Indexes saved with it still load.
    """

    def __init__(self, index: faiss.Index, kind: str, excluded: np.ndarray | None = None) -> None:
        self._index = index
        self.kind = kind
        #: row ids still in an HNSW graph but no longer served (a derived index cannot remove them):
        #: every search skips them
        self.excluded = np.zeros(0, np.int64) if excluded is None else np.unique(np.asarray(excluded, np.int64))
        self._selector: Any = None
        if len(self.excluded):
            batch = faiss.IDSelectorBatch(self.excluded)
            self._selector = (faiss.IDSelectorNot(batch), batch)  # the batch must outlive the negation
        self._hnsw: Any = None
        if kind == "hnsw":
            inner: Any = faiss.downcast_index(index)
            hnsw_index: Any = faiss.downcast_index(inner.index)
            self._hnsw = hnsw_index.hnsw
        self._ef = int(self._hnsw.efSearch) if self._hnsw is not None else 0

    @classmethod
    def build(cls, vectors: np.ndarray, ids: Sequence[int] | np.ndarray | None = None, *,
              approximate_above: int = 200_000, hnsw_m: int = 32, ef_construction: int = 80,
              ef_search: int = 96, storage: str = "float32",
              approximate_storage: str | None = None) -> FaissIndex:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        n, dim = vectors.shape
        id_arr = np.arange(n, dtype=np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
        base: Any
        if n > approximate_above and approximate_storage is not None:
            storage = approximate_storage
        qtype = getattr(faiss.ScalarQuantizer, _STORAGE[storage]) if storage in _STORAGE else None
        if storage != "float32" and qtype is None:
            raise ValueError(f"index.storage '{storage}': use float32, float16 or int8")
        if n > approximate_above:
            if qtype is None:
                base = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            else:
                base = faiss.IndexHNSWSQ(dim, qtype, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            base.hnsw.efConstruction = ef_construction
            base.hnsw.efSearch = ef_search
            kind = "hnsw"
        else:
            base = faiss.IndexFlatIP(dim) if qtype is None else \
                faiss.IndexScalarQuantizer(dim, qtype, faiss.METRIC_INNER_PRODUCT)
            kind = "flat"
        if qtype is not None and n:
            base.train(vectors)
        index = faiss.IndexIDMap(base)
        _omp_threads_for(n)
        index.add_with_ids(vectors, id_arr)
        return cls(index, kind)

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    @property
    def storage(self) -> str:
        """How the vectors are kept: ``float32``, ``float16`` or ``int8``."""
        wrapper: Any = faiss.downcast_index(self._index)
        inner: Any = faiss.downcast_index(wrapper.index)
        quantiser = getattr(inner, "sq", None)
        if quantiser is None and hasattr(inner, "storage"):
            quantiser = getattr(faiss.downcast_index(inner.storage), "sq", None)
        if quantiser is None:
            return "float32"
        return next((name for name, qt in _STORAGE.items()
                     if int(quantiser.qtype) == int(getattr(faiss.ScalarQuantizer, qt))), "other")

    @property
    def dim(self) -> int:
        return int(self._index.d)

    def vectors(self) -> np.ndarray:
        """All stored vectors in insertion order (benchmarks build synthetic corpora from them)."""
        inner: Any = faiss.downcast_index(self._index)
        n = int(inner.index.ntotal)
        if not n:
            return np.zeros((0, self.dim), np.float32)
        return np.asarray(inner.index.reconstruct_n(0, n), dtype=np.float32)

    def _flat_codes(self) -> tuple[Any, np.ndarray] | None:
        """The inner flat index and its stored rows as a read-only view (no copy), when the rows can
        be taken over by another index as they are: exact (flat) search, ids 0..n-1, and a storage
        whose encoding does not depend on the other vectors (float32, float16; int8 learns ranges)."""
        if self.kind != "flat" or self.storage not in ("float32", "float16"):
            return None
        wrapper: Any = faiss.downcast_index(self._index)
        inner: Any = faiss.downcast_index(wrapper.index)
        n = int(inner.ntotal)
        id_maps = (faiss.IndexIDMap, faiss.IndexIDMap2)
        if not isinstance(inner, faiss.IndexFlatCodes) or not isinstance(wrapper, id_maps):
            return None
        if n:
            ids = faiss.rev_swig_ptr(wrapper.id_map.data(), n)
            if not np.array_equal(ids, np.arange(n, dtype=np.int64)):
                return None
        codes = faiss.rev_swig_ptr(inner.codes.data(), n * inner.code_size) if n else np.zeros(0, np.uint8)
        view = np.asarray(codes).reshape(n, inner.code_size)
        view.flags.writeable = False
        return inner, view

    @property
    def spliceable(self) -> bool:
        """Whether :meth:`spliced` can derive a new index from this one."""
        return self._flat_codes() is not None

    def spliced(self, pieces: Sequence[tuple[int, int] | np.ndarray]) -> FaissIndex:
        """A new index whose rows are, in order, runs ``(start, stop)`` of this index's rows and new
        vectors (float32 arrays); this index is not changed (a request may be searching it).

        Why: a publication changes a few entries' rows out of a million; copying the others' stored
        codes (already encoded: nothing is quantised again) costs a memory copy, not a build. The
        rows keep the order a build from scratch would give them, so ties rank the same.
        """
        found = self._flat_codes()
        if found is None:
            raise ValueError(f"a {self.kind} index with {self.storage} storage cannot be spliced")
        inner, codes = found
        dim = int(inner.d)
        base: Any
        if isinstance(inner, faiss.IndexScalarQuantizer):
            base = faiss.IndexScalarQuantizer(dim, int(inner.sq.qtype), faiss.METRIC_INNER_PRODUCT)
            base.is_trained = True  # float16 has nothing to learn
        else:
            base = faiss.IndexFlatIP(dim)
        index = faiss.IndexIDMap(base)
        at = 0
        for piece in pieces:
            if isinstance(piece, tuple):
                start, stop = piece
                block = np.ascontiguousarray(codes[start:stop])
            else:
                vectors = np.ascontiguousarray(piece, dtype=np.float32).reshape(-1, dim)
                block = inner.sa_encode(vectors) if len(vectors) else np.zeros((0, inner.code_size), np.uint8)
            if len(block):
                index.add_sa_codes(block, np.arange(at, at + len(block), dtype=np.int64))
                at += len(block)
        return FaissIndex(index, "flat")

    def with_rows(self, vectors: np.ndarray, dead: Sequence[int] | np.ndarray) -> FaissIndex:
        """An HNSW index: a copy of this one with ``vectors`` added (ids after the last) and ``dead``
        row ids skipped by every search from now on. This index is not changed.

        Why not a build: HNSW's graph takes minutes to build at a million vectors and cannot remove a
        vector; copying the graph and inserting a publication's few vectors takes a second. Results
        stay within HNSW's own approximation (a graph built from scratch differs as much); the
        caller builds afresh once the dead rows add up (``derive_index``).
        """
        if self.kind != "hnsw":
            raise ValueError("only an HNSW index takes rows this way: splice a flat one")
        copy = faiss.clone_index(self._index)
        n = self.size
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        if len(vectors):
            _omp_threads_for(len(vectors))
            copy.add_with_ids(vectors, np.arange(n, n + len(vectors), dtype=np.int64))
        derived = FaissIndex(copy, "hnsw", np.concatenate([self.excluded, np.asarray(dead, np.int64)]))
        derived._ef = self._ef
        return derived

    def set_ef_search(self, ef: int) -> None:
        self._ef = ef

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and ids, best first; ids of -1 mark empty slots."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        k = max(1, min(k, self.size)) if self.size else 1
        if self._hnsw is not None:
            # HNSW returns at most efSearch neighbours: widen the beam when more are asked for
            self._hnsw.efSearch = max(self._ef, k)
        _omp_threads_for(queries.shape[0])
        if self._selector is not None:
            params: Any = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
            params.sel = self._selector[0]
            params.efSearch = max(self._ef, k)
            k = max(1, min(k, self.size - len(self.excluded)))
            scores, ids = self._index.search(queries, k, params=params)
        else:
            scores, ids = self._index.search(queries, k)
        return scores, ids

    def save(self, directory: Path, manifest: IndexManifest, extra: dict[str, bytes] | None = None) -> Path:
        """Write a new version beside the old one and switch ``CURRENT`` to it atomically."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        version = Path(tempfile.mkdtemp(prefix=f"v{int(time.time())}-", dir=directory))
        try:
            faiss.write_index(self._index, str(version / "index.faiss"))
            for name, blob in (extra or {}).items():
                (version / name).write_bytes(blob)
            (version / "manifest.json").write_text(json.dumps(asdict(manifest), indent=2))
            for path in version.iterdir():
                with open(path, "rb") as fh:
                    os.fsync(fh.fileno())
            pointer_tmp = directory / f".{_POINTER}.{os.getpid()}"
            pointer_tmp.write_text(version.name)
            os.replace(pointer_tmp, directory / _POINTER)
        except BaseException:
            shutil.rmtree(version, ignore_errors=True)
            raise
        for old in directory.iterdir():
            if old.is_dir() and old != version and old.name.startswith("v"):
                shutil.rmtree(old, ignore_errors=True)
        return version

    @classmethod
    def load(cls, directory: Path, *, expect_model: str, expect_dim: int,
             expect_hash: str) -> tuple[FaissIndex, IndexManifest, Path]:
        manifest, version = read_manifest(directory)
        if manifest.model_id != expect_model or manifest.dim != expect_dim:
            raise IndexMismatch(f"index was built with {manifest.model_id} ({manifest.dim}d)")
        if manifest.content_hash != expect_hash:
            raise IndexMismatch("content changed since the index was built")
        index = faiss.read_index(str(version / "index.faiss"))
        return cls(index, manifest.kind), manifest, version


def read_manifest(directory: Path) -> tuple[IndexManifest, Path]:
    directory = Path(directory)
    pointer = directory / _POINTER
    if not pointer.exists():
        raise IndexMismatch(f"no index at {directory}")
    version = directory / pointer.read_text().strip()
    try:
        data = json.loads((version / "manifest.json").read_text())
        return IndexManifest(**data), version
    except (OSError, ValueError, TypeError) as exc:
        raise IndexMismatch(f"unreadable index manifest in {version}: {exc}") from exc
