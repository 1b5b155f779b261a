"""The diarization error rate of bench/der.py on hand-made cases."""

from __future__ import annotations

import pytest

from bench.der import der, named_right

REF = [(0.0, 4.0, "ann"), (5.0, 9.0, "bob")]


def test_perfect_under_other_labels() -> None:
    score = der(REF, [(0.0, 4.0, "B"), (5.0, 9.0, "A")])
    assert score.der == 0.0 and (score.reference_speakers, score.hypothesis_speakers) == (2, 2)


def test_boundaries_within_the_collar_are_not_scored() -> None:
    assert der(REF, [(0.2, 3.8, "A"), (5.2, 9.2, "B")], collar_s=0.25).der == 0.0
    assert der(REF, [(0.2, 3.8, "A"), (5.2, 9.2, "B")], collar_s=0.0).der == pytest.approx(0.8 / 8)


def test_missed_false_alarm_and_confusion() -> None:
    # Scored: 0.25-3.75 and 5.25-8.75 (7 s). Miss 1 s of ann, a false 0.5 s in the gap is inside the
    # collar of nothing -> counted; 1 s of bob given to ann's label.
    hyp = [(0.0, 2.75, "A"), (4.25, 4.75, "A"), (5.0, 6.0, "A"), (6.0, 9.0, "B")]
    score = der(REF, hyp)
    assert score.total == pytest.approx(7.0)
    assert score.missed == pytest.approx(1.0)
    assert score.false_alarm == pytest.approx(0.5)
    assert score.confusion == pytest.approx(0.75)  # 5.25-6.0
    assert score.der == pytest.approx(2.25 / 7)


def test_one_speaker_for_two_is_confusion_and_a_wrong_count() -> None:
    score = der(REF, [(0.0, 4.0, "A"), (5.0, 9.0, "A")])
    assert score.confusion == pytest.approx(3.5) and score.hypothesis_speakers == 1


def test_named_right_is_per_talker() -> None:
    shares = named_right(REF, [(0.0, 4.0, "ann"), (5.0, 7.0, "bob"), (7.0, 9.0, "A")])
    assert shares == {"ann": 1.0, "bob": pytest.approx(1.75 / 3.5)}
