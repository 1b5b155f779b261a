"""Streaming multipart parsing: the file part spooled to a temporary file under a size cap."""

from __future__ import annotations

import asyncio
import math
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import parse_qsl

from python_multipart.multipart import MultipartParser, parse_options_header

from app.http.errors import APIError, bad_request, shown, too_large

MAX_FIELD_BYTES = 256 * 1024
# Text fields that carry audio (a known speaker's 2-10 s clip as a base64 data URL: 10 s of 48 kHz
# stereo WAV is 2.6 MB so); they count towards the upload's size cap like the file does.
AUDIO_FIELDS = ("known_speaker_references[]", "known_speaker_references")
MAX_AUDIO_FIELD_BYTES = 4 * 1024 * 1024
MAX_FIELDS = 200
MAX_PART_HEADER_BYTES = 16 * 1024  # one part's headers in all; real ones are under 300 bytes


@dataclass
class UploadedFile:
    path: Path
    filename: str
    content_type: str
    size: int


@dataclass
class ParsedForm:
    """Text fields (each name may repeat) and uploaded files; `close()` removes the files."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, list[UploadedFile]] = field(default_factory=dict)

    def close(self) -> None:
        for uploads in self.files.values():
            for upload in uploads:
                upload.path.unlink(missing_ok=True)


class _Collector:
    """Callbacks for python-multipart that build a ParsedForm as bytes arrive."""

    def __init__(self, form: ParsedForm, spool_dir: str | None, limit: int) -> None:
        self.form = form
        self.spool_dir = spool_dir
        self.limit = limit
        self.total = 0
        self.header_field = b""
        self.header_value = b""
        self.headers: dict[bytes, bytes] = {}
        self.name = ""
        self.filename: str | None = None
        self.content_type = ""
        self.data = bytearray()
        self.sink: IO[bytes] | None = None
        self.sink_path: Path | None = None
        self.size = 0
        self.count = 0
        self.header_bytes = 0

    def on_part_begin(self) -> None:
        self.headers = {}
        self.data = bytearray()
        self.size = 0
        self.header_bytes = 0
        self.count += 1
        if self.count > MAX_FIELDS:
            raise bad_request(f"too many form fields (more than {MAX_FIELDS})")

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self.header_value += data[start:end]

    def _count_header(self, n: int) -> None:
        # The part's headers are held in memory: bounded like a field, before they grow.
        self.header_bytes += n
        if self.header_bytes > MAX_PART_HEADER_BYTES:
            raise bad_request(f"a form part's headers are longer than {MAX_PART_HEADER_BYTES // 1024} KB")

    def on_header_end(self) -> None:
        self.headers[self.header_field.lower()] = self.header_value
        self.header_field = b""
        self.header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        self.name = _text(options.get(b"name", b""), "a field name")
        raw_filename = options.get(b"filename")
        self.filename = None if raw_filename is None else raw_filename.decode("utf-8", "replace")
        self.content_type = self.headers.get(b"content-type", b"").decode("latin-1")
        if self.filename is not None:
            fd, name = tempfile.mkstemp(prefix="upload-", dir=self.spool_dir)
            self.sink = os.fdopen(fd, "wb")
            self.sink_path = Path(name)
            # Register at once so close() removes it whatever happens next.
            self.form.files.setdefault(self.name, []).append(
                UploadedFile(self.sink_path, self.filename, self.content_type, 0)
            )

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        n = end - start
        self.total += n
        self.size += n
        if self.sink is not None:
            if self.total > self.limit:
                raise too_large(self.limit)
            self.sink.write(data[start:end])
        else:
            audio_field = self.name in AUDIO_FIELDS
            if audio_field and self.total > self.limit:
                raise too_large(self.limit)
            limit = MAX_AUDIO_FIELD_BYTES if audio_field else MAX_FIELD_BYTES
            if self.size > limit:
                raise bad_request(f"form field {shown(self.name)} is longer than {limit // 1024} KB")
            self.data += data[start:end]

    def on_part_end(self) -> None:
        if self.sink is not None:
            self.sink.close()
            self.sink = None
            self.form.files[self.name][-1].size = self.size
        else:
            self.form.fields.setdefault(self.name, []).append(_text(bytes(self.data), f"field {shown(self.name)}"))

    def abort(self) -> None:
        if self.sink is not None:
            self.sink.close()
            self.sink = None


def upload_timed_out(why: str) -> APIError:
    return APIError(408, f"the upload was cut off: {why}; send the file at a steady pace", code="upload_timeout")


async def paced(body: AsyncIterator[bytes], idle_s: float, total_s: float) -> AsyncIterator[bytes]:
    """`body`, cut off (408) when a chunk is `idle_s` in coming or the whole takes over `total_s`:
    a client that trickles must not hold an admission slot and a spool file for ever."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + total_s
    chunks = aiter(body)
    while True:
        idle = loop.time() + idle_s < deadline
        try:
            async with asyncio.timeout_at(min(loop.time() + idle_s, deadline)):
                chunk = await anext(chunks)
        except StopAsyncIteration:
            return
        except TimeoutError:
            if idle:
                raise upload_timed_out(f"nothing arrived for {idle_s:g} s") from None
            raise upload_timed_out(f"the body took longer than {total_s:g} s") from None
        yield chunk


