"""Operators' routes (a per-admin token): idempotency-enforcement toggles."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations, which name
# a dependency defined inside toggles_router.

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine

from engine.api.dependencies import admin_dependency
from engine.api.errors import problem_responses
from engine.payments.toggles import audit_trail, current_modes, policy_notes, set_mode
from engine.payments.validation import TEXT_PATTERN


class ToggleChange(BaseModel):
    """The actor is the admin whose token made the request, never a field of the body."""

    model_config = ConfigDict(extra="forbid")
    mode: Literal["off", "shadow", "enforce"]
    method_type: str = Field(default="*", max_length=16)  # checked by set_mode, by name
    merchant_id: str = Field(default="*", pattern=r"^(\*|[A-Za-z0-9_-]{1,64})$")
    reason: str = Field(min_length=1, max_length=255, pattern=TEXT_PATTERN)


def toggles_router(engine: Engine, providers: list[str]) -> APIRouter:
    router = APIRouter()
    Admin = Annotated[str, Depends(admin_dependency(engine))]

    @router.get("/v1/admin/toggles", responses=problem_responses(401))
    def get_toggles(_admin: Admin) -> dict[str, Any]:
        return {"toggles": current_modes(engine), "audit": audit_trail(engine),
                "budget_policy": policy_notes(engine)}

    @router.put("/v1/admin/toggles/{provider}", responses=problem_responses(400, 401))
    def put_toggle(provider: str, change: ToggleChange, admin: Admin) -> dict[str, Any]:
        return set_mode(engine, provider=provider, mode=change.mode, actor=admin,
                        known_providers=providers, method_type=change.method_type,
                        merchant_id=change.merchant_id,
                        reason=change.reason)

    return router
