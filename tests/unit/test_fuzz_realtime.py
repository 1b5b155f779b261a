"""Property-based tests of the Realtime event parser and the session state machine.

Any client message, and any sequence of them, valid or not, leads to server events the socket can
send (UTF-8 JSON) and never to an exception other than EventError; the session's buffer stays
within its bound. Examples per property: see each `@fuzz(...)`.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from app.realtime.events import CLIENT_TYPES, EventError, SessionConfig, TurnDetection, error_event, parse_event
from app.realtime.session import MIN_COMMIT_SAMPLES, Session
from tests.unit.fuzz import deep_json, dumps, fuzz, hostile_text, json_values, nested, utf8_json
from tests.unit.test_realtime_session import LoudFrames, accept_all

RATE = 24_000
MAX_BUFFER_S = 1.0
MAX_EVENT_CHARS = 600  # an error's message: short, never the client's whole input


def pcm(samples: int, loud: bool, odd: bool) -> str:
    t = np.arange(samples) / RATE
    wave = (0.3 * np.sin(2 * np.pi * 220 * t)) if loud else np.zeros(samples)
    raw = (wave * 32767).astype("<i2").tobytes() + (b"\x01" if odd else b"")
    return base64.b64encode(raw).decode()


audio = st.one_of(
    st.builds(pcm, st.integers(0, 12_000), st.booleans(), st.just(False)),
    st.builds(pcm, st.integers(0, 100), st.booleans(), st.just(True)),
    st.sampled_from(["***", "AAA", "", "=", "QQ==\n"]),
    json_values,
)
knob = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**30), 10**30), json_values)
turns = st.one_of(
    st.none(),
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["server_vad", "semantic_vad", "none"]),
            "threshold": knob,
            "prefix_padding_ms": knob,
            "silence_duration_ms": knob,
        },
    ),
)
transcription = st.one_of(
    st.none(),
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "model": st.one_of(st.sampled_from(["m", "other"]), json_values),
            "language": st.one_of(st.sampled_from(["en", None]), hostile_text, json_values),
            "prompt": st.one_of(hostile_text, json_values),
        },
    ),
)
ga_session = st.fixed_dictionaries(
    {},
    optional={
        "type": st.one_of(st.just("transcription"), json_values),
        "audio": st.one_of(
            json_values,
            st.fixed_dictionaries(
                {},
                optional={
                    "input": st.fixed_dictionaries(
                        {},
                        optional={
                            "format": st.one_of(st.just({"type": "audio/pcm", "rate": RATE}), json_values),
                            "transcription": transcription,
                            "turn_detection": turns,
                        },
                    )
                },
            ),
        ),
    },
)
beta_session = st.fixed_dictionaries(
    {},
    optional={
        "input_audio_format": st.one_of(st.just("pcm16"), json_values),
        "input_audio_transcription": transcription,
        "turn_detection": turns,
    },
)


def event(kind: object, **fields: object) -> str:
    return dumps({"type": kind, **fields})


messages = st.one_of(
    st.builds(
        lambda a, i: event("input_audio_buffer.append", audio=a, event_id=i), audio, st.one_of(st.none(), hostile_text)
    ),
    st.builds(lambda s: event("session.update", session=s), st.one_of(ga_session, json_values)),
    st.builds(lambda s: event("transcription_session.update", session=s), st.one_of(beta_session, json_values)),
    st.sampled_from([event("input_audio_buffer.commit"), event("input_audio_buffer.clear")]),
    st.builds(lambda k: event(k), st.one_of(st.sampled_from(CLIENT_TYPES), json_values)),
    st.builds(lambda n: '{"type": "session.update", "session": ' + nested(n, kind="{") + "}", st.integers(1, 6000)),
    deep_json,
    hostile_text,
    st.binary(max_size=64),
)


def check_events(events: list[dict[str, Any]]) -> None:
    for server_event in events:
        assert isinstance(server_event.get("type"), str)
        utf8_json(server_event)  # what the socket's send does: must not raise
        if server_event["type"] == "error":
            assert len(server_event["error"]["message"]) <= MAX_EVENT_CHARS


@fuzz(600)
@given(messages)
def test_any_message_is_an_event_or_an_event_error(message: str | bytes) -> None:
    """Found (against the code before the fix): `session.update` nested 1,989 deep (RecursionError:
    the socket died). Read in the code and pinned in test_findings_stay_fixed: `"\\ud800"` as a
    language or event type, echoed into an event the socket cannot encode."""
    try:
        parsed = parse_event(message)
    except EventError as error:
        check_events([error_event(error)])
        return
    assert parsed.type in CLIENT_TYPES


def fresh(turn_detection: bool) -> Session:
    turns = TurnDetection() if turn_detection else None
    return Session(SessionConfig("m", turn_detection=turns), LoudFrames(), accept_all, MAX_BUFFER_S)


@fuzz(250)
@given(st.booleans(), st.lists(messages, min_size=1, max_size=25))
def test_any_sequence_of_messages_keeps_the_session_sound(turn_detection: bool, sequence: list[str | bytes]) -> None:
    session = fresh(turn_detection)
    bound = int(MAX_BUFFER_S * RATE)
    for message in sequence:
        outcome = session.receive(message)  # never raises
        check_events(outcome.events)
        assert sum(len(chunk) for chunk in session._buffer) == session.buffered >= 0
        # One append may hold up to the message cap beyond the bound; these hold at most 12,000 samples.
        assert session.buffered <= bound + 12_000
        for commit in outcome.commits:
            assert len(commit.samples) >= MIN_COMMIT_SAMPLES and np.isfinite(commit.samples).all()
        utf8_json(session.created())


def test_findings_stay_fixed() -> None:
    session = fresh(False)
    for update in (
        {"type": "session.update", "session": {"audio": {"input": {"transcription": {"language": "\ud800"}}}}},
        {"type": "\ud800"},
        {"type": "input_audio_buffer.append", "audio": "AAAA", "event_id": "\udfff"},
    ):
        events = session.receive(json.dumps(update)).events
        check_events(events)
        assert [e["type"] for e in events] == ["error"]
    deep = session.receive('{"type": "session.update", "session": ' + nested(5000, kind="{") + "}").events
    assert deep[0]["type"] == "error" and deep[0]["error"]["param"] == "session"


def test_appending_faster_than_real_time_stays_bounded() -> None:
    """A client that sends minutes of audio at once: without turn detection every append past the
    bound is refused (`input_audio_buffer_full`); with it, speech this long is committed as it goes."""
    bound = int(MAX_BUFFER_S * RATE)
    chunk = event("input_audio_buffer.append", audio=pcm(RATE // 2, loud=True, odd=False))
    manual, vad = fresh(False), fresh(True)
    refused = committed = 0
    for _ in range(240):  # two minutes of audio, sent as fast as the session takes it
        events = manual.receive(chunk).events
        refused += sum(e["type"] == "error" and e["error"]["code"] == "input_audio_buffer_full" for e in events)
        assert manual.buffered <= bound
        committed += len(vad.receive(chunk).commits)
        assert vad.buffered <= bound
    assert refused == 240 - 2 and committed >= 100
