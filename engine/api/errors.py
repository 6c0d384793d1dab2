"""Every error the API returns is problem+json (engine.api.problems), never a stack trace."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from sqlalchemy.exc import DataError, SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from engine.api.problems import PROBLEM_JSON, problem, problem_for
from engine.exceptions import PaysignalError

log = logging.getLogger("paysignal.api")


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] | None = None


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these status codes: problem+json bodies."""
    return {c: {"model": Problem, "content": {PROBLEM_JSON: {}}} for c in codes}


class UnauthorizedError(Exception):
    """No valid API key (or admin token) came with the request."""


class MissingIdempotencyKeyError(Exception):
    """A POST came without an Idempotency-Key header."""


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(PaysignalError, _engine_error)
    app.add_exception_handler(DataError, _unstorable)
    app.add_exception_handler(SQLAlchemyError, _database)
    app.add_exception_handler(UnauthorizedError, _unauthorized)
    app.add_exception_handler(MissingIdempotencyKeyError, _missing_key)
    app.add_exception_handler(Exception, _unexpected)


async def _invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "header", "path")]
        field = ".".join(loc) or "body"
        if field == "Idempotency-Key" and err.get("type") == "missing":
            return await _missing_key(request, MissingIdempotencyKeyError())
        errors.append({"field": field, "reason": err.get("msg", "invalid")})
    return problem("validation-error", "the request is not valid", errors=errors)


async def _http(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return problem("not-found", "no such resource")
    if exc.status_code == 405:
        return problem("method-not-allowed", "this method is not allowed here")
    return problem("validation-error", str(exc.detail))


async def _engine_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PaysignalError)
    return problem_for(exc) or problem("internal-error", "the request could not be completed")


async def _unstorable(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DataError)
    log.warning("database refused a value: %s", type(exc.orig).__name__)
    return problem("validation-error", "a value in the request cannot be stored")


async def _database(_request: Request, exc: Exception) -> Response:
    log.error("database error: %s", type(exc).__name__)
    return problem("service-unavailable", "the database is not reachable; retry with the "
                   "same Idempotency-Key", headers={"Retry-After": "5"})


async def _unauthorized(_request: Request, _exc: Exception) -> Response:
    return problem("unauthorized", "send 'Authorization: Bearer <API key>'",
                   headers={"WWW-Authenticate": "Bearer"})


async def _missing_key(_request: Request, _exc: Exception) -> Response:
    return problem("idempotency-key-missing", "every POST needs an Idempotency-Key header",
                   errors=[{"field": "Idempotency-Key", "reason": "is required"}])


async def _unexpected(_request: Request, exc: Exception) -> Response:
    log.error("unexpected error: %s", type(exc).__name__)
    return problem("internal-error", "the request could not be completed; retry with the "
                   "same Idempotency-Key")
