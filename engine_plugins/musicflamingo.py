"""MusicFlamingo (`MusicFlamingoForConditionalGeneration`) as an out-of-tree vLLM model class.

vLLM 0.32 dropped the architecture ("supported until v0.24") and its Transformers backend cannot run
it (transformers' `get_audio_features` wants `input_ids`, vLLM issue #57259). The model is
AudioFlamingo 3 plus two things, so this module reuses vLLM's own AF3 classes and adds only those:

- rotary time embeddings (RoTE) on the audio tower's output, before the projector: each encoder
  frame is rotated by its absolute time in seconds, on two axes (the 30 s window's index within its
  audio, the frame's index within the window). transformers reads the window index off the runs of
  `<sound>` tokens in `input_ids`; vLLM encodes audio without the text, so it comes from
  `chunk_counts` (windows per audio) here. `rope_parameters` and `head_dim` come from the config.
- the prompt: each `<sound>` expands to `<|sound_bos|>` + `<sound>` x N + `<|sound_eos|>`, as
  transformers' `MusicFlamingoProcessor.replace_audio_token` does; only the `<sound>` positions
  take audio embeddings.

Imported by vLLM only (lazily, by the name `register` gives it), never by the gateway itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from transformers.models.musicflamingo import MusicFlamingoConfig, MusicFlamingoProcessor
from vllm.config import VllmConfig
from vllm.model_executor.models.audioflamingo3 import (
    AudioFlamingo3DummyInputsBuilder,
    AudioFlamingo3ForConditionalGeneration,
    AudioFlamingo3MultiModalProcessor,
    AudioFlamingo3ProcessingInfo,
)
from vllm.multimodal import MULTIMODAL_REGISTRY
from vllm.multimodal.inputs import MultiModalKwargsItems
from vllm.multimodal.parse import MultiModalDataItems
from vllm.multimodal.processing import PromptReplacement, PromptUpdate, PromptUpdateDetails

# The audio tower halves the mel frames twice (stride-2 conv, then average pooling).
ENCODER_DOWNSAMPLING = 4


def _rotate_pairs(x: torch.Tensor) -> torch.Tensor:
    """(a, b) -> (-b, a) on neighbouring channels: RoTE rotates interleaved pairs, not halves."""
    pairs = x.reshape(*x.shape[:-1], -1, 2)
    return torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)


class RotaryTimeEmbedding(nn.Module):
    """MusicFlamingo's RoTE: rotates the first channels of each encoder frame by its time in seconds."""

    def __init__(self, config: Any) -> None:
        super().__init__()
        rope = dict(config.rope_parameters)
        if rope.get("rope_type", "default") != "default":
            raise ValueError(f"MusicFlamingo RoTE supports rope_type 'default' only, not {rope['rope_type']!r}")
        head_dim = getattr(config, "head_dim", None) or config.audio_config.hidden_size
        dim = int(head_dim * rope.get("partial_rotary_factor", 1.0))
        theta = float(rope["rope_theta"])
        # transformers sets max_position_embeddings to rope_theta: the number of angle steps per turn.
        self.periods = int(getattr(config, "max_position_embeddings", theta))
        self.frame_step = float(config.audio_frame_step) * ENCODER_DOWNSAMPLING
        inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
        self.inv_freq = nn.Buffer(inv_freq, persistent=False)
        turns = torch.arange(self.periods, dtype=torch.float32) / self.periods * (2 * math.pi)
        angles = (turns.unsqueeze(-1) * inv_freq).repeat_interleave(2, dim=-1)
        self.position_angles = nn.Buffer(angles, persistent=False)

    def timestamps(self, chunk_counts: Sequence[int], frames: int) -> torch.Tensor:
        """Seconds of each encoder frame, (windows, frames): a window's index restarts with each audio."""
        device = self.inv_freq.device
        window = torch.cat([torch.arange(int(n), device=device) for n in chunk_counts])
        offsets = torch.arange(frames, device=device, dtype=torch.float32) * self.frame_step
        return (window.unsqueeze(1) * frames) * self.frame_step + offsets

    def forward(self, hidden: torch.Tensor, chunk_counts: Sequence[int]) -> torch.Tensor:
        windows, frames = hidden.shape[0], hidden.shape[-2]
        stamps = self.timestamps(chunk_counts, frames)
        # Window axis: the window's index (start over window length), as a fraction of a turn.
        window_length = self.frame_step * frames
        window_pos = torch.round(stamps[:, 0] / window_length) / self.periods
        window_freqs = (window_pos.unsqueeze(-1) * self.inv_freq).repeat_interleave(2, dim=-1)
        time_freqs = self.position_angles[:frames]
        freqs = torch.cat(
            (window_freqs[:, None, :].expand(windows, frames, -1), time_freqs[None].expand(windows, -1, -1)), dim=-1
        )
        freqs = freqs * (-stamps * 2 * math.pi).to(freqs).unsqueeze(-1)
        # float64 as transformers does: the angles reach thousands of radians on long audio.
        x = hidden.to(torch.float64)
        cos, sin = freqs.cos().to(x), freqs.sin().to(x)
        width = cos.shape[-1]
        head = x[..., :width]
        rotated = head * cos + _rotate_pairs(head) * sin
        return torch.cat((rotated, x[..., width:]), dim=-1).to(hidden.dtype)


