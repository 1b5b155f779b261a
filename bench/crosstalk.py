"""Cross-talk stress run: real sentences in several languages, arriving at random, read together and alone.

Short clips of concurrent requests share one encoder window and are split back by timestamps; no
word may reach the wrong request. N requests (Asterisk prompts in English, Spanish, French and
Italian: distinct texts of 5+ words, at most 10 s, no digits) arrive as a seeded Poisson process,
half with `language` and half detected (fixed per prompt, so each is read the same way alone).
Then every prompt used is read once more, one request at a time.

Cross-talk: an answer holding a word 3-gram of another prompt's reference that is neither in its
own reference nor in its own alone answer, nor a misreading of one of those, word by word ("seguido
por la" for its own "seguida por la": each word at least `NEAR_WORD` alike). It must be 0. Answers
whose only such 3-grams are misreadings of their own words are counted and shown apart, as variants.
Also: word error rate together and alone, pooled over the requests, and per language.

    python -m bench.crosstalk --url URL [--requests 2000] [--rate 1] [--prompts all] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import re
import sys
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

from bench import asterisk
from bench.asterisk import MissingSounds

LANGUAGES = ["en", "es", "fr", "it"]
N = 3
MIN_WORDS = 5
MAX_S = 10.0
SEED = 11
CONCURRENCY = 64
MODEL = "whisper-1"
SHOWN = 5
# Two words this alike (difflib's ratio) are one word misread: an ending, an accent, a letter.
NEAR_WORD = 0.75


def normalise(text: str) -> list[str]:
    """Words for comparison: accents dropped, casefolded, anything but letters and digits a separator."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return re.findall(r"[^\W_]+", plain)


def ngrams(text: str, n: int = N) -> set[tuple[str, ...]]:
    words = normalise(text)
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


@dataclass(frozen=True)
class Leak:
    request: int
    key: str
    ngrams: tuple[str, ...]
    sources: tuple[str, ...]
    # True when every such n-gram misreads one of the answer's own, word by word (not cross-talk).
    variant: bool = False


def misreads(gram: tuple[str, ...], own: set[tuple[str, ...]]) -> bool:
    """Whether `gram` is one of `own` with each word at most misread (`NEAR_WORD`)."""
    return any(
        all(a == b or SequenceMatcher(None, a, b).ratio() >= NEAR_WORD for a, b in zip(gram, o, strict=True))
        for o in own
    )


def crosstalk(
    references: Mapping[str, str], answers: Sequence[tuple[str, str]], alone: Mapping[str, str], n: int = N
) -> list[Leak]:
    """The answers (prompt key, text) holding an n-gram of another key's reference that is in neither
    their own reference nor their own alone answer; one `Leak` per such answer, marked `variant`
    where each such n-gram only misreads one of their own."""
    index: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for key, text in references.items():
        for gram in ngrams(text, n):
            index[gram].add(key)
    leaks = []
    for i, (key, answer) in enumerate(answers):
        own = ngrams(references[key], n) | ngrams(alone.get(key, ""), n)
        found = {g: index[g] - {key} for g in ngrams(answer, n) if g in index and g not in own}
        found = {g: s for g, s in found.items() if s}
        if found:
            sources = tuple(sorted(set().union(*found.values())))
            variant = all(misreads(g, own) for g in found)
            leaks.append(Leak(i, key, tuple(sorted(" ".join(g) for g in found)), sources, variant))
    return leaks


def pooled_wer(pairs: Sequence[tuple[str, str]]) -> float | None:
    """Word edits / reference words over all (reference, hypothesis) pairs, after `normalise`."""
    import jiwer

    texts = [(" ".join(normalise(r)), " ".join(normalise(h))) for r, h in pairs]
    words, edits = sum(len(r.split()) for r, _ in texts), 0
    for r, h in texts:
        if r and h:
            out = jiwer.process_words(r, h)
            edits += out.substitutions + out.deletions + out.insertions
        else:  # jiwer refuses empty texts: all deleted, or all inserted
            edits += len(r.split()) + len(h.split())
    return edits / words if words else None


@dataclass(frozen=True)
class Clip:
    key: str  # language/name
    language: str
    text: str
    wav: bytes
    seconds: float


