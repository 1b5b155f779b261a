"""The Hugging Face reference side of Gemma 3n: the transcription prompt, its ids and greedy generation.

The prompt is the one vLLM's own transcription endpoint sends (`Gemma3nForConditionalGeneration.
get_generation_prompt`), written out here from that definition rather than taken from our family:
`<start_of_turn>user\\nTranscribe this audio[ into L]: <audio_soft_token><end_of_turn>\\n<start_of_turn>model\\n`
(`Translate this audio[ from L] into English: ` for translations). A client's context comes first in the
user turn, followed by a blank line, as Gemma's chat template renders a system turn. `Gemma3nProcessor`
expands the audio token to `\\n\\n<start_of_audio>` + 188 x `<audio_soft_token>` + `<end_of_audio>\\n\\n`
and the tokenizer puts `<bos>` first.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from tests.families.reference import GreedyResult

SAMPLE_RATE = 16_000


def expected_prompt(task: str = "transcribe", language: str | None = None, context: str | None = None) -> str:
    """The prompt text for one piece; `language` is the language's English name ("English")."""
    if task == "translate":
        ask = "Translate this audio" + (f" from {language}" if language else "") + " into English"
    else:
        ask = "Transcribe this audio" + (f" into {language}" if language else "")
    head = f"{context}\n\n" if context else ""
    return f"<start_of_turn>user\n{head}{ask}: <audio_soft_token><end_of_turn>\n<start_of_turn>model\n"


@functools.lru_cache(maxsize=2)
def load_processor(checkpoint: str) -> Any:
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(checkpoint)


@functools.lru_cache(maxsize=2)
def load_model(checkpoint: str) -> Any:
    import torch
    from transformers import Gemma3nForConditionalGeneration

    from engine_plugins import gemma3n_vision

    gemma3n_vision.register()  # the vision tower without timm, as the engine builds it
    return Gemma3nForConditionalGeneration.from_pretrained(checkpoint, dtype=torch.float32).eval()


def hf_inputs(checkpoint: Path, audio: np.ndarray, prompt: str) -> Any:
    processor = load_processor(str(checkpoint))
    clip = np.asarray(audio, dtype=np.float32)
    return processor(text=prompt, audio=[clip], sampling_rate=SAMPLE_RATE, return_tensors="pt")


def hf_prompt_ids(checkpoint: Path, audio: np.ndarray, prompt: str) -> list[int]:
    """The input ids `Gemma3nProcessor` produces for the prompt and one clip."""
    return [int(i) for i in hf_inputs(checkpoint, audio, prompt)["input_ids"][0].tolist()]


def hf_greedy(checkpoint: Path, audio: np.ndarray, prompt: str, max_new_tokens: int, top_k: int = 5) -> GreedyResult:
    """Greedy `generate` of the float32 transformers model, with each step's top-k log-probabilities."""
    import torch

    model = load_model(str(checkpoint))
    inputs = hf_inputs(checkpoint, audio, prompt)
    with torch.inference_mode():
        out = model.generate(
            **inputs, max_new_tokens=max_new_tokens, do_sample=False, output_scores=True, return_dict_in_generate=True
        )
    new_ids = [int(i) for i in out.sequences[0, inputs["input_ids"].shape[1] :].tolist()]
    tops: list[dict[int, float]] = []
    for scores in out.scores:
        values, indices = torch.log_softmax(scores[0].float(), dim=-1).topk(top_k)
        tops.append({int(i): float(v) for i, v in zip(indices.tolist(), values.tolist(), strict=True)})
    tokenizer = load_processor(str(checkpoint)).tokenizer
    text = str(tokenizer.decode(new_ids, skip_special_tokens=True))
    raw = str(tokenizer.decode(new_ids, skip_special_tokens=False))
    return GreedyResult(token_ids=new_ids, text=text, raw_text=raw, top_logprobs=tops)
