"""Deterministic tiny random-weight checkpoints of the audio LLM families the gateway serves.

`build_checkpoint(family, directory, seed)` writes, in about a second and about 1 MB, a checkpoint that both
`transformers` and vLLM load: the family's config classes at toy sizes (text model of width 64 with head size 32,
which the CPU attention accepts; a Whisper-style audio encoder with the family's 128 mel bins and 1500 source
positions, so a 30 s window fits), a byte-level BPE tokenizer of about 500 tokens trained here on a few hundred
English words plus the family's special tokens, the family's processor with a chat template that renders the same
text as the published checkpoint's, `preprocessor_config.json` beside `processor_config.json`, and a greedy
`generation_config.json`.

The output weights are chosen so that greedy decoding reads as words: every output row is zero except those of
whole-word tokens (" the", " river", ...) and the end token, which get large deterministic random rows. A zero row
scores 0 while the best of about a hundred large random word rows scores well above it, so generation never emits a
byte fragment or a control token, and the end token is reachable without being likely.

Only `transformers`, `tokenizers`, `safetensors` and `torch` are imported: no vLLM.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

FAMILIES = ("qwen2_audio", "audioflamingo3", "qwen3_asr")

HIDDEN = 64
HEAD_DIM = 32
MEL_BINS = 128
BPE_VOCAB = 500
# Logit scale of the word rows: logits of about N(0, 3^2) make the greedy choice clear and stable.
LOGIT_STD = 3.0
LAYER_GAIN = 2.0

# A few hundred common English words: the tokenizer's training text and the words greedy output is made of.
_WORD_TEXT = (
    "the of and to in is was it for on are as with his they at be this from have or by one had not but what all "
    "were when we there can an your which their said if do will each about how up out them then she many some so "
    "these would other into has more her two like him see time could no make than first been its who now people my "
    "made over did down only way find use may water long little very after words called just where most know get "
    "through back much go good new write our me man too any day same right look think also around another came come "
    "work three word must because does part even place well such here take why things help put years different away "
    "again off went old number great tell men say small every found still between name should home big give air "
    "line set own under read last never us left end along while might next sound below saw something thought both "
    "few those always looked show large often together asked house world going want school important until form "
    "food keep children feet land side without boy once animals life enough took sometimes four head above kind "
    "began almost live page got earth need far hand high year mother light parts country father let night following "
    "picture being study second eyes soon times story boys since white days ever paper hard near sentence better "
    "best across during today others however sure means knew try told young miles sun ways thing whole hear example "
    "heard several change answer room sea against top turned learn point city play toward five using himself "
    "usually river music morning garden window table quiet voice evening simple green stone bright clear open early "
    "spring summer winter letter ready dream"
)
WORDS: tuple[str, ...] = tuple(_WORD_TEXT.split())

# Special tokens in the order the published tokenizers number them (all after the ordinary vocabulary there too),
# and the ones that stay visible when decoding with skip_special_tokens=True.
SPECIAL_TOKENS: dict[str, list[str]] = {
    "qwen2_audio": ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"],
    "audioflamingo3": ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<sound>"],
    "qwen3_asr": ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|audio_start|>", "<|audio_end|>", "<|audio_pad|>"],
    "granite_speech": ["<|end_of_text|>", "<|start_of_role|>", "<|end_of_role|>", "<|tool_call|>", "<|audio|>"],
}
# Qwen3-ASR's `<asr_text>` and `<timestamp>` are added tokens that are not special: the published processor finds
# `<asr_text>` in text decoded with skip_special_tokens=True.
PLAIN_ADDED_TOKENS: dict[str, list[str]] = {"qwen3_asr": ["<asr_text>", "<timestamp>"]}

# Chat templates: each renders the same text as the published checkpoint's processor template.
# Qwen/Qwen2-Audio-7B-Instruct: default ChatML system prompt; each audio item as "Audio N: <|audio_bos|><|AUDIO|>
# <|audio_eos|>\n", text items verbatim, in content order.
QWEN2_AUDIO_TEMPLATE = (
    "{% set audio_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n"
    "{% else %}"
    "{% for content in message['content'] %}"
    "{% if 'audio' in content or 'audio_url' in content or content['type'] == 'audio' %}"
    "{% set audio_count.value = audio_count.value + 1 %}"
    "Audio {{ audio_count.value }}: <|audio_bos|><|AUDIO|><|audio_eos|>\n"
    "{% elif 'text' in content %}"
    "{{ content['text'] }}"
    "{% endif %}"
    "{% endfor %}"
    "<|im_end|>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}"
    "<|im_start|>assistant\n"
    "{% endif %}"
)
# nvidia/audio-flamingo-3-hf: default ChatML system prompt; a user turn holding audio renders one "<sound>" first,
# then the concatenated text items.
AUDIOFLAMINGO3_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "{% for m in messages if m['content'] is not none %}"
    "<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}"
    "{{ m['content'] }}"
    "{% else %}"
    "{% set sound = namespace(found=False, text='') %}"
    "{% for c in m['content'] %}"
    "{% if c.get('type') == 'audio' or 'audio' in c %}"
    "{% set sound.found = True %}"
    "{% elif c.get('type') == 'text' or 'text' in c %}"
    "{% set sound.text = sound.text + c['text'] %}"
    "{% endif %}"
    "{% endfor %}"
    "{% if sound.found %}<sound>{% endif %}{{ sound.text }}"
    "{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}"
    "<|im_start|>assistant\n"
    "{% endif %}"
)
# Qwen/Qwen3-ASR-1.7B(-hf): a system turn always (the concatenated system text, empty when none), then one user turn
# with one "<|audio_start|><|audio_pad|><|audio_end|>" per audio item (user text is not rendered), then assistant
# turns verbatim (a final one can be continued: "language English<asr_text>" forces the language).
QWEN3_ASR_TEMPLATE = (
    "{%- set ns = namespace(system_text='', audio_tokens='') -%}"
    "{%- for m in messages -%}"
    "{%- if m.role == 'system' -%}"
    "{%- if m.content is string -%}"
    "{%- set ns.system_text = ns.system_text + m.content -%}"
    "{%- else -%}"
    "{%- for c in m.content -%}"
    "{%- if c.type == 'text' and (c.text is defined) -%}"
    "{%- set ns.system_text = ns.system_text + c.text -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{%- endif -%}"
    "{%- if m.content is not string -%}"
    "{%- for c in m.content -%}"
    "{%- if c.type == 'audio' or ('audio' in c) or ('audio_url' in c) -%}"
    "{%- set ns.audio_tokens = ns.audio_tokens + '<|audio_start|><|audio_pad|><|audio_end|>' -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{{- '<|im_start|>system\n' + ns.system_text + '<|im_end|>\n' -}}"
    "{{- '<|im_start|>user\n' + ns.audio_tokens + '<|im_end|>\n' -}}"
    "{%- for m in messages -%}"
    "{%- if m.role == 'assistant' -%}"
    "{%- set ns_a = namespace(text='') -%}"
    "{%- if m.content is string -%}"
    "{%- set ns_a.text = m.content -%}"
    "{%- else -%}"
    "{%- for c in m.content -%}"
    "{%- if c.type == 'text' and (c.text is defined) -%}"
    "{%- set ns_a.text = ns_a.text + c.text -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{{- '<|im_start|>assistant\n' + ns_a.text + '<|im_end|>\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- '<|im_start|>assistant\n' -}}"
    "{%- endif -%}"
)
CHAT_TEMPLATES = {
    "qwen2_audio": QWEN2_AUDIO_TEMPLATE,
    "audioflamingo3": AUDIOFLAMINGO3_TEMPLATE,
    "qwen3_asr": QWEN3_ASR_TEMPLATE,
}
AUDIO_TOKEN = {"qwen2_audio": "<|AUDIO|>", "audioflamingo3": "<sound>", "qwen3_asr": "<|audio_pad|>"}


def _corpus() -> list[str]:
    """Training lines: earlier words repeat more often (Zipf-like), so the common ones become whole tokens."""
    lines = []
    for rank, word in enumerate(WORDS):
        repeats = max(2, 200 // (rank + 1))
        lines.extend([f"the {word} and {word} of {word}"] * repeats)
    lines.append("Transcribe the input speech. language English")
    return lines


def build_tokenizer(family: str) -> Tokenizer:
    """A byte-level BPE of about 500 tokens, then the family's added tokens in the family's order."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=BPE_VOCAB,
        min_frequency=2,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_corpus(), trainer=trainer)
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS[family]])
    plain = PLAIN_ADDED_TOKENS.get(family, [])
    if plain:
        tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in plain])
    return tokenizer


