"""Log filters: what the engine's start-up log leaves out."""

from __future__ import annotations

import logging

import torch

from app.ops.logs import DtypeCastNotes

NOTE = "Attempted to load weight %s with dtype %s into parameter with dtype %s"


def record(msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("vllm.model_executor.models.utils", logging.WARNING, "utils.py", 333, msg, args, None)


def test_casts_between_floating_point_dtypes_are_dropped() -> None:
    notes = DtypeCastNotes(NOTE)
    assert not notes.filter(record(NOTE, "model.encoder.conv1.weight", torch.float16, torch.bfloat16))
    assert not notes.filter(record(NOTE, "model.decoder.embed_tokens.weight", torch.float32, torch.bfloat16))


def test_other_casts_and_other_messages_pass() -> None:
    notes = DtypeCastNotes(NOTE)
    assert notes.filter(record(NOTE, "scales", torch.int8, torch.bfloat16))
    assert notes.filter(record(NOTE, "model.layer.weight", "float16", "bfloat16"))
    assert notes.filter(record("Loaded weight %s with shape %s", "w", (2, 2)))
    assert notes.filter(record("Attempted to load weight"))


def test_an_engine_logger_drops_the_note_and_keeps_the_rest() -> None:
    logger = logging.getLogger("tests.unit.weight_casts")
    logger.addFilter(DtypeCastNotes(NOTE))
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda r: seen.append(r.getMessage())  # type: ignore[method-assign]
    logger.addHandler(handler)
    try:
        logger.warning(NOTE, "w", torch.float16, torch.bfloat16)
        logger.warning("something else")
    finally:
        logger.removeHandler(handler)
    assert seen == ["something else"]
