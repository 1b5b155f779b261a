"""Sampling draws from a seeded generator of the request's own: a reading at a temperature above 0 draws the
same each time it is asked for, whatever other requests drew before it."""

from __future__ import annotations

from app.scheduling.engine import SAMPLING_SEED, sampling_params
from models.interface import GenerationRequest


def request(temperature: float, seed: int | None = None) -> GenerationRequest:
    return GenerationRequest(prompt={"prompt_token_ids": [1]}, max_tokens=4, temperature=temperature, seed=seed)


def test_a_sampled_reading_is_seeded_per_request() -> None:
    assert sampling_params(request(0.4)).seed == SAMPLING_SEED
    assert sampling_params(request(1.0)).seed == SAMPLING_SEED


def test_greedy_needs_no_seed_and_a_given_seed_is_kept() -> None:
    assert sampling_params(request(0.0)).seed is None
    assert sampling_params(request(0.6, seed=7)).seed == 7
