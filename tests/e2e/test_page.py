"""The page at `/` in a real browser: Debian's headless Chromium driven by Playwright.

The upload and microphone tests talk to the session's real server; the API-key and error tests
use a small server with the scripted engine and a key, so no second engine starts.
"""

from __future__ import annotations

import io
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.e2e.servers import ROOT, Server, free_port
from tests.speech import SAMPLE_RATE, SENTENCES, compose, speak, wer, write_wav

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOT = ARTIFACTS / "page-transcript.png"
# Without the background-networking flags Chromium phones home, which a closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]
MAX_WER = 0.2
# Sentences the default model reads from espeak without a slip, so a wrong page shows, not the model.
UPLOAD_SENTENCES = [SENTENCES[8], SENTENCES[9]]
UPLOAD_TEXT = " ".join(UPLOAD_SENTENCES)
MIC_SENTENCE = SENTENCES[7]
MIC_RATE = 48_000
SRT_BLOCK = re.compile(
    r"^(\d+)\n(\d\d):(\d\d):(\d\d),(\d{3}) --> (\d\d):(\d\d):(\d\d),(\d{3})\n(.+?)(?:\n\n|\n?$)", re.M | re.S
)
TIME_CELL = re.compile(r"^\d+:\d\d\.\d\d$")


def _require_browser() -> None:
    """Chromium and Playwright, which `make install-dev` installs: outside CI their absence skips."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (Debian package chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the Python package playwright (the dev extra)")
    if missing:
        message = f"missing for the page tests: {', '.join(missing)}; `make install-dev` installs them"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def mic_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fake microphone: silence, one sentence, a long pause (Chromium plays the file in a loop)."""
    import librosa

    speech = compose([MIC_SENTENCE], pause_s=2.5)
    samples = np.concatenate([np.zeros(SAMPLE_RATE, dtype=np.float32), speech])
    samples = librosa.resample(samples, orig_sr=SAMPLE_RATE, target_sr=MIC_RATE).astype(np.float32)
    return write_wav(tmp_path_factory.mktemp("mic") / "mic.wav", 0.8 * samples, rate=MIC_RATE)


# Module-scoped: sync Playwright runs an event loop in this thread until it exits, and the async
# tests of later modules need the thread's loop free.
@pytest.fixture(scope="module")
def browser(mic_wav: Path) -> Iterator[Any]:
    yield from chromium(f"--use-file-for-fake-audio-capture={mic_wav}")


def chromium(*extra_args: str) -> Iterator[Any]:
    """Debian's Chromium under sync Playwright, with the page tests' flags and `extra_args`, closed after."""
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *extra_args])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(accept_downloads=True, viewport={"width": 1100, "height": 1400})
    opened = context.new_page()
    messages: list[str] = []
    opened.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
    opened.on("pageerror", lambda e: messages.append(f"pageerror: {e}"))
    opened.console_messages_seen = messages
    try:
        yield opened
    finally:
        context.close()


def _open(page: Any, base_url: str) -> None:
    page.goto(f"{base_url}/")
    page.wait_for_selector("body[data-ready='true']")


def _wait_models(page: Any) -> list[str]:
    page.wait_for_selector("#model[data-loaded='true']", timeout=30_000)
    return [str(v) for v in page.eval_on_selector_all("#model option", "os => os.map(o => o.value)")]


def _wait_done(page: Any, timeout_s: float = 300) -> None:
    page.wait_for_function(
        "() => /^Done in/.test(document.getElementById('status').textContent)"
        " || !document.getElementById('error').hidden",
        timeout=timeout_s * 1000,
    )
    assert page.is_hidden("#error"), page.text_content("#error")


def _png_size_and_spread(png: bytes) -> tuple[tuple[int, int], float, int]:
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("L")
    pixels = np.asarray(image, dtype=np.float32)
    return image.size, float(pixels.std()), len(np.unique(pixels))


