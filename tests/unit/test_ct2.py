import io
import struct

import numpy as np
import pytest

from models.whisper.ct2 import CT2FormatError, read_ct2


def _string(text: str) -> bytes:
    raw = text.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def ct2_bytes(variables: dict[str, np.ndarray], aliases: dict[str, str], version: int = 6) -> bytes:
    codes = {np.dtype("<f4"): 0, np.dtype("int8"): 1, np.dtype("<i2"): 2, np.dtype("<i4"): 3, np.dtype("<f2"): 4}
    out = struct.pack("<I", version) + _string("WhisperSpec") + struct.pack("<I", 3)
    out += struct.pack("<I", len(variables))
    for name, array in variables.items():
        out += _string(name) + struct.pack("<B", array.ndim) + b"".join(struct.pack("<I", d) for d in array.shape)
        data = array.tobytes()
        out += struct.pack("<B", codes[array.dtype]) + struct.pack("<I", len(data)) + data
    out += struct.pack("<I", len(aliases))
    for alias, target in aliases.items():
        out += _string(alias) + _string(target)
    return out


def test_reads_variables_scalars_and_aliases() -> None:
    weight = np.arange(6, dtype=np.float16).reshape(2, 3)
    heads = np.array(8, dtype=np.int16)
    blob = ct2_bytes(
        {"decoder/embeddings/weight": weight, "encoder/num_heads": heads}, {"proj": "decoder/embeddings/weight"}
    )
    model = read_ct2(io.BytesIO(blob))
    assert model.spec == "WhisperSpec" and model.revision == 3
    np.testing.assert_array_equal(model["proj"], weight)
    assert model.scalar("encoder/num_heads") == 8
    assert "proj" in model and "missing" not in model


def test_rejects_other_versions_and_truncation() -> None:
    blob = ct2_bytes({"a": np.zeros(4, dtype=np.float32)}, {})
    with pytest.raises(CT2FormatError, match="version"):
        read_ct2(io.BytesIO(ct2_bytes({}, {}, version=5)))
    with pytest.raises(CT2FormatError, match="ends early"):
        read_ct2(io.BytesIO(blob[:-10]))
    with pytest.raises(CT2FormatError, match="trailing"):
        read_ct2(io.BytesIO(blob + b"x"))
