"""Operators' routes (only with PAYSIGNAL_ADMIN_TOKEN set): idempotency-enforcement toggles."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine

from engine.api.dependencies import require_admin
from engine.api.errors import problem_responses
from engine.payments.toggles import audit_trail, current_modes, set_mode
from engine.payments.validation import TEXT_PATTERN


class ToggleChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["off", "shadow", "enforce"]
    actor: str = Field(min_length=1, max_length=128, pattern=TEXT_PATTERN)
    payment_method: str = Field(default="*", pattern=r"^(\*|[A-Za-z0-9_-]{1,64})$")
    reason: str = Field(default="", max_length=255, pattern=r"^[^\x00-\x1f\x7f]*$")


def toggles_router(engine: Engine, providers: list[str]) -> APIRouter:
    router = APIRouter(dependencies=[Depends(require_admin)])

    @router.get("/v1/admin/toggles", responses=problem_responses(401))
    def get_toggles() -> dict[str, Any]:
        return {"toggles": current_modes(engine), "audit": audit_trail(engine)}

    @router.put("/v1/admin/toggles/{provider}", responses=problem_responses(400, 401))
    def put_toggle(provider: str, change: ToggleChange) -> dict[str, Any]:
        return set_mode(engine, provider=provider, mode=change.mode, actor=change.actor,
                        known_providers=providers, payment_method=change.payment_method,
                        reason=change.reason)

    return router
