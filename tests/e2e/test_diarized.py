"""`diarized_json` from the real server: real Whisper, real speaker model, two espeak-ng voices taking turns.

The speakers must come out in the order they spoke, every segment with the voice heard at its
time, a known speaker named from a clip of a sentence the conversation does not hold; and the
diarized text must hold the plain transcript's words (within 2 %): none lost or doubled at a change.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from openai import OpenAI

from tests.speech import SAMPLE_RATE, SENTENCES, speak, wer, write_wav

LOW, HIGH = "en+m3", "en+f4"  # a low male voice and a high female one
TURNS = [(LOW, SENTENCES[4]), (HIGH, SENTENCES[5]), (LOW, SENTENCES[6]), (HIGH, SENTENCES[7])]
GAPS_S = (0.5, 0.3, 0.8)  # between the turns


def runs(speakers: list[str]) -> list[str]:
    return [s for i, s in enumerate(speakers) if i == 0 or speakers[i - 1] != s]


@pytest.fixture(scope="module")
def conversation(audio_dir: Path) -> tuple[Path, list[tuple[float, float, str]]]:
    """The conversation's file and each turn's (start, end, voice)."""
    parts, spans, at = [], [], 0.3
    parts.append(np.zeros(int(at * SAMPLE_RATE), np.float32))
    for i, (voice, sentence) in enumerate(TURNS):
        sound = speak(sentence, voice)
        parts.append(sound)
        spans.append((at, at + len(sound) / SAMPLE_RATE, voice))
        at += len(sound) / SAMPLE_RATE
        gap = GAPS_S[i] if i < len(GAPS_S) else 0.5
        parts.append(np.zeros(int(gap * SAMPLE_RATE), np.float32))
        at += gap
    return write_wav(audio_dir / "conversation.wav", np.concatenate(parts)), spans


def voice_at(spans: list[tuple[float, float, str]], start: float, end: float) -> str:
    middle = (start + end) / 2
    return min(spans, key=lambda s: 0 if s[0] <= middle <= s[1] else min(abs(middle - s[0]), abs(middle - s[1])))[2]


def test_two_voices_in_order_with_the_plain_transcript_words(
    client: OpenAI, conversation: tuple[Path, list[tuple[float, float, str]]]
) -> None:
    path, spans = conversation
    # The plain transcript read the same way (with times: `json` alone skips Whisper's timestamps).
    plain = client.audio.transcriptions.create(
        model="whisper-1", file=path, language="en", response_format="verbose_json"
    )
    result = client.audio.transcriptions.create(
        model="whisper-1", file=path, language="en", response_format="diarized_json"
    )
    speakers = [s.speaker for s in result.segments]
    assert runs(speakers) == ["A", "B", "A", "B"], [(s.speaker, s.start, s.text) for s in result.segments]
    letter = {LOW: "A", HIGH: "B"}
    for segment in result.segments:
        assert segment.speaker == letter[voice_at(spans, segment.start, segment.end)], segment
    assert wer(plain.text, result.text) <= 0.02, (plain.text, result.text)


def test_a_known_speaker_is_named(client: OpenAI, conversation: tuple[Path, list[tuple[float, float, str]]]) -> None:
    path, _ = conversation
    clip = speak(SENTENCES[12], HIGH)  # a sentence the conversation does not hold, 2-10 s
    buffer = io.BytesIO()
    sf.write(buffer, clip, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    reference = "data:audio/wav;base64," + base64.b64encode(buffer.getvalue()).decode()
    result = client.audio.transcriptions.create(
        model="whisper-1",
        file=path,
        language="en",
        response_format="diarized_json",
        known_speaker_names=["caller"],
        known_speaker_references=[reference],
    )
    assert runs([s.speaker for s in result.segments]) == ["A", "caller", "A", "caller"]
