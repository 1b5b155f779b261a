import math

import pytest

from models.interface import GenerationResult
from models.whisper import WhisperModel, window


def stamp(model: WhisperModel, seconds: float) -> int:
    return model.vocab.timestamp_begin + round(seconds / 0.02)


def words(model: WhisperModel, text: str) -> list[int]:
    return model.tokenizer.encode(text, add_special_tokens=False).ids


def result(
    model: WhisperModel, tokens: list[int], logprob: float = -0.1, no_speech: float = 0.01, **kw: object
) -> GenerationResult:
    sot_row = {model.vocab.no_speech: math.log(no_speech), model.vocab.languages["en"]: -0.1}
    return GenerationResult(
        token_ids=tokens,
        text="",
        token_logprobs=[logprob] * len(tokens),
        prompt_logprobs=[None, sot_row, {}],
        finish_reason=str(kw.get("finish_reason", "stop")),
    )


def test_closed_segments_consume_the_window(whisper_base: WhisperModel) -> None:
    m = whisper_base
    tokens = [
        stamp(m, 0),
        *words(m, " Hello there."),
        stamp(m, 2.0),
        stamp(m, 2.5),
        *words(m, " Bye."),
        stamp(m, 4.0),
        m.vocab.eot,
    ]
    out = m.parse_window(result(m, tokens), window_s=30.0, offset_s=60.0, temperature=0.0)
    assert [(s.start, s.end, s.text) for s in out.segments] == [(60.0, 62.0, " Hello there."), (62.5, 64.0, " Bye.")]
    # Complete up to the last timestamp; the gateway reads on only if speech follows.
    assert out.consumed_s == pytest.approx(4.0) and not out.retry and not out.no_speech
    assert out.segments[0].tokens == words(m, " Hello there.")


def test_an_open_last_segment_is_left_for_a_re_read(whisper_base: WhisperModel) -> None:
    m = whisper_base
    tokens = [stamp(m, 0), *words(m, " One."), stamp(m, 3.0), stamp(m, 3.2), *words(m, " Two and"), m.vocab.eot]
    out = m.parse_window(result(m, tokens), window_s=30.0, offset_s=0.0, temperature=0.0)
    assert [s.text for s in out.segments] == [" One."]
    # As OpenAI's transcribe(): resume at the end of the last complete segment.
    assert out.consumed_s == pytest.approx(3.0)


def test_the_final_window_keeps_an_open_segment_up_to_the_end(whisper_base: WhisperModel) -> None:
    m = whisper_base
    tokens = [stamp(m, 0), *words(m, " One."), stamp(m, 3.0), stamp(m, 3.2), *words(m, " Two and"), m.vocab.eot]
    out = m.parse_window(result(m, tokens), window_s=4.5, offset_s=30.0, temperature=0.0, final=True)
    assert [(s.start, s.end, s.text) for s in out.segments] == [(30.0, 33.0, " One."), (33.2, 34.5, " Two and")]
    assert out.consumed_s == 4.5 and all(s.seek == 30.0 for s in out.segments)


def test_running_out_of_tokens_re_reads_from_the_last_timestamp(whisper_base: WhisperModel) -> None:
    m = whisper_base
    closed = [stamp(m, 0), *words(m, " One."), stamp(m, 3.0), stamp(m, 3.0), *words(m, " Two."), stamp(m, 5.0)]
    out = m.parse_window(result(m, closed, finish_reason="length"), window_s=30.0, offset_s=0.0, temperature=0.0)
    assert [s.text for s in out.segments] == [" One.", " Two."] and out.consumed_s == pytest.approx(5.0)
    cut = [stamp(m, 0), *words(m, " One."), stamp(m, 3.0), stamp(m, 3.0), *words(m, " Two and")]
    out = m.parse_window(result(m, cut, finish_reason="length"), window_s=30.0, offset_s=0.0, temperature=0.0)
    assert [s.text for s in out.segments] == [" One."] and out.consumed_s == pytest.approx(3.0)


def test_silence_gives_no_segments(whisper_base: WhisperModel) -> None:
    m = whisper_base
    tokens = [stamp(m, 0), *words(m, " you"), stamp(m, 1.0), m.vocab.eot]
    out = m.parse_window(result(m, tokens, logprob=-2.5, no_speech=0.9), window_s=30.0, offset_s=0.0, temperature=0.0)
    assert out.segments == [] and out.no_speech and out.consumed_s == 30.0


