"""MusicFlamingo (`MusicFlamingoForConditionalGeneration`): lyrics, or any question about the music, by instruction.

AudioFlamingo 3's chat (the instruction, then `<sound>`, rendered by the checkpoint's template, which
brings its own Music Flamingo system prompt); vLLM 0.32 lacks the model, so it runs on the class in
`engine_plugins/musicflamingo.py`. The model answers in plain text: no wrapper to take off.

`prompt` is the instruction itself: "Describe this track: genre, tempo, key, instruments." replaces
the default "Transcribe the lyrics of the input music." (the lyric sheet the model is trained to
write). Keywords still follow it as a hint line; `language` only shapes the default instruction.
"""

from __future__ import annotations

from typing import ClassVar

from models.audioflamingo3 import AudioFlamingo3Model
from models.interface import DecodeOptions


class MusicFlamingoModel(AudioFlamingo3Model):
    # RoTE gives the encoder absolute time over 30 s windows up to 20 min; a piece holds a whole song,
    # so a question about it is answered once, not per 30 s.
    max_clip_s: ClassVar[float] = 300.0

    heard: ClassVar[str] = "the lyrics of the input music"
    heard_is: ClassVar[str] = "are"

    def request(self, options: DecodeOptions) -> str:
        asked = options.prompt.strip() if options.prompt else ""
        return asked or super().request(options)

    def context_lines(self, options: DecodeOptions) -> list[str]:
        # The prompt is the instruction here, not context.
        return [f"These words may occur: {', '.join(options.keywords)}."] if options.keywords else []

    def clean(self, text: str) -> str:
        return text.strip()

    def clean_partial(self, text: str) -> str:
        return text.lstrip()
