from collections.abc import AsyncIterator

import pytest

from app.http.errors import APIError
from app.http.upload import parse_form

BOUNDARY = "XyZ"


def multipart(parts: list[tuple[str, bytes, str | None]]) -> bytes:
    out = b""
    for name, data, filename in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


async def chunks(body: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i : i + size]


CT = f"multipart/form-data; boundary={BOUNDARY}"


async def test_fields_and_file_are_parsed_and_the_file_removed() -> None:
    body = multipart(
        [("model", b"whisper-1", None), ("file", b"RIFF" + b"\0" * 5000, "a.wav"), ("include[]", b"logprobs", None)]
    )
    form = await parse_form(CT, chunks(body), limit_bytes=10_000)
    upload = form.files["file"][0]
    assert form.fields == {"model": ["whisper-1"], "include[]": ["logprobs"]}
    assert upload.size == 5004 and upload.path.read_bytes().startswith(b"RIFF") and upload.filename == "a.wav"
    form.close()
    assert not upload.path.exists()


async def test_oversize_upload_is_a_413_and_leaves_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    body = multipart([("file", b"\0" * 50_000, "big.wav")])
    with pytest.raises(APIError) as error:
        await parse_form(CT, chunks(body), limit_bytes=10_000, spool_dir=str(tmp_path))
    assert error.value.status == 413
    assert list(tmp_path.iterdir()) == []


async def test_non_utf8_text_is_a_400() -> None:
    body = multipart([("prompt", b"caf\xe9", None)])
    with pytest.raises(APIError, match="UTF-8"):
        await parse_form(CT, chunks(body), limit_bytes=10_000)


@pytest.mark.parametrize("content_type", [None, "application/json", "multipart/form-data"])
async def test_wrong_content_types_are_a_400(content_type: str | None) -> None:
    with pytest.raises(APIError) as error:
        await parse_form(content_type, chunks(b"{}"), limit_bytes=10_000)
    assert error.value.status == 400


async def test_garbled_multipart_is_a_400() -> None:
    with pytest.raises(APIError):
        await parse_form(CT, chunks(b"--XyZ\r\nnonsense without headers end"), limit_bytes=10_000)


async def test_a_cancelled_upload_leaves_no_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    async def stalls() -> AsyncIterator[bytes]:
        yield multipart([("file", b"\0" * 5000, "a.wav")])[:3000]
        await asyncio.sleep(60)
        yield b""

    task = asyncio.ensure_future(parse_form(CT, stalls(), limit_bytes=100_000, spool_dir=str(tmp_path)))
    await asyncio.sleep(0.1)
    assert len(list(tmp_path.iterdir())) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert list(tmp_path.iterdir()) == []
