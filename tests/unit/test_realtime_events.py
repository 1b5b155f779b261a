"""Realtime client events parsed, session updates merged, shapes as the SDK reads them."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from app.realtime.events import (
    EventError,
    SessionConfig,
    TurnDetection,
    apply_update,
    decode_pcm16,
    error_event,
    parse_event,
    session_shape,
)


def update(session: dict[str, object], kind: str = "session.update") -> tuple[SessionConfig, str]:
    return apply_update(SessionConfig(model="m"), parse_event(json.dumps({"type": kind, "session": session})))


def test_parse_refuses_what_is_not_a_client_event() -> None:
    with pytest.raises(EventError) as bad_json:
        parse_event("{nope")
    assert bad_json.value.code == "invalid_json"
    with pytest.raises(EventError):
        parse_event("[1, 2]")
    with pytest.raises(EventError) as unknown:
        parse_event(json.dumps({"type": "response.create", "event_id": "e1"}))
    assert (unknown.value.code, unknown.value.param, unknown.value.event_id) == ("invalid_value", "type", "e1")
    event = error_event(unknown.value)
    assert event["type"] == "error" and event["event_id"].startswith("event_")
    assert event["error"]["event_id"] == "e1" and event["error"]["type"] == "invalid_request_error"


def test_pcm16_is_decoded_and_bad_audio_refused() -> None:
    pcm = np.array([0, 16384, -32768], dtype="<i2").tobytes()
    assert decode_pcm16(base64.b64encode(pcm).decode()).tolist() == [0.0, 0.5, -1.0]
    for bad in ("not base64!", base64.b64encode(b"abc").decode(), None):
        with pytest.raises(EventError) as refused:
            decode_pcm16(bad)
        assert refused.value.param == "audio"


def test_ga_update_changes_only_what_it_names() -> None:
    config, dialect = update(
        {
            "type": "transcription",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": {"model": "other", "language": "en", "prompt": "names"},
                    "turn_detection": {"type": "server_vad", "threshold": 0.6, "silence_duration_ms": 300},
                }
            },
        }
    )
    assert dialect == "ga"
    assert config == SessionConfig("other", "en", "names", TurnDetection(0.6, 300, 300))
    config, _ = update({"type": "transcription", "audio": {"input": {"turn_detection": None}}})
    assert config == SessionConfig("m", turn_detection=None)


@pytest.mark.parametrize(
    ("session", "param"),
    [
        ({"type": "realtime"}, "session.type"),
        ({"audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}}, "session.audio.input.format"),
        ({"audio": {"input": {"format": {"type": "audio/pcmu"}}}}, "session.audio.input.format"),
        ({"audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 3}}}}, None),
        ({"audio": {"input": {"transcription": {"model": 5}}}}, "session.audio.input.transcription.model"),
    ],
)
def test_ga_update_refusals_name_the_field(session: dict[str, object], param: str | None) -> None:
    with pytest.raises(EventError) as refused:
        update(session)
    if param:
        assert refused.value.param == param


def test_beta_update_and_shapes() -> None:
    config, dialect = update(
        {
            "input_audio_format": "pcm16",
            "input_audio_transcription": {"model": "m", "language": "de"},
            "turn_detection": None,
        },
        kind="transcription_session.update",
    )
    assert dialect == "beta" and config == SessionConfig("m", "de", None, None)
    with pytest.raises(EventError):
        update({"input_audio_format": "g711_ulaw"}, kind="transcription_session.update")
    beta = session_shape("sess_1", config, "beta")
    assert beta["input_audio_transcription"]["language"] == "de" and beta["turn_detection"] is None
    ga = session_shape("sess_1", SessionConfig("m"), "ga")
    assert ga["type"] == "transcription"
    assert ga["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert ga["audio"]["input"]["turn_detection"]["type"] == "server_vad"
