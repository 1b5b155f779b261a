"""Qwen2-Audio (`Qwen2AudioForConditionalGeneration`): transcription and translation by instruction.

vLLM 0.32 serves the model but gives it no transcription endpoint. The chat is the one its
processor documents: the audio first (`Audio 1: <|audio_bos|><|AUDIO|><|audio_eos|>`), then
the instruction, rendered by the checkpoint's own ChatML template. The audio encoder reads at
most 30 s (750 audio tokens), so longer audio is cut into pieces.
"""

from __future__ import annotations

from typing import Any, ClassVar

from models.audio_chat import AudioChatFamily
from models.interface import DecodeOptions


class Qwen2AudioModel(AudioChatFamily):
    audio_token: ClassVar[str] = "<|AUDIO|>"
    max_clip_s: ClassVar[float] = 30.0

    def conversation(self, options: DecodeOptions) -> list[dict[str, Any]]:
        content = [{"type": "audio", "audio": "piece"}, {"type": "text", "text": self.instruction(options)}]
        return [{"role": "user", "content": content}]