def word_token_ids(tokenizer: Tokenizer) -> list[int]:
    """Ids of tokens that are a space followed by a whole word of `WORDS` ("Ġriver")."""
    words = set(WORDS)
    vocab = tokenizer.get_vocab()
    return sorted(i for t, i in vocab.items() if t.startswith("\u0120") and t[1:] in words)


def _hf_tokenizer(family: str, tokenizer: Tokenizer) -> Any:
    from transformers import PreTrainedTokenizerFast

    extra: dict[str, Any] = {}
    if family == "qwen3_asr":
        extra["extra_special_tokens"] = {
            "audio_token": "<|audio_pad|>",
            "audio_bos_token": "<|audio_start|>",
            "audio_eos_token": "<|audio_end|>",
        }
    elif family == "qwen2_audio":
        extra["extra_special_tokens"] = {
            "audio_token": "<|AUDIO|>",
            "audio_bos_token": "<|audio_bos|>",
            "audio_eos_token": "<|audio_eos|>",
        }
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        bos_token=None,
        clean_up_tokenization_spaces=False,
        model_max_length=32768,
        **extra,
    )


def _text_config(family: str, vocab_size: int, ids: dict[str, int]) -> dict[str, Any]:
    return {
        "model_type": "qwen3" if family == "qwen3_asr" else "qwen2",
        "vocab_size": vocab_size,
        "hidden_size": HIDDEN,
        "intermediate_size": 2 * HIDDEN,
        "num_hidden_layers": 2,
        "num_attention_heads": HIDDEN // HEAD_DIM,
        "num_key_value_heads": 1,
        "head_dim": HEAD_DIM,
        "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0},
        "tie_word_embeddings": family == "qwen3_asr",
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
    }


