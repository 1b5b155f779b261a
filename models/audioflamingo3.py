"""AudioFlamingo 3 (`AudioFlamingo3ForConditionalGeneration`): transcription and translation by instruction.

vLLM 0.32 serves the model but gives it no transcription endpoint. The chat is the one its
processor's `apply_transcription_request` builds: the instruction, then `<sound>`, rendered by
the checkpoint's template; with no extras the instruction is the processor's own default,
"Transcribe the input speech.". The model wraps its answer ("The spoken content of the audio
is "..."."), which is taken off as the processor's `strip_prefix=True` does.
"""

from __future__ import annotations

from typing import Any, ClassVar

from models.audio_chat import AudioChatFamily
from models.interface import DecodeOptions

PREFIXES = (
    "The spoken content of the audio is",
    "The transcription of the audio is",
    "The content of the input audio is",
)
QUOTES = ("'", '"')


class AudioFlamingo3Model(AudioChatFamily):
    audio_token: ClassVar[str] = "<sound>"
    # The encoder reads 30 s windows; one window per piece keeps segments' times real.
    max_clip_s: ClassVar[float] = 30.0

    def conversation(self, options: DecodeOptions) -> list[dict[str, Any]]:
        content = [{"type": "text", "text": self.instruction(options)}, {"type": "audio", "audio": "piece"}]
        return [{"role": "user", "content": content}]

    def clean(self, text: str) -> str:
        answer = _without_prefix(text.strip())
        if answer.endswith("."):
            answer = answer[:-1].strip()
        if len(answer) >= 2 and answer[0] == answer[-1] and answer[0] in QUOTES:
            answer = answer[1:-1].strip()
        return answer

    def clean_partial(self, text: str) -> str:
        opening = text.lstrip()
        if any(prefix.startswith(opening) for prefix in PREFIXES):
            return ""  # may still become a wrapper
        answer = _without_prefix(opening)
        return answer[1:].lstrip() if answer[:1] in QUOTES else answer


def _without_prefix(text: str) -> str:
    for prefix in PREFIXES:
        if text.startswith(prefix):
            return text[len(prefix) :].strip()
    return text
