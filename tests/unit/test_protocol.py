import pytest

from app.http.errors import APIError
from app.http.protocol import parse_params
from app.http.upload import ParsedForm


def form(**fields: str | list[str]) -> ParsedForm:
    return ParsedForm(fields={k: v if isinstance(v, list) else [v] for k, v in fields.items()})


def test_defaults_and_sdk_list_fields() -> None:
    p = parse_params(
        form(
            model="whisper-1",
            **{"timestamp_granularities[]": "segment", "include[]": "logprobs", "response_format": "verbose_json"},
        ),
        "transcribe",
    )
    assert p.timestamp_granularities == ("segment",) and p.include_logprobs and p.temperature == 0.0


def test_keywords_are_kept_apart_from_the_prompt() -> None:
    p = parse_params(form(model="m", prompt="Meeting notes", **{"keywords[]": ["vLLM", "Kubernetes"]}), "transcribe")
    assert p.prompt == "Meeting notes" and p.keywords == ("vLLM", "Kubernetes")


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({}, "model"),
        ({"model": "m", "response_format": "xml"}, "response_format"),
        ({"model": "m", "temperature": "hot"}, "temperature"),
        ({"model": "m", "temperature": "-0.1"}, "temperature"),
        ({"model": "m", "temperature": "nan"}, "temperature"),
        (
            {"model": "m", "timestamp_granularities[]": "sentence", "response_format": "verbose_json"},
            "timestamp_granularities",
        ),
        ({"model": "m", "timestamp_granularities[]": "segment"}, "timestamp_granularities"),
        ({"model": ["a", "b"]}, "model"),
        ({"model": "m", "stream": "maybe"}, "stream"),
        ({"model": "m", "include[]": "everything"}, "include"),
        ({"model": "m", "prompt": "x" * 30_000}, "prompt"),
    ],
)
def test_bad_fields_name_the_param(fields: dict[str, str | list[str]], param: str) -> None:
    with pytest.raises(APIError) as error:
        parse_params(form(**fields), "transcribe")
    assert error.value.status == 400 and error.value.param == param


def test_translation_ignores_language() -> None:
    assert parse_params(form(model="m", language="de"), "translate").language is None
