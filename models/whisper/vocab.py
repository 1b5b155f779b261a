"""Whisper's vocabulary as the family needs it: special-token ids, the tokenizer, text compression."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

from models.languages import LANGUAGES


@dataclass(frozen=True)
class WhisperVocab:
    """Ids of Whisper's special tokens, looked up by text so every checkpoint's layout works."""

    eot: int
    sot: int
    sot_prev: int
    no_timestamps: int
    no_speech: int
    timestamp_begin: int
    transcribe: int | None
    translate: int | None
    languages: dict[str, int]

    @classmethod
    def from_tokenizer(cls, tokenizer: Tokenizer) -> WhisperVocab:
        def tid(token: str) -> int | None:
            return tokenizer.token_to_id(token)

        def need(*tokens: str) -> int:
            for token in tokens:
                if (found := tid(token)) is not None:
                    return found
            raise ValueError(f"tokenizer lacks Whisper token {tokens[0]}")

        languages = {code: i for code in LANGUAGES if (i := tid(f"<|{code}|>")) is not None}
        no_timestamps = need("<|notimestamps|>")
        # Some tokenizers omit the timestamp tokens; they always follow <|notimestamps|>.
        timestamp_begin = tid("<|0.00|>") or no_timestamps + 1
        return cls(
            eot=need("<|endoftext|>"),
            sot=need("<|startoftranscript|>"),
            sot_prev=need("<|startofprev|>"),
            no_timestamps=no_timestamps,
            no_speech=need("<|nospeech|>", "<|nocaptions|>"),
            timestamp_begin=timestamp_begin,
            transcribe=tid("<|transcribe|>"),
            translate=tid("<|translate|>"),
            languages=languages,
        )


def compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def load_tokenizer(model_dir: Path) -> Tokenizer:
    path = model_dir / "tokenizer.json"
    if path.is_file():
        return Tokenizer.from_file(str(path))
    # Older checkpoints ship vocab.json + merges.txt only; transformers builds the fast tokenizer.
    from transformers.models.whisper import WhisperTokenizer

    fast = WhisperTokenizer.from_pretrained(str(model_dir))
    return fast.backend_tokenizer
