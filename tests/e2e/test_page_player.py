"""The page's player and speakers in Debian's headless Chromium: the sent file plays from a blob URL,
the word or segment being heard is highlighted, a click or Enter on one seeks there, and speakers
get a colour each in the tables and their names in the downloaded SRT and VTT.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from tests.e2e.servers import Server
from tests.e2e.test_page import (
    ARTIFACTS,
    UPLOAD_SENTENCES,
    _open,
    _wait_done,
    _wait_models,
    chromium,
)
from tests.speech import compose, write_wav

pytestmark = pytest.mark.e2e

SEEK_TOLERANCE_S = 0.05
# A diarized_json answer in OpenAI's exact shape (openai-python's TranscriptionDiarized): two
# speakers, A twice. It stands in for the server's own answer in the rendering test only.
SEGMENTS = [
    (0.2, 1.6, " Hello there.", "A"),
    (2.0, 3.5, " Hi, how are you?", "B"),
    (3.9, 5.7, " Fine, thanks & you?", "A"),
]
DIARIZED_SEGMENTS: list[dict[str, Any]] = [
    {"type": "transcript.text.segment", "id": f"seg_{i}", "start": start, "end": end, "text": text, "speaker": who}
    for i, (start, end, text, who) in enumerate(SEGMENTS)
]
DIARIZED: dict[str, Any] = {
    "task": "transcribe",
    "duration": 6.0,
    "text": "Hello there. Hi, how are you? Fine, thanks & you?",
    "segments": DIARIZED_SEGMENTS,
    "usage": {"type": "duration", "seconds": 6},
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium as in test_page.py, allowed to play audio without a gesture (a seek by keyboard plays too)."""
    yield from chromium("--autoplay-policy=no-user-gesture-required")


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(accept_downloads=True, viewport={"width": 1100, "height": 1400})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield opened
        assert not errors, errors
    finally:
        context.close()


@pytest.fixture(scope="module")
def sentences_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_wav(tmp_path_factory.mktemp("player") / "sentences.wav", compose(UPLOAD_SENTENCES, pause_s=0.8))


def _send(page: Any) -> dict[str, Any]:
    """Press "Transcribe file"; the answer's JSON, as the page received it."""
    with page.expect_response("**/v1/audio/transcriptions") as answer:
        page.click("#send-file")
    _wait_done(page, 300)
    body: dict[str, Any] = answer.value.json()
    return body


def _wait_audio(page: Any) -> float:
    """The player's duration once its metadata loaded from the blob URL."""
    page.wait_for_function("() => document.getElementById('player').readyState >= 1", timeout=30_000)
    assert page.evaluate("document.getElementById('player').src").startswith("blob:")
    assert page.is_visible("#player")
    return float(page.evaluate("document.getElementById('player').duration"))


def _seek_target(page: Any, action: Any) -> float:
    """Where `action` seeks the player: currentTime when its `seeking` event fires."""
    page.evaluate(
        """() => { const a = document.getElementById('player'); window.seekedTo = null;
                   a.addEventListener('seeking', () => { window.seekedTo = a.currentTime; }, { once: true }); }"""
    )
    action()
    page.wait_for_function("() => window.seekedTo !== null", timeout=10_000)
    return float(page.evaluate("window.seekedTo"))


def _heard_at(page: Any, seconds: float, scope: str = "#transcript") -> list[Any]:
    """Paused at `seconds` (a seek, then timeupdate): the [start, end] of each highlighted cue in `scope`."""
    page.evaluate(
        """async (t) => { const a = document.getElementById('player'); a.pause();
                          const seeked = new Promise((done) => a.addEventListener('seeked', done, { once: true }));
                          a.currentTime = t; await seeked; a.dispatchEvent(new Event('timeupdate')); }""",
        seconds,
    )
    return list(
        page.eval_on_selector_all(
            f"{scope} .cue.current", "els => els.map(e => [Number(e.dataset.start), Number(e.dataset.end)])"
        )
    )


