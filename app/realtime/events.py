"""The Realtime API's shapes: client events parsed into plain values, server events built as dicts."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from config import bounded_json

RATE = 24_000  # the only PCM rate the Realtime API speaks
CLIENT_TYPES = (
    "session.update",
    "transcription_session.update",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
)
Dialect = Literal["ga", "beta"]


class EventError(Exception):
    """A client event the server refuses; becomes an `error` event, the socket stays open."""

    def __init__(
        self,
        message: str,
        code: str,
        param: str | None = None,
        type: str = "invalid_request_error",
        event_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.event_id = event_id
        self.message = message
        self.code = code
        self.param = param
        self.type = type


@dataclass(frozen=True)
class TurnDetection:
    """`server_vad` knobs, OpenAI's defaults."""

    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500


@dataclass(frozen=True)
class SessionConfig:
    """The effective configuration of one transcription session."""

    model: str
    language: str | None = None
    prompt: str | None = None
    turn_detection: TurnDetection | None = field(default_factory=TurnDetection)


@dataclass(frozen=True)
class ClientEvent:
    """One parsed client event; `body` is the whole JSON object."""

    type: str
    event_id: str | None
    body: dict[str, Any]


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def parse_event(text: str | bytes) -> ClientEvent:
    """The event's type and id; EventError for what is not a known client event.

    The event's size is bounded by the caller (a setting); its nesting here.
    """
    try:
        body = bounded_json.loads(text)
    except bounded_json.JSONError as error:
        raise EventError(f"The event is {error.message}.", "invalid_json", error.field) from None
    if not isinstance(body, dict):
        raise EventError("The event must be a JSON object.", "invalid_json")
    event_id = body.get("event_id") if isinstance(body.get("event_id"), str) else None
    kind = body.get("type")
    if kind not in CLIENT_TYPES:
        shown = kind if isinstance(kind, str) else json.dumps(kind)[:40]
        supported = ", ".join(CLIENT_TYPES)
        message = f"Invalid value: '{shown[:80]}'. Supported values are: {supported}."
        raise EventError(message, "invalid_value", "type", event_id=event_id)
    return ClientEvent(kind, event_id, body)


def decode_pcm16(audio: Any) -> np.ndarray:
    """Base64 PCM16 little-endian mono as float32 in [-1, 1]."""
    if not isinstance(audio, str):
        raise EventError(
            "Missing required parameter: 'audio' (base64-encoded PCM16).", "missing_required_parameter", "audio"
        )
    try:
        raw = base64.b64decode(audio, validate=True)
    except (binascii.Error, ValueError):
        raise EventError("Invalid 'audio'. Expected base64-encoded audio data.", "invalid_value", "audio") from None
    if len(raw) % 2:
        raise EventError("Invalid 'audio': PCM16 needs an even number of bytes.", "invalid_value", "audio")
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


def error_event(error: EventError, client_event_id: str | None = None) -> dict[str, Any]:
    return {
        "type": "error",
        "event_id": new_id("event"),
        "error": {
            "type": error.type,
            "code": error.code,
            "message": error.message,
            "param": error.param,
            "event_id": client_event_id or error.event_id,
        },
    }


def server_event(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "event_id": new_id("event"), **fields}


