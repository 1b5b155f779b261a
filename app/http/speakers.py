"""A request's known speakers: `known_speaker_names[]` with `known_speaker_references[]` (data URLs).

Only the form is checked here (counts, names, data URLs, base64); whether a reference is audio of
the right length is found when it is decoded (`app.scheduling.diarization`).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from app.http.errors import bad_request, shown
from app.http.upload import ParsedForm
from models.speakers.interface import MAX_KNOWN_SPEAKERS

NAMES = "known_speaker_names"
REFERENCES = "known_speaker_references"
MAX_NAME_CHARS = 64
# What a reference's data URL may declare: audio (or a container that holds some).
MEDIA_TYPES = ("audio/", "video/", "application/octet-stream")


@dataclass(frozen=True)
class KnownReference:
    """A known speaker's name and the bytes of their clip, not yet decoded."""

    name: str
    data: bytes


def _values(form: ParsedForm, name: str) -> list[str]:
    # Names and data URLs may hold commas: each form value is one entry (`name[]` or `name`).
    return [*form.fields.get(f"{name}[]", []), *form.fields.get(name, [])]


def _clip(url: str, index: int) -> bytes:
    where = f"{REFERENCES}[{index}]"
    head, comma, payload = url.strip().partition(",")
    if not head.startswith("data:") or not comma:
        raise bad_request(
            f"{where} must be a data URL (`data:audio/wav;base64,...`), got {shown(url[:40])}", param=REFERENCES
        )
    media, *options = head[len("data:") :].split(";")
    if not media.lower().startswith(MEDIA_TYPES):
        raise bad_request(f"{where} is not audio: its data URL says {shown(media)}", param=REFERENCES)
    if "base64" not in options:
        raise bad_request(f"{where} must be base64-encoded (`;base64,`)", param=REFERENCES)
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request(f"{where} is not valid base64", param=REFERENCES) from None


def _check_names(names: list[str]) -> None:
    for name in names:
        if not name.strip():
            raise bad_request(f"{NAMES} has an empty name", param=NAMES)
        if len(name) > MAX_NAME_CHARS:
            raise bad_request(f"each of {NAMES} must be at most {MAX_NAME_CHARS} characters", param=NAMES)
    if len(set(names)) != len(names):
        raise bad_request(f"{NAMES} must not repeat a name", param=NAMES)


def parse_known_speakers(form: ParsedForm, diarized: bool) -> tuple[KnownReference, ...]:
    """The request's known speakers, checked as OpenAI's API describes them (at most 4, names matching clips)."""
    names = [n.strip() for n in _values(form, NAMES)]
    urls = _values(form, REFERENCES)
    if not names and not urls:
        return ()
    if not diarized:
        field = NAMES if names else REFERENCES
        raise bad_request(f"{field} needs response_format `diarized_json`", param=field)
    if len(names) != len(urls):
        # The field with fewer entries is the one missing some.
        field = REFERENCES if len(urls) < len(names) else NAMES
        raise bad_request(
            f"give one of {REFERENCES} per name of {NAMES}: got {len(names)} names and {len(urls)} references",
            param=field,
        )
    if len(names) > MAX_KNOWN_SPEAKERS:
        raise bad_request(f"at most {MAX_KNOWN_SPEAKERS} known speakers, got {len(names)}", param=NAMES)
    _check_names(names)
    return tuple(KnownReference(name, _clip(url, i)) for i, (name, url) in enumerate(zip(names, urls, strict=True)))