def test_words_play_from_where_they_are_clicked_and_light_up_when_heard(
    server: Server, page: Any, sentences_wav: Path
) -> None:
    _open(page, server.base_url)
    _wait_models(page)
    page.fill("#language", "en")
    page.set_input_files("#file", str(sentences_wav))
    page.select_option("#response-format", "verbose_json")
    page.check("#word-timestamps")
    answer = _send(page)
    words = answer["words"]
    assert len(words) >= 10, words
    duration = _wait_audio(page)
    assert abs(duration - sf.info(str(sentences_wav)).duration) < 0.05, duration

    # Every word of the answer is a clickable cue with its times, in order.
    cues = page.eval_on_selector_all(
        "#transcript .cue",
        "els => els.map(e => [e.textContent, Number(e.dataset.start), Number(e.dataset.end), e.getAttribute('role')])",
    )
    assert [(c[0], c[1], c[2]) for c in cues] == [(w["word"].strip(), w["start"], w["end"]) for w in words]
    assert {c[3] for c in cues} == {"button"}

    # A click seeks to the word's start and plays.
    middle = len(words) // 2
    target = _seek_target(page, lambda: page.click(f"#transcript .cue >> nth={middle}"))
    assert abs(target - words[middle]["start"]) <= SEEK_TOLERANCE_S, (target, words[middle])
    page.wait_for_function("() => !document.getElementById('player').paused", timeout=10_000)

    # While it plays, the highlight follows: after a moment of playback, paused, it is the word heard.
    page.wait_for_function(
        "t => document.getElementById('player').currentTime > t", arg=words[middle]["start"] + 0.5, timeout=10_000
    )
    page.evaluate(  # pause() queues timeupdate, then pause: once paused, the highlight saw the last time
        """async () => { const a = document.getElementById('player');
                         const paused = new Promise((done) => a.addEventListener('pause', done, { once: true }));
                         a.pause(); await paused; }"""
    )
    now = float(page.evaluate("document.getElementById('player').currentTime"))
    heard = page.eval_on_selector_all("#transcript .cue.current", "els => els.map(e => Number(e.dataset.start))")
    expected = [w["start"] for w in words if w["start"] <= now < w["end"]]
    assert heard == expected, (now, heard)

    # At chosen times: the one word whose [start, end) holds the time; none in a pause.
    for word in (words[0], words[middle], words[-1]):
        for at in (word["start"], (word["start"] + word["end"]) / 2):
            holding = [[w["start"], w["end"]] for w in words if w["start"] <= at < w["end"]]
            assert _heard_at(page, at) == holding, (at, word)
    gaps = [(a["end"] + b["start"]) / 2 for a, b in itertools.pairwise(words) if b["start"] - a["end"] > 0.2]
    assert gaps, "the sentences' pause has no gap between words"
    assert _heard_at(page, gaps[0]) == []
    _heard_at(page, words[middle]["start"])
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "page-player.png"), full_page=True)
    # The tables follow too: the row of the segment heard, and of the word.
    segment = answer["segments"][-1]
    assert _heard_at(page, segment["start"] + 0.1, "#segments") == [[segment["start"], segment["end"]]]
    assert _heard_at(page, words[-1]["start"], "#words") == [[words[-1]["start"], words[-1]["end"]]]

    # Keyboard: the clicked word is the transcript's tab stop; arrows move along, Enter plays from there.
    page.focus(f"#transcript .cue >> nth={middle}")
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.textContent") == words[middle + 1]["word"].strip()
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") not in ("", "none")
    target = _seek_target(page, lambda: page.keyboard.press("Enter"))
    assert abs(target - words[middle + 1]["start"]) <= SEEK_TOLERANCE_S
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == words[middle + 1]["word"].strip()


def _label_colours(page: Any, scope: str) -> list[tuple[str, str, str]]:
    """(speaker, background, text colour) of each speaker label in `scope`."""
    return [
        tuple(c)
        for c in page.eval_on_selector_all(
            f"{scope} .speaker-label",
            "els => els.map(e => [e.textContent, getComputedStyle(e).backgroundColor, getComputedStyle(e).color])",
        )
    ]


