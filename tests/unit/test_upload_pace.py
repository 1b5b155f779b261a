"""A body that stalls or drags is cut off (408) and leaves no spool file behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.http.errors import APIError
from app.http.upload import parse_form


async def stalling(first: bytes) -> AsyncIterator[bytes]:
    yield first
    await asyncio.sleep(3600)
    yield b""


async def test_a_stalled_upload_is_cut_off_and_its_spool_file_removed(tmp_path: Path) -> None:
    head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\nRIFF....'
    with pytest.raises(APIError) as caught:
        await parse_form(
            "multipart/form-data; boundary=b",
            stalling(head),
            limit_bytes=1 << 20,
            spool_dir=str(tmp_path),
            idle_timeout_s=0.2,
        )
    assert caught.value.status == 408 and caught.value.code == "upload_timeout"
    assert list(tmp_path.iterdir()) == []
