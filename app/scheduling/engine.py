"""The vLLM engine in this process: start `AsyncLLM` from settings, generate, abort, health.

This is the only module that imports vLLM. Requests and results cross it as the plain
dataclasses of `models.interface`.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any, cast

from vllm import SamplingParams
from vllm.engine.arg_utils import AsyncEngineArgs
from vllm.lora.request import LoRARequest
from vllm.platforms import current_platform
from vllm.sampling_params import RequestOutputKind
from vllm.v1.engine.async_llm import AsyncLLM
from vllm.v1.sample.logits_processor import AdapterLogitsProcessor

from app.ops.logs import DtypeCastNotes
from config import ModelSpec, Settings, environment
from models.compute import cpu_has_bf16
from models.interface import GenerationRequest, GenerationResult

log = logging.getLogger("speech_gateway.engine")

CPU_MEMORY_SHARE = 0.35
GPU_MEMORY_SHARE = 0.9
# Only factories inside the model families may be named by a request's logits rule.
RULE_PACKAGE = "models."
# vLLM warns once per weight whose stored dtype differs from the engine's: 167 lines at each start
# when the embedded float16 checkpoint runs in bfloat16 (what `auto` is on a CPU with bfloat16
# arithmetic). That cast is the dtype the settings chose, so those lines say nothing.
WEIGHT_CAST_LOGGER = "vllm.model_executor.models.utils"
WEIGHT_CAST_NOTE = "Attempted to load weight %s with dtype %s into parameter with dtype %s"


def quiet_weight_casts() -> None:
    """Drop vLLM's per-weight note on floating-point casts in this process (once)."""
    logger = logging.getLogger(WEIGHT_CAST_LOGGER)
    if not any(isinstance(f, DtypeCastNotes) for f in logger.filters):
        logger.addFilter(DtypeCastNotes(WEIGHT_CAST_NOTE))


# On import: the engine's processes (spawned) import this module as they unpickle their
# configuration, which names `ModelLogitsRules`, before they load any weight.
quiet_weight_casts()


@cache
def rule_factory(name: str) -> Callable[[Mapping[str, Any]], Any]:
    """The factory "module:function" that builds a family's per-request logits rule."""
    module_name, _, attribute = name.partition(":")
    if not module_name.startswith(RULE_PACKAGE) or not attribute:
        raise ValueError(f"logits rule {name!r} is not a 'models.<module>:<factory>' name")
    factory: Callable[[Mapping[str, Any]], Any] = getattr(importlib.import_module(module_name), attribute)
    return factory


class ModelLogitsRules(AdapterLogitsProcessor):
    """Applies a request's logits rule (named by the family, built in this process) to its row of logits."""

    def is_argmax_invariant(self) -> bool:
        return False

    def new_req_logits_processor(self, params: SamplingParams) -> Any:
        spec = (params.extra_args or {}).get("logits_rule")
        if not spec:
            return None
        name, args = spec
        return rule_factory(name)(args)


def resolve_dtype(requested: str) -> str:
    """`auto` on a CPU with bfloat16 arithmetic is bfloat16 (measured 1.4x faster than float32)."""
    if requested != "auto":
        return requested
    if current_platform.is_cpu():
        return "bfloat16" if cpu_has_bf16() else "float32"
    return "auto"


def engine_args(
    settings: Settings,
    model_dir: Path,
    family_args: Mapping[str, Any] | None = None,
    spec: ModelSpec | None = None,
) -> AsyncEngineArgs:
    """The model's engine arguments (`spec`, default: the settings' one model), then the family's (they win).

    vLLM's parallelism arguments pass through as the settings name them: vLLM (and Ray) distribute.
    """
    spec = spec or settings.served_models()[0]
    share = spec.gpu_memory_utilization
    if share is None:
        share = CPU_MEMORY_SHARE if current_platform.is_cpu() else GPU_MEMORY_SHARE
    kwargs: dict[str, Any] = {
        "model": str(model_dir),
        "dtype": resolve_dtype(spec.dtype),
        "gpu_memory_utilization": share,
        "enforce_eager": spec.enforce_eager,
        **spec.parallel_args(),
        "logits_processors": [ModelLogitsRules],
        "disable_log_stats": True,
        "seed": 0,
    }
    if spec.max_model_len:
        kwargs["max_model_len"] = spec.max_model_len
    if spec.max_num_seqs:
        kwargs["max_num_seqs"] = spec.max_num_seqs
    kwargs.update(family_args or {})
    if spec.model_impl != "auto":
        kwargs["model_impl"] = spec.model_impl
    return AsyncEngineArgs(**kwargs)


# Sampling (temperature above 0: a model's fallback, or the client's own) draws from a generator of the
# request's own, seeded: vLLM's shared one would make an answer depend on what else sampled before it.
SAMPLING_SEED = 0


