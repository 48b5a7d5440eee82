"""Monitoring routes: pushed metric samples."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from bot.domain.monitoring.samples import SampleIn as DomainSample
from bot.domain.monitoring.samples import Samples
from bot.web.api import schemas as s
from bot.web.api.deps import Svc, Token, scoped

router = APIRouter()


@router.post("/metrics", response_model=s.SamplesOut, status_code=201, tags=["monitoring"])
def push_metrics(svc: Svc, t: Token, body: s.SamplesIn) -> Any:
    """Up to 10,000 samples per call, all recorded or none."""
    scoped(t, "metrics:write")
    recorded = Samples(svc.registry).record(
        [DomainSample(x.model, x.environment, x.metric, x.value, x.at, x.version) for x in body.samples],
        source=f"api:{t.name}",
    )
    return {"recorded": recorded}
