"""Qwen3-ASR (`Qwen3ASRForConditionalGeneration`): speech recognition in 30 languages.

The chat is the one its processor's `apply_transcription_request` builds: the client's context
(`prompt`, `keywords[]`) as the system turn, the audio alone as the user turn, and a language
hint pre-filled into the answer as `language <Name><asr_text>`. Without a hint the model names
the language itself, which the gateway reports. The model has no instruction to follow, so it
does not translate.
"""

from __future__ import annotations

from typing import Any, ClassVar

from models.audio_chat import AudioChatFamily
from models.interface import DecodeOptions
from models.languages import normalise_language

MARKER = "<asr_text>"
# Runs longer than this are a decoding loop, cut as the reference implementation does.
REPEAT_LIMIT = 20
LONGEST_PATTERN = 20

# The languages it was trained on, with the names its answers use.
QWEN3_ASR_LANGUAGES = {
    "ar": "arabic", "yue": "cantonese", "zh": "chinese", "cs": "czech", "da": "danish", "nl": "dutch",
    "en": "english", "fil": "filipino", "fi": "finnish", "fr": "french", "de": "german", "el": "greek",
    "hi": "hindi", "hu": "hungarian", "id": "indonesian", "it": "italian", "ja": "japanese", "ko": "korean",
    "mk": "macedonian", "ms": "malay", "fa": "persian", "pl": "polish", "pt": "portuguese", "ro": "romanian",
    "ru": "russian", "es": "spanish", "sv": "swedish", "th": "thai", "tr": "turkish", "vi": "vietnamese",
}  # fmt: skip
_BY_NAME = {name: code for code, name in QWEN3_ASR_LANGUAGES.items()}


class Qwen3ASRModel(AudioChatFamily):
    audio_token: ClassVar[str] = "<|audio_pad|>"
    max_clip_s: ClassVar[float] = 30.0
    languages: ClassVar[dict[str, str]] = QWEN3_ASR_LANGUAGES
    translates: ClassVar[bool] = False

    @property
    def supports_language_detection(self) -> bool:
        # It names the language in its answer; the gateway reports that one.
        return True

    def conversation(self, options: DecodeOptions) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        context = "\n".join(self.context_lines(options))
        if context:
            messages.append({"role": "system", "content": [{"type": "text", "text": context}]})
        messages.append({"role": "user", "content": [{"type": "audio", "audio": "piece"}]})
        answer = f"language {self.language_name(options.language)}{MARKER}" if options.language else ""
        messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
        return messages

    def context_lines(self, options: DecodeOptions) -> list[str]:
        # Context is plain text here: the model reads it as background, not as an instruction.
        lines = [options.prompt.strip()] if options.prompt and options.prompt.strip() else []
        if options.keywords:
            lines.append(", ".join(options.keywords))
        return lines

    def template_kwargs(self, options: DecodeOptions) -> dict[str, Any]:
        return {"continue_final_message": True, "add_generation_prompt": False}

    def clean(self, text: str) -> str:
        text = _fix_repetitions(text.strip())
        return text.split(MARKER, 1)[1].strip() if MARKER in text else text.strip()

    def clean_partial(self, text: str) -> str:
        # A loop still growing at the end may yet be collapsed by `clean`: hold it back.
        text = _fix_repetitions(text)
        text = text[: len(text) - _repeating_tail(text)]
        if MARKER in text:
            return text.split(MARKER, 1)[1].lstrip()
        opening = text.lstrip()
        # "language X" comes first when the model names the language itself.
        return "" if opening.startswith("language") or "language".startswith(opening) else opening

    def answer_language(self, text: str) -> str | None:
        head = text.strip().split(MARKER, 1)[0].strip() if MARKER in text else ""
        name = head[len("language ") :].strip().lower() if head.lower().startswith("language ") else ""
        if not name or name == "none":
            return None
        return _BY_NAME.get(name) or normalise_language(name)


def _fix_repetitions(text: str) -> str:
    """Collapse a character repeated over REPEAT_LIMIT times, then a short pattern repeated that often."""
    out: list[str] = []
    i = 0
    while i < len(text):
        run = 1
        while i + run < len(text) and text[i + run] == text[i]:
            run += 1
        out.append(text[i] if run > REPEAT_LIMIT else text[i : i + run])
        i += run
    return _fix_patterns("".join(out))


def _repeating_tail(text: str) -> int:
    """Length of the longest end of `text` made of two or more copies of one short pattern."""
    longest = 0
    for size in range(1, min(LONGEST_PATTERN, len(text) // 2) + 1):
        pattern = text[len(text) - size :]
        copies = 1
        while text[len(text) - (copies + 1) * size : len(text) - copies * size] == pattern:
            copies += 1
        if copies >= 2:
            longest = max(longest, copies * size)
    return longest


def _fix_patterns(text: str) -> str:
    n = len(text)
    if n < 2 * REPEAT_LIMIT:
        return text
    out: list[str] = []
    i = 0
    while i <= n - 2 * REPEAT_LIMIT:
        # Patterns short enough that REPEAT_LIMIT copies still fit in what is left.
        for size in range(1, min(LONGEST_PATTERN, (n - i) // REPEAT_LIMIT) + 1):
            pattern = text[i : i + size]
            if all(text[i + r * size : i + (r + 1) * size] == pattern for r in range(1, REPEAT_LIMIT)):
                # Keep one copy and drop the whole run of copies after it.
                end = i + size * REPEAT_LIMIT
                while text[end : end + size] == pattern:
                    end += size
                out.append(pattern)
                i = end
                break
        else:
            out.append(text[i])
            i += 1
    out.append(text[i:])
    return "".join(out)
