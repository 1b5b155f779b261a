"""The speaker model at work: known speakers' clips decoded, and turns found in a worker thread.

A diarizer is blocking work: it runs in its own thread (one at a time), never on the event loop,
while the engine reads the same audio.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from app.audio.decode import Audio, open_source, read, resample
from app.http.errors import APIError, bad_request
from app.http.speakers import REFERENCES, KnownReference
from models.speakers.interface import REFERENCE_MAX_S, REFERENCE_MIN_S, Diarizer, KnownSpeaker, SpeakerTurn

log = logging.getLogger("speech_gateway")

# Builds the speaker model the settings name (blocking: run in a thread).
DiarizerLoader = Callable[[str], Diarizer]
# A reference is decoded up to this length before it is found too long (the decoder's own cap).
DECODE_CAP_S = 60.0


class Speakers:
    """A loaded diarizer and the thread it runs in."""

    def __init__(self, diarizer: Diarizer) -> None:
        self.diarizer = diarizer
        self.sample_rate = type(diarizer).sample_rate
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="diarize")

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def references(self, known: Sequence[KnownReference]) -> list[KnownSpeaker]:
        """Each clip decoded by the gateway's decoder to mono at the diarizer's rate, 2-10 s long."""
        out = []
        for i, reference in enumerate(known):
            audio = await asyncio.to_thread(_decode_clip, reference.data, i, self.sample_rate)
            out.append(KnownSpeaker(reference.name, audio.samples))
        return out

    async def turns(self, audio: Audio, known: Sequence[KnownSpeaker] = ()) -> list[SpeakerTurn]:
        """The recording's speaker turns, sorted by start."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._diarize, audio, tuple(known))

    def _diarize(self, audio: Audio, known: tuple[KnownSpeaker, ...]) -> list[SpeakerTurn]:
        samples = resample(audio, self.sample_rate).samples
        return sorted(self.diarizer.diarize(samples, known), key=lambda t: (t.start, t.end))


class SpeakerModel:
    """The speaker model the settings name, loaded on the first request that needs it, then kept.

    Loaded lazily so that a server (or a test) that never diarizes never pays for it. A model that
    fails to load is logged once; every diarized request is then answered with a 503.
    """

    def __init__(self, name: str, load: DiarizerLoader) -> None:
        self.name = name
        self._load = load
        self._lock = asyncio.Lock()
        self._speakers: Speakers | None = None
        self._failed = False

    async def get(self) -> Speakers:
        async with self._lock:
            if self._speakers is None and not self._failed:
                try:
                    diarizer = await asyncio.to_thread(self._load, self.name)
                except Exception:
                    log.error(
                        "the speaker model %r did not load; diarized_json is unavailable", self.name, exc_info=True
                    )
                    self._failed = True
                else:
                    self._speakers = Speakers(diarizer)
                    log.info("speaker model %s loaded", self.name)
        if self._speakers is None:
            raise APIError(
                503, "the speaker model failed to load (the server log has the details)", type="server_error"
            )
        return self._speakers

    def close(self) -> None:
        if self._speakers is not None:
            self._speakers.close()


def _decode_clip(data: bytes, index: int, sample_rate: int) -> Audio:
    where = f"{REFERENCES}[{index}]"
    with tempfile.NamedTemporaryFile(prefix="reference-", suffix=".audio") as file:
        file.write(data)
        file.flush()
        try:
            source = open_source(Path(file.name), DECODE_CAP_S)
            try:
                audio = read(source, sample_rate)
            finally:
                source.close()
        except APIError as error:
            # The decoder names `file`; here the field at fault is the reference.
            if error.code == "audio_too_long":
                error.message = f"it is longer than {REFERENCE_MAX_S:g} s"
            raise bad_request(f"{where}: {error.message}", param=REFERENCES, code=error.code) from None
    if not REFERENCE_MIN_S <= audio.duration <= REFERENCE_MAX_S:
        raise bad_request(
            f"{where} is {audio.duration:.1f} s long; a known speaker's clip must last "
            f"{REFERENCE_MIN_S:g} to {REFERENCE_MAX_S:g} s",
            param=REFERENCES,
            code="audio_too_short" if audio.duration < REFERENCE_MIN_S else "audio_too_long",
        )
    return audio
