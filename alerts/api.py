"""Admin HTTP routes for silences (create, list, expire), mounted on the payment API by the
wiring package (paysignal.api) and guarded by the admin token."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine

from alerts.pipeline import SilenceNotFoundError, active_silences, create_silence, expire_silence
from alerts.routing import parse_duration
from engine.api.dependencies import require_admin
from engine.api.errors import problem_responses
from engine.api.problems import problem

_TEXT = r"^[^\x00-\x1f\x7f]+$"


class SilenceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    matchers: list[str] = Field(min_length=1, max_length=20)
    author: str = Field(min_length=1, max_length=128, pattern=_TEXT)
    comment: str = Field(min_length=1, max_length=1000, pattern=_TEXT)
    duration: str = Field(default="1h", pattern=r"^\d{1,6}(s|m|h|d|w)$")


def silences_router(engine: Engine) -> APIRouter:
    router = APIRouter(dependencies=[Depends(require_admin)])

    @router.get("/v1/admin/silences", responses=problem_responses(401))
    def list_silences() -> dict[str, Any]:
        rows = active_silences(engine, datetime.now(UTC))
        return {"silences": [{**r, "starts_at": str(r["starts_at"]),
                              "ends_at": str(r["ends_at"])} for r in rows]}

    @router.post("/v1/admin/silences", status_code=201, responses=problem_responses(400, 401))
    def post_silence(body: SilenceRequest) -> dict[str, Any]:
        row = create_silence(engine, body.matchers, author=body.author, comment=body.comment,
                             duration=parse_duration(body.duration, "request", "duration"))
        return {**row, "starts_at": str(row["starts_at"]), "ends_at": str(row["ends_at"])}

    @router.delete("/v1/admin/silences/{silence_id}", responses=problem_responses(401, 404))
    def delete_silence(silence_id: str, by: str) -> Any:
        try:
            expire_silence(engine, silence_id, by=by[:128])
        except SilenceNotFoundError:
            return problem("not-found", "no such silence")
        return JSONResponse({"expired": silence_id})

    return router
