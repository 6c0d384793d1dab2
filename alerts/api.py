"""Admin HTTP routes for silences (create, list, expire), mounted on the payment API through
the wiring package (paysignal.api) and guarded by its admin token."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine

from engine.api.problems import problem

_TEXT = r"^[^\x00-\x1f\x7f]+$"


class SilenceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    matchers: list[str] = Field(min_length=1, max_length=20)
    author: str = Field(min_length=1, max_length=128, pattern=_TEXT)
    comment: str = Field(min_length=1, max_length=1000, pattern=_TEXT)
    duration: str = Field(default="1h", pattern=r"^\d{1,6}(s|m|h|d|w)$")


def register(app: FastAPI, engine: Engine, admin: Callable[..., None],
             responses: Callable[..., dict[int | str, dict[str, Any]]]) -> None:
    from alerts.pipeline import (
        SilenceNotFoundError,
        active_silences,
        create_silence,
        expire_silence,
    )
    from alerts.routing import parse_duration

    @app.get("/v1/admin/silences", dependencies=[Depends(admin)], responses=responses(401))
    def list_silences() -> dict[str, Any]:
        rows = active_silences(engine, datetime.now(UTC))
        return {"silences": [{**r, "starts_at": str(r["starts_at"]),
                              "ends_at": str(r["ends_at"])} for r in rows]}

    @app.post("/v1/admin/silences", dependencies=[Depends(admin)], status_code=201,
              responses=responses(400, 401))
    def post_silence(body: SilenceRequest) -> dict[str, Any]:
        row = create_silence(engine, body.matchers, author=body.author, comment=body.comment,
                             duration=parse_duration(body.duration, "request", "duration"))
        return {**row, "starts_at": str(row["starts_at"]), "ends_at": str(row["ends_at"])}

    @app.delete("/v1/admin/silences/{silence_id}", dependencies=[Depends(admin)],
                responses=responses(401, 404))
    def delete_silence(silence_id: str, by: str) -> Any:
        try:
            expire_silence(engine, silence_id, by=by[:128])
        except SilenceNotFoundError:
            return problem("not-found", "no such silence")
        return JSONResponse({"expired": silence_id})
