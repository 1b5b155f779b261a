"""Text-only reading (json and text answers): `<|notimestamps|>`, no timestamp grammar, the same no-speech row."""

import math

import numpy as np
import torch

from models.interface import DecodeOptions, GenerationResult, SpeechToTextConfig
from models.whisper import WhisperModel
from models.whisper.rules import build_rule
from models.whisper.sharing import decoding_key

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
