"""Registry routes: models, versions, history (the serving state is in serving.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from bot.domain.registry import NewVersion
from bot.web.api import schemas as s
from bot.web.api.deps import Limit, ModelName, Offset, Svc, Token, scoped

router = APIRouter()


@router.get("/models", response_model=s.ModelPage, tags=["registry"])
def list_models(svc: Svc, t: Token, offset: Offset = 0, limit: Limit = 50) -> Any:
    page = svc.registry.list_models(offset=offset, limit=limit)
    return {"total": page.total, "offset": page.offset, "models": [m.to_dict() for m in page.items]}


@router.get("/models/{model}", response_model=s.ModelOut, tags=["registry"])
def get_model(svc: Svc, t: Token, model: ModelName) -> Any:
    return svc.registry.get_model(model).to_dict()


@router.get("/models/{model}/versions", response_model=s.VersionPage, tags=["registry"])
def list_versions(svc: Svc, t: Token, model: ModelName, offset: Offset = 0, limit: Limit = 20) -> Any:
    page = svc.registry.list_versions(model, offset=offset, limit=limit)
    return {"model": svc.registry.get_model(model).name, "total": page.total, "offset": page.offset,
            "versions": [v.to_dict() for v in page.items]}


@router.post("/models/{model}/versions", response_model=s.VersionOut, status_code=201, tags=["registry"])
def register(svc: Svc, t: Token, model: ModelName, body: s.VersionIn) -> Any:
    actor = scoped(t, "versions:write")
    version = svc.registry.register(NewVersion(
        model=model, artifact_uri=body.artifact_uri, actor=actor, metrics=body.metrics, params=body.params,
        tags=body.tags, run_id=body.run_id, source=body.source, dataset_fingerprint=body.dataset_fingerprint,
        description=body.description,
    ))
    return version.to_dict()


@router.get("/models/{model}/versions/{ref}", response_model=s.VersionOut, tags=["registry"])
def show(svc: Svc, t: Token, model: ModelName,
         ref: Annotated[str, Path(min_length=1, max_length=64, examples=["latest", "2", "@staging"])]) -> Any:
    return svc.registry.show(model, ref).to_dict()


@router.get("/models/{model}/history", response_model=s.HistoryOut, tags=["registry"])
def history(svc: Svc, t: Token, model: ModelName, environment: Annotated[str | None, Query(max_length=32)] = None,
            limit: Limit = 50) -> Any:
    entries = svc.registry.history(model, environment, limit=limit)
    return {"model": svc.registry.get_model(model).name, "environment": environment,
            "events": [e.to_dict() for e in entries]}
