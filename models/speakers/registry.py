"""The diarizers by name (the setting SPEECH_GATEWAY_DIARIZER): each loads its weights on first use."""

from __future__ import annotations

from collections.abc import Callable

from models.speakers.interface import Diarizer

OFF = "off"


def _campplus() -> Diarizer:
    from models.speakers.campplus import CampPlusDiarizer

    return CampPlusDiarizer()


def _ge2e() -> Diarizer:
    from models.speakers.ge2e import Ge2eDiarizer

    return Ge2eDiarizer()


# The first is the default; bench/diarization.py compares them.
DIARIZERS: dict[str, Callable[[], Diarizer]] = {"campplus": _campplus, "ge2e": _ge2e}


class UnknownDiarizer(ValueError):
    """A diarizer name that is not one of DIARIZERS, or "off" (there is then no diarizer to load)."""


def load_diarizer(name: str) -> Diarizer:
    """The diarizer called `name`; its weights load (and are checked) on its first `diarize` call.

    "off" is not a diarizer: the caller checks for it (diarized_json is then refused) before calling this.
    """
    key = name.strip().lower()
    if key == OFF:
        raise UnknownDiarizer("diarization is off (SPEECH_GATEWAY_DIARIZER=off): there is no diarizer to load")
    if key not in DIARIZERS:
        known = ", ".join([*DIARIZERS, OFF])
        raise UnknownDiarizer(f"unknown diarizer {name!r}: one of {known}")
    return DIARIZERS[key]()