def test_page_loads_with_labelled_controls_and_the_models(server: Server, page: Any) -> None:
    _open(page, server.base_url)
    assert page.title().startswith("speech-gateway")
    served = [m["id"] for m in httpx.get(f"{server.base_url}/v1/models", timeout=30).json()["data"]]
    assert _wait_models(page) == served
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea, button')]
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                          && !(el.tagName === 'BUTTON' && el.textContent.trim()))
            .map(el => el.id || el.outerHTML)"""
    )
    assert unlabelled == []
    assert page.get_attribute("#transcript", "aria-live") == "polite"
    assert page.get_attribute("#status", "role") == "status"
    assert page.get_attribute("#error", "role") == "alert"
    # Keyboard: Tab reaches the first control, and focus is visible there.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "api-key"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none")
    # The page is no API route: /docs lists the API and leaves the page out.
    paths = httpx.get(f"{server.base_url}/openapi.json", timeout=30).json()["paths"]
    assert {"/v1/audio/transcriptions", "/v1/audio/translations", "/v1/models", "/health"} <= set(paths)
    assert "/" not in paths and not any(p.startswith("/static") for p in paths)
    assert not [m for m in page.console_messages_seen if m.startswith(("error", "pageerror"))]


def test_upload_streams_the_transcript_then_shows_segments_and_an_srt(
    server: Server, page: Any, tmp_path: Path
) -> None:
    _open(page, server.base_url)
    _wait_models(page)
    page.fill("#language", "en")
    page.set_input_files("#file", str(write_wav(tmp_path / "sentences.wav", compose(UPLOAD_SENTENCES, pause_s=0.8))))

    # text: a streamed request; the transcript arrives as deltas, then the done event.
    page.select_option("#response-format", "text")
    page.click("#send-file")
    _wait_done(page)
    streamed = page.text_content("#transcript") or ""
    assert wer(UPLOAD_TEXT, streamed) <= MAX_WER, streamed
    assert page.is_disabled("#download-srt")  # a stream carries no segments
    assert page.is_enabled("#download-txt")

    # verbose_json with word timestamps: one non-streamed request, segments and words in tables.
    page.select_option("#response-format", "verbose_json")
    page.check("#word-timestamps")
    page.click("#send-file")
    _wait_done(page)
    text = page.text_content("#transcript") or ""
    assert wer(UPLOAD_TEXT, text) <= MAX_WER, text
    rows = page.eval_on_selector_all(
        "#segments tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )
    assert rows, "no segment rows"
    for _, start, end, _text in rows:
        assert TIME_CELL.match(start) and TIME_CELL.match(end), (start, end)
    assert wer(UPLOAD_TEXT, " ".join(r[3] for r in rows)) <= MAX_WER
    words = page.eval_on_selector_all("#words tbody tr", "rows => rows.map(r => r.cells[0].textContent)")
    assert wer(UPLOAD_TEXT, " ".join(words)) <= MAX_WER, words

    with page.expect_download() as info:
        page.click("#download-srt")
    download = info.value
    assert download.suggested_filename == "transcript.srt"
    srt = Path(download.path()).read_text(encoding="utf-8")
    blocks = SRT_BLOCK.findall(srt)
    assert blocks, srt
    last_end = 0.0
    for i, block in enumerate(blocks, start=1):
        assert int(block[0]) == i
        h1, m1, s1, ms1, h2, m2, s2, ms2 = (int(x) for x in block[1:9])
        start, end = h1 * 3600 + m1 * 60 + s1 + ms1 / 1000, h2 * 3600 + m2 * 60 + s2 + ms2 / 1000
        assert last_end <= start < end, srt
        last_end = end
    assert wer(UPLOAD_TEXT, " ".join(b[9] for b in blocks)) <= MAX_WER, srt

    # The screenshot, kept as an artifact, and what it showed.
    ARTIFACTS.mkdir(exist_ok=True)
    png = page.screenshot(path=str(SCREENSHOT), full_page=True)
    shown = page.text_content("#transcript") or ""
    assert shown == text and wer(UPLOAD_TEXT, shown) <= MAX_WER
    (width, height), spread, colours = _png_size_and_spread(png)
    assert width >= 800 and height >= 600, (width, height)
    assert spread > 10 and colours > 16, "the screenshot looks blank"
    print(f"\nscreenshot: {SCREENSHOT}")


def _realtime_route_exists() -> bool:
    from app.main import create_app
    from config import load_settings

    async def never(*_: Any) -> Any:
        raise AssertionError("not started")

    app = create_app(load_settings({}), never)
    return any(getattr(route, "path", "") == "/v1/realtime" for route in app.routes)


def test_microphone_transcribes_live_through_the_realtime_socket(server: Server, page: Any) -> None:
    if not _realtime_route_exists():
        pytest.skip("the Realtime WebSocket route /v1/realtime does not exist yet")
    _open(page, server.base_url)
    _wait_models(page)
    page.fill("#language", "en")
    page.click("#mic-start")
    page.wait_for_function(
        "() => ['speech', 'on'].includes(document.getElementById('listening').dataset.state)"
        " || !document.getElementById('error').hidden",
        timeout=60_000,
    )
    assert page.is_hidden("#error"), page.text_content("#error")
    # Chromium plays the file in a loop: the first completed turn is the whole sentence.
    first = page.wait_for_selector("#transcript p[data-final='true']", timeout=180_000)
    heard = first.text_content() or ""
    page.click("#mic-stop")
    page.wait_for_function("() => document.getElementById('listening').dataset.state === 'off'", timeout=60_000)
    assert wer(MIC_SENTENCE, heard) <= MAX_WER, heard
    assert page.is_hidden("#error"), page.text_content("#error")
    # The recording plays in the page's player: a WAV of what was sent, at least the sentence long.
    page.wait_for_function("() => document.getElementById('player').readyState >= 1", timeout=10_000)
    assert page.evaluate("document.getElementById('player').src").startswith("blob:")
    assert page.evaluate("document.getElementById('player').duration") >= len(speak(MIC_SENTENCE)) / SAMPLE_RATE
    assert page.is_enabled("#mic-start") and page.is_enabled("#copy")


# ---------- errors, against a small server with the scripted engine and an API key ----------

KEY = "page-test-key"


@pytest.fixture(scope="module")
def keyed_server(whisper_base: Any) -> Iterator[str]:
    """create_app with a key and the scripted engine of the API tier, under uvicorn in a thread."""
    import uvicorn

    from app.audio.vad import LoudnessVad
    from app.main import create_app
    from app.ops.metrics import Metrics
    from app.scheduling.pipeline import Transcriber
    from app.state import Runtime
    from config import Settings, load_settings
    from tests.api.conftest import ScriptedEngine

    engine = ScriptedEngine(whisper_base)

    async def runtime(s: Settings, metrics: Metrics) -> Runtime:
        return Runtime(s, whisper_base, engine, Transcriber(whisper_base, engine, vad=LoudnessVad()), "scripted")

    app = create_app(load_settings({}, api_key=[KEY]), runtime)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the scripted server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def _tone(tmp_path: Path, seconds: float) -> Path:
    from tests.api.conftest import wav_bytes

    path = tmp_path / "tone.wav"
    path.write_bytes(wav_bytes(seconds))
    return path


def _error_text(page: Any, says: str) -> str:
    """The alert's text, once it shows and contains `says`."""
    page.wait_for_function(
        "says => { const e = document.getElementById('error'); return !e.hidden && e.textContent.includes(says); }",
        arg=says,
        timeout=30_000,
    )
    return page.text_content("#error") or ""


