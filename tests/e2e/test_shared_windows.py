"""64 requests at once, 64 different sentences: clips share windows and no words cross between them."""

from __future__ import annotations

import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

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


def test_sixty_four_clips_at_once_share_windows_without_cross_talk(http: httpx.Client, audio_dir: Path) -> None:
    assert len(set(SIXTY_FOUR)) == 64
    paths = [write_wav(audio_dir / f"clip-{i}.wav", speak(s)) for i, s in enumerate(SIXTY_FOUR)]
    shared_before = _metric(http, "speech_gateway_shared_windows_total")
    with ThreadPoolExecutor(64) as pool:
        together = list(pool.map(lambda p: _text(http, p), paths))
    shared = _metric(http, "speech_gateway_shared_windows_total") - shared_before
    # One after another, the engine is idle at each arrival: every clip is read alone.
    alone = [_text(http, p) for p in paths]
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
