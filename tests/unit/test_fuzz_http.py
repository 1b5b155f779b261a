"""Property-based tests of what an HTTP request is parsed by: the multipart form, every field, chunking_strategy.

The only outcomes allowed are a parsed value or our own APIError: a 4xx whose envelope can be
written as UTF-8 JSON, names a field we know, and quotes no more than a short piece of the input.
Examples per property (fixed, deterministic): see each `@fuzz(...)`; findings are in the
docstrings of the properties that found them.
"""

from __future__ import annotations

import asyncio
import json
import math
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from app.audio.vad import VadParams
from app.http.chunking import parse_chunking
from app.http.errors import APIError
from app.http.protocol import GRANULARITIES, RESPONSE_FORMATS, TranscriptionParams, parse_params
from app.http.upload import ParsedForm, parse_form
from config import bounded_json
from tests.unit.fuzz import deep_json, dumps, field_text, fuzz, hostile_text, json_values, nested, utf8_json

FIELDS = (
    "model",
    "language",
    "prompt",
    "response_format",
    "temperature",
    "timestamp_granularities[]",
    "timestamp_granularities",
    "stream",
    "include[]",
    "include",
    "languages[]",
    "keywords[]",
    "chunking_strategy",
    "chunking_strategy[type]",
    "chunking_strategy[threshold]",
    "chunking_strategy[prefix_padding_ms]",
    "chunking_strategy[silence_duration_ms]",
    "chunking_strategy[bogus]",
)
PARAMS = {None, "model", "file", *(name.split("[")[0] for name in FIELDS)}
MAX_MESSAGE = 600  # the e2e corpus counts a longer message as echoing the input back


def check_error(error: APIError) -> None:
    assert 400 <= error.status < 500, error.status
    assert error.param in PARAMS, error.param
    assert len(error.message) <= MAX_MESSAGE, error.message[:100]
    utf8_json(error.body())  # what the JSON response does with it


# -- parse_params ---------------------------------------------------------------------------------
field_value = st.one_of(
    field_text,
    st.sampled_from(["whisper-1", "json", "verbose_json", "srt", "segment", "word", "logprobs", "true", "auto"]),
    json_values.map(dumps),
    deep_json,
)
forms = st.dictionaries(st.sampled_from(FIELDS), st.lists(field_value, min_size=1, max_size=3), max_size=8)


def check_params(params: TranscriptionParams) -> None:
    assert params.model and params.response_format in RESPONSE_FORMATS
    assert math.isfinite(params.temperature) and 0 <= params.temperature <= 1
    assert set(params.timestamp_granularities) <= set(GRANULARITIES)
    utf8_json([params.model, params.language, params.prompt, *params.languages, *params.keywords])


@fuzz(400)
@given(forms, st.sampled_from(["transcribe", "translate"]))
def test_every_field_is_a_value_or_a_400(fields: dict[str, list[str]], task: str) -> None:
    """Found (against the code before the fix): a 5,000-character temperature, response_format,
    granularity or stream value quoted whole in the error message. Read in the code and pinned
    below: a deep JSON list field (RecursionError: 500), `"\\ud800"` in one (not writable as UTF-8)."""
    try:
        params = parse_params(ParsedForm(fields=fields), task)  # type: ignore[arg-type]
    except APIError as error:
        check_error(error)
        return
    check_params(params)


# -- chunking_strategy ----------------------------------------------------------------------------
strategy_objects = st.fixed_dictionaries(
    {},
    optional={
        "type": st.one_of(st.sampled_from(["server_vad", "auto", "semantic_vad"]), json_values),
        "threshold": st.one_of(st.floats(allow_nan=True, allow_infinity=True), json_values),
        "prefix_padding_ms": st.one_of(st.integers(-(10**400), 10**400), json_values),
        "silence_duration_ms": st.one_of(st.integers(-(10**20), 10**20), json_values),
        "extra": json_values,
    },
)
strategy_texts = st.one_of(
    strategy_objects.map(dumps),
    json_values.map(dumps),
    deep_json,
    st.builds(lambda n: '{"type": "server_vad", "threshold": ' + nested(n) + "}", st.integers(1, 6000)),
    st.builds(lambda n: '{"type": "server_vad", "threshold": ' + "1" * n + "}", st.integers(1, 6000)),
    hostile_text.filter(lambda t: t.isprintable() or t == ""),
)


def check_vad(vad: VadParams | None) -> None:
    if vad is not None:
        assert 0 <= vad.threshold <= 1 and 0 <= vad.prefix_padding_s <= 10 and 0 <= vad.silence_duration_s <= 10


@fuzz(500)
@given(strategy_texts)
def test_chunking_strategy_as_one_field(text: str) -> None:
    """Found (against the code before the fix): 1,989 nested brackets as `threshold` (RecursionError:
    500). Read in the code and pinned below: a 5,000-digit number (the digit limit's ValueError,
    uncaught: 500), a key `"\\ud800"` quoted in the message (the envelope cannot be encoded: 500)."""
    try:
        vad = parse_chunking(ParsedForm(fields={"chunking_strategy": [text]}))
    except APIError as error:
        check_error(error)
        assert error.param == "chunking_strategy"
        return
    check_vad(vad)


