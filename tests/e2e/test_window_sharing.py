"""64 requests at once, 64 different sentences: shared windows are off by default; turned on, clips
share windows and no words cross between them."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.e2e.servers import AHEAD, ONE_PROCESS_ENGINE
from tests.speech import MORE_SENTENCES, SENTENCES, normalise, speak, wer, write_wav

pytestmark = pytest.mark.e2e

SIXTY_FOUR = SENTENCES + MORE_SENTENCES


def _text(http: httpx.Client, path: Path) -> str:
    response = http.post(
        "/v1/audio/transcriptions",
        files={"file": (path.name, path.read_bytes())},
        data={"model": "whisper-1", "language": "en"},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["text"])


def _metric(http: httpx.Client, name: str) -> float:
    body = http.get("/metrics").text
    return sum(float(m[1]) for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? (\S+)$", body, re.MULTILINE))


@pytest.fixture(scope="module")
def clips(audio_dir: Path) -> list[Path]:
    assert len(set(SIXTY_FOUR)) == 64
    return [write_wav(audio_dir / f"clip-{i}.wav", speak(s)) for i, s in enumerate(SIXTY_FOUR)]


AHEAD.plan("sharing", lambda folder: {"SPEECH_GATEWAY_WINDOW_SHARING_WAIT_MS": "500", **ONE_PROCESS_ENGINE})


@pytest.fixture(scope="module")
def sharing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A server with shared windows turned on (the default server keeps them off)."""
    for running in AHEAD.served("sharing", tmp_path_factory):
        with httpx.Client(base_url=running.base_url, timeout=600) as c:
            yield c


def test_by_default_clips_at_once_are_read_alone(
    http: httpx.Client, clips: list[Path], read_alone: dict[str, str]
) -> None:
    # An answer must not depend on what else is in flight: by default no clip rides with another's.
    before = _metric(http, "speech_gateway_shared_windows_total")
    with ThreadPoolExecutor(16) as pool:
        texts = list(pool.map(lambda p: _text(http, p), clips[:16]))
    assert _metric(http, "speech_gateway_shared_windows_total") == before
    assert wer(" ".join(SIXTY_FOUR[:16]), " ".join(texts)) < 0.2
    # ... and each clip read together with the others reads as it does alone.
    alone = [read_alone[s] for s in SIXTY_FOUR[:16]]
    assert texts == alone, [(t, a) for t, a in zip(texts, alone, strict=True) if t != a]


def test_sixty_four_clips_at_once_share_windows_without_cross_talk(
    sharing: httpx.Client, clips: list[Path], read_alone: dict[str, str]
) -> None:
    http, paths = sharing, clips
    shared_before = _metric(http, "speech_gateway_shared_windows_total")
    with ThreadPoolExecutor(64) as pool:
        together = list(pool.map(lambda p: _text(http, p), paths))
    shared = _metric(http, "speech_gateway_shared_windows_total") - shared_before
    # One after another, the engine is idle at each arrival: every clip is read alone. The
    # session's server has read the first sentences alone already (the same model and settings,
    # sharing aside); this one reads the rest.
    alone = [read_alone[s] if s in read_alone else _text(http, p) for s, p in zip(SIXTY_FOUR, paths, strict=True)]
    assert _metric(http, "speech_gateway_shared_windows_total") - shared_before == shared

    # Content words only one sentence has. One of them in another clip's answer can be a word
    # misheard (espeak's "architect" read as "the dark attacked"); two from the same other
    # sentence are words carried over from that clip.
    counts = Counter(w for s in SIXTY_FOUR for w in set(normalise(s).split()) if len(w) >= 4)
    own = [set(normalise(s).split()) for s in SIXTY_FOUR]
    leaked = []
    for i, text in enumerate(together):
        foreign = set(normalise(text).split()) - own[i] - set(normalise(alone[i]).split())
        for j in range(64):
            carried = {w for w in foreign if w in own[j] and counts[w] == 1}
            if j != i and len(carried) >= 2:
                leaked.append((i, j, sorted(carried)))
    shared_wer = wer(" ".join(SIXTY_FOUR), " ".join(together))
    alone_wer = wer(" ".join(SIXTY_FOUR), " ".join(alone))
    print(f"\n64 clips: {shared:.0f} shared windows, WER together {shared_wer:.3f}, alone {alone_wer:.3f}")
    assert shared >= 1
    assert leaked == [], [(words, together[i], SIXTY_FOUR[j]) for i, j, words in leaked]
    assert shared_wer <= alone_wer + 0.02
