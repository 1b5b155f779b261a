"""Test speech made here: espeak-ng sentences, joined with pauses, converted with ffmpeg."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16_000

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Speech recognition turns spoken words into written text.",
    "The weather today is sunny with a light breeze from the west.",
    "Please remember to bring your umbrella tomorrow morning.",
    "Our train leaves the station at half past seven.",
    "She bought fresh bread, cheese and apples at the market.",
    "The library closes early on Sundays during the summer.",
    "Every student must submit the final report by Friday.",
    "The museum has a large collection of ancient coins.",
    "He plays the piano every evening after dinner.",
    "The river flows slowly through the green valley.",
    "We need more chairs for the meeting this afternoon.",
    "The children built a tall castle out of sand.",
    "A good night of sleep helps you think clearly.",
    "The company opened a new office in the city centre.",
    "Turn left at the next corner and walk two blocks.",
    "My grandmother grows tomatoes and beans in her garden.",
    "The concert was cancelled because of the heavy rain.",
    "Water boils at one hundred degrees at sea level.",
    "The doctor asked him to take the medicine twice a day.",
    "They watched the sunset from the top of the hill.",
    "The old bridge was repaired last year.",
    "Please close the window before you leave the room.",
    "The bakery on the corner sells the best cakes in town.",
    "Our team won the match in the last minute.",
    "The pilot announced that we would land in twenty minutes.",
    "Reading books is a wonderful way to learn new words.",
    "The farmer feeds the cows early every morning.",
    "The kitchen smells of coffee and warm toast.",
    "We planted three trees in the park last spring.",
]

# With SENTENCES, 64 different sentences for concurrent requests (each names things no other does).
MORE_SENTENCES = [
    "A purple kite drifted above the quiet harbour.",
    "The mechanic replaced both tyres on the blue truck.",
    "Grandpa tells funny stories about his sailing days.",
    "Fresh snow covered the mountain cabin overnight.",
    "The orchestra tuned their violins before the show.",
    "My neighbour adopted a small grey kitten.",
    "The volcano erupted with a loud rumbling noise.",
    "Our teacher explained how magnets attract iron.",
    "A lighthouse guides ships along the rocky coast.",
    "The baker decorated a cake with strawberries.",
    "Penguins waddled across the frozen beach.",
    "The astronaut floated inside the space station.",
    "Somebody left a leather wallet on the bus.",
    "The gardener trimmed the hedges into neat shapes.",
    "Thunder frightened the horses in the stable.",
    "A journalist interviewed the famous painter.",
    "The chef sliced onions for the spicy soup.",
    "Tourists photographed the ancient stone temple.",
    "The plumber fixed a leaking pipe under the sink.",
    "Dolphins jumped beside the small fishing boat.",
    "The carpenter built a wooden bookshelf.",
    "Firefighters rescued a cat from the tall oak.",
    "The scientist measured the temperature of the lake.",
    "A parrot repeated every word the sailor said.",
    "The postman delivered a heavy parcel this morning.",
    "Bright lanterns lit the narrow village street.",
    "The goalkeeper caught the ball with one hand.",
    "An owl hooted softly in the dark forest.",
    "The nurse checked the patient's blood pressure.",
    "Students painted a colourful mural at school.",
    "The detective found a clue near the fountain.",
    "Wild strawberries grow along the railway track.",
    "The architect designed a glass tower downtown.",
    "Camels carried the merchants across the desert.",
]

FOREIGN = {
    "de": "Guten Morgen. Heute ist das Wetter sehr schön, und wir gehen zusammen in den Park.",
    "fr": "Bonjour à tous. Je voudrais un café et un croissant, s'il vous plaît.",
    "es": "Buenos días. Me gustaría reservar una mesa para dos personas esta noche.",
    "it": "Buongiorno a tutti. Oggi andiamo al mercato a comprare frutta e verdura.",
}


def require_tools() -> None:
    missing = [tool for tool in ("espeak-ng", "ffmpeg") if shutil.which(tool) is None]
    if missing:
        raise RuntimeError(f"missing test tools: {', '.join(missing)} (make test installs them)")


def speak(text: str, voice: str = "en-us", rate: int = 165) -> np.ndarray:
    """espeak-ng's rendering of `text`, as float32 at 16 kHz."""
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(rate), "--stdout", text], capture_output=True, check=True
    ).stdout
    import io

    samples, rate_in = sf.read(io.BytesIO(wav), dtype="float32")
    if rate_in != SAMPLE_RATE:
        import librosa

        samples = librosa.resample(samples, orig_sr=rate_in, target_sr=SAMPLE_RATE)
    return samples.astype(np.float32)


def compose(sentences: list[str], pause_s: float = 0.8, voice: str = "en-us") -> np.ndarray:
    """Sentences one after another with silence between them."""
    gap = np.zeros(int(pause_s * SAMPLE_RATE), dtype=np.float32)
    parts: list[np.ndarray] = []
    for sentence in sentences:
        parts += [speak(sentence, voice), gap]
    return np.concatenate(parts)


def write_wav(path: Path, samples: np.ndarray, rate: int = SAMPLE_RATE, subtype: str = "PCM_16") -> Path:
    sf.write(str(path), samples, rate, subtype=subtype)
    return path


def convert(source: Path, target: Path, *args: str) -> Path:
    """`ffmpeg -i source [args] target`: the container follows the target's extension."""
    subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(source), *args, str(target)],
        check=True,
    )
    return target


_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def spell(number: int) -> str:
    """An integer below a million in words: 125 -> "one hundred twenty five"."""
    if number < 20:
        return _ONES[number]
    if number < 100:
        tens, ones = divmod(number, 10)
        return _TENS[tens] + (f" {_ONES[ones]}" if ones else "")
    if number < 1000:
        hundreds, rest = divmod(number, 100)
        return f"{_ONES[hundreds]} hundred" + (f" {spell(rest)}" if rest else "")
    thousands, rest = divmod(number, 1000)
    return f"{spell(thousands)} thousand" + (f" {spell(rest)}" if rest else "")


def normalise(text: str) -> str:
    """Lowercase words without punctuation, numbers spelled out, for word error rates.

    Digits become words ("7:30" -> "seven thirty", "1, 2, 3" -> "one two three"), so a model
    writing numerals is not charged for it; digits run together ("12345") stay one number,
    as wrong as they are. Numbers of a million or more are left as digits.
    """
    text = text.lower().replace("-", " ")
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 1,000 -> 1000
    text = re.sub(r"\d+", lambda m: f" {spell(int(m[0]))} " if int(m[0]) < 1_000_000 else m[0], text)
    return " ".join(re.sub(r"[^\w\s']", " ", text).split())


def wer(reference: str, hypothesis: str) -> float:
    import jiwer

    return float(jiwer.wer(normalise(reference), normalise(hypothesis) or "<empty>"))