def _contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two `rgb(r, g, b)` colours."""

    def luminance(rgb: str) -> float:
        channels = [int(v) / 255 for v in re.findall(r"\d+", rgb)[:3]]
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_speakers_get_a_colour_each_and_their_names_in_srt_and_vtt(
    server: Server, page: Any, sentences_wav: Path
) -> None:
    """Rendering of a diarized_json answer. The answer is a fixed body in OpenAI's exact shape,
    served by intercepting the page's fetch (the server's own diarized_json is another piece of
    work); the request the page sends is checked, and the page, player and audio are real."""
    asked: list[str] = []

    def answer(route: Any) -> None:
        asked.append(route.request.post_data_buffer.decode("latin-1"))
        route.fulfill(status=200, json=DIARIZED)

    _open(page, server.base_url)
    _wait_models(page)
    page.route("**/v1/audio/transcriptions", answer)
    page.set_input_files("#file", str(sentences_wav))
    page.check("#speakers")
    assert page.is_disabled("#word-timestamps")  # OpenAI refuses word timestamps with diarized_json
    page.select_option("#response-format", "vtt")
    _send(page)
    assert re.search(r'name="response_format"\r\n\r\ndiarized_json\r\n', asked[0]), asked[0][:2000]
    assert "timestamp_granularities" not in asked[0]
    assert (page.text_content("#formatted") or "").startswith("WEBVTT\n\n00:00:00.200 --> 00:00:01.600\n<v A>Hello")

    # A colour per speaker, the same in the transcript's turns and the table's rows; readable labels.
    speakers = [s["speaker"] for s in DIARIZED_SEGMENTS]
    assert page.is_visible("#speaker-head")
    table = _label_colours(page, "#segments")
    turns = _label_colours(page, "#transcript")
    assert [t[0] for t in table] == [t[0] for t in turns] == speakers
    assert table == turns
    assert table[0][1] == table[2][1] != table[1][1]
    for _, background, text in table:
        assert _contrast(background, text) >= 4.5, (background, text)
    page.emulate_media(color_scheme="dark")
    dark = _label_colours(page, "#segments")
    assert dark[0][1] == dark[2][1] != dark[1][1] and dark[0][1] != table[0][1]
    for _, background, text in dark:
        assert _contrast(background, text) >= 4.5, (background, text)
    page.emulate_media(color_scheme="light")
    row_edges = page.eval_on_selector_all(
        "#segments tbody tr", "rows => rows.map(r => getComputedStyle(r.cells[0]).boxShadow)"
    )
    assert row_edges[0] == row_edges[2] != row_edges[1]
    assert table[0][1].replace(" ", "") in row_edges[0].replace(" ", "")

    # Segments are cues: a click on B's row plays from its start, and the heard segment lights up.
    _wait_audio(page)
    target = _seek_target(page, lambda: page.click("#segments tbody tr >> nth=1"))
    assert abs(target - DIARIZED_SEGMENTS[1]["start"]) <= SEEK_TOLERANCE_S
    assert _heard_at(page, 4.0) == [[3.9, 5.7]]
    assert _heard_at(page, 4.0, "#segments") == [[3.9, 5.7]]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "page-speakers.png"), full_page=True)

    # The downloads name the speakers: SRT as "A: text", WebVTT with its voice tag (escaped text).
    with page.expect_download() as srt_file:
        page.click("#download-srt")
    srt = Path(srt_file.value.path()).read_text(encoding="utf-8")
    assert srt == (
        "1\n00:00:00,200 --> 00:00:01,600\nA: Hello there.\n\n"
        "2\n00:00:02,000 --> 00:00:03,500\nB: Hi, how are you?\n\n"
        "3\n00:00:03,900 --> 00:00:05,700\nA: Fine, thanks & you?\n"
    )
    with page.expect_download() as vtt_file:
        page.click("#download-vtt")
    vtt = Path(vtt_file.value.path()).read_text(encoding="utf-8")
    assert vtt == (
        "WEBVTT\n\n00:00:00.200 --> 00:00:01.600\n<v A>Hello there.\n\n"
        "00:00:02.000 --> 00:00:03.500\n<v B>Hi, how are you?\n\n"
        "00:00:03.900 --> 00:00:05.700\n<v A>Fine, thanks &amp; you?\n"
    )


def _speaker_view(page: Any) -> list[tuple[str, str]]:
    """(speaker, label colour) of each segment row."""
    return [(c[0], c[1]) for c in _label_colours(page, "#segments")]


def test_the_servers_own_speakers_are_shown(server: Server, page: Any, tmp_path: Path) -> None:
    """The same rendering from the server's own diarized_json."""
    # Two espeak-ng voices taking turns: a low male one, then a high female one.
    two = [compose([UPLOAD_SENTENCES[0]], 0.6, voice="en+m3"), compose([UPLOAD_SENTENCES[1]], 0.6, voice="en+f4")]
    wav = write_wav(tmp_path / "two.wav", np.concatenate(two))
    _open(page, server.base_url)
    _wait_models(page)
    page.set_input_files("#file", str(wav))
    page.select_option("#response-format", "diarized_json")
    with page.expect_response("**/v1/audio/transcriptions") as info:
        page.click("#send-file")
    assert info.value.status == 200, info.value.text()[:300]
    _wait_done(page, 300)
    answer = info.value.json()
    spoken = [s for s in answer["segments"] if s["text"].strip()]
    shown = _speaker_view(page)
    assert [s[0] for s in shown] == [s["speaker"] for s in answer["segments"]]
    assert [s[0] for s in shown] == ["A", "B"], answer  # the two voices told apart: colours to compare
    colour = dict(shown)
    assert all(colour[who] == c for who, c in shown), shown  # the same colour for the same speaker
    assert len(set(colour.values())) == len(colour), shown  # and none shared
    with page.expect_download() as vtt_file:
        page.click("#download-vtt")
    vtt = Path(vtt_file.value.path()).read_text(encoding="utf-8")
    assert vtt.count("<v ") == len(spoken) and all(f"<v {s['speaker']}>" in vtt for s in spoken), vtt
