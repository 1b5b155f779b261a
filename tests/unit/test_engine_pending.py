"""The engine counts a call as pending from the moment it is made, not once vLLM has processed its input."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from types import SimpleNamespace
from typing import Any, cast

from app.scheduling.engine import VllmEngine
from models.interface import GenerationRequest


class SlowInput:
    """An `AsyncLLM` whose requests spend a while in input processing before vLLM counts them."""

    def __init__(self) -> None:
        self.counted = 0
        self.release = asyncio.Event()

    def get_num_unfinished_requests(self) -> int:
        return self.counted

    async def generate(self, *args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
        await self.release.wait()  # input processing: vLLM does not count the request yet
        self.counted += 1
        completion = SimpleNamespace(token_ids=[1], logprobs=None, text="", finish_reason="stop")
        yield SimpleNamespace(outputs=[completion], prompt_logprobs=None, prompt_token_ids=[0], finished=True)
        self.counted -= 1


async def test_a_call_is_pending_before_vllm_counts_it() -> None:
    llm = SlowInput()
    engine = VllmEngine(cast(Any, llm))
    request = GenerationRequest(prompt={"prompt": "x"}, max_tokens=1)
    call = asyncio.create_task(engine.generate(request, "r1"))
    await asyncio.sleep(0)
    # Window sharing asks this to decide whether a lone clip may go at once: the engine is busy.
    assert llm.get_num_unfinished_requests() == 0 and engine.pending() == 1
    llm.release.set()
    result = await call
    assert result.token_ids == [1] and engine.pending() == 0


async def test_a_cancelled_call_is_no_longer_pending() -> None:
    llm = SlowInput()
    llm.abort = lambda ids: asyncio.sleep(0)  # type: ignore[attr-defined]
    engine = VllmEngine(cast(Any, llm))
    call = asyncio.create_task(engine.generate(GenerationRequest(prompt={"prompt": "x"}, max_tokens=1), "r2"))
    await asyncio.sleep(0)
    assert engine.pending() == 1
    call.cancel()
    await asyncio.gather(call, return_exceptions=True)
    assert engine.pending() == 0
