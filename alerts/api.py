"""Admin HTTP routes for silences (create, list, expire), mounted on the payment API by the
wiring package (paysignal.api). Each admin has a token of their own; the silence's author (or
who expired it) is that admin, never a field of the request."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations, which name
# a dependency defined inside silences_router.
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine

from alerts.pipeline import SilenceNotFoundError, active_silences, create_silence, expire_silence
from alerts.routing import RoutingConfigError, parse_duration
from engine.api.dependencies import admin_dependency
from engine.api.errors import problem_responses
from engine.api.problems import problem
from engine.exceptions import ValidationError

_TEXT = r"^[^\x00-\x1f\x7f]+$"


class SilenceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    matchers: list[str] = Field(min_length=1, max_length=20)
    comment: str = Field(min_length=1, max_length=1000, pattern=_TEXT)
    duration: str = Field(default="1h", pattern=r"^\d{1,6}(s|m|h|d|w)$",
                          description="At most 14 days")
    match_everything: bool = Field(
        default=False, description="Confirms a silence whose matchers mute every alert")


def silences_router(engine: Engine) -> APIRouter:
    router = APIRouter()
    Admin = Annotated[str, Depends(admin_dependency(engine))]

    @router.get("/v1/admin/silences", responses=problem_responses(401))
    def list_silences(_admin: Admin) -> dict[str, Any]:
        rows = active_silences(engine, datetime.now(UTC))
        return {"silences": [{**r, "starts_at": str(r["starts_at"]),
                              "ends_at": str(r["ends_at"])} for r in rows]}

    @router.post("/v1/admin/silences", status_code=201, responses=problem_responses(400, 401))
    def post_silence(body: SilenceRequest, admin: Admin) -> dict[str, Any]:
        try:
            duration = parse_duration(body.duration, "request", "duration")
        except RoutingConfigError:
            raise ValidationError("duration", "must be at most 14 days") from None
        row = create_silence(engine, body.matchers, author=admin, comment=body.comment,
                             duration=duration, match_everything=body.match_everything)
        return {**row, "starts_at": str(row["starts_at"]), "ends_at": str(row["ends_at"])}

    @router.delete("/v1/admin/silences/{silence_id}", responses=problem_responses(401, 404))
    def delete_silence(silence_id: str, admin: Admin) -> Any:
        try:
            expire_silence(engine, silence_id, by=admin)
        except SilenceNotFoundError:
            return problem("not-found", "no such silence")
        return JSONResponse({"expired": silence_id})

    return router
