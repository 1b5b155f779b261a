"""The benchmark's pure parts: scoring, onset matching, percentiles, composition, prompt choice, tables."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench import fw, report
from bench.asterisk import MissingSounds, Prompt, parse_transcripts, pick
from bench.compose import SAMPLE_RATE, compose, frame_rms, line_noise, speech_onset, with_noise
from bench.metrics import normalise, onset_errors, percentile, pooled_errors, rtfx, spread
from bench.outcome import Outcome, failed, score
from bench.run import parse_args
from bench.workloads import Workload


def tone(seconds: float, amplitude: float = 0.5, freq: float = 440.0) -> np.ndarray:
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * SAMPLE_RATE), dtype=np.float32)


# ---- text and word errors ----


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Twelve apples, please!", "12 apples please"),
        ("1, 2, 3, 4, 5, 6, 7, 8, 9, 10.", "one two three four five six seven eight nine ten"),
        ("Press 1 to mute.", "press one to mute"),
        ("Water boils at one hundred degrees.", "water boils at 100 degrees"),
    ],
)
def test_normaliser_makes_number_words_and_digits_comparable(a: str, b: str) -> None:
    assert normalise(a) == normalise(b)


def test_counting_run_together_is_an_error() -> None:
    assert normalise("one, two, three, four, five, six, seven, eight, nine, ten") != normalise("12345678910")


def test_normaliser_drops_case_and_punctuation() -> None:
    assert normalise("The Quick, brown FOX!") == "the quick brown fox"


def test_twelve_and_12_are_no_error() -> None:
    assert pooled_errors(["I have twelve apples"], ["I have 12 apples."]).wer == 0.0


def test_wer_is_pooled_over_files_not_averaged() -> None:
    # One error in a 1-word file and none in a 9-word file: pooled 1/10, whereas the mean would be 0.5.
    errors = pooled_errors(["yes", "a b c d e f g h i"], ["no", "a b c d e f g h i"])
    assert errors.reference_words == 10
    assert errors.substitutions == 1
    assert errors.wer == pytest.approx(0.1)


def test_insertions_count_repeated_words() -> None:
    errors = pooled_errors(["the cat sat"], ["the cat sat the cat sat"])
    assert (errors.insertions, errors.deletions, errors.substitutions) == (3, 0, 0)
    assert errors.wer == pytest.approx(1.0)


def test_empty_hypothesis_is_all_deletions_and_stray_words_are_insertions() -> None:
    errors = pooled_errors(["one two three four", ""], ["", "hello there"])
    assert errors.deletions == 4
    assert errors.insertions == 2
    assert errors.reference_words == 4


# ---- onsets, percentiles, speed ----


def test_each_onset_takes_the_nearest_segment_start() -> None:
    assert onset_errors([1.0, 5.0, 9.0], [0.8, 5.5, 20.0]) == pytest.approx([0.2, 0.5, 3.5])


def test_no_segments_gives_no_onset_errors() -> None:
    assert onset_errors([1.0, 2.0], []) == []


def test_latency_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 95) == pytest.approx(95.05)
    assert spread([]).median is None and spread([]).p95 is None
    assert spread([2.0]).p95 == 2.0


def test_rtfx_uses_the_median_wall_time() -> None:
    assert rtfx(60.0, [10.0, 2.0, 3.0]) == pytest.approx(20.0)
    assert rtfx(60.0, []) is None


# ---- composition ----


def test_composition_places_parts_after_their_gaps_with_refined_onsets() -> None:
    # The second part has 0.25 s of silence before its speech: its true onset is refined past it.
    parts = [tone(1.0), np.concatenate([silence(0.25), tone(0.5)])]
    recording = compose(parts, [2.0, 1.5], tail_s=0.5)
    assert len(recording.samples) == round((2.0 + 1.0 + 1.5 + 0.75 + 0.5) * SAMPLE_RATE)
    assert recording.onsets == pytest.approx([2.0, 2.0 + 1.0 + 1.5 + 0.25], abs=0.011)
    start = round(recording.onsets[1] * SAMPLE_RATE)
    assert np.abs(recording.samples[start - 200 : start - 100]).max() == 0.0
    assert np.abs(recording.samples[start + 100 : start + 200]).max() > 0.1


def test_onset_ignores_quiet_lead_in_far_below_the_speech() -> None:
    part = np.concatenate([tone(0.4, amplitude=0.001), tone(0.6, amplitude=0.5)])
    assert speech_onset(part) == pytest.approx(0.4, abs=0.011)
    assert speech_onset(silence(1.0)) == 0.0


def test_composition_needs_one_gap_per_part() -> None:
    with pytest.raises(ValueError):
        compose([tone(1.0)], [1.0, 2.0])


def test_line_noise_is_seeded_at_its_level_and_in_band() -> None:
    noise = line_noise(SAMPLE_RATE * 4, -45.0, seed=3)
    assert np.array_equal(noise, line_noise(SAMPLE_RATE * 4, -45.0, seed=3))
    assert 20 * np.log10(np.sqrt(np.mean(noise.astype(np.float64) ** 2))) == pytest.approx(-45.0, abs=0.1)
    spectrum = np.abs(np.fft.rfft(noise)) ** 2
    frequencies = np.fft.rfftfreq(len(noise), 1 / SAMPLE_RATE)
    assert spectrum[(frequencies < 250) | (frequencies > 3500)].sum() < 1e-6 * spectrum.sum()


def test_noise_under_a_recording_keeps_its_onsets() -> None:
    recording = compose([tone(0.5)], [1.0])
    noisy = with_noise(recording, -45.0, seed=1)
    assert noisy.onsets == recording.onsets
    assert frame_rms(noisy.samples)[:50].min() > 0


# ---- Asterisk prompts ----


def test_transcripts_skip_comments_empty_and_described_sounds() -> None:
    lines = [
        "; Core Asterisk Sounds",
        "beep: [this is a simple beep tone]",
        "silence/1: (1 second of silence)",
        "empty:   ",
        "dictate/both_help: press * to toggle pause",
        "agent-pass: Please enter your password  followed by the pound key.",
    ]
    assert parse_transcripts(lines) == {"agent-pass": "Please enter your password followed by the pound key."}


def prompts() -> list[Prompt]:
    texts = ["a b c d", "a b c d", "e f g h", "i j", "k l m n", "o p q r s"]
    return [Prompt(f"p{i}", t, Path(f"p{i}.wav"), 2.0 + i) for i, t in enumerate(texts)]


def test_picked_prompts_are_distinct_long_enough_and_not_taken() -> None:
    taken = {"p2"}
    chosen = pick(prompts(), random.Random(0), taken, min_words=4, max_s=10.0, count=3)
    assert len({p.text for p in chosen}) == 3
    assert all(p.words >= 4 and p.name != "p2" for p in chosen)
    assert taken >= {p.name for p in chosen}


def test_too_few_prompts_is_a_clear_error() -> None:
    with pytest.raises(MissingSounds):
        pick(prompts(), random.Random(0), set(), min_words=4, max_s=10.0, count=10)


# ---- outcomes, tables, options ----


def workload(tmp_path: Path, onsets: list[list[float]] | None = None) -> Workload:
    path = tmp_path / "a.wav"
    sf.write(str(path), silence(10.0), SAMPLE_RATE)
    return Workload("w", "a workload", [path], ["the cat sat"], False, onsets)


def test_score_of_a_good_outcome(tmp_path: Path) -> None:
    outcome = Outcome(walls=[2.0, 4.0], latencies=[2.0, 4.0], texts=["The cat sat."], segment_starts=[[0.4, 5.0]])
    scores = score(workload(tmp_path, [[0.5, 4.0]]), outcome)
    assert scores.rtfx == pytest.approx(10.0 / 3.0)
    assert scores.errors is not None and scores.errors.wer == 0.0
    assert scores.onset is not None and scores.onset.median == pytest.approx(0.55)
    assert scores.note == ""


def test_failures_become_notes_not_crashes(tmp_path: Path) -> None:
    load = workload(tmp_path, [[0.5]])
    outcome = Outcome(walls=[1.0], texts=[""], failures=["HTTP 500: boom"] * 2, segments_note="HTTP 500: boom")
    scores = score(load, outcome)
    assert "HTTP 500: boom x2" in scores.note and "segments" in scores.note
    assert report.cells(scores)[5:7] == ["n/a", "n/a"]
    dead = score(load, failed("start failed"))
    assert dead.rtfx is None and report.cells(dead)[0] == "n/a" and dead.note == "start failed"


def test_ratio_table_and_markdown(tmp_path: Path) -> None:
    load = workload(tmp_path)
    ours = score(load, Outcome(walls=[1.0], latencies=[1.0], texts=["the cat sat"]))
    theirs = score(load, Outcome(walls=[2.0], latencies=[2.0], texts=["the cat"]))
    headers, rows = report.ratio_rows([load], {"ours": {"w": ours}, "vllm": {"w": theirs}})
    assert rows == [["a workload", "10.0, 0.000", "x2.00 (0.000 vs 0.333)"]]
    table = report.markdown(headers, rows).splitlines()
    assert table[0].startswith("| workload |") and table[1].startswith("| --- |") and len(table) == 3


def test_options_take_lists_and_refuse_unknown_systems() -> None:
    args = parse_args(["--only", "ours,fw-int8", "--workloads", "real", "pauses"])
    assert (args.only, args.workloads, args.reps) == (["ours", "fw-int8"], ["real", "pauses"], 2)
    assert parse_args(["--only", "ours", "ours-words"]).only == ["ours", "ours-words"]
    with pytest.raises(SystemExit):
        parse_args(["--only", "whisper.cpp"])


def test_ct2_helpers_write_the_extractor_and_vocabulary(tmp_path: Path) -> None:
    (tmp_path / "processor_config.json").write_text(json.dumps({"feature_extractor": {"feature_size": 80}}))
    assert fw._feature_extractor(tmp_path) == {"feature_size": 80}
    tokenizer = tmp_path / "tokenizer.json"
    vocab = {"model": {"vocab": {"b": 1, "a": 0}}, "added_tokens": [{"id": 2, "content": "<|x|>"}]}
    tokenizer.write_text(json.dumps(vocab))
    fw._write_vocabulary(tokenizer, tmp_path / "vocabulary.json")
    assert json.loads((tmp_path / "vocabulary.json").read_text()) == ["a", "b", "<|x|>"]
