"""Granite Speech (`GraniteSpeechForConditionalGeneration`): transcription and translation by instruction.

The chat is the one vLLM's own transcription endpoint builds for this model
(`get_generation_prompt`): one user turn, the audio placeholder followed by the request,
"can you transcribe the speech into a written format?" or "translate the speech to
English", rendered by the checkpoint's chat template (which adds its own system turn). The
client's context (`prompt`, `keywords[]`) follows the request on lines of its own. The
model hears no language hint: vLLM accepts one and leaves it out of the prompt, and so do we.

The audio becomes 10 tokens per second (windows of 15 encoder frames, 3 queries each) and the
encoder reads any length, but vLLM's endpoint cuts at 30 s (its default `SpeechToTextConfig`),
the length the model was trained on; the gateway does the same.
"""

from __future__ import annotations

from typing import Any, ClassVar

from models.audio_chat import AudioChatFamily
from models.interface import DecodeOptions

TRANSCRIBE = "can you transcribe the speech into a written format?"
TRANSLATE = "translate the speech to {language}"


class GraniteSpeechModel(AudioChatFamily):
    audio_token: ClassVar[str] = "<|audio|>"
    max_clip_s: ClassVar[float] = 30.0

    def conversation(self, options: DecodeOptions) -> list[dict[str, Any]]:
        # Plain string content, as vLLM passes it: the template places the text verbatim.
        return [{"role": "user", "content": self.audio_token + self.instruction(options)}]

    def instruction(self, options: DecodeOptions) -> str:
        # OpenAI's translations endpoint always translates into English.
        head = TRANSLATE.format(language="English") if options.task == "translate" else TRANSCRIBE
        return "\n".join([head, *self.context_lines(options)])
