"""Shared pieces of the property-based tests: settings that keep them fast and deterministic, hostile inputs.

Every property runs with `derandomize=True` and no example database: the same examples on every
run and every machine, so a failure reproduces and CI is never flaky. `max_examples` is bounded
per property (the counts are named where each property is defined).
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st


def fuzz(examples: int) -> settings:
    """Deterministic, bounded settings for one property; no deadline (CI machines vary in speed)."""
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# Unicode that breaks naive code: NUL, right-to-left override, combining marks, a BOM, an astral
# character, non-ASCII digits (Python's float() reads them), a lone surrogate.
ODD_TEXT = [
    "",
    " ",
    "\x00",
    "\u202eevil",
    "e\u0301\u0301\u0301",
    "\ufeff",
    "𝔘𝔫𝔦",
    "٣.٥",
    "\ud800",
    "a\udfffb",
    "\n\r\t",
    "x" * 5000,
]
ODD_NUMBERS = ["NaN", "-nan", "inf", "-Infinity", "1e309", "-1e-400", "1" * 5000, "0x10", "1_0", "-0", "0.5", "1"]


def nested(depth: int, inner: str = "1", kind: str = "[") -> str:
    """JSON nested `depth` deep: lists, or objects keyed `a`."""
    if kind == "[":
        return "[" * depth + inner + "]" * depth
    return '{"a":' * depth + inner + "}" * depth


hostile_text = st.one_of(
    st.sampled_from(ODD_TEXT),
    st.sampled_from(ODD_NUMBERS),
    st.text(st.characters(exclude_categories=()), max_size=40),  # surrogates included
    st.text(max_size=40),
)
# What a well-formed form field can hold: any text that is valid UTF-8 (the parser decodes strictly).
field_text = st.one_of(
    st.sampled_from([t for t in ODD_TEXT if not any("\ud800" <= c <= "\udfff" for c in t)]),
    st.sampled_from(ODD_NUMBERS),
    st.text(max_size=40),
)
deep_json = st.builds(nested, st.integers(1, 6000), st.sampled_from(["1", '"x"', "[]"]), st.sampled_from(["[", "{"]))
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | hostile_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(hostile_text, children, max_size=4),
    max_leaves=12,
)


def dumps(value: Any) -> str:
    """JSON text as a client could send it (NaN and Infinity included, surrogates as escapes)."""
    return json.dumps(value)


def utf8_json(value: Any) -> bytes:
    """What a JSON response or a WebSocket text frame does with a value: raises if it cannot be sent."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8")
