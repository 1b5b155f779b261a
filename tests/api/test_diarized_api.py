"""`response_format=diarized_json` through the official SDK: shapes, labels, known speakers, streams, 400s.

A fake diarizer (fixed turns) stands in for the speaker model; two fake families show both ways a
transcript gets its speakers: words timed by the family, or each speaker's stretch read alone.
"""

from __future__ import annotations

import base64
import io
import threading
from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar

import httpx
import numpy as np
import openai
import pytest
import soundfile as sf
from openai import AsyncOpenAI

from app.audio.vad import LoudnessVad
from app.main import create_app
from app.scheduling.pipeline import Transcriber
from app.state import Runtime
from config import load_settings
from models.interface import (
    DecodeOptions,
    Emit,
    EngineCalls,
    GenerationRequest,
    Piece,
    Reading,
    Segment,
    TranscriptionModel,
    Word,
)
from models.speakers.interface import KnownSpeaker, SpeakerTurn
from tests.api.test_fake_family_api import FakeFamily, WordEngine

RATE = 16_000
# Three stretches of tone with 0.2 s of silence between: A speaks, then B, then A again.
TURNS = [SpeakerTurn(0.0, 2.4, "A"), SpeakerTurn(2.6, 4.0, "B"), SpeakerTurn(4.2, 6.0, "A")]


