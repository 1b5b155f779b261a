"""A tiny random-weight MusicFlamingo checkpoint, built from transformers' `MusicFlamingoConfig`.

The same recipe as `tests/families/tiny.py` (byte-level BPE of ~500 tokens, text model of width 64 with head size 32,
Whisper-style encoder with 128 mel bins and 1500 source positions, readable output rows, vLLM's weight names), plus
what MusicFlamingo adds: `<|sound_bos|>` and `<|sound_eos|>` right after `<sound>` (the published order), their ids
in the config, transformers' default RoTE parameters (theta 1200, a fifth of the encoder width rotated), and the
published chat template with its Music Flamingo system prompt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import AddedToken, Tokenizer

from tests.families.tiny import (
    HIDDEN,
    MEL_BINS,
    _fix_weight_names,
    _hf_tokenizer,
    _patch_configs,
    _readable_output_rows,
    _text_config,
    build_tokenizer,
)

FAMILY = "musicflamingo"
AUDIO_TOKEN = "<sound>"
SOUND_BOS = "<|sound_bos|>"
SOUND_EOS = "<|sound_eos|>"

# nvidia/music-flamingo-2601-hf renders (transformers' test_chat_template): its own system prompt unless the chat
# has one, then "<sound>" and the concatenated text items in each user turn that holds audio.
SYSTEM_PROMPT = (
    "You are Music Flamingo, a multimodal assistant for language and music. On each turn you receive an audio clip "
    "which contains music and optional text, you will receive at least one or both; use your world knowledge and "
    "reasoning to help the user with any task. Interpret the entirety of the content any input music--regardlenss of "
    "whether the user calls it audio, music, or sound."
)
CHAT_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}"
    "<|im_start|>system\n" + SYSTEM_PROMPT + "<|im_end|>\n"
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


def build_musicflamingo_tokenizer() -> Tokenizer:
    """AudioFlamingo 3's tiny tokenizer (`<sound>` last) with the two sound boundary tokens after it."""
    tokenizer = build_tokenizer("audioflamingo3")
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in (SOUND_BOS, SOUND_EOS)])
    return tokenizer


def musicflamingo_config(ids: dict[str, int], vocab_size: int) -> Any:
    from transformers import MusicFlamingoConfig

    return MusicFlamingoConfig(
        audio_config={
            "model_type": "audioflamingo3_encoder",
            "num_mel_bins": MEL_BINS,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 2 * HIDDEN,
            "hidden_size": HIDDEN,
            "max_source_positions": 1500,
        },
        text_config=_text_config("audioflamingo3", vocab_size, ids),
        audio_token_id=ids[AUDIO_TOKEN],
        audio_bos_token_id=ids[SOUND_BOS],
        audio_eos_token_id=ids[SOUND_EOS],
    )


def build_musicflamingo_checkpoint(directory: Path, seed: int = 0) -> Path:
    """Write the tiny MusicFlamingo checkpoint into `directory` (created if missing) and return it."""
    from transformers import MusicFlamingoForConditionalGeneration, MusicFlamingoProcessor, WhisperFeatureExtractor

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = build_musicflamingo_tokenizer()
    ids = tokenizer.get_vocab()
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = MusicFlamingoForConditionalGeneration(musicflamingo_config(ids, tokenizer.get_vocab_size()))
    finally:
        torch.random.set_rng_state(state)
    model = model.to(torch.float32).eval()
    _readable_output_rows(model, tokenizer, FAMILY, seed)
    processor = MusicFlamingoProcessor(
        feature_extractor=WhisperFeatureExtractor(feature_size=MEL_BINS, return_attention_mask=True),
        tokenizer=_hf_tokenizer(FAMILY, tokenizer),
        chat_template=CHAT_TEMPLATE,
    )
    model.save_pretrained(str(directory))
    processor.save_pretrained(str(directory))
    _fix_weight_names(directory / "model.safetensors", FAMILY)
    _patch_configs(directory, FAMILY, ids)
    return directory


def melody(seconds: float, rate: int = 16_000, seed: int = 0) -> np.ndarray:
    """A deterministic tune: half-second notes of a pentatonic scale with a soft decay, as float32 samples."""
    generator = np.random.default_rng(seed)
    scale = 220.0 * 2 ** (np.array([0, 2, 4, 7, 9, 12]) / 12)
    note = int(rate * 0.5)
    t = np.arange(note) / rate
    notes = [np.sin(2 * np.pi * f * t) * np.exp(-3 * t) for f in generator.choice(scale, int(seconds / 0.5) + 1)]
    return (0.3 * np.concatenate(notes)[: int(seconds * rate)]).astype(np.float32)
