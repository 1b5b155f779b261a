"""The transformers side of Voxtral: `VoxtralProcessor.apply_transcription_request` and greedy `generate`.

Runs on the Hugging Face layout of the tiny checkpoint (`tiny_voxtral.build_voxtral(...)/hf`), in float32.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from tests.families.reference import GreedyResult

SAMPLE_RATE = 16_000


@functools.lru_cache(maxsize=2)
def _processor(checkpoint: str) -> Any:
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(checkpoint)


@functools.lru_cache(maxsize=2)
def _model(checkpoint: str) -> Any:
    import torch
    from transformers import VoxtralForConditionalGeneration

    return VoxtralForConditionalGeneration.from_pretrained(checkpoint, dtype=torch.float32).eval()


def hf_inputs(checkpoint: Path, audio: np.ndarray, language: str | None) -> Any:
    """The processor's inputs for one transcription request (the audio sent as a WAV file, as the model card does)."""
    return _processor(str(checkpoint)).apply_transcription_request(
        audio=np.asarray(audio, dtype=np.float32),
        model_id="tiny-voxtral",
        language=language,
        sampling_rate=SAMPLE_RATE,
        format="wav",
    )


def hf_prompt_ids(checkpoint: Path, audio: np.ndarray, language: str | None) -> list[int]:
    return [int(i) for i in hf_inputs(checkpoint, audio, language)["input_ids"][0].tolist()]


def hf_greedy(
    checkpoint: Path, audio: np.ndarray, language: str | None, max_new_tokens: int, top_k: int = 5
) -> GreedyResult:
    """Greedy `generate`: new ids, the text as the processor decodes it for users, each step's top-k logprobs."""
    import torch

    inputs = hf_inputs(checkpoint, audio, language)
    with torch.inference_mode():
        out = _model(str(checkpoint)).generate(
            **inputs, max_new_tokens=max_new_tokens, do_sample=False, output_scores=True, return_dict_in_generate=True
        )
    new_ids = [int(i) for i in out.sequences[0, inputs["input_ids"].shape[1] :].tolist()]
    tops = []
    for scores in out.scores:
        values, indices = torch.log_softmax(scores[0].float(), dim=-1).topk(top_k)
        tops.append({int(i): float(v) for i, v in zip(indices.tolist(), values.tolist(), strict=True)})
    processor = _processor(str(checkpoint))
    text = str(processor.batch_decode([new_ids], skip_special_tokens=True)[0])
    raw = str(processor.tokenizer.decode(new_ids, skip_special_tokens=False))
    return GreedyResult(token_ids=new_ids, text=text, raw_text=raw, top_logprobs=tops)
