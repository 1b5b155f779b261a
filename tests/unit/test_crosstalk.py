"""The cross-talk stress run's pure parts: word normalisation, 3-grams, the leak count, pooled WER."""

from __future__ import annotations

import pytest

from bench.crosstalk import crosstalk, ngrams, normalise, pooled_wer

REFERENCES = {
    "en/a": "Please enter your mailbox number followed by the pound key.",
    "en/b": "The conference is now muted.",
    "es/c": "Por favor ingrese su número de agente seguido por la tecla de número.",
    "fr/d": "Veuillez vérifier le numéro et composer de nouveau.",
}


def test_normalise_is_unicode_aware() -> None:
    assert normalise("Veuillez vérifier le NUMÉRO, s'il-vous-plaît!") == [
        "veuillez", "verifier", "le", "numero", "s", "il", "vous", "plait",
    ]  # fmt: skip
    assert normalise("¿Contraseña incorrecta?") == ["contrasena", "incorrecta"]
    assert normalise("") == []


def test_accents_and_punctuation_do_not_separate_ngrams() -> None:
    assert ngrams("Por favor ingrese su numero") == ngrams("por favor, ingrese su número.")


def test_ngrams_of_short_texts() -> None:
    assert ngrams("one two") == set()
    assert ngrams("one two three") == {("one", "two", "three")}
    assert ngrams("a b c d", n=2) == {("a", "b"), ("b", "c"), ("c", "d")}


def test_clean_answers_have_no_leak() -> None:
    answers = [(key, text.upper()) for key, text in REFERENCES.items()]
    assert crosstalk(REFERENCES, answers, {}) == []


def test_another_requests_sentence_is_a_leak() -> None:
    answers = [("en/b", "The conference is now muted. Veuillez vérifier le numéro."), ("en/a", REFERENCES["en/a"])]
    leaks = crosstalk(REFERENCES, answers, {})
    assert len(leaks) == 1
    assert leaks[0].request == 0 and leaks[0].key == "en/b"
    assert leaks[0].sources == ("fr/d",)
    assert "veuillez verifier le" in leaks[0].ngrams
    assert "muted veuillez verifier" not in leaks[0].ngrams  # in nobody's reference


def test_one_leak_per_answer_with_every_source() -> None:
    answer = "the conference is now muted followed by the pound key de agente seguido por"
    leaks = crosstalk(REFERENCES, [("en/b", answer)], {})
    assert len(leaks) == 1
    assert leaks[0].sources == ("en/a", "es/c")


def test_words_shared_with_its_own_reference_are_no_leak() -> None:
    references = {
        "x": "press one to record followed by the pound key",
        "y": "enter the number followed by the pound key",
    }
    assert crosstalk(references, [("x", "press one to record, followed by the pound key")], {}) == []


def test_the_same_error_when_read_alone_is_no_leak() -> None:
    # The model hears "now muted" in x alone as well: its own mistake, not another request's words.
    references = {"x": "the conference is now locked", "y": "the conference is now muted"}
    answers = [("x", "The conference is now muted.")]
    assert len(crosstalk(references, answers, {})) == 1
    assert crosstalk(references, answers, {"x": "the conference is now muted"}) == []


def test_a_prompt_repeated_across_requests_is_not_a_leak() -> None:
    answers = [("en/b", REFERENCES["en/b"]), ("en/b", REFERENCES["en/b"]), ("fr/d", REFERENCES["fr/d"])]
    assert crosstalk(REFERENCES, answers, {}) == []


def test_a_misreading_of_its_own_words_is_a_variant_not_a_leak() -> None:
    """Seen in a 2,000-request run: "contraseña seguida por la" read as "contraiseño seguido por la",
    where "seguido por la" is another prompt's. Word by word it is the answer's own 3-gram misread."""
    references = {
        "es/own": "Introduzca su contraseña seguida por la tecla numeral.",
        "es/other": REFERENCES["es/c"],
    }
    found = crosstalk(references, [("es/own", "Introduzca su contraiseño seguido por la tecla numeral.")], {})
    assert len(found) == 1 and found[0].variant
    assert found[0].ngrams == ("seguido por la",) and found[0].sources == ("es/other",)


def test_a_foreign_sentence_beside_a_misreading_is_still_a_leak() -> None:
    references = {"es/own": "Introduzca su contraseña seguida por la tecla numeral.", **REFERENCES}
    answer = "Introduzca su contraseña seguido por la tecla numeral. The conference is now muted."
    found = crosstalk(references, [("es/own", answer)], {})
    assert len(found) == 1 and not found[0].variant
    assert "conference is now" in found[0].ngrams


def test_pooled_wer() -> None:
    assert pooled_wer([("Número de agente", "numero de agente")]) == 0.0
    # One substitution in 4 words plus a missing 2-word answer: 3 edits / 6 words.
    assert pooled_wer([("a b c d", "a b x d"), ("e f", "")]) == pytest.approx(0.5)
    assert pooled_wer([]) is None