def tone(seconds: float, rate: int = RATE, channels: int = 1, hz: float = 220) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wave = (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    return np.stack([wave] * channels, axis=1) if channels > 1 else wave


def wav(samples: np.ndarray, rate: int = RATE) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def conversation() -> bytes:
    gap = np.zeros(int(0.2 * RATE), np.float32)
    return wav(np.concatenate([tone(2.4), gap, tone(1.4, hz=330), gap, tone(1.8)]))


def data_url(clip: bytes, media: str = "audio/wav") -> str:
    return f"data:{media};base64,{base64.b64encode(clip).decode()}"


class FakeDiarizer:
    """Answers fixed turns; the first speaker takes the first known name. Records what it was given."""

    sample_rate: ClassVar[int] = RATE

    def __init__(self, turns: Sequence[SpeakerTurn] = TURNS) -> None:
        self.turns = list(turns)
        self.calls: list[tuple[int, list[tuple[str, int]], str]] = []

    def diarize(self, audio: np.ndarray, known: Sequence[KnownSpeaker] = ()) -> list[SpeakerTurn]:
        clips = [(k.name, len(k.audio)) for k in known]
        self.calls.append((len(audio), clips, threading.current_thread().name))
        names = {"A": known[0].name} if known else {}
        return [SpeakerTurn(t.start, t.end, names.get(t.speaker, t.speaker)) for t in self.turns]


class TimedWordsFamily(FakeFamily):
    """The fake family, but each word timed: one word every 0.5 s, said for 0.4 s (as Whisper's words are)."""

    supports_word_timestamps: ClassVar[bool] = True

    def validate_options(self, options: DecodeOptions) -> None:
        pass

    async def read(self, piece: Piece, options: DecodeOptions, calls: EngineCalls, emit: Emit | None = None) -> Reading:
        count = max(1, int(piece.duration / 0.5))
        words = [f"p{piece.index}w{k}" for k in range(count)]
        result = await calls.generate(
            GenerationRequest(prompt={"words": words, "piece": piece.index}, max_tokens=9), "r"
        )
        start = piece.offset_s
        timed = tuple(Word(" " + w, start + 0.5 * k, start + 0.5 * k + 0.4) for k, w in enumerate(words))
        segment = Segment(start, start + piece.duration, "".join(w.word for w in timed), words=timed)
        return Reading([segment], input_tokens=10, audio_tokens=7, output_tokens=len(result.token_ids))


Served = tuple[AsyncOpenAI, FakeDiarizer]


async def _serve(family: TranscriptionModel, fake: FakeDiarizer | None, **settings: Any) -> AsyncIterator[Served]:
    """The app with `family` on a fake engine and `fake` as its speaker model (None: one that fails to load)."""
    engine = WordEngine()

    async def runtime(s: Any, metrics: Any) -> Runtime:
        # Tones stand in for speech: loudness, not a speech model, says where they are.
        return Runtime(s, family, engine, Transcriber(family, engine, vad=LoudnessVad()), "fake-1")

    def load(name: str) -> FakeDiarizer:
        if fake is None:
            raise RuntimeError("no speaker model here")
        return fake

    app = create_app(load_settings({}, **settings), runtime, load)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        client = AsyncOpenAI(api_key="x", base_url="http://test/v1", http_client=http, max_retries=0)
        yield client, fake or FakeDiarizer()


@pytest.fixture
async def turns_api() -> AsyncIterator[Served]:
    """A family without word times: each speaker's stretch is read alone."""
    async for served in _serve(FakeFamily(), FakeDiarizer()):
        yield served


@pytest.fixture
async def words_api() -> AsyncIterator[Served]:
    """A family that times its words: each word goes to its speaker."""
    async for served in _serve(TimedWordsFamily(), FakeDiarizer()):
        yield served


def turn_of(start: float, end: float) -> str:
    """The speaker of TURNS at the middle of [start, end]."""
    middle = (start + end) / 2
    return "A" if middle < 2.5 or middle > 4.1 else "B"


def runs(speakers: list[str]) -> list[str]:
    return [s for i, s in enumerate(speakers) if i == 0 or speakers[i - 1] != s]


async def diarized(client: AsyncOpenAI, **extra: Any) -> Any:
    return await client.audio.transcriptions.create(
        model="fake-1", file=("talk.wav", conversation()), response_format="diarized_json", **extra
    )


async def test_timed_words_go_to_their_speakers(words_api: Served) -> None:
    client, diarizer = words_api
    result = await diarized(client)
    plain = await client.audio.transcriptions.create(model="fake-1", file=("talk.wav", conversation()))
    assert result.task == "transcribe" and result.duration == pytest.approx(6.0)
    assert runs([s.speaker for s in result.segments]) == ["A", "B", "A"]
    for segment in result.segments:
        assert segment.type == "transcript.text.segment" and segment.speaker == turn_of(segment.start, segment.end)
        assert segment.end - segment.start < 2.5  # broken where the model's segment (a 2 s piece) ends
    assert [s.id for s in result.segments] == [f"seg_{i}" for i in range(len(result.segments))]
    # Every word once, in order: the same words as the plain transcript.
    assert result.text.split() == plain.text.split() == " ".join(s.text for s in result.segments).split()
    assert result.usage is not None and result.usage.type == "tokens"
    # The diarizer heard the whole request at its rate, in its own thread.
    assert diarizer.calls == [(6 * RATE, [], "diarize_0")]


async def test_without_word_times_each_speaker_stretch_is_read_alone(turns_api: Served) -> None:
    client, _ = turns_api
    result = await diarized(client)
    speakers = [s.speaker for s in result.segments]
    assert runs(speakers) == ["A", "B", "A"]
    # Each stretch was read as a request of its own: its pieces count from 0 again.
    assert [s.text for s in result.segments if s.speaker == "B"] == ["piece 0 lasts 2 seconds"]
    for segment in result.segments:
        assert segment.speaker == turn_of(segment.start, segment.end)
    starts = [s.start for s in result.segments]
    assert starts == sorted(starts) and result.segments[-1].end == pytest.approx(6.0, abs=0.05)
    # Usage is the stretches' sum: 10 input tokens per piece read.
    assert result.usage is not None and result.usage.type == "tokens"
    assert result.usage.input_tokens == 10 * len(result.segments)


@pytest.mark.parametrize("strategy", ["auto", {"type": "server_vad", "silence_duration_ms": 300}])
async def test_chunking_strategy_as_the_sdk_sends_it_for_diarize_models(words_api: Served, strategy: Any) -> None:
    # OpenAI requires it of its diarize model on long inputs; here it is optional and cuts as usual.
    client, _ = words_api
    result = await diarized(client, chunking_strategy=strategy)
    assert runs([s.speaker for s in result.segments]) == ["A", "B", "A"]


async def test_letters_follow_first_appearance_in_the_output() -> None:
    # The diarizer calls its first speaker B, and finds a speaker C in a sliver that holds no word.
    turns = [SpeakerTurn(0.0, 2.4, "B"), SpeakerTurn(2.4, 2.45, "C"), SpeakerTurn(2.6, 6.0, "A")]
    async for client, _ in _serve(TimedWordsFamily(), FakeDiarizer(turns)):
        result = await diarized(client)
        assert runs([s.speaker for s in result.segments]) == ["A", "B"]


async def test_known_speakers_are_named_and_decoded_at_the_diarizer_rate(words_api: Served) -> None:
    client, diarizer = words_api
    # 3 s of 44.1 kHz stereo, and 9.5 s of 16 kHz (its data URL is larger than any other field may be).
    alice = data_url(wav(tone(3.0, 44_100, channels=2), 44_100))
    bob = data_url(wav(tone(9.5)))
    result = await diarized(client, known_speaker_names=["alice", "bob"], known_speaker_references=[alice, bob])
    # The others keep letters, from A, among the unnamed (as the diarizer contract says).
    assert runs([s.speaker for s in result.segments]) == ["alice", "A", "alice"]
    assert diarizer.calls[0][1] == [("alice", 3 * RATE), ("bob", int(9.5 * RATE))]


async def test_known_speakers_as_plain_form_fields(words_api: Served) -> None:
    client, _ = words_api
    clip = data_url(wav(tone(2.5)))
    result = await diarized(client, extra_body={"known_speaker_names": "agent", "known_speaker_references": clip})
    assert result.segments[0].speaker == "agent"


async def test_stream_sends_segments_with_speakers_then_done(words_api: Served) -> None:
    client, _ = words_api
    stream = await client.audio.transcriptions.create(
        model="fake-1", file=("talk.wav", conversation()), response_format="diarized_json", stream=True
    )
    events = [event async for event in stream]
    segments = [e for e in events if e.type == "transcript.text.segment"]
    assert [e.type for e in events] == ["transcript.text.segment"] * len(segments) + ["transcript.text.done"]
    assert runs([e.speaker for e in segments]) == ["A", "B", "A"]
    assert [e.id for e in segments] == [f"seg_{i}" for i in range(len(segments))]
    done = events[-1]
    assert done.type == "transcript.text.done" and done.text == " ".join(e.text for e in segments)
    assert done.usage is not None and done.usage.type == "tokens"


async def test_stream_of_stretches_for_a_family_without_word_times(turns_api: Served) -> None:
    client, _ = turns_api
    stream = await client.audio.transcriptions.create(
        model="fake-1", file=("talk.wav", conversation()), response_format="diarized_json", stream=True
    )
    events = [event async for event in stream]
    assert runs([e.speaker for e in events if e.type == "transcript.text.segment"]) == ["A", "B", "A"]
    assert events[-1].type == "transcript.text.done"


def clip(seconds: float) -> str:
    return data_url(wav(tone(seconds)))


def known(names: list[str], urls: list[str]) -> dict[str, Any]:
    return {"known_speaker_names": names, "known_speaker_references": urls}


NAMES, REFERENCES = "known_speaker_names", "known_speaker_references"
REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("a prompt", {"prompt": "Hello."}, "prompt"),
    ("word timestamps", {"timestamp_granularities": ["word"]}, "timestamp_granularities"),
    ("logprobs", {"include": ["logprobs"]}, "include"),
    ("names without references", {NAMES: ["a"]}, REFERENCES),
    ("references without names", {REFERENCES: [clip(3)]}, NAMES),
    ("two names, one reference", known(["a", "b"], [clip(3)]), REFERENCES),
    ("five speakers", known(list("abcde"), [clip(3)] * 5), NAMES),
    ("a name twice", known(["a", "a"], [clip(3)] * 2), NAMES),
    ("an empty name", known([" "], [clip(3)]), NAMES),
    ("a link, not a data URL", known(["a"], ["https://example.com/a.wav"]), REFERENCES),
    ("a text data URL", known(["a"], [data_url(b"hello", "text/plain")]), REFERENCES),
    ("not base64", known(["a"], ["data:audio/wav;base64,%%%"]), REFERENCES),
    ("not audio", known(["a"], [data_url(b"RIFF" + bytes(range(256)) * 8)]), REFERENCES),
    ("a 1 s clip", known(["a"], [clip(1.0)]), REFERENCES),
    ("an 11 s clip", known(["a"], [clip(11.0)]), REFERENCES),
]