class MusicFlamingoProcessingInfo(AudioFlamingo3ProcessingInfo):
    def get_hf_config(self) -> MusicFlamingoConfig:
        return self.ctx.get_hf_config(MusicFlamingoConfig)

    def get_hf_processor(self, **kwargs: object) -> MusicFlamingoProcessor:
        return self.ctx.get_hf_processor(MusicFlamingoProcessor, **kwargs)


class MusicFlamingoMultiModalProcessor(AudioFlamingo3MultiModalProcessor):
    """AF3's processing (30 s windows, token counts), with the sound BOS/EOS around each audio's tokens."""

    def _get_prompt_updates(
        self,
        mm_items: MultiModalDataItems,
        hf_processor_mm_kwargs: Mapping[str, object],
        out_mm_kwargs: MultiModalKwargsItems,
    ) -> Sequence[PromptUpdate]:
        processor = self.info.get_hf_processor(**hf_processor_mm_kwargs)
        (af3_update,) = super()._get_prompt_updates(mm_items, hf_processor_mm_kwargs, out_mm_kwargs)
        assert isinstance(af3_update, PromptReplacement) and callable(af3_update.replacement)
        af3_replacement = af3_update.replacement
        audio, bos, eos = processor.audio_token_id, processor.audio_bos_token_id, processor.audio_eos_token_id

        def replacement(item_idx: int) -> PromptUpdateDetails:
            inner = af3_replacement(item_idx)
            tokens = inner.full if isinstance(inner, PromptUpdateDetails) else inner
            return PromptUpdateDetails.select_token_id([bos, *tokens, eos], embed_token_id=audio)

        return [PromptReplacement(modality="audio", target=[audio], replacement=replacement)]


@MULTIMODAL_REGISTRY.register_processor(
    MusicFlamingoMultiModalProcessor,
    info=MusicFlamingoProcessingInfo,
    dummy_inputs=AudioFlamingo3DummyInputsBuilder,
)
class MusicFlamingoForConditionalGeneration(AudioFlamingo3ForConditionalGeneration):
    """vLLM's AudioFlamingo 3 (tower, projector, Qwen2) with RoTE between the tower and the projector."""

    def __init__(self, *, vllm_config: VllmConfig, prefix: str = "") -> None:
        super().__init__(vllm_config=vllm_config, prefix=prefix)
        with self._mark_tower_model(vllm_config, "audio"):
            self.pos_emb = RotaryTimeEmbedding(self.config)

    def _process_audio_input(self, audio_input: Any) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if audio_input.type == "audio_embeds":
            return super()._process_audio_input(audio_input)
        features, mask, chunk_counts = self._normalize_audio_feature_inputs(audio_input)
        hidden = self._encode_audio_features(features, mask)
        hidden = self.pos_emb(hidden, chunk_counts)
        return self._group_audio_embeddings(self.multi_modal_projector(hidden), mask, chunk_counts)
