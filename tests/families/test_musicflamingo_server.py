"""The real server on the tiny MusicFlamingo checkpoint (our out-of-tree vLLM class), called with the `openai` SDK.

The weights are random, so the expected text is what transformers generates for the same audio and instruction.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest
from openai import OpenAI

from models.audio_chat import MAX_NEW_TOKENS
from models.interface import DecodeOptions
from models.musicflamingo import MusicFlamingoModel
from models.registry import load_model
from tests.families.conftest import FamilyGateway
from tests.families.inprocess import InProcessServer
from tests.families.reference import hf_greedy, hf_prompt_ids
from tests.families.test_family_server import as_served
from tests.families.tiny_musicflamingo import FAMILY, melody
from tests.speech import write_wav

# The real app on a real socket, served in this process; its engine also runs MusicFlamingo's parity tests.
pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("family_gateway", [FAMILY], indirect=True)]

DESCRIBE = "Describe this track: genre, tempo, key and instruments."


@pytest.fixture
def mf_server(family_gateway: FamilyGateway) -> InProcessServer:
    return family_gateway.server


@pytest.fixture(scope="module")
def tune_wavs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    root = tmp_path_factory.mktemp("tunes")
    return {s: write_wav(root / f"tune-{s}.wav", melody(s, seed=s)) for s in (3, 45)}


def expected(checkpoint: Path, audio: np.ndarray, options: DecodeOptions) -> tuple[str, list[int], int]:
    """transformers' answer as served (text), its prompt ids, and its count of generated tokens."""
    model = load_model(checkpoint)
    assert isinstance(model, MusicFlamingoModel)
    instruction = model.instruction(options)
    result = hf_greedy(checkpoint, FAMILY, audio, instruction, max_new_tokens=MAX_NEW_TOKENS)
    return result.text.strip(), hf_prompt_ids(checkpoint, FAMILY, audio, instruction), len(result.token_ids)


def test_served_lyrics_and_description_equal_transformers(
    mf_server: InProcessServer, musicflamingo_checkpoint: Path, tune_wavs: dict[int, Path]
) -> None:
    client = OpenAI(api_key="unused", base_url=f"{mf_server.base_url}/v1", timeout=600, max_retries=0)
    # No prompt: the default lyrics instruction, 3 s.
    text, _, _ = expected(musicflamingo_checkpoint, as_served(tune_wavs[3]), DecodeOptions())
    with tune_wavs[3].open("rb") as f:
        assert client.audio.transcriptions.create(model=FAMILY, file=f).text == text
    # A prompt replaces the instruction; 45 s is one piece of two 30 s windows (RoTE's window axis turns).
    text, prompt_ids, generated = expected(
        musicflamingo_checkpoint, as_served(tune_wavs[45]), DecodeOptions(prompt=DESCRIBE)
    )
    with tune_wavs[45].open("rb") as f:
        body = httpx.post(
            f"{mf_server.base_url}/v1/audio/transcriptions",
            files={"file": ("tune.wav", f)},
            data={"model": FAMILY, "prompt": DESCRIBE},
            timeout=600,
        ).json()
    assert body["text"] == text
    audio_tokens = 1125  # the <|sound_bos|> and <|sound_eos|> around them count as text
    assert prompt_ids.count(load_model(musicflamingo_checkpoint).audio_token_id) == audio_tokens
    assert body["usage"]["input_tokens"] == len(prompt_ids)
    assert body["usage"]["output_tokens"] == generated
    assert body["usage"]["input_token_details"] == {
        "audio_tokens": audio_tokens,
        "text_tokens": len(prompt_ids) - audio_tokens,
    }
