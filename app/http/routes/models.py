"""`GET /v1/models`: every served model and its aliases, as OpenAI lists models."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from app.http.errors import model_not_found
from app.http.protocol import ModelCard, ModelList
from app.state import Served, get_served

router = APIRouter(prefix="/v1", tags=["models"])


def _cards(served: Served) -> list[ModelCard]:
    return [
        ModelCard(id=name, created=runtime.created)
        for runtime in served.runtimes
        for name in (runtime.served_name, *runtime.aliases)
    ]


@router.get("/models")
async def list_models(served: Annotated[Served, Depends(get_served)]) -> ModelList:
    return ModelList(data=_cards(served))


@router.get("/models/{model_id:path}")
async def get_model(model_id: str, served: Annotated[Served, Depends(get_served)]) -> ModelCard:
    for card in _cards(served):
        if card.id == model_id:
            return card
    raise model_not_found(model_id)
