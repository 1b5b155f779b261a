"""Word timestamps and sentence segments from an audio LLM, through the real server on a tiny checkpoint.

The weights are random, so the words are not the speech's: what is proven here is the way there (the
client's granularities and format reach the family, which aligns its answer with the embedded Whisper
in a worker thread) and the shape of the answer: words whose text joined is the transcript, in order
and inside the audio, sentences timed by their words. How close the times are to the speech is proven
on recorded speech in test_llm_word_onsets.py.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import httpx
import numpy as np
import pytest

from models.audio_chat import AudioChatFamily
from tests.e2e.test_bad_input import leaks
from tests.families.conftest import FamilyGateway
from tests.speech import SENTENCES, compose, write_wav

pytestmark = pytest.mark.e2e
# Qwen2-Audio stands for the families of the chat-template base; Voxtral writes through mistral_common.
ONE = pytest.mark.parametrize("family_gateway", ["qwen2_audio"], indirect=True)
BOTH = pytest.mark.parametrize("family_gateway", ["qwen2_audio", "voxtral"], indirect=True)


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three sentences with 1.5 s pauses: about 10 s, one piece."""
    return write_wav(tmp_path_factory.mktemp("audio") / "three.wav", compose(SENTENCES[:3], pause_s=1.5))


def transcribe(http: httpx.Client, path: Path, **fields: object) -> httpx.Response:
    model = http.get("/v1/models").json()["data"][0]["id"]
    return http.post(
        "/v1/audio/transcriptions", files={"file": ("a.wav", path.read_bytes())}, data={"model": model, **fields}
    )


@BOTH
def test_words_and_sentences_come_timed_inside_the_audio(family_gateway: FamilyGateway, speech_wav: Path) -> None:
    assert isinstance(family_gateway.model, AudioChatFamily)
    print(f"\n{family_gateway.family}:", end=" ")
    with httpx.Client(base_url=family_gateway.server.base_url, timeout=600) as http:
        plain = transcribe(http, speech_wav).json()
        body = transcribe(
            http, speech_wav, response_format="verbose_json", **{"timestamp_granularities[]": ["word", "segment"]}
        ).json()
        srt = transcribe(http, speech_wav, response_format="srt").text
    text, words, segments = body["text"], body["words"], body["segments"]
    assert text == plain["text"] and len(text.split()) >= 3
    assert "".join(w["word"] for w in words).strip() == text
    starts = [w["start"] for w in words]
    assert starts == sorted(starts) and all(0 <= w["start"] <= w["end"] <= body["duration"] for w in words)
    # Sentences: their text joined is the transcript, each from its first word's start to its last word's end.
    assert "".join(s["text"] for s in segments).strip() == text
    at = 0
    for segment in segments:
        own = segment["text"].split()
        mine = words[at : at + len(own)]
        assert [w["word"].strip() for w in mine] == own
        assert (segment["start"], segment["end"]) == (mine[0]["start"], mine[-1]["end"])
        at += len(own)
    assert srt.count(" --> ") == len(segments)
    print(f"{len(words)} words, {len(segments)} sentences:", [(s["start"], s["end"], s["text"]) for s in segments])
    # Each sentence ends with its full stop, or before a pause the aligner found.
    for before, after in itertools.pairwise(segments):
        assert before["text"].rstrip()[-1] in ".?!" or after["start"] - before["end"] >= 1.0
    assert np.all(np.diff([s["start"] for s in segments]) > 0)


@ONE
def test_words_in_a_language_whisper_does_not_know_are_a_400(family_gateway: FamilyGateway, speech_wav: Path) -> None:
    with httpx.Client(base_url=family_gateway.server.base_url, timeout=600) as http:
        asked = {"response_format": "verbose_json", "timestamp_granularities[]": "word", "language": "yue"}
        response = transcribe(http, speech_wav, **asked)
        # Segments alone need no words: the piece keeps its one segment, timed by the piece.
        segments = transcribe(http, speech_wav, response_format="verbose_json", language="yue")
    error = response.json()["error"]
    assert response.status_code == 400 and error["param"] == "timestamp_granularities", error
    assert "yue" in error["message"] and not leaks(error["message"])
    assert segments.status_code == 200
    [(start, end)] = [(s["start"], s["end"]) for s in segments.json()["segments"]]
    assert start == 0.0 and abs(end - segments.json()["duration"]) <= 0.011


def align_seconds(http: httpx.Client) -> float:
    """Seconds requests so far spent waiting on word alignment (the server's metrics)."""
    for line in http.get("/metrics").text.splitlines():
        if line.startswith('speech_gateway_stage_seconds_sum{stage="align"}'):
            return float(line.split()[-1])
    return 0.0


@ONE
def test_only_formats_that_show_times_pay_for_the_alignment(family_gateway: FamilyGateway, speech_wav: Path) -> None:
    with httpx.Client(base_url=family_gateway.server.base_url, timeout=600) as http:
        before = align_seconds(http)
        for response_format in ("json", "text"):
            assert transcribe(http, speech_wav, response_format=response_format).status_code == 200
        assert align_seconds(http) == before
        assert transcribe(http, speech_wav, response_format="vtt").status_code == 200
        assert align_seconds(http) > before