def _model_and_processor(family: str, tokenizer: Tokenizer) -> tuple[Any, Any]:
    from transformers import WhisperFeatureExtractor

    hf_tokenizer = _hf_tokenizer(family, tokenizer)
    ids = tokenizer.get_vocab()
    text = _text_config(family, tokenizer.get_vocab_size(), ids)
    template = CHAT_TEMPLATES[family]
    if family == "qwen2_audio":
        from transformers import Qwen2AudioConfig, Qwen2AudioForConditionalGeneration, Qwen2AudioProcessor

        config = Qwen2AudioConfig(
            audio_config={
                "model_type": "qwen2_audio_encoder",
                "num_mel_bins": MEL_BINS,
                "encoder_layers": 1,
                "encoder_attention_heads": 2,
                "encoder_ffn_dim": 2 * HIDDEN,
                "d_model": HIDDEN,
                "max_source_positions": 1500,
            },
            text_config=text,
            audio_token_index=ids["<|AUDIO|>"],
        )
        model = Qwen2AudioForConditionalGeneration(config)
        processor = Qwen2AudioProcessor(
            feature_extractor=WhisperFeatureExtractor(feature_size=MEL_BINS, return_attention_mask=True),
            tokenizer=hf_tokenizer,
            chat_template=template,
        )
    elif family == "audioflamingo3":
        from transformers import AudioFlamingo3Config, AudioFlamingo3ForConditionalGeneration, AudioFlamingo3Processor

        config = AudioFlamingo3Config(
            audio_config={
                "model_type": "audioflamingo3_encoder",
                "num_mel_bins": MEL_BINS,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "intermediate_size": 2 * HIDDEN,
                "hidden_size": HIDDEN,
                "max_source_positions": 1500,
            },
            text_config=text,
            audio_token_id=ids["<sound>"],
        )
        model = AudioFlamingo3ForConditionalGeneration(config)
        processor = AudioFlamingo3Processor(
            feature_extractor=WhisperFeatureExtractor(feature_size=MEL_BINS, return_attention_mask=True),
            tokenizer=hf_tokenizer,
            chat_template=template,
        )
    elif family == "qwen3_asr":
        from transformers import (
            Qwen3ASRConfig,
            Qwen3ASRFeatureExtractor,
            Qwen3ASRForConditionalGeneration,
            Qwen3ASRProcessor,
        )

        config = Qwen3ASRConfig(
            audio_config={
                "model_type": "qwen3_asr_encoder",
                "num_mel_bins": MEL_BINS,
                "encoder_layers": 1,
                "encoder_attention_heads": 2,
                "encoder_ffn_dim": 2 * HIDDEN,
                "d_model": HIDDEN,
                "n_window": 50,
                "n_window_infer": 800,
                "output_dim": HIDDEN,
                "downsample_hidden_size": 32,
                "max_position_embeddings": 13,
            },
            text_config=text,
            audio_token_id=ids["<|audio_pad|>"],
            timestamp_token_id=ids["<timestamp>"],
            pad_token_id=ids["<|im_end|>"],
            eos_token_id=[ids["<|endoftext|>"], ids["<|im_end|>"]],
            tie_word_embeddings=True,
        )
        model = Qwen3ASRForConditionalGeneration(config)
        processor = Qwen3ASRProcessor(
            feature_extractor=Qwen3ASRFeatureExtractor(feature_size=MEL_BINS),
            tokenizer=hf_tokenizer,
            chat_template=template,
        )
    else:
        raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")
    return model, processor


