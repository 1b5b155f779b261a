"""The Hugging Face reference side of the audio LLM families: prompts, prompt ids and greedy generation.

Everything goes through the family's own `transformers` processor and chat template, the way each model card
documents it, so that the serving code can be compared with what `transformers` does:

- `hf_prompt_text`: the prompt the chat template renders for one user turn (audio + instruction), before the audio
  placeholder is expanded.
- `hf_prompt_ids`: the input ids the processor produces for it, audio placeholders expanded.
- `hf_generate` / `hf_greedy`: greedy `generate` in float32; the new ids and the text decoded as the family's
  processor decodes it for users (AudioFlamingo 3 `strip_prefix=True`; Qwen3-ASR `return_format="transcription_only"`).

Family conventions (user turn):
- qwen2_audio: content `[audio, text]` -> `Audio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\\n{instruction}`.
- audioflamingo3: content `[text, audio]` (as `apply_transcription_request`) -> `<sound>{instruction}`.
- qwen3_asr: content `[audio]`; the template renders no user text, so `instruction` is dropped there. `context`
  becomes the system turn; `language` (e.g. "English") pre-fills the assistant turn with `language English<asr_text>`
  as `Qwen3ASRProcessor.apply_transcription_request(language=...)` does.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_RATE = 16000
FAMILIES = ("qwen2_audio", "audioflamingo3", "qwen3_asr", "granite_speech")


@dataclass
class GreedyResult:
    """One greedy generation of the reference model."""

    token_ids: list[int]
    text: str  # as the family's processor decodes it for users
    raw_text: str  # tokenizer decode with special tokens kept
    top_logprobs: list[dict[int, float]] = field(default_factory=list)  # per step: the top-k ids and log-probs


@functools.lru_cache(maxsize=8)
def load_processor(checkpoint: str) -> Any:
    from transformers import AutoProcessor

    from engine_plugins.granite_features import register

    register()  # Granite Speech's extractor without torchaudio, as the engine runs it
    return AutoProcessor.from_pretrained(checkpoint)


@functools.lru_cache(maxsize=4)
def load_model(checkpoint: str, family: str) -> Any:
    import torch

    if family == "qwen2_audio":
        from transformers import Qwen2AudioForConditionalGeneration as model_class
    elif family == "audioflamingo3":
        from transformers import AudioFlamingo3ForConditionalGeneration as model_class
    elif family == "qwen3_asr":
        from transformers import Qwen3ASRForConditionalGeneration as model_class
    elif family == "musicflamingo":
        from transformers import MusicFlamingoForConditionalGeneration as model_class
    elif family == "granite_speech":
        from transformers import GraniteSpeechForConditionalGeneration as model_class
    else:
        raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")
    return model_class.from_pretrained(checkpoint, dtype=torch.float32).eval()


def conversation(
    family: str,
    audio: Any,
    instruction: str,
    *,
    language: str | None = None,
    context: str | None = None,
) -> list[dict[str, Any]]:
    """The chat the family documents for one audio turn. `audio` may be an array or any placeholder value."""
    if family == "qwen2_audio":
        return [{"role": "user", "content": [{"type": "audio", "audio": audio}, {"type": "text", "text": instruction}]}]
    if family in ("audioflamingo3", "musicflamingo"):
        return [{"role": "user", "content": [{"type": "text", "text": instruction}, {"type": "audio", "audio": audio}]}]
    if family == "qwen3_asr":
        messages: list[dict[str, Any]] = []
        if context:
            messages.append({"role": "system", "content": [{"type": "text", "text": context}]})
        content: list[dict[str, Any]] = [{"type": "audio", "audio": audio}]
        if instruction:
            content.append({"type": "text", "text": instruction})
        messages.append({"role": "user", "content": content})
        if language is not None:
            messages.append(
                {"role": "assistant", "content": [{"type": "text", "text": f"language {language}<asr_text>"}]}
            )
        return messages
    if family == "granite_speech":
        # The model card's and vLLM's chat: plain text, the placeholder before the request.
        return [{"role": "user", "content": f"<|audio|>{instruction}"}]
    raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")


def _template_kwargs(family: str, language: str | None) -> dict[str, Any]:
    if family == "qwen3_asr" and language is not None:
        return {"continue_final_message": True, "add_generation_prompt": False}
    return {"add_generation_prompt": True}


def hf_prompt_text(
    checkpoint: Path,
    family: str,
    instruction: str,
    *,
    language: str | None = None,
    context: str | None = None,
) -> str:
    """The prompt text the chat template renders (one audio placeholder, not yet expanded)."""
    processor = load_processor(str(checkpoint))
    chat = conversation(
        family, np.zeros(SAMPLE_RATE, dtype=np.float32), instruction, language=language, context=context
    )
    text = processor.apply_chat_template(chat, tokenize=False, **_template_kwargs(family, language))
    return str(text)


def hf_inputs(
    checkpoint: Path,
    family: str,
    audio: np.ndarray,
    instruction: str,
    *,
    language: str | None = None,
    context: str | None = None,
) -> Any:
    """The processor's model inputs (`BatchFeature`, batch of one) for one audio turn, through the chat template."""
    processor = load_processor(str(checkpoint))
    chat = conversation(family, np.asarray(audio, dtype=np.float32), instruction, language=language, context=context)
    if family == "granite_speech":
        # The model card's way: render the chat to text, then the processor expands `<|audio|>`.
        text = processor.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        return processor(text=text, audio=np.asarray(audio, dtype=np.float32), return_tensors="pt")
    return processor.apply_chat_template(
        chat,
        tokenize=True,
        return_dict=True,
        processor_kwargs={"return_tensors": "pt", "sampling_rate": SAMPLE_RATE},
        **_template_kwargs(family, language),
    )


