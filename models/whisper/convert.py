"""Conversion of a CTranslate2 Whisper model into a Hugging Face checkpoint directory."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from models.whisper.ct2 import CT2Model

# Token ids shared by every OpenAI Whisper vocabulary.
EOT_ID = 50257
SOT_ID = 50258
FIRST_LANGUAGE_ID = 50259
TIMESTAMP_COUNT = 1501  # <|0.00|> ... <|30.00|>


def _layer_count(model: CT2Model, stack: str) -> int:
    pattern = re.compile(rf"^{stack}/layer_(\d+)/")
    found = {int(m.group(1)) for name in model.variables if (m := pattern.match(name))}
    return max(found) + 1 if found else 0


def _split_rows(array: np.ndarray, parts: int) -> list[np.ndarray]:
    return list(np.split(array, parts, axis=0))


def _attention(prefix: str, hf: str, fused: str, parts: list[str], m: CT2Model) -> Iterator[tuple[str, np.ndarray]]:
    """Split a fused projection (`[q; k; v]` or `[k; v]`) into HF's separate ones.

    CTranslate2 stores an all-zero bias for k; HF's `k_proj` has no bias at all.
    """
    weights = _split_rows(m[f"{prefix}/{fused}/weight"], len(parts))
    biases = _split_rows(m[f"{prefix}/{fused}/bias"], len(parts))
    for part, weight, bias in zip(parts, weights, biases, strict=True):
        yield f"{hf}.{part}_proj.weight", weight
        if part != "k":
            yield f"{hf}.{part}_proj.bias", bias


def _linear(ct2: str, hf: str, m: CT2Model) -> Iterator[tuple[str, np.ndarray]]:
    yield f"{hf}.weight", m[f"{ct2}/weight"]
    if f"{ct2}/bias" in m:
        yield f"{hf}.bias", m[f"{ct2}/bias"]


def _norm(ct2: str, hf: str, m: CT2Model) -> Iterator[tuple[str, np.ndarray]]:
    yield f"{hf}.weight", m[f"{ct2}/gamma"]
    yield f"{hf}.bias", m[f"{ct2}/beta"]


def _ffn(ct2: str, hf: str, m: CT2Model) -> Iterator[tuple[str, np.ndarray]]:
    yield from _linear(f"{ct2}/ffn/linear_0", f"{hf}.fc1", m)
    yield from _linear(f"{ct2}/ffn/linear_1", f"{hf}.fc2", m)
    yield from _norm(f"{ct2}/ffn/layer_norm", f"{hf}.final_layer_norm", m)


def hf_state_dict(m: CT2Model) -> dict[str, np.ndarray]:
    """Map every CTranslate2 Whisper variable onto its HF `WhisperForConditionalGeneration` name."""
    out: dict[str, np.ndarray] = {}

    def put(items: Iterator[tuple[str, np.ndarray]]) -> None:
        out.update(items)

    for conv in ("conv1", "conv2"):
        put(_linear(f"encoder/{conv}", f"model.encoder.{conv}", m))
    out["model.encoder.embed_positions.weight"] = m["encoder/position_encodings/encodings"]
    for i in range(_layer_count(m, "encoder")):
        c, h = f"encoder/layer_{i}", f"model.encoder.layers.{i}"
        put(_attention(f"{c}/self_attention", f"{h}.self_attn", "linear_0", ["q", "k", "v"], m))
        put(_linear(f"{c}/self_attention/linear_1", f"{h}.self_attn.out_proj", m))
        put(_norm(f"{c}/self_attention/layer_norm", f"{h}.self_attn_layer_norm", m))
        put(_ffn(c, h, m))
    put(_norm("encoder/layer_norm", "model.encoder.layer_norm", m))

    out["model.decoder.embed_tokens.weight"] = m["decoder/embeddings/weight"]
    out["model.decoder.embed_positions.weight"] = m["decoder/position_encodings/encodings"]
    for i in range(_layer_count(m, "decoder")):
        c, h = f"decoder/layer_{i}", f"model.decoder.layers.{i}"
        put(_attention(f"{c}/self_attention", f"{h}.self_attn", "linear_0", ["q", "k", "v"], m))
        put(_linear(f"{c}/self_attention/linear_1", f"{h}.self_attn.out_proj", m))
        put(_norm(f"{c}/self_attention/layer_norm", f"{h}.self_attn_layer_norm", m))
        put(_linear(f"{c}/attention/linear_0", f"{h}.encoder_attn.q_proj", m))
        put(_attention(f"{c}/attention", f"{h}.encoder_attn", "linear_1", ["k", "v"], m))
        put(_linear(f"{c}/attention/linear_2", f"{h}.encoder_attn.out_proj", m))
        put(_norm(f"{c}/attention/layer_norm", f"{h}.encoder_attn_layer_norm", m))
        put(_ffn(c, h, m))
    put(_norm("decoder/layer_norm", "model.decoder.layer_norm", m))
    # The output projection is tied to the token embedding (HF re-ties `proj_out`).
    return {name: np.ascontiguousarray(array) for name, array in out.items()}


def hf_config(m: CT2Model, ct2_config: dict[str, Any]) -> dict[str, Any]:
    """The `config.json` of `WhisperForConditionalGeneration` for these weights."""
    d_model, num_mel_bins, _ = m["encoder/conv1/weight"].shape
    vocab_size = m["decoder/embeddings/weight"].shape[0]
    ffn_dim = m["encoder/layer_0/ffn/linear_0/weight"].shape[0]
    return {
        "architectures": ["WhisperForConditionalGeneration"],
        "model_type": "whisper",
        "vocab_size": int(vocab_size),
        "num_mel_bins": int(num_mel_bins),
        "d_model": int(d_model),
        "encoder_layers": _layer_count(m, "encoder"),
        "decoder_layers": _layer_count(m, "decoder"),
        "encoder_attention_heads": m.scalar("encoder/num_heads"),
        "decoder_attention_heads": m.scalar("decoder/num_heads"),
        "encoder_ffn_dim": int(ffn_dim),
        "decoder_ffn_dim": int(ffn_dim),
        "max_source_positions": int(m["encoder/position_encodings/encodings"].shape[0]),
        "max_target_positions": int(m["decoder/position_encodings/encodings"].shape[0]),
        "activation_function": "gelu",
        "scale_embedding": False,
        "tie_word_embeddings": True,
        "bos_token_id": EOT_ID,
        "eos_token_id": EOT_ID,
        "pad_token_id": EOT_ID,
        "decoder_start_token_id": SOT_ID,
        "begin_suppress_tokens": list(ct2_config.get("suppress_ids_begin", [220, EOT_ID])),
        "suppress_tokens": list(ct2_config.get("suppress_ids", [])),
        "torch_dtype": "float16",
    }


def _added_tokens(tokenizer_json: dict[str, Any]) -> dict[str, int]:
    return {t["content"]: int(t["id"]) for t in tokenizer_json.get("added_tokens", [])}


def hf_generation_config(
    config: dict[str, Any], ct2_config: dict[str, Any], tokenizer_json: dict[str, Any]
) -> dict[str, Any]:
    """The `generation_config.json` that `transformers` and vLLM read for Whisper."""
    added = _added_tokens(tokenizer_json)
    multilingual = config["vocab_size"] >= 51865
    lang_ids = set(ct2_config.get("lang_ids", []))
    lang_to_id = {tok: i for tok, i in added.items() if i in lang_ids} if multilingual else {}
    return {
        "decoder_start_token_id": SOT_ID,
        "bos_token_id": EOT_ID,
        "eos_token_id": EOT_ID,
        "pad_token_id": EOT_ID,
        "max_length": config["max_target_positions"],
        "begin_suppress_tokens": config["begin_suppress_tokens"],
        "suppress_tokens": config["suppress_tokens"],
        "alignment_heads": ct2_config.get("alignment_heads", []),
        "no_timestamps_token_id": added["<|notimestamps|>"],
        "prev_sot_token_id": added["<|startofprev|>"],
        "is_multilingual": multilingual,
        "lang_to_id": lang_to_id,
        "task_to_id": {"transcribe": added["<|transcribe|>"], "translate": added["<|translate|>"]}
        if multilingual
        else {},
    }


def write_tokenizer_files(tokenizer_json_path: Path, out_dir: Path, num_mel_bins: int) -> None:
    """Save tokenizer and feature extractor as `WhisperProcessor.from_pretrained` expects."""
    from transformers.models.whisper import WhisperFeatureExtractor, WhisperProcessor, WhisperTokenizer

    special = "<|endoftext|>"
    tokenizer = WhisperTokenizer(
        tokenizer_file=str(tokenizer_json_path),
        bos_token=special,
        eos_token=special,
        unk_token=special,
        pad_token=special,
    )
    if tokenizer.convert_tokens_to_ids("<|0.00|>") in (None, tokenizer.unk_token_id):
        # Older conversions lack the 1501 timestamp tokens; they follow <|notimestamps|> in order.
        tokenizer.add_tokens([f"<|{i * 0.02:.2f}|>" for i in range(TIMESTAMP_COUNT)])
    extractor = WhisperFeatureExtractor(feature_size=num_mel_bins)
    WhisperProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(str(out_dir))


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
