"""A deterministic tiny random-weight Voxtral checkpoint, in the Hugging Face layout and in Mistral's.

`build_voxtral(directory, seed)` writes two sibling checkpoints of the same weights:

- `hf/`: what transformers loads (`config.json`, `model.safetensors`, a `VoxtralProcessor` whose tokenizer is
  `MistralCommonBackend` over `tekken.json`): the reference;
- `mistral/`: what vLLM loads with `tokenizer_mode/config_format/load_format=mistral` (`params.json`,
  `consolidated.safetensors`, `tekken.json`), as Mistral publishes it: what the gateway serves.

The tokenizer is a small tekken file: the published special-token layout (`[AUDIO]` at 24, which
`VoxtralProcessor` assumes, `[BEGIN_AUDIO]` at 25, `[TRANSCRIBE]` at 34, 1000 special ids) over a byte-level
BPE of about 500 tokens trained here on the words of `tiny.WORDS`. As in `tiny.py`, only whole-word output rows
and the end token's are non-zero, so greedy text reads as words.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from tests.families.tiny import WORDS

HIDDEN = 64
HEAD_DIM = 32
AUDIO_FFN = 4 * HIDDEN  # the projector reads 4 encoder frames at once: intermediate size = 4 x width
MEL_BINS = 128
BPE_VOCAB = 500
NUM_SPECIAL = 1000
ROPE_THETA = 1e8
LOGIT_STD = 3.0
LAYER_GAIN = 2.0
# The published tekken's special tokens that matter here, at their published ranks; the rest are fillers.
SPECIALS = {
    0: "<unk>", 1: "<s>", 2: "</s>", 3: "[INST]", 4: "[/INST]", 5: "[AVAILABLE_TOOLS]", 6: "[/AVAILABLE_TOOLS]",
    7: "[TOOL_RESULTS]", 8: "[/TOOL_RESULTS]", 9: "[TOOL_CALLS]", 10: "[IMG]", 11: "<pad>", 12: "[IMG_BREAK]",
    13: "[IMG_END]", 14: "[PREFIX]", 15: "[MIDDLE]", 16: "[SUFFIX]", 17: "[SYSTEM_PROMPT]", 18: "[/SYSTEM_PROMPT]",
    19: "[TOOL_CONTENT]", 24: "[AUDIO]", 25: "[BEGIN_AUDIO]", 32: "[ARGS]", 33: "[CALL_ID]", 34: "[TRANSCRIBE]",
}  # fmt: skip
SPECIALS_ID = {name: rank for rank, name in SPECIALS.items()}
EOS = 2
# Tekken's split pattern (tiktoken `pat_str`).
PATTERN = (
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|"
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|"
    r"\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def _byte_of_char() -> dict[str, int]:
    """The byte-level BPE alphabet: printable bytes stand for themselves, the others for chars from 256 on."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + extra)
            extra += 1
    return {c: b for b, c in chars.items()}


