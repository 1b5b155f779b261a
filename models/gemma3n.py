"""Gemma 3n (`Gemma3nForConditionalGeneration`): transcription and translation by a fixed instruction.

The prompt is the one vLLM's own transcription endpoint sends (`get_generation_prompt` in vLLM's
gemma3n_mm.py): `<start_of_turn>user\\nTranscribe this audio[ into L]: <audio_soft_token><end_of_turn>\\n
<start_of_turn>model\\n`, and `Translate this audio[ from L] into English: ` for translations. The engine's
tokenizer puts `<bos>` first. A client's context (`prompt`, `keywords[]`) opens the user turn, followed
by a blank line, which is how Gemma's chat template renders a system turn.

The model reads one 30 s window as 188 audio soft tokens whatever the clip's length (shorter audio is
padded, longer truncated, nothing chunked), so the gateway cuts audio into pieces of at most 30 s. No
image is ever sent: the engine is told so, which keeps vLLM from building the vision tower for real
(see engine_plugins/gemma3n_vision.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from models.audio_chat import AudioChatFamily
from models.interface import DecodeOptions

TURN = "<start_of_turn>user\n{head}{ask}: <audio_soft_token><end_of_turn>\n<start_of_turn>model\n"


class Gemma3nModel(AudioChatFamily):
    audio_token: ClassVar[str] = "<audio_soft_token>"
    # 188 soft tokens stand for exactly 30 s: anything longer would be cut off inside the model.
    max_clip_s: ClassVar[float] = 30.0

    def engine_args(self) -> Mapping[str, Any]:
        # Image 0: vLLM then builds the vision tower on the meta device and never loads its weights.
        return {"limit_mm_per_prompt": {"audio": 1, "image": 0}}

    def instruction(self, options: DecodeOptions) -> str:
        language = self.language_name(options.language) if options.language else None
        if options.task == "translate":
            return "Translate this audio" + (f" from {language}" if language else "") + " into English"
        return "Transcribe this audio" + (f" into {language}" if language else "")

    def prompt_text(self, options: DecodeOptions) -> str:
        # Written out rather than rendered: the checkpoint's template trims the space before the audio
        # that vLLM's transcription prompt has.
        context = "\n".join(self.context_lines(options))
        return TURN.format(head=f"{context}\n\n" if context else "", ask=self.instruction(options))
