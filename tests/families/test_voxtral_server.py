"""The real server on the tiny Voxtral's Mistral layout, called with the `openai` SDK and httpx.

The family is picked from `params.json` (the directory has no config.json), the engine gets the
family's Mistral formats, and every answer is held to transformers on the Hugging Face layout of
the same weights: the text, each token's logprob, the token usage, the pieces of a long file.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import openai
import pytest

from app.audio.decode import split_windows
from models.audio_chat import MAX_NEW_TOKENS
from models.voxtral import VoxtralModel
from tests.e2e.test_bad_input import leaks
from tests.families.conftest import FamilyGateway
from tests.families.inprocess import InProcessServer
from tests.families.pieces import by_piece
from tests.families.reference import GreedyResult
from tests.families.test_family_server import as_served, client_of
from tests.families.voxtral_reference import hf_greedy, hf_prompt_ids
from tests.speech import SENTENCES, compose, speak, write_wav

# The real app on a real socket, served in this process; its engine also runs Voxtral's parity tests.
pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("family_gateway", ["voxtral"], indirect=True)]

RATE = 16_000
NAME = "voxtral"


@pytest.fixture
def served(family_gateway: FamilyGateway) -> tuple[VoxtralModel, InProcessServer]:
    model = family_gateway.model
    assert isinstance(model, VoxtralModel)
    return model, family_gateway.server


def reference(checkpoint: Path, audio: np.ndarray, language: str | None = None) -> GreedyResult:
    return hf_greedy(checkpoint / "hf", audio, language, max_new_tokens=MAX_NEW_TOKENS)


@pytest.fixture(scope="module")
def short_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_wav(tmp_path_factory.mktemp("audio") / "short.wav", speak(SENTENCES[1]))


@pytest.fixture(scope="module")
def long_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    speech = compose(SENTENCES[:24], pause_s=0.7)
    return write_wav(tmp_path_factory.mktemp("audio") / "long.wav", np.resize(speech, 70 * RATE))


def test_transcription_equals_transformers_with_logprobs_and_token_usage(
    served: tuple[VoxtralModel, InProcessServer], voxtral_checkpoint: Path, short_wav: Path
) -> None:
    model, server = served
    audio = as_served(short_wav)
    expected = reference(voxtral_checkpoint, audio, "en")
    prompt_ids = hf_prompt_ids(voxtral_checkpoint / "hf", audio, "en")
    # `prompt` and `keywords[]` have no place in Voxtral's request: accepted, and the answer is the same.
    fields = {
        "model": NAME,
        "language": "en",
        "prompt": "Weather report",
        "keywords[]": ["rain"],
        "include[]": "logprobs",
    }
    body = httpx.post(
        f"{server.base_url}/v1/audio/transcriptions",
        files={"file": ("short.wav", short_wav.read_bytes())},
        data=fields,
        timeout=600,
    ).json()
    assert body["text"] == expected.text.strip()
    theirs = [step[token] for step, token in zip(expected.top_logprobs, expected.token_ids, strict=True)]
    assert np.allclose([lp["logprob"] for lp in body["logprobs"]], theirs, atol=1e-3)
    audio_tokens = sum(1 for t in prompt_ids if t == model.audio_token_id)
    assert body["usage"] == {
        "type": "tokens",
        "input_tokens": len(prompt_ids),
        "output_tokens": len(expected.token_ids),
        "total_tokens": len(prompt_ids) + len(expected.token_ids),
        "input_token_details": {"audio_tokens": audio_tokens, "text_tokens": len(prompt_ids) - audio_tokens},
    }


def test_stream_sends_tokens_as_they_come_and_bills_the_same(
    served: tuple[VoxtralModel, InProcessServer], voxtral_checkpoint: Path, short_wav: Path
) -> None:
    _, server = served
    client = client_of(server)
    with short_wav.open("rb") as f:
        answer = client.audio.transcriptions.create(model=NAME, file=f)
    assert answer.text == reference(voxtral_checkpoint, as_served(short_wav)).text.strip()
    with short_wav.open("rb") as f:
        events = list(client.audio.transcriptions.create(model=NAME, file=f, stream=True))
    deltas = [e.delta for e in events if e.type == "transcript.text.delta"]
    done = events[-1]
    assert done.type == "transcript.text.done" and done.text == answer.text
    assert "".join(deltas).strip() == answer.text
    assert len(deltas) >= min(5, len(answer.text.split()))
    assert answer.usage is not None and done.usage is not None
    assert done.usage.model_dump() == answer.usage.model_dump()


def test_long_audio_is_read_in_30s_pieces_with_their_real_times(
    served: tuple[VoxtralModel, InProcessServer], voxtral_checkpoint: Path, long_wav: Path
) -> None:
    model, server = served
    audio = as_served(long_wav)
    stt = model.get_speech_to_text_config("transcribe")
    assert stt.max_audio_clip_s == 30.0
    bounds = split_windows(
        audio, RATE, stt.max_audio_clip_s, stt.overlap_chunk_second, stt.min_energy_split_window_size
    )
    assert len(bounds) == 3
    with long_wav.open("rb") as f:
        verbose = client_of(server).audio.transcriptions.create(
            model=NAME, file=f, response_format="verbose_json", timestamp_granularities=["segment"]
        )
    references = [reference(voxtral_checkpoint, audio[a:b]) for a, b in bounds]
    expected = [r.text.strip() for r in references]
    # Each piece's answer, as sentences timed inside it (models/alignment.py).
    pieces = by_piece(verbose.segments or [], bounds)
    # Each piece's greedy tokens are transformers' own, end token included.
    assert [[t for s in group for t in s.tokens] for group in pieces] == [r.token_ids for r in references]
    assert ["".join(s.text for s in group).strip() for group in pieces] == expected
    assert verbose.text == " ".join(t for t in expected if t)


def test_what_voxtral_cannot_do_is_a_400_naming_the_field(
    served: tuple[VoxtralModel, InProcessServer], short_wav: Path
) -> None:
    _, server = served
    with pytest.raises(openai.BadRequestError) as caught, short_wav.open("rb") as f:
        client_of(server).audio.translations.create(model=NAME, file=f)
    assert caught.value.body["param"] == "model"  # type: ignore[index]
    asks = [
        # Cantonese, which Voxtral is not given (nor Whisper base, which times words).
        ({"response_format": "verbose_json", "timestamp_granularities[]": "word", "language": "yue"}, "language"),
        ({"languages[]": ["en", "de"]}, "languages"),
        # Japanese is not among the languages Mistral names for Voxtral.
        ({"language": "ja"}, "language"),
    ]
    for fields, param in asks:
        response = httpx.post(
            f"{server.base_url}/v1/audio/transcriptions",
            files={"file": ("a.wav", short_wav.read_bytes())},
            data={"model": NAME, **fields},
            timeout=600,
        )
        error = response.json()["error"]
        assert response.status_code == 400 and error["param"] == param and not leaks(error["message"])