# -- session updates ------------------------------------------------------------------------------
def _object(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise EventError(f"Invalid type for '{param}': expected an object.", "invalid_type", param)
    return value


def _optional_str(value: Any, param: str) -> str | None:
    if value is None or isinstance(value, str):
        return value or None
    raise EventError(f"Invalid type for '{param}': expected a string.", "invalid_type", param)


def _number(spec: dict[str, Any], key: str, default: float, lo: float, hi: float, param: str) -> float:
    value = spec.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise EventError(f"Invalid '{param}.{key}': expected a number from {lo:g} to {hi:g}.", "invalid_value", param)
    return value


def turn_detection_of(value: Any, param: str) -> TurnDetection | None:
    """`server_vad` (or `semantic_vad`, served as `server_vad`) knobs, or None for manual commits."""
    if value is None:
        return None
    spec = _object(value, param)
    if spec.get("type", "server_vad") not in ("server_vad", "semantic_vad"):
        raise EventError(
            f"Invalid '{param}.type': supported values are 'server_vad' and 'semantic_vad'.", "invalid_value", param
        )
    default = TurnDetection()
    return TurnDetection(
        threshold=_number(spec, "threshold", default.threshold, 0.0, 1.0, param),
        prefix_padding_ms=int(_number(spec, "prefix_padding_ms", default.prefix_padding_ms, 0, 10_000, param)),
        silence_duration_ms=int(_number(spec, "silence_duration_ms", default.silence_duration_ms, 0, 10_000, param)),
    )


def check_format(value: Any, dialect: Dialect, param: str) -> None:
    """Only 24 kHz PCM16 is accepted: GA `{"type": "audio/pcm", "rate": 24000}`, beta `"pcm16"`."""
    if dialect == "beta":
        if value not in (None, "pcm16"):
            raise EventError(f"Invalid '{param}': only 'pcm16' (24 kHz) is supported.", "invalid_value", param)
        return
    if value is None:
        return
    spec = _object(value, param)
    if spec.get("type", "audio/pcm") != "audio/pcm" or spec.get("rate", RATE) != RATE:
        raise EventError(
            f'Invalid \'{param}\': only {{"type": "audio/pcm", "rate": {RATE}}} is supported.', "invalid_value", param
        )


def _transcription(config: SessionConfig, value: Any, param: str) -> SessionConfig:
    if value is None:
        return replace(config, language=None, prompt=None)
    spec = _object(value, param)
    model = spec.get("model", config.model)
    if not isinstance(model, str) or not model:
        raise EventError(f"Invalid '{param}.model': expected a model name.", "invalid_value", f"{param}.model")
    changed = replace(config, model=model)
    if "language" in spec:
        changed = replace(changed, language=_optional_str(spec["language"], f"{param}.language"))
    if "prompt" in spec:
        changed = replace(changed, prompt=_optional_str(spec["prompt"], f"{param}.prompt"))
    return changed


def apply_update(config: SessionConfig, event: ClientEvent) -> tuple[SessionConfig, Dialect]:
    """The configuration after a GA `session.update` or a beta `transcription_session.update`.

    Only the fields present change; the model is not yet checked against what is served.
    """
    session = _object(event.body.get("session", {}), "session")
    if event.type == "transcription_session.update":
        check_format(session.get("input_audio_format"), "beta", "session.input_audio_format")
        if "input_audio_transcription" in session:
            config = _transcription(config, session["input_audio_transcription"], "session.input_audio_transcription")
        if "turn_detection" in session:
            config = replace(
                config, turn_detection=turn_detection_of(session["turn_detection"], "session.turn_detection")
            )
        return config, "beta"
    if session.get("type", "transcription") != "transcription":
        raise EventError(
            "This server serves transcription sessions only: set 'session.type' to 'transcription'.",
            "invalid_value",
            "session.type",
        )
    audio = _object(session.get("audio") or {}, "session.audio")
    spec = _object(audio.get("input") or {}, "session.audio.input")
    check_format(spec.get("format"), "ga", "session.audio.input.format")
    if "transcription" in spec:
        config = _transcription(config, spec["transcription"], "session.audio.input.transcription")
    if "turn_detection" in spec:
        turns = turn_detection_of(spec["turn_detection"], "session.audio.input.turn_detection")
        config = replace(config, turn_detection=turns)
    return config, "ga"


def _turns_shape(turns: TurnDetection | None) -> dict[str, Any] | None:
    if turns is None:
        return None
    return {
        "type": "server_vad",
        "threshold": turns.threshold,
        "prefix_padding_ms": turns.prefix_padding_ms,
        "silence_duration_ms": turns.silence_duration_ms,
    }


def session_shape(session_id: str, config: SessionConfig, dialect: Dialect) -> dict[str, Any]:
    """The session as `session.created` / `session.updated` (GA) or `transcription_session.updated` show it."""
    transcription = {"model": config.model, "language": config.language, "prompt": config.prompt}
    if dialect == "beta":
        return {
            "id": session_id,
            "object": "realtime.transcription_session",
            "input_audio_format": "pcm16",
            "input_audio_transcription": transcription,
            "turn_detection": _turns_shape(config.turn_detection),
            "input_audio_noise_reduction": None,
            "include": [],
        }
    return {
        "type": "transcription",
        "id": session_id,
        "object": "realtime.transcription_session",
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": RATE},
                "transcription": transcription,
                "noise_reduction": None,
                "turn_detection": _turns_shape(config.turn_detection),
            }
        },
        "include": [],
    }
