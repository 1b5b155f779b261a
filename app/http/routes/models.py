"""`GET /v1/models`: the served model and its aliases, as OpenAI lists models."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from app.http.errors import model_not_found
from app.http.protocol import ModelCard, ModelList
from app.state import Runtime, get_runtime

router = APIRouter(prefix="/v1", tags=["models"])


def _cards(runtime: Runtime) -> list[ModelCard]:
    return [ModelCard(id=name, created=runtime.created) for name in (runtime.served_name, *runtime.aliases)]


@router.get("/models")
async def list_models(runtime: Annotated[Runtime, Depends(get_runtime)]) -> ModelList:
    return ModelList(data=_cards(runtime))


@router.get("/models/{model_id:path}")
async def get_model(model_id: str, runtime: Annotated[Runtime, Depends(get_runtime)]) -> ModelCard:
    for card in _cards(runtime):
        if card.id == model_id:
            return card
    raise model_not_found(model_id)