@pytest.mark.parametrize(("why", "fields", "param"), REFUSED, ids=[case[0] for case in REFUSED])
async def test_what_diarized_json_refuses_names_the_field(
    words_api: Served, why: str, fields: dict[str, Any], param: str
) -> None:
    client, diarizer = words_api
    with pytest.raises(openai.BadRequestError) as caught:
        await diarized(client, extra_body=fields)
    assert caught.value.status_code == 400 and caught.value.param == param, caught.value.message
    assert diarizer.calls == []


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"known_speaker_names": ["a"], "known_speaker_references": [clip(3)]}, "known_speaker_names"),
        ({"known_speaker_references": [clip(3)]}, "known_speaker_references"),
    ],
)
async def test_known_speakers_need_diarized_json(words_api: Served, fields: dict[str, Any], param: str) -> None:
    client, _ = words_api
    with pytest.raises(openai.BadRequestError) as caught:
        await client.audio.transcriptions.create(
            model="fake-1", file=("a.wav", conversation()), response_format="verbose_json", extra_body=fields
        )
    assert caught.value.param == param


async def test_translations_refuse_diarized_json(words_api: Served) -> None:
    client, _ = words_api
    with pytest.raises(openai.BadRequestError) as caught:
        await client.audio.translations.create(
            model="fake-1",
            file=("a.wav", conversation()),
            response_format="diarized_json",  # type: ignore[arg-type]
        )
    assert caught.value.param == "response_format"


async def test_diarizer_off_keeps_the_400() -> None:
    async for client, _ in _serve(TimedWordsFamily(), FakeDiarizer(), diarizer="off"):
        with pytest.raises(openai.BadRequestError) as caught:
            await diarized(client)
        assert caught.value.param == "response_format" and "diarizer=off" in caught.value.message
        plain = await client.audio.transcriptions.create(model="fake-1", file=("a.wav", conversation()))
        assert plain.text.startswith("p0w0")


async def test_a_speaker_model_that_fails_to_load_is_a_503_and_the_rest_serves() -> None:
    async for client, _ in _serve(TimedWordsFamily(), None):
        for _ in range(2):
            with pytest.raises(openai.InternalServerError) as caught:
                await diarized(client)
            assert caught.value.status_code == 503
        plain = await client.audio.transcriptions.create(model="fake-1", file=("a.wav", conversation()))
        assert plain.text.startswith("p0w0")