def sampling_params(request: GenerationRequest, stream: bool = False) -> SamplingParams:
    seed = request.seed if request.seed is not None or request.temperature == 0 else SAMPLING_SEED
    extra = {"logits_rule": [request.logits_rule[0], dict(request.logits_rule[1])]} if request.logits_rule else None
    token_ids = list(request.logprob_token_ids) if request.logprob_token_ids else None
    return SamplingParams(
        max_tokens=request.max_tokens,
        temperature=request.temperature,
        # With explicit ids vLLM returns those plus the sampled token; without, top-0 = sampled only.
        logprobs=None if token_ids else (0 if request.sample_logprobs else None),
        logprob_token_ids=token_ids,
        prompt_logprobs=request.prompt_logprobs,
        allowed_token_ids=list(request.allowed_token_ids) if request.allowed_token_ids else None,
        repetition_penalty=request.repetition_penalty,
        extra_args=extra,
        seed=seed,
        skip_special_tokens=False,
        detokenize=False,
        output_kind=RequestOutputKind.CUMULATIVE if stream else RequestOutputKind.FINAL_ONLY,
    )


def lora(request: GenerationRequest) -> LoRARequest | None:
    return _lora_request(request.adapter) if request.adapter else None


@cache
def _lora_request(directory: str) -> LoRARequest:
    # One id per adapter directory for the engine's life (ids start at 1).
    return LoRARequest(Path(directory).name or "adapter", _lora_request.cache_info().currsize + 1, directory)


def _result(output: Any, request: GenerationRequest, with_prompt: bool = True) -> GenerationResult:
    """The plain result; `with_prompt` False skips the prompt's ids and rows (a stream's partial results)."""
    completion = output.outputs[0]
    token_ids = list(completion.token_ids)
    steps: Sequence[dict[int, Any]] = completion.logprobs or []
    token_logprobs = [float(step[t].logprob) for t, step in zip(token_ids, steps, strict=False) if t in step]
    wanted = set(request.logprob_token_ids or ())
    step_logprobs = (
        [{t: float(lp.logprob) for t, lp in step.items() if t in wanted} for step in steps] if wanted else []
    )
    prompt_rows = [
        None if row is None else {t: float(lp.logprob) for t, lp in row.items()}
        for row in ((output.prompt_logprobs or []) if with_prompt else [])
    ]
    return GenerationResult(
        token_ids=token_ids,
        text=completion.text or "",
        token_logprobs=token_logprobs,
        step_logprobs=step_logprobs,
        prompt_logprobs=prompt_rows,
        finish_reason=completion.finish_reason,
        prompt_token_ids=list(output.prompt_token_ids or []) if with_prompt else [],
    )


class VllmEngine:
    """One `AsyncLLM` owned by the gateway."""

    def __init__(self, llm: AsyncLLM) -> None:
        self._llm = llm
        self._closed = False
        # Calls in flight, counted from the moment they are made: vLLM counts a request only once
        # its input is processed, and requests arriving in that gap would each find it idle.
        self._in_flight = 0

    @classmethod
    def start(
        cls,
        settings: Settings,
        model_dir: Path,
        family_args: Mapping[str, Any] | None = None,
        spec: ModelSpec | None = None,
    ) -> VllmEngine:
        """Build the engine (blocking: loads weights, profiles memory, may compile).

        Engines start one after another: each one's processes see its own environment (devices).
        """
        args = engine_args(settings, model_dir, family_args, spec)
        log.info(
            "starting vLLM engine for %s (dtype=%s, tensor_parallel=%d, pipeline_parallel=%d, data_parallel=%d)",
            model_dir,
            args.dtype,
            args.tensor_parallel_size,
            args.pipeline_parallel_size,
            args.data_parallel_size,
        )
        with environment.applied(environment.engine_environment(settings, spec)):
            return cls(AsyncLLM.from_engine_args(args))

    async def generate(self, request: GenerationRequest, request_id: str) -> GenerationResult:
        """Run one request to completion; cancelling the caller aborts it in the engine."""
        final = None
        self._in_flight += 1
        try:
            async for output in self._llm.generate(
                cast(Any, dict(request.prompt)), sampling_params(request), request_id, lora_request=lora(request)
            ):
                final = output
        except asyncio.CancelledError:
            await asyncio.shield(self._llm.abort(request_id))
            raise
        finally:
            self._in_flight -= 1
        if final is None:
            raise RuntimeError(f"engine returned no output for {request_id}")
        return _result(final, request)

    async def stream(self, request: GenerationRequest, request_id: str) -> AsyncGenerator[GenerationResult, None]:
        """Cumulative results as tokens arrive; closing or cancelling the consumer aborts it."""
        finished = False
        self._in_flight += 1
        try:
            async for output in self._llm.generate(
                cast(Any, dict(request.prompt)),
                sampling_params(request, stream=True),
                request_id,
                lora_request=lora(request),
            ):
                finished = bool(output.finished)
                # The prompt is the same at every step: copy it once, with the last result.
                yield _result(output, request, with_prompt=finished)
        finally:
            self._in_flight -= 1
            if not finished:
                await asyncio.shield(self._llm.abort(request_id))

    def pending(self) -> int:
        """Engine requests not yet finished: running, queued, or still having their input processed."""
        return max(self._in_flight, int(self._llm.get_num_unfinished_requests()))

    async def abort(self, request_ids: Sequence[str]) -> None:
        await self._llm.abort(list(request_ids))

    async def check_health(self) -> bool:
        if self._closed or self._llm.errored:
            return False
        try:
            await self._llm.check_health()
        except Exception:
            return False
        return True

    def shutdown(self) -> None:
        if not self._closed:
            self._closed = True
            self._llm.shutdown()
