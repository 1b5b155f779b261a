"""The real server on each family's tiny checkpoint, called with the `openai` SDK and httpx.

The weights are random, so the expected text is not English: it is what transformers generates
for the same audio and prompt, cleaned as the family's processor cleans it.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
import soundfile as sf
from openai import OpenAI

from app.audio.decode import split_windows
from models.audio_chat import MAX_NEW_TOKENS, AudioChatFamily
from models.interface import DecodeOptions
from tests.e2e.test_bad_input import bad_cases, leaks, send, wav
from tests.e2e.test_load_and_cancel import engine_requests
from tests.families.conftest import FAMILIES, FamilyGateway
from tests.families.inprocess import InProcessServer
from tests.families.pieces import piece_texts
from tests.families.reference import GreedyResult, hf_greedy, hf_prompt_ids
from tests.speech import SENTENCES, compose, speak, write_wav

# The real app on a real socket, served in this process; its engine also runs the family's parity tests.
pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("family_gateway", FAMILIES, indirect=True)]

RATE = 16_000
FamilyServer = tuple[str, Path, AudioChatFamily, InProcessServer]


@pytest.fixture
def family_server(family_gateway: FamilyGateway) -> FamilyServer:
    model = family_gateway.model
    assert isinstance(model, AudioChatFamily)
    return family_gateway.family, family_gateway.checkpoint, model, family_gateway.server


def client_of(server: InProcessServer) -> OpenAI:
    return OpenAI(api_key="unused", base_url=f"{server.base_url}/v1", timeout=600, max_retries=0)


def as_served(path: Path) -> np.ndarray:
    """The samples the server decodes from a 16 kHz WAV file (16-bit quantised)."""
    samples, rate = sf.read(str(path), dtype="float32")
    assert rate == RATE
    return np.asarray(samples, dtype=np.float32)


def reference(
    family: str, checkpoint: Path, model: AudioChatFamily, audio: np.ndarray, options: DecodeOptions
) -> tuple[GreedyResult, list[int]]:
    language = model.language_name(options.language) if options.language else None
    if family == "qwen3_asr":
        context = "\n".join(model.context_lines(options)) or None
        kwargs = {"instruction": "", "language": language, "context": context}
    else:
        kwargs = {"instruction": model.instruction(options)}
    result = hf_greedy(checkpoint, family, audio, max_new_tokens=MAX_NEW_TOKENS, **kwargs)  # type: ignore[arg-type]
    prompt = hf_prompt_ids(checkpoint, family, audio, **kwargs)  # type: ignore[arg-type]
    return result, prompt


@pytest.fixture(scope="module")
def short_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_wav(tmp_path_factory.mktemp("audio") / "short.wav", speak(SENTENCES[1]))


@pytest.fixture(scope="module")
def long_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    speech = compose(SENTENCES[:24], pause_s=0.7)
    return write_wav(tmp_path_factory.mktemp("audio") / "long.wav", np.resize(speech, 70 * RATE))


def test_transcription_equals_transformers_with_token_usage(family_server: FamilyServer, short_wav: Path) -> None:
    family, checkpoint, model, server = family_server
    options = DecodeOptions(language="en", prompt="Weather report", keywords=("rain", "wind"))
    audio = as_served(short_wav)
    expected, prompt_ids = reference(family, checkpoint, model, audio, options)
    with short_wav.open("rb") as f:
        body = httpx.post(
            f"{server.base_url}/v1/audio/transcriptions",
            files={"file": ("short.wav", f)},
            data={"model": family, "language": "en", "prompt": "Weather report", "keywords[]": ["rain", "wind"]},
            timeout=600,
        ).json()
    assert body["text"] == expected.text.strip()
    with short_wav.open("rb") as f:
        logprobs = httpx.post(
            f"{server.base_url}/v1/audio/transcriptions",
            files={"file": ("short.wav", f)},
            data={
                "model": family,
                "language": "en",
                "prompt": "Weather report",
                "keywords[]": ["rain", "wind"],
                "include[]": "logprobs",
            },
            timeout=600,
        ).json()["logprobs"]
    # One per generated token, each the reference's log-probability of that token.
    theirs = [step[token] for step, token in zip(expected.top_logprobs, expected.token_ids, strict=True)]
    assert np.allclose([lp["logprob"] for lp in logprobs], theirs, atol=1e-3)
    audio_tokens = sum(1 for t in prompt_ids if t == model.audio_token_id)
    assert body["usage"] == {
        "type": "tokens",
        "input_tokens": len(prompt_ids),
        "output_tokens": len(expected.token_ids),
        "total_tokens": len(prompt_ids) + len(expected.token_ids),
        "input_token_details": {"audio_tokens": audio_tokens, "text_tokens": len(prompt_ids) - audio_tokens},
    }


def test_translation_or_a_400_naming_the_model(family_server: FamilyServer, short_wav: Path) -> None:
    family, checkpoint, model, server = family_server
    client = client_of(server)
    if not model.supports_translation:
        with pytest.raises(openai.BadRequestError) as caught, short_wav.open("rb") as f:
            client.audio.translations.create(model=family, file=f)
        assert caught.value.body["param"] == "model"  # type: ignore[index]
        return
    expected, _ = reference(family, checkpoint, model, as_served(short_wav), DecodeOptions(task="translate"))
    with short_wav.open("rb") as f:
        assert client.audio.translations.create(model=family, file=f).text == expected.text.strip()


def test_stream_sends_tokens_as_they_come(family_server: FamilyServer, short_wav: Path) -> None:
    family, _, _, server = family_server
    client = client_of(server)
    with short_wav.open("rb") as f:
        answer = client.audio.transcriptions.create(model=family, file=f)
    whole = answer.text
    with short_wav.open("rb") as f:
        events = list(client.audio.transcriptions.create(model=family, file=f, stream=True))
    deltas = [e.delta for e in events if e.type == "transcript.text.delta"]
    done = events[-1]
    assert done.type == "transcript.text.done" and done.text == whole
    assert "".join(deltas).strip() == whole
    # Token by token, not a piece at a time.
    assert len(deltas) >= min(5, len(whole.split()))
    assert done.usage is not None and done.usage.type == "tokens"
    # A stream bills what the same request without a stream bills.
    assert answer.usage is not None and done.usage.model_dump() == answer.usage.model_dump()


def test_long_audio_is_read_in_pieces_with_their_real_times(family_server: FamilyServer, long_wav: Path) -> None:
    family, checkpoint, model, server = family_server
    audio = as_served(long_wav)
    stt = model.get_speech_to_text_config("transcribe")
    bounds = split_windows(
        audio, RATE, stt.max_audio_clip_s, stt.overlap_chunk_second, stt.min_energy_split_window_size
    )
    assert len(bounds) == 3
    with long_wav.open("rb") as f:
        verbose = client_of(server).audio.transcriptions.create(
            model=family, file=f, response_format="verbose_json", timestamp_granularities=["segment"]
        )
    expected = [reference(family, checkpoint, model, audio[a:b], DecodeOptions())[0].text.strip() for a, b in bounds]
    # Each piece's answer, as sentences timed inside it (models/alignment.py).
    segments = verbose.segments or []
    assert piece_texts(segments, bounds) == expected
    assert verbose.text == " ".join(t for t in expected if t)
    with long_wav.open("rb") as f:
        srt = client_of(server).audio.transcriptions.create(model=family, file=f, response_format="srt")
    assert str(srt).count(" --> ") == len(segments)


def test_what_the_family_cannot_do_is_a_400_naming_the_field(family_server: FamilyServer, short_wav: Path) -> None:
    family, _, model, server = family_server
    # Cantonese: Whisper base, which times the words, does not know it (a family without it refuses the language).
    words_in = "timestamp_granularities" if "yue" in model.supported_languages else "language"
    asks = [
        ({"response_format": "verbose_json", "timestamp_granularities[]": "word", "language": "yue"}, words_in),
        ({"languages[]": ["en", "de"]}, "languages"),
        ({"language": "x" * 5000}, "language"),
    ]
    for fields, param in asks:
        response = httpx.post(
            f"{server.base_url}/v1/audio/transcriptions",
            files={"file": ("a.wav", short_wav.read_bytes())},
            data={"model": family, **fields},
            timeout=600,
        )
        error = response.json()["error"]
        assert response.status_code == 400 and error["param"] == param and not leaks(error["message"])


def test_bad_input_corpus_on_a_family_server(family_server: FamilyServer) -> None:
    family, _, _, server = family_server
    if family != "audioflamingo3":
        pytest.skip("the corpus runs against one family server")
    speech = speak(SENTENCES[0])
    failures = []
    with httpx.Client(base_url=server.base_url, timeout=600) as http:

        def transcribe() -> httpx.Response:
            return http.post("/v1/audio/transcriptions", files={"file": ("a.wav", wav(speech))}, data={"model": family})

        before = transcribe()
        for case in bad_cases(speech):
            case.data = {k: (family if k == "model" and v == "whisper-1" else v) for k, v in case.data.items()}
            response = send(http, case)
            error = response.json().get("error", {}) if "json" in response.headers.get("content-type", "") else {}
            if response.status_code != case.status or set(error) != {"message", "type", "param", "code"}:
                failures.append(f"{case.name}: {response.status_code} {response.text[:200]}")
            elif (case.param and error["param"] != case.param) or leaks(error["message"]):
                failures.append(f"{case.name}: {error}")
        assert not failures, "\n".join(failures)
        # Bad requests harm no other: the same good request gives the same answer after them.
        after = transcribe()
        assert before.status_code == after.status_code == 200 and after.json() == before.json()


def test_a_stream_closed_after_its_first_delta_leaves_no_engine_work(
    family_server: FamilyServer, long_wav: Path
) -> None:
    family, _, _, server = family_server
    with httpx.Client(base_url=server.base_url, timeout=600) as http:
        with http.stream(
            "POST",
            "/v1/audio/transcriptions",
            files={"file": ("long.wav", long_wav.read_bytes())},
            data={"model": family, "stream": "true"},
        ) as response:
            assert response.status_code == 200
            assert next(response.iter_lines()).startswith("data: ")
        # Three pieces were decoding; the hang-up aborts them all.
        deadline = time.monotonic() + 2.0
        while engine_requests(http) > 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert engine_requests(http) == 0
