"""`chunking_strategy` as the SDK, curl users and bad clients send it."""

from __future__ import annotations

import pytest

from app.audio.vad import VadParams
from app.http.chunking import parse_chunking
from app.http.errors import APIError
from app.http.upload import ParsedForm


def parsed(fields: dict[str, str]) -> VadParams | None:
    return parse_chunking(ParsedForm(fields={k: [v] for k, v in fields.items()}))


def test_absent_auto_and_server_vad() -> None:
    assert parsed({}) is None
    assert parsed({"chunking_strategy": "auto"}) == VadParams()
    keyed = {
        "chunking_strategy[type]": "server_vad",
        "chunking_strategy[threshold]": "0.3",
        "chunking_strategy[prefix_padding_ms]": "100",
        "chunking_strategy[silence_duration_ms]": "800",
    }
    assert parsed(keyed) == VadParams(threshold=0.3, prefix_padding_s=0.1, silence_duration_s=0.8)
    as_json = '{"type": "server_vad", "threshold": 0.6}'
    assert parsed({"chunking_strategy": as_json}) == VadParams(threshold=0.6)


@pytest.mark.parametrize(
    "fields",
    [
        {"chunking_strategy": "sometimes"},
        {"chunking_strategy": "[1, 2]"},
        {"chunking_strategy[type]": "client_vad"},
        {"chunking_strategy[type]": "server_vad", "chunking_strategy[threshold]": "1.5"},
        {"chunking_strategy[type]": "server_vad", "chunking_strategy[threshold]": "nan"},
        {"chunking_strategy[type]": "server_vad", "chunking_strategy[silence_duration_ms]": "-1"},
        {"chunking_strategy[type]": "server_vad", "chunking_strategy[prefix_padding_ms]": "lots"},
        {"chunking_strategy[type]": "server_vad", "chunking_strategy[eagerness]": "high"},
        {"chunking_strategy": "auto", "chunking_strategy[type]": "server_vad"},
    ],
)
def test_bad_strategies_name_the_field(fields: dict[str, str]) -> None:
    with pytest.raises(APIError) as caught:
        parsed(fields)
    assert caught.value.status == 400 and caught.value.param == "chunking_strategy"
