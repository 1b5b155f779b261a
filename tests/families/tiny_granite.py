"""A deterministic tiny random-weight Granite Speech checkpoint, as `tiny.py` builds the other families'.

`GraniteSpeechConfig` at toy sizes: a 2-layer Granite text model of width 64 (head size 32, non-default Granite
multipliers so both sides must apply them), a 2-layer conformer encoder reading the extractor's 160 stacked mel
features, a 1-layer `Blip2QFormerConfig` projector (window 15, downsample 5: 10 audio tokens per second), and
`has_lora_adapter=False` (the published checkpoints carry a LoRA adapter for audio turns; these have none). The
tokenizer is `tiny.py`'s byte-level BPE plus Granite's special tokens; the chat template renders what the
published Granite 3.3 template renders for one user turn without tools or documents. Weights are saved in the
published layout (`language_model.model.*`, `language_model.lm_head.*`, `encoder.*`, `projector.*`), which vLLM
loads as is and transformers renames on loading.

transformers' `GraniteSpeechFeatureExtractor` needs torchaudio; where it is absent, `engine_plugins.granite_features`
gives it the torch-only mel spectrogram (proven equal in tests/families/test_granite_features.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer

from engine_plugins.granite_features import register as allow_torch_only_features
from tests.families.tiny import HEAD_DIM, HIDDEN, LAYER_GAIN, LOGIT_STD, build_tokenizer, word_token_ids

END = "<|end_of_text|>"
LOGITS_SCALING = 2.0
# Granite 3.3's template, reduced to what one chat turn without tools, documents or thinking renders: its default
# system turn (with today's date), then each turn as <|start_of_role|>role<|end_of_role|>text<|end_of_text|>\n.
CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{%- set system_message = messages[0]['content'] %}{%- set loop_messages = messages[1:] %}"
    "{%- else %}"
    "{%- set system_message = \"Knowledge Cutoff Date: April 2024.\\nToday's Date: \" + strftime_now('%B %d, %Y') "
    '+ ".\\nYou are Granite, developed by IBM. You are a helpful AI assistant." %}'
    "{%- set loop_messages = messages %}"
    "{%- endif %}"
    "{{- '<|start_of_role|>system<|end_of_role|>' + system_message + '<|end_of_text|>\\n' }}"
    "{%- for message in loop_messages %}"
    "{{- '<|start_of_role|>' + message['role'] + '<|end_of_role|>' + message['content'] + '<|end_of_text|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_of_role|>assistant<|end_of_role|>' }}{%- endif %}"
)


def _model_and_processor(tokenizer: Tokenizer) -> tuple[Any, Any]:
    from transformers import (
        GraniteSpeechConfig,
        GraniteSpeechFeatureExtractor,
        GraniteSpeechForConditionalGeneration,
        GraniteSpeechProcessor,
        PreTrainedTokenizerFast,
    )

    allow_torch_only_features()
    ids = tokenizer.get_vocab()
    text = {
        "model_type": "granite",
        "vocab_size": tokenizer.get_vocab_size(),
        "hidden_size": HIDDEN,
        "intermediate_size": 2 * HIDDEN,
        "num_hidden_layers": 2,
        "num_attention_heads": HIDDEN // HEAD_DIM,
        "num_key_value_heads": 1,
        "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-5,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},
        "embedding_multiplier": 4.0,
        "residual_multiplier": 0.5,
        "attention_multiplier": 1.0 / HEAD_DIM,
        "logits_scaling": LOGITS_SCALING,
        "tie_word_embeddings": False,
        "bos_token_id": ids[END],
        "eos_token_id": ids[END],
        "pad_token_id": ids[END],
    }
    encoder = {"input_dim": 160, "num_layers": 2, "hidden_dim": HIDDEN, "feedforward_mult": 2, "num_heads": 2}
    encoder |= {"output_dim": 42, "context_size": 200, "max_pos_emb": 512, "conv_kernel_size": 15}
    projector = {"model_type": "blip_2_qformer", "hidden_size": HIDDEN, "num_hidden_layers": 1}
    projector |= {"num_attention_heads": 2, "intermediate_size": 2 * HIDDEN, "encoder_hidden_size": HIDDEN}
    projector |= {"cross_attention_frequency": 1, "max_position_embeddings": 2048, "vocab_size": 64}
    config = GraniteSpeechConfig(
        text_config=text,
        encoder_config=encoder,
        projector_config=projector,
        audio_token_index=ids["<|audio|>"],
        has_lora_adapter=False,
        downsample_rate=5,
        window_size=15,
        tie_word_embeddings=False,
    )
    model = GraniteSpeechForConditionalGeneration(config)
    hf_tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=END,
        pad_token=END,
        bos_token=END,
        unk_token=None,
        clean_up_tokenization_spaces=False,
        model_max_length=32768,
    )
    processor = GraniteSpeechProcessor(
        audio_processor=GraniteSpeechFeatureExtractor(), tokenizer=hf_tokenizer, chat_template=CHAT_TEMPLATE
    )
    return model, processor


def _readable_output_rows(model: Any, tokenizer: Tokenizer, seed: int) -> None:
    """As tiny.py: only whole words and the end token score, with strong random text layers."""
    generator = torch.Generator().manual_seed(seed + 1)
    out = model.get_output_embeddings().weight
    vocab, hidden = out.shape
    rows = torch.zeros(vocab, hidden)
    keep = [*word_token_ids(tokenizer), tokenizer.token_to_id(END)]
    # Granite divides the logits by `logits_scaling`: scale the rows up to the same logit spread.
    rows[keep] = torch.randn(len(keep), hidden, generator=generator) * (LOGIT_STD * LOGITS_SCALING / hidden**0.5)
    with torch.no_grad():
        out.copy_(rows)
        for name, param in model.named_parameters():
            if "language_model" in name and param.dim() == 2 and ("mlp" in name or "self_attn" in name):
                param.copy_(torch.randn(param.shape, generator=generator) * (LAYER_GAIN / param.shape[1] ** 0.5))
        norm = model.model.language_model.norm.weight
        norm.copy_(torch.randint(0, 2, norm.shape, generator=generator).to(norm.dtype) * 2 - 1)


def _published_weight_names(path: Path) -> None:
    """transformers 5 saves `language_model.model.model.*`; vLLM and the published ones use `language_model.model.*`."""
    doubled, published = "language_model.model.model.", "language_model.model."
    tensors = load_file(str(path))
    renamed = {
        (published + n[len(doubled) :] if n.startswith(doubled) else n): t.contiguous() for n, t in tensors.items()
    }
    save_file(renamed, str(path), metadata={"format": "pt"})


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _patch_configs(directory: Path, ids: dict[str, int]) -> None:
    # transformers 5 keeps the extractor inside processor_config.json only; vLLM also reads this file.
    processor_config = json.loads((directory / "processor_config.json").read_text(encoding="utf-8"))
    extractor = processor_config.get("audio_processor") or processor_config.get("feature_extractor")
    if isinstance(extractor, dict):
        _write_json(directory / "preprocessor_config.json", extractor)
    generation = {"bos_token_id": ids[END], "eos_token_id": ids[END], "pad_token_id": ids[END], "do_sample": False}
    _write_json(directory / "generation_config.json", generation)


def build_granite_checkpoint(directory: Path, seed: int = 0) -> Path:
    """Write the tiny Granite Speech checkpoint into `directory` (created if missing) and return it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer("granite_speech")
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model, processor = _model_and_processor(tokenizer)
    finally:
        torch.random.set_rng_state(state)
    model = model.to(torch.float32).eval()
    _readable_output_rows(model, tokenizer, seed)
    model.save_pretrained(str(directory))
    processor.save_pretrained(str(directory))
    _published_weight_names(directory / "model.safetensors")
    _patch_configs(directory, tokenizer.get_vocab())
    return directory