def _text(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request(f"{what} is not valid UTF-8 text") from None


async def parse_form(
    content_type: str | None,
    body: AsyncIterator[bytes],
    *,
    limit_bytes: int,
    spool_dir: str | None = None,
    idle_timeout_s: float = math.inf,
    total_timeout_s: float = math.inf,
) -> ParsedForm:
    """Parse a request body into a ParsedForm, refusing it as soon as it passes `limit_bytes`,
    or once it stalls for `idle_timeout_s` or takes over `total_timeout_s` (408)."""
    # Headers arrive as latin-1; anything else (a direct caller) is replaced, not an exception.
    mime, options = parse_options_header((content_type or "").encode("latin-1", "replace"))
    if math.isfinite(idle_timeout_s) or math.isfinite(total_timeout_s):
        body = paced(body, idle_timeout_s, total_timeout_s)
    form = ParsedForm()
    if mime == b"application/x-www-form-urlencoded":
        # No file can come this way; read the (small) fields so the error can name what is missing.
        buffer = bytearray()
        async for chunk in body:
            buffer += chunk
            if len(buffer) > MAX_FIELD_BYTES:
                raise too_large(limit_bytes)
        try:
            pairs = parse_qsl(buffer.decode("ascii"), keep_blank_values=True, errors="strict")
        except (UnicodeDecodeError, ValueError):
            raise bad_request("the form body is not valid UTF-8 text") from None
        for key, value in pairs:
            form.fields.setdefault(key, []).append(value)
        return form
    if mime != b"multipart/form-data":
        raise bad_request(
            "the request must be multipart/form-data with the audio in a `file` field",
            code="invalid_content_type",
        )
    boundary = options.get(b"boundary")
    if not boundary:
        raise bad_request("multipart/form-data request without a boundary", code="invalid_content_type")

    collector = _Collector(form, spool_dir, limit_bytes)
    callbacks = {
        name: getattr(collector, name)
        for name in (
            "on_part_begin",
            "on_part_data",
            "on_part_end",
            "on_header_field",
            "on_header_value",
            "on_header_end",
            "on_headers_finished",
        )
    }
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    try:
        async for chunk in body:
            parser.write(chunk)
        parser.finalize()
    except BaseException as exc:
        # Whatever went wrong, cancellation (timeout, shutdown) included, nothing stays on disk.
        collector.abort()
        form.close()
        if isinstance(exc, Exception) and not isinstance(exc, APIError):
            # python-multipart's own errors on malformed bodies, or the client leaving mid-upload.
            raise bad_request(f"malformed multipart body: {str(exc)[:200]}", code="invalid_multipart") from None
        raise
    return form
