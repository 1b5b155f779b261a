"""`diarized_json` from an audio LLM through the real server: each speaker's stretch read as its own piece.

The checkpoint is tiny and random, so the words are not the speech's; the turns are real: a two-talker
conversation of recorded speech (pocketsphinx-testdata), the real speaker model. What is proven is the
way there: the diarizer's turns cut the recording, every stretch is read by the engine, and every
segment the family writes carries the speaker of the stretch it was read in, at times inside it.
"""

from __future__ import annotations

import io

import httpx
import pytest
import soundfile as sf

from tests.families.conftest import FamilyGateway
from tests.speakers.talkers import LIBRIVOX, RATE, two_talkers

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not LIBRIVOX, reason="needs the Debian package pocketsphinx-testdata"),
]
# Seconds a segment may reach past its talker's turn (the cut sits in the gap, at its quietest point).
SLACK_S = 1.0


@pytest.mark.parametrize("family_gateway", ["qwen2_audio"], indirect=True)
def test_each_speakers_stretch_is_read_and_labelled(family_gateway: FamilyGateway) -> None:
    audio, truth = two_talkers()
    wav = io.BytesIO()
    sf.write(wav, audio, RATE, format="WAV")
    with httpx.Client(base_url=family_gateway.server.base_url, timeout=600) as http:
        model = http.get("/v1/models").json()["data"][0]["id"]

        def ask(response_format: str) -> dict:  # type: ignore[type-arg]
            files = {"file": ("talk.wav", wav.getvalue())}
            data = {"model": model, "response_format": response_format}
            return http.post("/v1/audio/transcriptions", files=files, data=data).json()  # type: ignore[no-any-return]

        body, plain = ask("diarized_json"), ask("json")
    segments = [s for s in body["segments"] if s["text"].strip()]
    label = {"reader": "A", "other": "B"}  # by first appearance: the reader speaks first
    for start, end, who in truth:
        inside = [s for s in segments if s["start"] < end and s["end"] > start]
        # Every turn was read (a tiny model writes on any audio), under its talker's label only.
        assert inside and {s["speaker"] for s in inside} == {label[who]}, (start, end, who, inside)
        assert all(start - SLACK_S <= s["start"] and s["end"] <= end + SLACK_S for s in inside), inside
    assert [s["type"] for s in segments] == ["transcript.text.segment"] * len(segments)
    assert body["text"] == " ".join(s["text"].strip() for s in body["segments"] if s["text"].strip())
    # One reading per stretch, each with its own prompt: more prompt tokens than the one piece read plainly.
    assert body["usage"]["type"] == plain["usage"]["type"] == "tokens"
    assert body["usage"]["input_tokens"] > plain["usage"]["input_tokens"]
