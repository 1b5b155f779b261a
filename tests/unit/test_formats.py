from app.output.formats import render, timestamp, to_srt, to_verbose_json, to_vtt, usage
from app.output.transcript import Transcript
from models.interface import Segment


def transcript() -> Transcript:
    return Transcript(
        task="transcribe",
        language="en",
        language_name="english",
        duration=3661.5,
        segments=[Segment(0.0, 2.5, " Hello there.", [1, 2]), Segment(3661.0, 3661.5, " Bye.", [3], seek=3660.0)],
    )


def test_timestamps() -> None:
    assert timestamp(3661.5, ",") == "01:01:01,500"
    assert timestamp(0.0004, ".") == "00:00:00.000"


def test_srt_and_vtt() -> None:
    srt = to_srt(transcript())
    assert srt == "1\n00:00:00,000 --> 00:00:02,500\nHello there.\n\n2\n01:01:01,000 --> 01:01:01,500\nBye.\n"
    vtt = to_vtt(transcript())
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:02.500\nHello there.\n")


def test_json_text_and_usage_round_up() -> None:
    body, media = render(transcript(), "json")
    assert media == "application/json" and body == {
        "text": "Hello there. Bye.",
        "usage": {"type": "duration", "seconds": 3662},
    }
    text, media = render(transcript(), "text")
    assert (text, media) == ("Hello there. Bye.\n", "text/plain")
    assert usage(Transcript(task="transcribe", language="en", duration=0.2)).model_dump() == {
        "type": "duration",
        "seconds": 1,
    }


def test_token_usage_as_openai_bills_token_models() -> None:
    billed = Transcript(
        task="transcribe",
        language=None,
        duration=3.0,
        usage_kind="tokens",
        input_tokens=120,
        audio_tokens=75,
        output_tokens=9,
    )
    assert usage(billed).model_dump() == {
        "type": "tokens",
        "input_tokens": 120,
        "output_tokens": 9,
        "total_tokens": 129,
        "input_token_details": {"audio_tokens": 75, "text_tokens": 45},
    }


def test_verbose_json_fields() -> None:
    body = to_verbose_json(transcript())
    assert body["task"] == "transcribe" and body["language"] == "english" and body["duration"] == 3661.5
    fields = "id seek start end text tokens temperature avg_logprob compression_ratio no_speech_prob"
    assert set(body["segments"][0]) == set(fields.split())
    assert body["segments"][1]["id"] == 1 and body["segments"][1]["seek"] == 366000