def test_a_wrong_api_key_is_told_and_the_right_one_works(keyed_server: str, page: Any, tmp_path: Path) -> None:
    _open(page, keyed_server)
    assert "Authorization: Bearer" in _error_text(page, "refused the API key (401)")  # no key yet
    page.fill("#api-key", "wrong-key")
    page.press("#api-key", "Tab")  # leaving the field saves the key and reloads the models
    assert "Enter a valid key" in _error_text(page, "Incorrect API key provided")

    page.fill("#api-key", KEY)
    page.press("#api-key", "Tab")  # leaving the field saves the key and reloads the models
    assert _wait_models(page)[0] == "scripted"
    assert page.is_hidden("#error")
    assert page.evaluate("localStorage.getItem('speech-gateway.api-key')") == KEY

    # The Realtime socket with a wrong key: the server's error event is told, the button comes back.
    page.evaluate("document.getElementById('api-key').value = 'wrong-key'")  # no change event: models stay
    page.click("#mic-start")
    assert "Enter a valid key" in _error_text(page, "The server refused the API key: Incorrect API key provided.")
    page.wait_for_function("() => !document.getElementById('mic-start').disabled")
    assert page.get_attribute("#listening", "data-state") == "off"
    page.fill("#api-key", KEY)

    # A file the server cannot read: its 400 message is shown.
    junk = tmp_path / "notes.wav"
    junk.write_text("this is not audio\n" * 20)
    page.set_input_files("#file", str(junk))
    page.click("#send-file")
    assert _error_text(page, "The request was refused (400): ")

    # The scripted engine answers a real WAV (with the key from localStorage after a reload).
    page.reload()
    page.wait_for_selector("body[data-ready='true']")
    assert page.input_value("#api-key") == KEY
    _wait_models(page)
    page.set_input_files("#file", str(_tone(tmp_path, 2.0)))
    page.select_option("#response-format", "srt")
    page.click("#send-file")
    _wait_done(page, 60)
    assert page.is_enabled("#download-srt") and page.is_enabled("#download-vtt")
    assert page.text_content("#formatted").startswith("1\n00:00:00,000 --> ")


def test_busy_and_network_failures_are_told(keyed_server: str, page: Any, tmp_path: Path) -> None:
    _open(page, keyed_server)
    page.fill("#api-key", KEY)
    page.press("#api-key", "Tab")  # leaving the field saves the key and reloads the models
    _wait_models(page)
    page.set_input_files("#file", str(_tone(tmp_path, 1.0)))
    busy = {"error": {"message": "too many requests waiting", "type": "rate_limit_error", "param": None, "code": None}}
    page.route(
        "**/v1/audio/transcriptions",
        lambda route: route.fulfill(status=429, headers={"Retry-After": "7"}, json=busy),
    )
    page.click("#send-file")
    assert "Try again in 7 s" in _error_text(page, "The server is busy (429)")

    page.unroute("**/v1/audio/transcriptions")
    page.route("**/v1/audio/transcriptions", lambda route: route.abort("connectionrefused"))
    page.click("#send-file")
    assert _error_text(page, "Could not reach the server")