def hf_prompt_ids(
    checkpoint: Path,
    family: str,
    audio: np.ndarray,
    instruction: str,
    *,
    language: str | None = None,
    context: str | None = None,
) -> list[int]:
    """The input ids the family's processor produces, audio placeholders expanded."""
    inputs = hf_inputs(checkpoint, family, audio, instruction, language=language, context=context)
    return [int(i) for i in inputs["input_ids"][0].tolist()]


def hf_decode(checkpoint: Path, family: str, token_ids: list[int]) -> str:
    """Generated ids as the family's processor decodes them for users."""
    processor = load_processor(str(checkpoint))
    if family in ("qwen2_audio", "musicflamingo", "granite_speech"):
        text = processor.batch_decode([token_ids], skip_special_tokens=True, clean_up_tokenization_spaces=False)[0]
    elif family == "audioflamingo3":
        text = processor.batch_decode([token_ids], skip_special_tokens=True, strip_prefix=True)[0]
    elif family == "qwen3_asr":
        text = processor.decode(token_ids, return_format="transcription_only")
    else:
        raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")
    return str(text)


def hf_greedy(
    checkpoint: Path,
    family: str,
    audio: np.ndarray,
    instruction: str,
    max_new_tokens: int,
    *,
    language: str | None = None,
    context: str | None = None,
    top_k: int = 5,
) -> GreedyResult:
    """Greedy `generate` of the float32 transformers model, with each step's top-k log-probabilities."""
    import torch

    model = load_model(str(checkpoint), family)
    inputs = hf_inputs(checkpoint, family, audio, instruction, language=language, context=context)
    with torch.inference_mode():
        out = model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            output_scores=True,
            return_dict_in_generate=True,
        )
    prompt_len = inputs["input_ids"].shape[1]
    new_ids = [int(i) for i in out.sequences[0, prompt_len:].tolist()]
    # transformers 5.19's Granite Speech skips its text model's `logits / logits_scaling` (Granite's own
    # GraniteForCausalLM and vLLM apply it): greedy ids are the same either way, log-probabilities are not.
    scale = model.config.text_config.logits_scaling if family == "granite_speech" else 1.0
    tops: list[dict[int, float]] = []
    for scores in out.scores:
        logprobs = torch.log_softmax(scores[0].float() / scale, dim=-1)
        values, indices = logprobs.topk(top_k)
        tops.append({int(i): float(v) for i, v in zip(indices.tolist(), values.tolist(), strict=True)})
    processor = load_processor(str(checkpoint))
    raw = str(processor.tokenizer.decode(new_ids, skip_special_tokens=False))
    return GreedyResult(token_ids=new_ids, text=hf_decode(checkpoint, family, new_ids), raw_text=raw, top_logprobs=tops)


def hf_generate(
    checkpoint: Path,
    family: str,
    audio: np.ndarray,
    instruction: str,
    max_new_tokens: int,
    *,
    language: str | None = None,
    context: str | None = None,
) -> tuple[list[int], str]:
    """Greedy generation: the new token ids and the text as the family's processor decodes it for users."""
    result = hf_greedy(checkpoint, family, audio, instruction, max_new_tokens, language=language, context=context)
    return result.token_ids, result.text