# The published checkpoints' adapter: LoRA on the text model's query and value projections.
LORA_RANK = 8
LORA_ALPHA = 16
LORA_TARGETS = ("q_proj", "v_proj")


def build_granite_lora_checkpoints(root: Path, seed: int = 0) -> tuple[Path, Path]:
    """The tiny checkpoint with a LoRA adapter for audio turns, and the same with the adapter merged in.

    The first is laid out as the published ones are (`has_lora_adapter: true`, PEFT's `adapter_config.json` and
    `adapter_model.safetensors` beside the weights); the second is what transformers computes with the adapter on,
    for a reference that needs no `peft`.
    """
    served, merged = build_granite_checkpoint(root / "with-adapter", seed), root / "merged"
    generator = torch.Generator().manual_seed(seed + 2)
    weights = load_file(str(served / "model.safetensors"))
    adapter: dict[str, torch.Tensor] = {}
    for name in [n for n in weights if n.startswith("language_model.model.layers.")]:
        if not any(f"self_attn.{target}.weight" in name for target in LORA_TARGETS):
            continue
        out_dim, in_dim = weights[name].shape
        a = torch.randn(LORA_RANK, in_dim, generator=generator) / in_dim**0.5
        b = torch.randn(out_dim, LORA_RANK, generator=generator) * (LAYER_GAIN / LORA_RANK**0.5)
        module = name.removesuffix(".weight")
        adapter[f"base_model.model.{module}.lora_A.weight"] = a.contiguous()
        adapter[f"base_model.model.{module}.lora_B.weight"] = b.contiguous()
        weights[name] = weights[name] + (LORA_ALPHA / LORA_RANK) * b @ a
    shutil.copytree(served, merged)
    save_file(adapter, str(served / "adapter_model.safetensors"), metadata={"format": "pt"})
    peft = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": LORA_RANK, "lora_alpha": LORA_ALPHA}
    peft |= {"target_modules": list(LORA_TARGETS), "lora_dropout": 0.0, "bias": "none", "fan_in_fan_out": False}
    _write_json(served / "adapter_config.json", peft | {"base_model_name_or_path": str(served), "inference_mode": True})
    _set_config(served, has_lora_adapter=True)
    # As in the published (sharded) checkpoints, an index names the model's weight files: vLLM loads every
    # *.safetensors of a directory without one, the adapter's included.
    index = {"metadata": {"total_size": sum(t.numel() * t.element_size() for t in weights.values())}}
    _write_json(
        served / "model.safetensors.index.json", index | {"weight_map": dict.fromkeys(weights, "model.safetensors")}
    )
    save_file(weights, str(merged / "model.safetensors"), metadata={"format": "pt"})
    return served, merged


def _set_config(directory: Path, **values: Any) -> None:
    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    _write_json(directory / "config.json", config | values)