def load_clips(seed: int = SEED) -> list[Clip]:
    """Every usable prompt of every installed language, distinct in text, shuffled (seeded)."""
    import soundfile as sf

    clips: list[Clip] = []
    seen: set[str] = set()
    for language in LANGUAGES:
        try:
            prompts = asterisk.load_prompts(language=language)
        except MissingSounds as exc:
            print(f"crosstalk: skipping {language}: {exc}", flush=True)
            continue
        usable = [p for p in prompts if not re.search(r"\d", p.text)]
        for p in asterisk.pick(usable, random.Random(seed), set(), MIN_WORDS, MAX_S):
            if " ".join(normalise(p.text)) in seen:
                continue
            seen.add(" ".join(normalise(p.text)))
            buffer = io.BytesIO()
            sf.write(buffer, asterisk.read(p), 16000, format="WAV", subtype="PCM_16")
            clips.append(Clip(f"{language}/{p.name}", language, p.text, buffer.getvalue(), p.duration_s))
    if len({c.language for c in clips}) < 3:
        raise MissingSounds("the cross-talk run needs prompts in at least three languages")
    random.Random(seed).shuffle(clips)
    return clips[: len(clips) // 2 * 2]  # even, so that language is given for exactly half of them


@dataclass
class Answer:
    key: str
    status: int  # 0: no HTTP answer
    text: str


async def _post(client: Any, url: str, clip: Clip, given: bool) -> Answer:
    import httpx

    data = {"model": MODEL, "response_format": "json"} | ({"language": clip.language} if given else {})
    try:
        r = await client.post(
            url + "/v1/audio/transcriptions", files={"file": ("clip.wav", clip.wav, "audio/wav")}, data=data
        )
    except httpx.HTTPError as exc:
        return Answer(clip.key, 0, type(exc).__name__)
    if r.status_code != 200:
        return Answer(clip.key, r.status_code, r.text[:160])
    return Answer(clip.key, 200, str(r.json().get("text", "")))


async def _together(
    url: str, plan: list[Clip], given: set[str], rate: float, seed: int
) -> tuple[list[Answer], list[int]]:
    """Requests at Poisson arrivals; at most CONCURRENCY in flight (more wait in the client)."""
    import httpx

    rng, gate, loop = random.Random(seed), asyncio.Semaphore(CONCURRENCY), asyncio.get_running_loop()
    in_flight: list[int] = []  # requests in flight as each one is sent
    count = 0

    async with httpx.AsyncClient(timeout=1800, limits=httpx.Limits(max_connections=CONCURRENCY)) as client:

        async def one(clip: Clip) -> Answer:
            nonlocal count
            async with gate:
                count += 1
                in_flight.append(count)
                try:
                    return await _post(client, url, clip, clip.key in given)
                finally:
                    count -= 1

        tasks, began, at = [], loop.time(), 0.0
        for clip in plan:
            at += rng.expovariate(rate)
            await asyncio.sleep(max(0.0, began + at - loop.time()))
            tasks.append(asyncio.create_task(one(clip)))
        return list(await asyncio.gather(*tasks)), in_flight


async def _alone(url: str, clips: list[Clip], given: set[str]) -> list[Answer]:
    import httpx

    async with httpx.AsyncClient(timeout=1800) as client:
        return [await _post(client, url, clip, clip.key in given) for clip in clips]


def _wer(pairs: list[tuple[Clip, Answer, Answer]]) -> dict[str, float | None]:
    return {
        "together": pooled_wer([(c.text, t.text) for c, t, _ in pairs]),
        "alone": pooled_wer([(c.text, a.text) for c, _, a in pairs]),
    }


def _case(leak: Leak, answer: tuple[int, Answer], references: dict[str, str], alone: str) -> dict[str, Any]:
    return {
        "request": answer[0], "key": leak.key, "reference": references[leak.key], "answer": answer[1].text,
        "alone": alone, "ngrams": list(leak.ngrams), "sources": list(leak.sources),
    }  # fmt: skip


def run(url: str, requests: int = 2000, rate: float = 1.0, seed: int = SEED, prompts: int = 0) -> dict[str, Any]:
    """The stress run against the server at `url` (`prompts` > 0: only that many distinct prompts)."""
    clips = load_clips(seed)
    clips = clips[: prompts // 2 * 2] if prompts > 0 else clips
    plan = [clips[i % len(clips)] for i in range(requests)]
    used = list({c.key: c for c in plan}.values())
    given = {c.key for c in used[::2]}
    random.Random(seed).shuffle(plan)
    audio_s = sum(c.seconds for c in plan)
    print(
        f"crosstalk: {requests} requests of {len(used)} distinct prompts "
        f"({dict(Counter(c.language for c in used))}), {audio_s:.0f} s of audio, Poisson {rate}/s, "
        f"{sum(c.key in given for c in plan)} with language, at most {CONCURRENCY} in flight",
        flush=True,
    )
    asyncio.run(_alone(url, used[:1], given))  # warm-up, not counted
    began = time.perf_counter()
    answers, in_flight = asyncio.run(_together(url, plan, given, rate, seed))
    together_s = time.perf_counter() - began
    began = time.perf_counter()
    alone = {c.key: a for c, a in zip(used, asyncio.run(_alone(url, used, given)), strict=True)}
    alone_s = time.perf_counter() - began

    references = {c.key: c.text for c in used}
    ok = [(i, a) for i, a in enumerate(answers) if a.status == 200]
    found = crosstalk(references, [(a.key, a.text) for _, a in ok], {k: a.text for k, a in alone.items()})
    leaks, variants = [k for k in found if not k.variant], [k for k in found if k.variant]
    pairs = [(plan[i], a, alone[a.key]) for i, a in ok if alone[a.key].status == 200]
    by_language = {
        lang: _wer([p for p in pairs if p[0].language == lang]) for lang in sorted({c.language for c in used})
    }
    result: dict[str, Any] = {
        "requests": requests,
        "distinct_prompts": len(used),
        "audio_s": round(audio_s, 1),
        "rate_per_s": rate,
        "errors": dict(Counter(str(a.status) for a in answers if a.status != 200)),
        "alone_errors": dict(Counter(str(a.status) for a in alone.values() if a.status != 200)),
        "crosstalk": len(leaks),
        "variants": len(variants),
        "wer": _wer(pairs),
        "wer_by_language": by_language,
        "wer_language_given": _wer([p for p in pairs if p[0].key in given]),
        "wer_language_detected": _wer([p for p in pairs if p[0].key not in given]),
        "in_flight_mean": round(sum(in_flight) / max(len(in_flight), 1), 1),
        "in_flight_max": max(in_flight, default=0),
        "together_wall_s": round(together_s, 1),
        "alone_wall_s": round(alone_s, 1),
        "together_rtfx": round(audio_s / together_s, 2),
        "alone_rtfx": round(sum(c.seconds for c in used) / alone_s, 2),
        "leaks": [_case(k, ok[k.request], references, alone[k.key].text) for k in leaks],
        "variant_cases": [_case(k, ok[k.request], references, alone[k.key].text) for k in variants],
        "answers": [[a.key, a.key in given, a.status, a.text, alone[a.key].text] for a in answers],
    }
    report(result)
    return result


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def report(r: dict[str, Any]) -> None:
    errors, alone = r["errors"] or "none", r["alone_errors"] or "none"
    print(f"crosstalk: {r['requests']} requests, errors {errors}; alone: {r['distinct_prompts']}, errors {alone}")
    print(f"crosstalk: in flight mean {r['in_flight_mean']}, max {r['in_flight_max']}")
    print(f"crosstalk: answers with another request's words: {r['crosstalk']}")
    _show(r["leaks"])
    print(f"crosstalk: answers that misread their own words as another sentence's (variants): {r['variants']}")
    _show(r["variant_cases"])
    rows = [("all", r["wer"]), ("language given", r["wer_language_given"])]
    rows += [("language detected", r["wer_language_detected"]), *r["wer_by_language"].items()]
    for name, wer in rows:
        print(f"crosstalk: WER {name:<18} together {_pct(wer['together']):>6}  alone {_pct(wer['alone']):>6}")
    print(f"crosstalk: wall time together {r['together_wall_s']} s (RTFx {r['together_rtfx']}), ", end="")
    print(f"alone {r['alone_wall_s']} s (RTFx {r['alone_rtfx']})")


def _show(cases: list[dict[str, Any]]) -> None:
    for leak in cases[:SHOWN]:
        print(f"  #{leak['request']} {leak['key']}: {leak['answer']!r} (reference {leak['reference']!r}, "
              f"alone {leak['alone']!r}); {leak['ngrams'][:3]} from {leak['sources'][:3]}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the server (default %(default)s)")
    parser.add_argument("--requests", type=int, default=2000, help="requests in the stress run (default 2000)")
    parser.add_argument("--rate", type=float, default=1.0, help="mean arrivals per second (default 1)")
    parser.add_argument("--prompts", type=int, default=0, help="distinct prompts to cycle through (default: all)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--json", type=Path, help="write the numbers, leaks and answers to this file")
    args = parser.parse_args(argv)
    result = run(args.url.rstrip("/"), args.requests, args.rate, args.seed, args.prompts)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    return 1 if result["crosstalk"] else 0


if __name__ == "__main__":
    sys.exit(main())
