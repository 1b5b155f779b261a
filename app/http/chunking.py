"""A request's `chunking_strategy`: `auto`, or `server_vad` with its knobs, as OpenAI's API takes it.

The SDK sends an object as `chunking_strategy[type]=server_vad`, `chunking_strategy[threshold]=...`;
curl users may send the same object as one JSON field. Either way the result is the
voice-activity settings the request's audio is cut by, or None when the field is absent.
"""

from __future__ import annotations

import math

from app.audio.vad import VadParams
from app.http.errors import bad_request, shown
from app.http.upload import ParsedForm
from config import bounded_json

PARAM = "chunking_strategy"
MAX_MS = 10_000
KNOBS = ("threshold", "prefix_padding_ms", "silence_duration_ms")
MAX_JSON_CHARS = 4096  # the whole object with every knob is under 120 characters


def _fields(form: ParsedForm) -> dict[str, str] | str | None:
    """The raw strategy: a string (`auto`, or JSON), a dict of `[key]` fields, or None."""
    prefix = PARAM + "["
    keyed = {name[len(prefix) : -1]: values[-1] for name, values in form.fields.items() if name.startswith(prefix)}
    plain = form.fields.get(PARAM)
    if keyed and plain:
        raise bad_request("send chunking_strategy either as one field or as its [keys], not both", param=PARAM)
    if keyed:
        return keyed
    return plain[-1].strip() if plain else None


def _number(raw: object, name: str, low: float, high: float) -> float:
    try:
        value = float(str(raw))
    except ValueError:
        raise bad_request(f"chunking_strategy.{name} must be a number, got {shown(raw)}", param=PARAM) from None
    if not math.isfinite(value) or not low <= value <= high:
        raise bad_request(f"chunking_strategy.{name} must lie between {low:g} and {high:g}", param=PARAM)
    return value


def _server_vad(spec: dict[str, object]) -> VadParams:
    kind = spec.get("type")
    if kind != "server_vad":
        raise bad_request("chunking_strategy must be `auto` or an object of type `server_vad`", param=PARAM)
    unknown = sorted(set(spec) - {"type", *KNOBS})
    if unknown:
        raise bad_request(f"chunking_strategy has no field {shown(unknown[0])}", param=PARAM)
    default = VadParams()
    padding = spec.get("prefix_padding_ms", default.prefix_padding_s * 1000)
    silence = spec.get("silence_duration_ms", default.silence_duration_s * 1000)
    return VadParams(
        threshold=_number(spec.get("threshold", default.threshold), "threshold", 0.0, 1.0),
        prefix_padding_s=_number(padding, "prefix_padding_ms", 0, MAX_MS) / 1000,
        silence_duration_s=_number(silence, "silence_duration_ms", 0, MAX_MS) / 1000,
    )


def parse_chunking(form: ParsedForm) -> VadParams | None:
    """The request's voice-activity settings; None when it leaves chunking to the server."""
    raw = _fields(form)
    if raw is None or raw == "":
        return None
    if isinstance(raw, dict):
        return _server_vad(dict(raw))
    if raw == "auto":
        return VadParams()
    try:
        spec = bounded_json.loads(raw, max_chars=MAX_JSON_CHARS)
    except bounded_json.JSONError as error:
        if not raw.startswith(("{", "[")):
            spec = None  # not meant as JSON: the message below says what is
        else:
            where = f"chunking_strategy.{error.field}" if error.field else "chunking_strategy"
            raise bad_request(f"{where} is {error.message}", param=PARAM) from None
    if not isinstance(spec, dict):
        raise bad_request("chunking_strategy must be `auto` or an object of type `server_vad`", param=PARAM)
    return _server_vad(spec)
