"""Reader for CTranslate2 `model.bin` files (binary version 6): named numpy arrays and aliases."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np

# CTranslate2's dtype codes, in the order its `DataType` enum declares them.
_DTYPES: dict[int, np.dtype] = {
    0: np.dtype("<f4"),
    1: np.dtype("i1"),
    2: np.dtype("<i2"),
    3: np.dtype("<i4"),
    4: np.dtype("<f2"),
    # bfloat16 has no numpy dtype: keep the raw 16-bit words, callers widen them.
    5: np.dtype("<u2"),
}
SUPPORTED_VERSION = 6


class CT2FormatError(ValueError):
    """The file is not a CTranslate2 model this reader understands."""


@dataclass
class CT2Model:
    """Variables of a CTranslate2 model, with aliases resolved on lookup."""

    spec: str
    revision: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.variables[self.aliases.get(name, name)]

    def __contains__(self, name: str) -> bool:
        return self.aliases.get(name, name) in self.variables

    def scalar(self, name: str) -> int:
        return int(self[name].reshape(()))


def _read_exact(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise CT2FormatError(f"file ends early: wanted {n} bytes, got {len(data)}")
    return data


def _u8(f: BinaryIO) -> int:
    return int(_read_exact(f, 1)[0])


def _u16(f: BinaryIO) -> int:
    return int(struct.unpack("<H", _read_exact(f, 2))[0])


def _u32(f: BinaryIO) -> int:
    return int(struct.unpack("<I", _read_exact(f, 4))[0])


def _string(f: BinaryIO) -> str:
    # Length counts a trailing NUL that is not part of the string.
    raw = _read_exact(f, _u16(f))
    return raw.rstrip(b"\0").decode("utf-8")


def read_ct2(f: BinaryIO, on_variable: object = None) -> CT2Model:
    """Parse a CTranslate2 model from an open binary stream.

    `on_variable`, when callable, is called with each variable's byte count,
    so a caller can drive a progress bar.
    """
    version = _u32(f)
    if version != SUPPORTED_VERSION:
        raise CT2FormatError(f"unsupported CTranslate2 binary version {version}")
    spec = _string(f)
    revision = _u32(f)
    variables: dict[str, np.ndarray] = {}
    for _ in range(_u32(f)):
        name = _string(f)
        shape = tuple(_u32(f) for _ in range(_u8(f)))
        code = _u8(f)
        if code not in _DTYPES:
            raise CT2FormatError(f"variable {name!r} has unknown dtype code {code}")
        nbytes = _u32(f)
        dtype = _DTYPES[code]
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if nbytes != expected:
            raise CT2FormatError(f"variable {name!r}: {nbytes} bytes for shape {shape}")
        variables[name] = np.frombuffer(_read_exact(f, nbytes), dtype=dtype).reshape(shape)
        if callable(on_variable):
            on_variable(nbytes)
    aliases = {}
    for _ in range(_u32(f)):
        alias = _string(f)
        aliases[alias] = _string(f)
    if f.read(1):
        raise CT2FormatError("trailing bytes after the alias table")
    return CT2Model(spec=spec, revision=revision, variables=variables, aliases=aliases)