def _readable_output_rows(model: Any, tokenizer: Tokenizer, family: str, seed: int) -> None:
    """Zero every output row but whole words' and the end token's, which get large deterministic rows.

    Qwen3-ASR ties its input embeddings to these rows, so there the other tokens embed as zero vectors.
    """
    generator = torch.Generator().manual_seed(seed + 1)
    out = model.get_output_embeddings().weight
    vocab, hidden = out.shape
    rows = torch.zeros(vocab, hidden)
    keep = [*word_token_ids(tokenizer), tokenizer.token_to_id("<|im_end|>")]
    scale = LOGIT_STD / hidden**0.5
    rows[keep] = torch.randn(len(keep), hidden, generator=generator) * scale
    with torch.no_grad():
        out.copy_(rows)
        # Strong random layers make the next word a random function of the context (audio included) rather than of
        # the last token alone, so greedy text wanders instead of repeating one word.
        for name, param in model.named_parameters():
            if "language_model" in name and param.dim() == 2 and ("mlp" in name or "self_attn" in name):
                fan_in = param.shape[1]
                param.copy_(torch.randn(param.shape, generator=generator) * (LAYER_GAIN / fan_in**0.5))
        # Random signs on the final norm: with tied embeddings (Qwen3-ASR) the residual stream otherwise makes the
        # last token its own favourite successor.
        norm = model.get_decoder().norm.weight
        norm.copy_(torch.randint(0, 2, norm.shape, generator=generator).to(norm.dtype) * 2 - 1)


def _fix_weight_names(path: Path, family: str) -> None:
    """transformers 5 saves `language_model.model.model.*`; vLLM and the published ones use `language_model.model.*`."""
    tensors = load_file(str(path))
    renamed: dict[str, torch.Tensor] = {}
    for name, tensor in tensors.items():
        if name.startswith("language_model.model.model."):
            name = "language_model.model." + name[len("language_model.model.model.") :]
        renamed[name] = tensor.contiguous()
    save_file(renamed, str(path), metadata={"format": "pt"})


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _patch_configs(directory: Path, family: str, ids: dict[str, int]) -> None:
    config_path = directory / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if family == "qwen3_asr":
        audio = config.setdefault("audio_config", {})
        # vLLM's own Qwen3ASRConfig defaults differ (n_window 100, n_window_infer 400): write them out explicitly.
        audio.update(
            {
                "num_mel_bins": MEL_BINS,
                "encoder_layers": 1,
                "encoder_attention_heads": 2,
                "encoder_ffn_dim": 2 * HIDDEN,
                "d_model": HIDDEN,
                "n_window": 50,
                "n_window_infer": 800,
                "output_dim": HIDDEN,
                "downsample_hidden_size": 32,
                "max_position_embeddings": 13,
            }
        )
        text = config.setdefault("text_config", {})
        text.update({"tie_word_embeddings": True, "rope_theta": 1000000.0, "head_dim": HEAD_DIM})
        config["tie_word_embeddings"] = True
    _write_json(config_path, config)
    # transformers 5 keeps the feature extractor inside processor_config.json only; vLLM also reads this file.
    processor_config = json.loads((directory / "processor_config.json").read_text(encoding="utf-8"))
    feature_extractor = processor_config.get("feature_extractor")
    if isinstance(feature_extractor, dict):
        _write_json(directory / "preprocessor_config.json", feature_extractor)
    eos = [ids["<|endoftext|>"], ids["<|im_end|>"]]
    generation = {
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": eos,
        "pad_token_id": ids["<|im_end|>"] if family == "qwen3_asr" else ids["<|endoftext|>"],
        "do_sample": False,
    }
    _write_json(directory / "generation_config.json", generation)


def build_checkpoint(family: str, directory: Path, seed: int = 0) -> Path:
    """Write the tiny checkpoint of `family` into `directory` (created if missing) and return the directory."""
    if family == "granite_speech":  # its own module: Granite's configs and layout differ from the Qwen-based ones
        from tests.families.tiny_granite import build_granite_checkpoint

        return build_granite_checkpoint(directory, seed)
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(family)
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model, processor = _model_and_processor(family, tokenizer)
    finally:
        torch.random.set_rng_state(state)
    model = model.to(torch.float32).eval()
    _readable_output_rows(model, tokenizer, family, seed)
    model.save_pretrained(str(directory))
    processor.save_pretrained(str(directory))
    _fix_weight_names(directory / "model.safetensors", family)
    _patch_configs(directory, family, tokenizer.get_vocab())
    return directory
