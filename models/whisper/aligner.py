"""Token times for decoded windows: the alignment heads' cross-attention, from transformers on the same weights.

vLLM does not expose attention, so for requests that ask for word timestamps the window's audio
and its decoded text run once more through transformers' Whisper (loaded on first use), as
OpenAI's reference does after decoding. Jobs of concurrent windows are run together, in one
worker thread: the event loop never waits on PyTorch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models import stages
from models.compute import device, torch_dtype
from models.whisper.timing import alignment_matrix, dtw, token_times

log = logging.getLogger("speech_gateway.whisper.aligner")

# Windows run in one forward pass (on a CPU a larger batch saves nothing; on a GPU it does).
MAX_BATCH = 8


@dataclass
class Job:
    """One window: its audio, the decoder input (prefix, text tokens, end-of-text) and where the text starts."""

    samples: np.ndarray
    token_ids: list[int]
    prefix: int
    future: asyncio.Future[np.ndarray] = field(repr=False)


class Aligner:
    """Token times of decoded windows, computed off the event loop, batched across windows."""

    def __init__(self, model_dir: Path, heads: Sequence[tuple[int, int]], dtype: str, checkpoint_dtype: str | None):
        self.model_dir = model_dir
        self.heads = [(int(layer), int(head)) for layer, head in heads]
        self._dtype = dtype
        self._checkpoint_dtype = checkpoint_dtype
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="align")
        self._model: Any = None
        self._extractor: Any = None
        self._queue: list[Job] = []
        self._runner: asyncio.Task[None] | None = None

    async def load(self) -> None:
        """Load the model now (in the worker thread), so that its files may go once this returns."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._load)

    async def token_starts(
        self, samples: np.ndarray, prefix: Sequence[int], text: Sequence[int], eot: int
    ) -> np.ndarray:
        """Seconds into `samples` at which each text token, then end-of-text, begins."""
        loop = asyncio.get_running_loop()
        job = Job(samples, [*prefix, *text, eot], len(prefix), loop.create_future())
        self._queue.append(job)
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._drain())
        with stages.stage("align"):  # the wait for its batch included: the request waits as long
            return await job.future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            batch = [job for job in self._queue[:MAX_BATCH] if not job.future.done()]
            del self._queue[:MAX_BATCH]
            if not batch:
                continue
            try:
                results = await loop.run_in_executor(self._executor, self._run, batch)
            except Exception as error:  # the requests that asked fail; the server goes on
                log.exception("word alignment failed")
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(error)
                continue
            for job, result in zip(batch, results, strict=True):
                if not job.future.done():
                    job.future.set_result(result)

    # -- in the worker thread -------------------------------------------------------------------
    def _load(self) -> None:
        # Only the one worker thread gets here: no lock needed.
        if self._model is not None:
            return
        from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        dtype = torch_dtype(self._dtype, self._checkpoint_dtype)
        model = WhisperForConditionalGeneration.from_pretrained(
            str(self.model_dir), dtype=dtype, attn_implementation="sdpa"
        ).model
        _decoder_attention_in_the_open(model.decoder)
        self._model = model.eval().to(device())
        self._extractor = WhisperFeatureExtractor.from_pretrained(str(self.model_dir))
        dtw(np.zeros((2, 2), dtype=np.float32))  # compiled here, not in a request's time
        log.info("word alignment model loaded (%s, %s)", dtype, self._model.device)

    def _run(self, batch: list[Job]) -> list[np.ndarray]:
        import torch

        self._load()
        model = self._model
        features = self._extractor(
            [job.samples for job in batch],
            sampling_rate=self._extractor.sampling_rate,
            return_tensors="pt",
            device=str(model.device),  # on a GPU, the spectrograms too
        ).input_features
        longest = max(len(job.token_ids) for job in batch)
        # Padding after the end-of-text changes nothing before it: the decoder is causal.
        ids = torch.tensor([job.token_ids + [job.token_ids[-1]] * (longest - len(job.token_ids)) for job in batch])
        with torch.inference_mode():
            encoded = model.encoder(features.to(model.device, model.dtype)).last_hidden_state
            with _heads_kept(model.decoder, self.heads) as kept:
                model.decoder(input_ids=ids.to(model.device), encoder_hidden_states=encoded)
            hop = self._extractor.hop_length
            matrices = []
            for b, job in enumerate(batch):
                attention = torch.cat([weights[b, :, : len(job.token_ids)] for weights in kept])
                # Rows from the last prefix token (it predicts the first text token) to the last text token.
                rows = slice(job.prefix - 1, len(job.token_ids) - 1)
                matrices.append(alignment_matrix(attention, len(job.samples) // hop, rows))
        return [token_times(matrix) for matrix in matrices]


@contextlib.contextmanager
def _heads_kept(decoder: Any, heads: Sequence[tuple[int, int]]) -> Iterator[list[Any]]:
    """The alignment heads' cross-attention of the next decoder pass, one tensor per layer
    (batch, its heads, positions, frames). Only those heads are kept: asking the decoder for all
    its attentions would hold every layer and head at once (gigabytes for large-v3 in a batch)."""
    by_layer: dict[int, list[int]] = {}
    for layer, head in heads:
        by_layer.setdefault(layer, []).append(head)
    kept: list[Any] = []

    def keeper(wanted: list[int]) -> Callable[..., None]:
        def hook(module: Any, inputs: Any, output: Any) -> None:
            kept.append(output[1][:, wanted])

        return hook

    handles = [
        decoder.layers[layer].encoder_attn.register_forward_hook(keeper(wanted)) for layer, wanted in by_layer.items()
    ]
    try:
        yield kept
    finally:
        for handle in handles:
            handle.remove()


def _decoder_attention_in_the_open(decoder: Any) -> None:
    """The decoder's attention computed step by step, so it hands back its weights; the encoder,
    where the time goes, keeps the fused kernel (measured: 0.65 s -> 0.45 s per window, Whisper base)."""
    import copy

    config = copy.copy(decoder.config)
    config._attn_implementation = "eager"
    decoder.config = config
    for layer in decoder.layers:
        layer.self_attn.config = config
        layer.encoder_attn.config = config