@fuzz(200)
@given(st.dictionaries(st.sampled_from(FIELDS[-5:]), st.lists(field_value, min_size=1, max_size=2), min_size=1))
def test_chunking_strategy_as_keyed_fields(fields: dict[str, list[str]]) -> None:
    try:
        vad = parse_chunking(ParsedForm(fields=fields))
    except APIError as error:
        check_error(error)
        return
    check_vad(vad)


# -- the bounded JSON reader itself ---------------------------------------------------------------
@fuzz(300)
@given(json_values)
def test_bounded_json_reads_what_json_reads(value: object) -> None:
    text = dumps(value)
    try:
        read = bounded_json.loads(text)
    except bounded_json.JSONError as error:
        assert "surrogate" in error.message  # the one refusal of a shallow, valid document
        return
    assert dumps(read) == text


@fuzz(300)
@given(st.one_of(deep_json, hostile_text, st.binary(max_size=200)))
def test_bounded_json_fails_only_with_its_error(text: str | bytes) -> None:
    try:
        bounded_json.loads(text)
    except bounded_json.JSONError as error:
        utf8_json([error.message, error.field])


# -- the multipart parser -------------------------------------------------------------------------
part_names = st.one_of(st.sampled_from(["file", "model", "language", "prompt", ""]), st.text(max_size=20))
part = st.tuples(
    part_names,
    st.one_of(st.none(), st.text(max_size=20)),  # a filename: a file part
    st.binary(max_size=300),
    st.lists(st.tuples(st.sampled_from(["Content-Type", "X-Other", "Content-Disposition"]), st.text(max_size=30))),
)
boundaries = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=70)


def multipart(boundary: str, parts: list[tuple[str, str | None, bytes, list[tuple[str, str]]]]) -> bytes:
    out = b""
    for name, filename, value, headers in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        lines = [f"Content-Disposition: {disposition}", *(f"{k}: {v}" for k, v in headers)]
        head = "\r\n".join(lines).encode("utf-8", "surrogatepass")
        out += f"--{boundary}\r\n".encode() + head + b"\r\n\r\n" + value + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


async def chunked(body: bytes, cuts: list[int]) -> AsyncIterator[bytes]:
    start = 0
    for cut in sorted(c % (len(body) + 1) for c in cuts):
        yield body[start:cut]
        start = cut
    yield body[start:]


def parse(content_type: str, body: bytes, cuts: list[int], spool: str) -> None:
    try:
        form = asyncio.run(parse_form(content_type, chunked(body, cuts), limit_bytes=2000, spool_dir=spool))
    except APIError as error:
        check_error(error)
        assert not list(Path(spool).iterdir()), "a refused upload left a file behind"
        return
    utf8_json({name: values for name, values in form.fields.items()})
    form.close()
    assert not list(Path(spool).iterdir())


@fuzz(300)
@given(
    boundaries,
    st.lists(part, max_size=4),
    st.one_of(st.none(), st.integers(0, 10_000)),  # truncate the body here
    st.lists(st.integers(0, 10_000), max_size=4),  # where the body's chunks are cut
    st.sampled_from(["multipart/form-data; boundary={b}", 'multipart/form-data; boundary="{b}"', "{b}"]),
)
def test_multipart_bodies_parse_or_are_refused(
    boundary: str, parts: list, truncate: int | None, cuts: list[int], content_type: str
) -> None:
    body = multipart(boundary, parts)
    if truncate is not None:
        body = body[:truncate]
    with tempfile.TemporaryDirectory() as spool:
        parse(content_type.format(b=boundary), body, cuts, spool)


@fuzz(300)
@given(
    st.one_of(
        st.text(max_size=80), st.sampled_from(["multipart/form-data; boundary=x", "application/x-www-form-urlencoded"])
    ),
    st.binary(max_size=600),
    st.lists(st.integers(0, 600), max_size=3),
)
def test_arbitrary_bodies_and_content_types(content_type: str, body: bytes, cuts: list[int]) -> None:
    with tempfile.TemporaryDirectory() as spool:
        parse(content_type, b"--x\r\n" + body, cuts, spool)


def test_deep_nesting_in_a_list_field_is_a_400() -> None:
    form = ParsedForm(fields={"model": ["whisper-1"], "keywords[]": [nested(5000)]})
    try:
        parse_params(form, "transcribe")
    except APIError as error:
        assert error.param == "keywords" and "deeper" in error.message
    else:
        raise AssertionError("5,000 nested brackets were accepted")
    assert json.loads(nested(10)) == [[[[[[[[[[1]]]]]]]]]]


def refusal(fields: dict[str, list[str]]) -> APIError:
    try:
        parse_params(ParsedForm(fields={"model": ["whisper-1"], **fields}), "transcribe")
    except APIError as error:
        check_error(error)
        return error
    raise AssertionError(f"{str(fields)[:80]} was accepted")


def test_findings_stay_fixed() -> None:
    digits = '{"type": "server_vad", "threshold": ' + "1" * 5000 + "}"
    assert refusal({"chunking_strategy": [digits]}).param == "chunking_strategy"
    assert refusal({"chunking_strategy": ['{"type": "server_vad", "\\ud800": 1}']}).param == "chunking_strategy"
    deep = refusal({"chunking_strategy": ['{"type": "server_vad", "threshold": ' + nested(100) + "}"]})
    assert "threshold" in deep.message and "deeper" in deep.message
    assert refusal({"keywords[]": ['["\\ud800"]']}).param == "keywords"
    assert refusal({"temperature": ["x" * 5000]}).param == "temperature"
