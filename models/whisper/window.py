"""Parsing one Whisper reading of a window: timestamp tokens into segments, confidence, no-speech.

Pure functions over a small context (the tokenizer and its special ids): what the engine
returned for one window, turned into segments in absolute time and a verdict the fallback
policy in `reading.py` acts on. They follow OpenAI's reference `transcribe()`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from tokenizers import Tokenizer

from models.interface import GenerationResult, Segment, TokenLogprob
from models.whisper.loops import looped, too_dense_for
from models.whisper.vocab import WhisperVocab, compression_ratio

SECONDS_PER_TIMESTAMP = 0.02
# OpenAI's `transcribe()` retries a window below this average log-probability. (Its other gate,
# a whole-window compression ratio, misfires on speech that truly repeats: see `loops.py`.)
LOGPROB_THRESHOLD = -1.0
# Its no-speech rule: a window is silent when P(<|nospeech|>) is above this and the reading is
# unsure (average log-probability under LOGPROB_THRESHOLD).
NO_SPEECH_THRESHOLD = 0.6
# Ranks a looping reading below every other when all temperatures fail.
REPETITION_PENALTY = 10.0


@dataclass(frozen=True)
class WindowOutcome:
    """How the model read one window.

    `consumed_s` is how far into the window the transcript is complete; the rest is read
    again when it holds speech. `retry` asks for the window again at the next temperature.
    `no_speech` is the no-speech rule's verdict (silence: final at once); `empty` (nothing
    written, yet not silent by that rule) and `looped` are readings that may have lost speech,
    which the policy in `reading.py` reads again without the prompt.
    """

    segments: list[Segment]
    consumed_s: float
    retry: bool = False
    no_speech: bool = False
    empty: bool = False
    looped: bool = False
    output_tokens: int = 0
    # Higher is better; picks among attempts that all asked to retry (average log-probability,
    # with repetitive readings ranked below all others).
    score: float = 0.0
    input_tokens: int = 0
    # A text-only reading (no timestamps) that ran out of tokens: words may be lost past its end,
    # and without timestamps nothing says where; the window is read again with them.
    cut_short: bool = False


@dataclass(frozen=True)
class WindowContext:
    """What parsing a reading needs of the checkpoint: its tokenizer and special ids."""

    tokenizer: Tokenizer
    vocab: WhisperVocab
    multilingual: bool


def decode_text(ctx: WindowContext, token_ids: Sequence[int]) -> str:
    """The text of `token_ids`, special tokens and timestamps left out."""
    return ctx.tokenizer.decode([t for t in token_ids if t < ctx.vocab.eot], skip_special_tokens=False)


def no_speech_prob(ctx: WindowContext, result: GenerationResult) -> float:
    """P(<|nospeech|>) right after <|startoftranscript|>, as the reference reads it."""
    if result.step_logprobs and ctx.vocab.no_speech in result.step_logprobs[0]:
        return math.exp(result.step_logprobs[0][ctx.vocab.no_speech])
    rows = result.prompt_logprobs
    # The row after <|startoftranscript|> is P(next | sot); it lists <|nospeech|> if in the top-k.
    ids = result.prompt_token_ids
    if len(ids) == len(rows) and ctx.vocab.sot in ids:
        # Found by its id: a text-only prompt has <|notimestamps|> after the task.
        sot_at = len(ids) - 1 - ids[::-1].index(ctx.vocab.sot)
    else:
        sot_at = len(rows) - 3 if ctx.multilingual else len(rows) - 1
    if 0 <= sot_at + 1 < len(rows) and (row := rows[sot_at + 1]):
        return math.exp(row[ctx.vocab.no_speech]) if ctx.vocab.no_speech in row else 0.0
    return 0.0


def token_logprobs(ctx: WindowContext, tokens: Sequence[int], logprobs: Sequence[float]) -> list[TokenLogprob]:
    """The logprobs of a segment's text tokens, as OpenAI's `include[]=logprobs` lists them."""
    out = []
    for token, logprob in zip(tokens, logprobs, strict=False):
        if token >= ctx.vocab.eot:
            continue
        text = ctx.tokenizer.decode([token], skip_special_tokens=False)
        out.append(TokenLogprob(token=text, logprob=logprob, bytes=list(text.encode("utf-8"))))
    return out


def parse_window(
    ctx: WindowContext,
    result: GenerationResult,
    window_s: float,
    offset_s: float,
    temperature: float,
    final: bool = False,
) -> WindowOutcome:
    """Split a timestamped window into segments, as OpenAI's `transcribe()` does.

    `consumed_s` is where the transcript is complete: the last closing timestamp (an open
    segment after it is dropped, to be read again), so the gateway can re-read whatever
    audio with speech follows. In a `final` window, where the audio ends or speech pauses,
    an open segment the model finished is kept and closed at the window's end.
    """
    ts = ctx.vocab.timestamp_begin
    tokens = [t for t in result.token_ids if t != ctx.vocab.eot]
    logprobs = list(result.token_logprobs)
    text_tokens = [t for t in tokens if t < ctx.vocab.eot]
    text = decode_text(ctx, text_tokens)
    avg_logprob = sum(logprobs) / (len(tokens) + 1) if logprobs else 0.0
    ratio = compression_ratio(text)
    no_speech = no_speech_prob(ctx, result)

    if no_speech > NO_SPEECH_THRESHOLD and avg_logprob < LOGPROB_THRESHOLD:
        return WindowOutcome(segments=[], consumed_s=window_s, no_speech=True, output_tokens=len(tokens))
    if not text.strip():
        # Nothing written, though the no-speech rule does not call the window silent (a long
        # prompt can make the model end at once): never final before the fallback readings, and
        # ranked below any reading that wrote something.
        return WindowOutcome(
            segments=[], consumed_s=window_s, retry=True, empty=True, output_tokens=len(tokens), score=-math.inf
        )

    def segment(start_tok: int, end_tok: int, seg_tokens: list[int], seg_logprobs: list[float]) -> Segment:
        start = offset_s + (start_tok - ts) * SECONDS_PER_TIMESTAMP
        end = offset_s + min((end_tok - ts) * SECONDS_PER_TIMESTAMP, window_s)
        return Segment(
            seek=offset_s,
            start=round(start, 3),
            end=round(max(end, start), 3),
            text=decode_text(ctx, seg_tokens),
            tokens=[t for t in seg_tokens if t < ctx.vocab.eot],
            avg_logprob=avg_logprob,
            compression_ratio=ratio,
            no_speech_prob=no_speech,
            temperature=temperature,
            logprobs=token_logprobs(ctx, seg_tokens, seg_logprobs),
        )

    # The timestamp token at the window's end, for segments the model left open.
    window_end = ts + round(window_s / SECONDS_PER_TIMESTAMP)
    is_ts = [t >= ts for t in tokens]
    # Positions where a pair of timestamps closes one segment and opens the next.
    cuts = [i for i in range(1, len(tokens)) if is_ts[i] and is_ts[i - 1]]
    single_ending = len(tokens) >= 2 and is_ts[-1] and not is_ts[-2]
    finished = result.finish_reason != "length"
    segments: list[Segment] = []
    unfinished: list[Segment] = []
    if cuts:
        bounds = [*cuts, len(tokens)] if single_ending else cuts
        last = 0
        for cut in bounds:
            piece = tokens[last:cut]
            if any(not is_ts[j] for j in range(len(piece))):
                segments.append(segment(piece[0], piece[-1], piece, logprobs[last:cut]))
            last = cut
        tail = tokens[last:]
        if single_ending:
            # Every segment is closed: the transcript is complete up to the last timestamp.
            consumed = (tokens[-1] - ts) * SECONDS_PER_TIMESTAMP
        elif final and finished and any(t < ts for t in tail):
            # Nothing is cut off at this window's end: keep the open segment, up to the end.
            segments.append(segment(tail[0], window_end, tail, logprobs[last:]))
            consumed = window_s
        else:
            # Resume at the end of the last complete segment.
            consumed = (tokens[last - 1] - ts) * SECONDS_PER_TIMESTAMP
            if any(t < ts for t in tail):
                # Dropped, to be read again, but a loop there still condemns this reading.
                unfinished = [segment(tail[0], window_end, tail, logprobs[last:])]
    else:
        stamps = [t for t in tokens if t >= ts]
        closed = len(stamps) > 1
        end_tok = stamps[-1] if closed else window_end
        start_tok = stamps[0] if stamps else ts
        segments.append(segment(start_tok, end_tok, tokens, logprobs))
        # One closed segment: complete up to its end. No timestamps: the whole window, as OpenAI.
        consumed = (end_tok - ts) * SECONDS_PER_TIMESTAMP if closed else window_s
    untimed = not any(is_ts)
    # Untimed, the one segment spans the window: speech that truly repeats compresses like a loop,
    # so only a reading denser than the window's seconds allow counts as one.
    loop = too_dense_for(len(text_tokens), window_s) if untimed else looped(segments + unfinished)
    return WindowOutcome(
        segments=segments,
        consumed_s=min(consumed, window_s),
        retry=loop or avg_logprob < LOGPROB_THRESHOLD,
        looped=loop,
        output_tokens=len(tokens),
        score=avg_logprob - (REPETITION_PENALTY if loop else 0.0),
        cut_short=untimed and not finished,
    )