def test_an_empty_reading_is_not_silence(whisper_base: WhisperModel) -> None:
    # Nothing written, but the no-speech rule does not hold (the reading is sure of itself).
    m = whisper_base
    out = window.parse_window(m.window_context, result(m, [stamp(m, 0), m.vocab.eot], no_speech=0.7), 30.0, 0.0, 0.0)
    assert out.segments == [] and out.empty and out.retry and not out.no_speech
    assert out.consumed_s == 30.0 and out.score == -math.inf


def test_repetition_or_low_confidence_asks_for_a_retry(whisper_base: WhisperModel) -> None:
    m = whisper_base
    loop = [stamp(m, 0), *words(m, " la la la la" * 30), stamp(m, 9.0), m.vocab.eot]
    repetitive = m.parse_window(result(m, loop), 30.0, 0.0, 0.0)
    assert repetitive.retry and repetitive.looped
    unsure_but_varied = [stamp(m, 0), *words(m, " the cat sat on a mat today"), stamp(m, 2.0), m.vocab.eot]
    assert repetitive.score < m.parse_window(result(m, unsure_but_varied, logprob=-2.0), 30.0, 0.0, 0.0).score
    unsure = [stamp(m, 0), *words(m, " maybe this"), stamp(m, 2.0), m.vocab.eot]
    assert m.parse_window(result(m, unsure, logprob=-1.5), 30.0, 0.0, 0.0).retry


def test_language_detection_normalises_over_candidates(whisper_base: WhisperModel) -> None:
    m = whisper_base
    v = m.vocab
    step = {v.languages["en"]: -2.0, v.languages["de"]: -0.5, v.languages["fr"]: -3.0, v.no_speech: math.log(0.05)}
    guess = m.parse_language_detection(
        GenerationResult(token_ids=[v.languages["de"]], text="", step_logprobs=[step]), []
    )
    assert guess.language == "de" and 0.5 < guess.probability < 1.0
    assert guess.no_speech_prob == pytest.approx(0.05)
    only = m.parse_language_detection(GenerationResult(token_ids=[], text="", step_logprobs=[step]), ["en", "fr"])
    assert only.language == "en"


def _segments(m: WhisperModel, spans: list[tuple[float, float, str]]) -> list[int]:
    out: list[int] = []
    for start, end, text in spans:
        out += [stamp(m, start), *words(m, text), stamp(m, end)]
    return [*out, m.vocab.eot]


def test_speech_that_truly_repeats_is_read_once(whisper_base: WhisperModel) -> None:
    # A drill: the same sentence four times, each taking the time it needs. The whole window
    # compresses like a loop (ratio > 2.4), but time advances with the words.
    m = whisper_base
    sentence = " Please close the window before you leave the room."
    spans = [(i * 3.5, i * 3.5 + 3.0, sentence) for i in range(6)]
    out = m.parse_window(result(m, _segments(m, spans)), 30.0, 0.0, 0.0)
    assert len(out.segments) == 6 and not out.retry
    counting = " one, two, three, four, five, six, seven, eight, nine, ten."
    out = m.parse_window(result(m, _segments(m, [(0.0, 5.0, counting), (6.0, 11.0, counting)])), 30.0, 0.0, 0.0)
    assert not out.retry


def test_a_loop_shows_in_the_timestamps(whisper_base: WhisperModel) -> None:
    m = whisper_base
    sentence = " Please close the window before you leave the room."
    # The same segment again and again, in less time than its words need.
    stalled = [(10.0 + i * 0.2, 10.2 + i * 0.2, sentence) for i in range(5)]
    assert m.parse_window(result(m, _segments(m, stalled)), 30.0, 0.0, 0.0).retry
    # More text than the seconds can hold.
    crammed = [(1.0, 2.0, sentence * 4)]
    assert m.parse_window(result(m, _segments(m, crammed)), 30.0, 0.0, 0.0).retry
    # A loop in the unfinished tail condemns the reading too, though the tail is dropped.
    tail = [stamp(m, 0.0), *words(m, " Hello."), stamp(m, 1.0), stamp(m, 29.0), *words(m, " and so on" * 40)]
    out = m.parse_window(result(m, tail, finish_reason="length"), 30.0, 0.0, 0.0)
    assert [s.text for s in out.segments] == [" Hello."] and out.retry
