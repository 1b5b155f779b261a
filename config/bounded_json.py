"""JSON parsing with bounds: a depth and size limit checked before parsing, every failure one ValueError.

Every JSON the server reads (form fields, Realtime events, the settings file) goes through `loads`.
It lives in `config/`, the bottom room that `app/` already imports and that imports nothing of
ours, so both the settings and the gateway use the same reader without an import cycle.

The depth is checked by a scan of the brackets outside strings, before `json.loads` runs: a
hostile text never reaches the parser's recursion, and the error names the top-level field that
holds the nesting. Strings with lone surrogates (`"\\ud800"`) are refused too: they cannot be
written back as UTF-8, so an error message or a log line that echoes them would fail later.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate, islice
from typing import Any

MAX_DEPTH = 32  # our deepest real shape (a Realtime session.update) nests 5 levels
_STRING = r'"[^"\\]*(?:\\.[^"\\]*)*"'
_STRINGS = re.compile(_STRING, re.S)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
_TOKENS = re.compile(rf"({_STRING})(\s*:)?|([\[\]{{}}])", re.S)
_DELTA = {"[": 1, "{": 1, "]": -1, "}": -1}
_NAMING_TOKENS = 100_000  # past this many tokens the deep field goes unnamed (bounded work)
_SURROGATE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}|[\ud800-\udfff]")


class JSONError(ValueError):
    """A text that is not JSON within the bounds; `field` is the top-level key at fault, if known."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def loads(text: str | bytes, *, max_chars: int | None = None, max_depth: int = MAX_DEPTH) -> Any:
    """The value of `text`; JSONError when it is too long, too deep, not UTF-8, not JSON, or not Unicode."""
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise JSONError("not valid UTF-8 text") from None
    if max_chars is not None and len(text) > max_chars:
        raise JSONError(f"longer than {max_chars} characters")
    if _too_deep(text, max_depth):
        raise JSONError(f"nested deeper than {max_depth} levels", _deep_field(text, max_depth))
    try:
        value = json.loads(text)
    except RecursionError:  # unreachable after the scan; kept so no parser failure escapes as one
        raise JSONError(f"nested deeper than {max_depth} levels") from None
    except ValueError as error:  # JSONDecodeError, and integers past Python's digit limit
        raise JSONError(_reason(error)) from None
    if ("\\u" in text or not text.isascii()) and _SURROGATE.search(text):
        _check_text(value, None)
    return value


def _too_deep(text: str, max_depth: int) -> bool:
    """Whether brackets outside strings nest past `max_depth` (an unterminated string's count: harmless)."""
    if text.count("[") + text.count("{") <= max_depth:
        return False  # too few brackets to matter; skips the scan of a long audio event
    brackets = _NOT_BRACKETS.sub("", _STRINGS.sub("", text))
    return max(accumulate(map(_DELTA.__getitem__, brackets)), default=0) > max_depth


def _deep_field(text: str, max_depth: int) -> str | None:
    """The top-level object key under which nesting first passes `max_depth`."""
    depth, key = 0, None
    for match in islice(_TOKENS.finditer(text), _NAMING_TOKENS):
        string, colon, bracket = match.groups()
        if string is not None:
            if colon and depth == 1:
                key = _key(string)
            continue
        depth += _DELTA[bracket]
        if depth > max_depth:
            return key
    return None


def _key(token: str) -> str | None:
    try:
        key = json.loads(token)
    except ValueError:
        return None
    return key[:80] if isinstance(key, str) and _encodable(key) else None


def _reason(error: ValueError) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"not valid JSON ({error.msg} at character {error.pos})"
    return "not valid JSON (a number too long to read)"


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_text(value: Any, field: str | None) -> None:
    """Refuse strings (keys and values) with lone surrogates; `field`: the top-level key being walked."""
    if isinstance(value, str) and not _encodable(value):
        raise JSONError("not valid Unicode text (a lone surrogate in a string)", field)
    if isinstance(value, list):
        for item in value:
            _check_text(item, field)
    elif isinstance(value, dict):
        for key, item in value.items():
            top = key if field is None and _encodable(key) else field
            if not _encodable(key):
                raise JSONError("not valid Unicode text (a lone surrogate in a key)", field)
            _check_text(item, top)
