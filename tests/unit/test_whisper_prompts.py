import numpy as np
import pytest

from models.interface import DecodeOptions, ModelInputError, SpeechToTextConfig
from models.whisper import WhisperModel
from models.whisper.family import _joined_prompt


def ids(model: WhisperModel, *tokens: str) -> list[int]:
    found = [model.tokenizer.token_to_id(t) for t in tokens]
    assert None not in found
    return [int(i) for i in found if i is not None]


def test_multilingual_prompt_names_language_and_task(whisper_base: WhisperModel) -> None:
    m = whisper_base
    assert m.decoder_prompt("de", "transcribe", None) == ids(m, "<|startoftranscript|>", "<|de|>", "<|transcribe|>")
    assert m.decoder_prompt("fr", "translate", None) == ids(m, "<|startoftranscript|>", "<|fr|>", "<|translate|>")
    assert m.decoder_prompt("de", "transcribe", None) == [50258, 50261, 50359]


def test_english_only_prompt_is_start_of_transcript_alone(whisper_tiny_en: WhisperModel) -> None:
    assert whisper_tiny_en.decoder_prompt("en", "transcribe", None) == [50257]


def test_prompt_text_goes_behind_start_of_prev(whisper_base: WhisperModel) -> None:
    m = whisper_base
    prompt = m.decoder_prompt("en", "transcribe", "Kubernetes and vLLM")
    text_ids = m.tokenizer.encode(" Kubernetes and vLLM", add_special_tokens=False).ids
    assert prompt == [
        *ids(m, "<|startofprev|>"),
        *text_ids,
        *ids(m, "<|startoftranscript|>", "<|en|>", "<|transcribe|>"),
    ]


def test_a_long_prompt_keeps_its_last_tokens_within_half_the_context(whisper_base: WhisperModel) -> None:
    prompt = whisper_base.decoder_prompt("en", "transcribe", "word " * 5000 + "finale")
    assert len(prompt) == 1 + 223 + 3
    assert whisper_base.decode_text(prompt[1:-3]).endswith("finale")


def test_generation_request_decodes_with_timestamps(whisper_base: WhisperModel) -> None:
    audio = np.zeros(16000, dtype=np.float32)
    request = whisper_base.get_generation_prompt(
        audio, SpeechToTextConfig(), DecodeOptions(language="en"), temperature=0.2
    )
    decoder = request.prompt["decoder_prompt"]["prompt_token_ids"]
    assert whisper_base.vocab.no_timestamps not in decoder
    assert request.logits_rule is not None and request.logits_rule[0] == "models.whisper.rules:build_rule"
    assert request.max_tokens == 224 and request.temperature == 0.2
    assert request.prompt["encoder_prompt"]["multi_modal_data"]["audio"][1] == 16000


@pytest.mark.parametrize(
    ("given", "code"), [("en", "en"), ("German", "de"), ("FR", "fr"), ("en-US", "en"), ("pt_BR", "pt")]
)
def test_languages_are_normalised(whisper_base: WhisperModel, given: str, code: str) -> None:
    assert whisper_base.validate_language(given) == code


def test_unknown_language_is_refused_naming_the_field(whisper_base: WhisperModel) -> None:
    with pytest.raises(ModelInputError) as error:
        whisper_base.validate_language("klingon")
    assert error.value.param == "language"


def test_english_only_checkpoint(whisper_tiny_en: WhisperModel) -> None:
    assert whisper_tiny_en.validate_language(None) == "en"
    assert not whisper_tiny_en.supports_language_detection
    with pytest.raises(ModelInputError, match="English-only"):
        whisper_tiny_en.validate_language("de")
    with pytest.raises(ModelInputError, match="cannot translate") as error:
        whisper_tiny_en.validate_options(DecodeOptions(task="translate"))
    assert error.value.param == "model"


def test_language_detection_request_is_constrained(whisper_base: WhisperModel) -> None:
    request = whisper_base.get_language_detection_prompt(np.zeros(10, np.float32), SpeechToTextConfig(), ["en", "de"])
    assert request.max_tokens == 1
    assert request.allowed_token_ids == ids(whisper_base, "<|en|>", "<|de|>")
    assert request.logprob_token_ids is not None and whisper_base.vocab.no_speech in request.logprob_token_ids


def test_the_prompt_is_dropped_at_high_fallback_temperatures(whisper_base: WhisperModel) -> None:
    audio = np.zeros(16000, dtype=np.float32)
    options = DecodeOptions(language="en", prompt="quick brown fox")
    cool = whisper_base.get_generation_prompt(audio, SpeechToTextConfig(), options, temperature=0.4)
    hot = whisper_base.get_generation_prompt(audio, SpeechToTextConfig(), options, temperature=0.6)
    assert cool.prompt["decoder_prompt"]["prompt_token_ids"][0] == whisper_base.vocab.sot_prev
    assert hot.prompt["decoder_prompt"]["prompt_token_ids"][0] == whisper_base.vocab.sot


def test_keywords_lead_whisper_s_prompt() -> None:
    options = DecodeOptions(prompt="Meeting notes", keywords=("vLLM", "Kubernetes"))
    assert _joined_prompt(options) == "vLLM, Kubernetes. Meeting notes"
    assert _joined_prompt(DecodeOptions(keywords=("vLLM",))) == "vLLM"
