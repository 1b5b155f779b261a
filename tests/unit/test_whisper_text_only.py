"""Text-only reading (json and text answers): `<|notimestamps|>`, no timestamp grammar, the same no-speech row."""

import asyncio
import math
from collections.abc import AsyncIterator

import numpy as np
import torch

from models.interface import DecodeOptions, EngineCalls, GenerationRequest, GenerationResult, Piece, SpeechToTextConfig
from models.whisper import WhisperModel
from models.whisper.rules import build_rule
from models.whisper.sharing import decoding_key
from tests.unit.test_whisper_parse import stamp, words

NEG = float("-inf")
TEXT_ONLY = DecodeOptions(language="en", segment_times=False)


def test_text_only_request_ends_its_prompt_with_no_timestamps(whisper_base: WhisperModel) -> None:
    m = whisper_base
    request = m.get_generation_prompt(np.zeros(16000, np.float32), SpeechToTextConfig(), TEXT_ONLY, 0.0)
    decoder = request.prompt["decoder_prompt"]["prompt_token_ids"]
    assert decoder == [*m.decoder_prompt("en", "transcribe", None), m.vocab.no_timestamps]
    assert request.logits_rule is not None and request.logits_rule[1]["without_timestamps"] is True
    # P(no speech) is read from the prompt's rows, as for timestamped readings.
    assert request.prompt_logprobs and request.sample_logprobs


def test_text_only_rule_allows_no_timestamp_and_no_blank_start(whisper_base: WhisperModel) -> None:
    m = whisper_base
    rule = build_rule({**m.rule_args, "without_timestamps": True})
    ts = m.vocab.timestamp_begin
    first = rule([], torch.zeros(51865))
    assert torch.all(first[ts:] == NEG) and torch.all(first[m.rule_args["suppress_begin"]] == NEG)
    later = rule([400, 401], torch.zeros(51865))
    assert torch.all(later[ts:] == NEG)
    assert torch.isfinite(later[220]) and torch.isfinite(later[m.vocab.eot])
    # The suppression list still holds (special tokens never belong in a transcript).
    assert torch.all(later[m.rule_args["suppress"]] == NEG)


def test_no_speech_row_is_found_after_start_of_transcript_by_its_id(whisper_base: WhisperModel) -> None:
    m = whisper_base
    v = m.vocab
    prompt = [*m.decoder_prompt("en", "transcribe", "a prompt"), v.no_timestamps]
    rows: list[dict[int, float] | None] = [None] + [{} for _ in prompt[1:]]
    sot_at = prompt.index(v.sot)
    rows[sot_at + 1] = {v.no_speech: math.log(0.7)}
    reading = GenerationResult(
        token_ids=[v.eot], text="", token_logprobs=[-2.0], prompt_logprobs=rows, prompt_token_ids=prompt
    )
    outcome = m.parse_window(reading, 30.0, 0.0, 0.0)
    assert outcome.no_speech


def test_text_only_reading_is_one_segment_over_the_whole_window(whisper_base: WhisperModel) -> None:
    m = whisper_base
    tokens = [*m.tokenizer.encode(" The cat sat on the mat.", add_special_tokens=False).ids, m.vocab.eot]
    reading = GenerationResult(token_ids=tokens, text="", token_logprobs=[-0.1] * len(tokens))
    outcome = m.parse_window(reading, 12.0, 30.0, 0.0)
    assert [(s.start, s.end, s.text) for s in outcome.segments] == [(30.0, 42.0, " The cat sat on the mat.")]
    assert outcome.consumed_s == 12.0 and not outcome.retry


def test_shared_windows_always_read_with_timestamps() -> None:
    # A shared window is split between its clips by timestamps, whatever the clips' answers hold.
    assert decoding_key(TEXT_ONLY).segment_times
    assert decoding_key(TEXT_ONLY) == decoding_key(DecodeOptions(language="en"))


def test_speech_that_truly_repeats_is_no_loop_when_read_without_timestamps(whisper_base: WhisperModel) -> None:
    m = whisper_base
    drill = m.tokenizer.encode(" The cat sat on the mat." * 12, add_special_tokens=False).ids
    reading = GenerationResult(token_ids=[*drill, m.vocab.eot], text="", token_logprobs=[-0.1] * (len(drill) + 1))
    outcome = m.parse_window(reading, 30.0, 0.0, 0.0)
    assert not outcome.looped and not outcome.retry and not outcome.cut_short
    # More text than 2 s can hold is still a loop.
    assert m.parse_window(reading, 2.0, 0.0, 0.0).looped


def test_a_text_only_reading_that_runs_out_of_tokens_is_read_again_with_timestamps(whisper_base: WhisperModel) -> None:
    m = whisper_base
    text = m.tokenizer.encode(" one two three four five six", add_special_tokens=False).ids
    asked: list[bool] = []

    async def generate(request: GenerationRequest, tag: str) -> GenerationResult:
        decoder = request.prompt["decoder_prompt"]["prompt_token_ids"]
        untimed = decoder[-1] == m.vocab.no_timestamps
        asked.append(untimed)
        if untimed:  # stops at the token limit, mid-sentence
            return GenerationResult(token_ids=text, text="", token_logprobs=[-0.1] * len(text), finish_reason="length")
        timed = [stamp(m, 0.0), *text, *words(m, " seven"), stamp(m, 2.8), m.vocab.eot]
        return GenerationResult(token_ids=timed, text="", token_logprobs=[-0.1] * len(timed), finish_reason="stop")

    async def stream(request: GenerationRequest, tag: str) -> AsyncIterator[GenerationResult]:
        yield await generate(request, tag)

    samples = (np.random.default_rng(1).standard_normal(3 * 16000) * 0.1).astype(np.float32)
    piece = Piece(index=0, samples=samples, sample_rate=16000, offset_s=0.0, final=True)
    reading = asyncio.run(m.read(piece, TEXT_ONLY, EngineCalls(generate=generate, stream=stream)))
    assert asked == [True, False]
    assert "".join(s.text for s in reading.segments) == " one two three four five six seven"