def _vocab_bytes() -> list[bytes]:
    """Single bytes in byte order (tekken wants rank i = bytes([i])), then the trained merges in merge order."""
    corpus = []
    for rank, word in enumerate(WORDS):
        corpus.extend([f"the {word} and {word} of {word}"] * max(2, 200 // (rank + 1)))
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    trainer = trainers.BpeTrainer(
        vocab_size=BPE_VOCAB, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    bpe.train_from_iterator(corpus, trainer=trainer)
    byte_of = _byte_of_char()
    merged = sorted((i, t) for t, i in bpe.get_vocab().items() if len(t) > 1)
    return [bytes([b]) for b in range(256)] + [bytes(byte_of[c] for c in t) for _, t in merged]


def tekken_json(audio: dict[str, Any]) -> dict[str, Any]:
    vocab = [
        {"rank": i, "token_bytes": base64.b64encode(b).decode(), "token_str": b.decode("utf-8", "ignore") or None}
        for i, b in enumerate(_vocab_bytes())
    ]
    specials = [{"rank": r, "token_str": SPECIALS.get(r, f"<SPECIAL_{r}>"), "is_control": True} for r in range(40)]
    config = {
        "pattern": PATTERN,
        "num_vocab_tokens": len(vocab),
        "default_vocab_size": len(vocab) + NUM_SPECIAL,
        "default_num_special_tokens": NUM_SPECIAL,
        "version": "v7",
    }
    return {"config": config, "vocab": vocab, "special_tokens": specials, "audio": audio}


AUDIO = {
    "sampling_rate": 16000,
    "frame_rate": 12.5,
    "audio_encoding_config": {"num_mel_bins": MEL_BINS, "hop_length": 160, "window_size": 400},
    "chunk_length_s": 30.0,
    "transcription_format": "instruct",
}


def _config(vocab_size: int) -> Any:
    from transformers import VoxtralConfig

    return VoxtralConfig(
        audio_config={
            "hidden_size": HIDDEN,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": AUDIO_FFN,
            "num_mel_bins": MEL_BINS,
            "max_source_positions": 1500,
        },
        text_config={
            "model_type": "llama",
            "vocab_size": vocab_size,
            "hidden_size": HIDDEN,
            "intermediate_size": 2 * HIDDEN,
            "num_hidden_layers": 2,
            "num_attention_heads": HIDDEN // HEAD_DIM,
            "num_key_value_heads": 1,
            "head_dim": HEAD_DIM,
            "max_position_embeddings": 32768,
            "rope_theta": ROPE_THETA,
            "bos_token_id": 1,
            "eos_token_id": EOS,
            "pad_token_id": 11,
        },
        audio_token_id=SPECIALS_ID["[AUDIO]"],
    )


def _params(vocab_size: int) -> dict[str, Any]:
    """params.json: the same model as Mistral describes it."""
    encoder = {
        "audio_encoding_args": {
            "sampling_rate": 16000,
            "frame_rate": 12.5,
            "num_mel_bins": MEL_BINS,
            "hop_length": 160,
            "window_size": 400,
            "chunk_length_s": 30.0,
        },
        "dim": HIDDEN,
        "n_layers": 1,
        "head_dim": HIDDEN // 2,
        "hidden_dim": AUDIO_FFN,
        "n_heads": 2,
        "vocab_size": 51866,
        "max_source_positions": 1500,
    }
    return {
        "dim": HIDDEN,
        "n_layers": 2,
        "head_dim": HEAD_DIM,
        "hidden_dim": 2 * HIDDEN,
        "n_heads": HIDDEN // HEAD_DIM,
        "n_kv_heads": 1,
        "rope_theta": ROPE_THETA,
        "norm_eps": 1e-5,
        "vocab_size": vocab_size,
        "max_position_embeddings": 32768,
        "multimodal": {"whisper_model_args": {"encoder_args": encoder, "downsample_args": {"downsample_factor": 4}}},
    }


def _interleave_rotary(weight: torch.Tensor, heads: int) -> torch.Tensor:
    """transformers' rotary layout (halves) back to Mistral's (interleaved pairs), per head."""
    rows, cols = weight.shape
    return weight.view(heads, 2, rows // heads // 2, cols).transpose(1, 2).reshape(rows, cols)


# transformers' module names -> Mistral's, in the audio encoder and in the text model.
_AUDIO_NAMES = {
    "conv1": "conv_layers.0.conv", "conv2": "conv_layers.1.conv", "self_attn.q_proj": "attention.wq",
    "self_attn.k_proj": "attention.wk", "self_attn.v_proj": "attention.wv", "self_attn.out_proj": "attention.wo",
    "self_attn_layer_norm": "attention_norm", "fc1": "feed_forward.w1", "fc2": "feed_forward.w2",
    "final_layer_norm": "ffn_norm",
}  # fmt: skip
_TEXT_NAMES = {
    "self_attn.q_proj": "attention.wq", "self_attn.k_proj": "attention.wk", "self_attn.v_proj": "attention.wv",
    "self_attn.o_proj": "attention.wo", "input_layernorm": "attention_norm", "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "feed_forward.w1", "mlp.down_proj": "feed_forward.w2", "mlp.up_proj": "feed_forward.w3",
}  # fmt: skip


def _rename(name: str, table: dict[str, str]) -> str:
    for old, new in table.items():
        if name.startswith(old + "."):
            return new + name[len(old) :]
    raise KeyError(name)


def mistral_state(hf: dict[str, torch.Tensor], heads: int, kv_heads: int) -> dict[str, torch.Tensor]:
    """transformers' Voxtral weights under the names (and rotary layout) of Mistral's consolidated.safetensors."""
    audio, text, out = "model.audio_tower.", "model.language_model.", {}
    encoder = "mm_whisper_embeddings.whisper_encoder."
    for name, tensor in hf.items():
        if name.startswith(audio + "layers."):
            index, rest = name[len(audio + "layers.") :].split(".", 1)
            key = f"{encoder}transformer.layers.{index}.{_rename(rest, _AUDIO_NAMES)}"
        elif name.startswith(audio + "layer_norm."):
            key = encoder + "transformer.norm." + name.rsplit(".", 1)[1]
        elif name.startswith(audio + "conv"):
            key = encoder + _rename(name[len(audio) :], _AUDIO_NAMES)
        elif name.startswith(audio + "embed_positions"):
            continue  # sinusoids: vLLM computes them
        elif name.startswith(text + "layers."):
            index, rest = name[len(text + "layers.") :].split(".", 1)
            key = f"layers.{index}.{_rename(rest, _TEXT_NAMES)}"
            if rest == "self_attn.q_proj.weight":
                tensor = _interleave_rotary(tensor, heads)
            elif rest == "self_attn.k_proj.weight":
                tensor = _interleave_rotary(tensor, kv_heads)
        elif name == text + "embed_tokens.weight":
            key = "mm_whisper_embeddings.tok_embeddings.weight"
        elif name == text + "norm.weight":
            key = "norm.weight"
        elif name == "lm_head.weight":
            key = "output.weight"
        elif name.startswith("model.multi_modal_projector.linear_"):
            index = {"1": "0", "2": "2"}[name.split("linear_")[1][0]]
            key = f"mm_whisper_embeddings.audio_language_projection.{index}.weight"
        else:
            raise KeyError(f"no Mistral name for {name}")
        out[key] = tensor.contiguous()
    return out


def _readable(model: Any, word_ids: list[int], seed: int) -> None:
    """Zero every output row but whole words' and the end token's; strong random text layers (as in tiny.py)."""
    from transformers.models.whisper.modeling_whisper import sinusoids

    generator = torch.Generator().manual_seed(seed + 1)
    out = model.get_output_embeddings().weight
    rows = torch.zeros_like(out)
    keep = [*word_ids, EOS]
    rows[keep] = torch.randn(len(keep), out.shape[1], generator=generator) * (LOGIT_STD / out.shape[1] ** 0.5)
    with torch.no_grad():
        out.copy_(rows)
        for name, param in model.named_parameters():
            if "language_model" in name and param.dim() == 2 and ("mlp" in name or "self_attn" in name):
                param.copy_(torch.randn(param.shape, generator=generator) * (LAYER_GAIN / param.shape[1] ** 0.5))
        norm = model.model.language_model.norm.weight
        norm.copy_(torch.randint(0, 2, norm.shape, generator=generator).to(norm.dtype) * 2 - 1)
        # The published encoder's positions are Whisper's sinusoids, which vLLM computes rather than loads.
        positions = model.model.audio_tower.embed_positions.weight
        positions.copy_(sinusoids(*positions.shape))


def _word_ids(tekken: dict[str, Any]) -> list[int]:
    words = {f" {w}".encode() for w in WORDS}
    return [NUM_SPECIAL + t["rank"] for t in tekken["vocab"] if base64.b64decode(t["token_bytes"]) in words]


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def build_voxtral(directory: Path, seed: int = 0) -> Path:
    """Write `directory/hf` and `directory/mistral` (same weights, same tekken.json) and return `directory`."""
    from transformers import (
        MistralCommonBackend,
        VoxtralForConditionalGeneration,
        VoxtralProcessor,
        WhisperFeatureExtractor,
    )

    hf_dir, mistral_dir = Path(directory) / "hf", Path(directory) / "mistral"
    for d in (hf_dir, mistral_dir):
        d.mkdir(parents=True, exist_ok=True)
    tekken = tekken_json(dict(AUDIO))
    vocab_size = tekken["config"]["default_vocab_size"]
    for d in (hf_dir, mistral_dir):
        _write_json(d / "tekken.json", tekken)
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = VoxtralForConditionalGeneration(_config(vocab_size)).to(torch.float32).eval()
    finally:
        torch.random.set_rng_state(state)
    _readable(model, _word_ids(tekken), seed)
    model.save_pretrained(str(hf_dir))
    model.generation_config.eos_token_id = EOS
    model.generation_config.save_pretrained(str(hf_dir))
    tokenizer = MistralCommonBackend.from_pretrained(str(hf_dir))
    VoxtralProcessor(WhisperFeatureExtractor(feature_size=MEL_BINS), tokenizer).save_pretrained(str(hf_dir))
    text = model.config.text_config
    weights = mistral_state(model.state_dict(), text.num_attention_heads, text.num_key_value_heads)
    save_file(weights, str(mistral_dir / "consolidated.safetensors"), metadata={"format": "pt"})
    _write_json(mistral_dir / "params.json", _params(vocab_size))
    return Path(directory)
