"""The HTTP edge every connector shares: explicit time-outs, no retries of its own, and the one
distinction that matters for money — did the request leave?

A connect failure (refused, unreachable, no pooled connection in time) means the provider never
saw the request: `NotSent`, safe to retry. Anything after the request was handed to the socket —
a read time-out, a reset mid-response, a body that stops arriving before the total deadline —
means the provider may have acted: `MaybeSent`, an unknown outcome. The engine's retry policy
decides what to do with either; this module never retries."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import pydantic

from engine.exceptions import ConfigurationError
from engine.providers.base import OutcomeKind, ProviderOutcome


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect_s: float = 2.0
    read_s: float = 10.0
    total_s: float = 15.0

    @classmethod
    def from_environment(cls, provider: str, env: Mapping[str, str] | None = None) -> Timeouts:
        """PAYSIGNAL_<PROVIDER>_{CONNECT,READ,TOTAL}_TIMEOUT_S, each optional."""
        env = os.environ if env is None else env
        values: dict[str, float] = {}
        for part in ("connect", "read", "total"):
            name = f"PAYSIGNAL_{provider.upper()}_{part.upper()}_TIMEOUT_S"
            raw = env.get(name)
            if raw is None:
                continue
            try:
                value = float(raw)
            except ValueError:
                raise ConfigurationError(f"{name}: {raw!r} is not a number of seconds") from None
            if value <= 0:
                raise ConfigurationError(f"{name}: must be greater than zero")
            values[f"{part}_s"] = value
        return cls(**values)


class WireModel(pydantic.BaseModel):
    """A provider body as paysignal reads it: only the fields it uses, typed; anything else the
    provider adds is ignored, so a new field never breaks a payment."""

    model_config = pydantic.ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


Model = TypeVar("Model", bound=WireModel)


def read_answer(model: type[Model], body: Mapping[str, Any], what: str) -> Model:
    """A provider's answer as `model`; one that does not fit is no usable answer to a request
    that may have moved money: an unknown outcome, never a guess."""
    try:
        return model.model_validate(body)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise MaybeSent(f"{what} with {where}: {first['msg']}") from None


class NotSent(Exception):  # noqa: N818 - a fact about the request, not an error in our code
    """The request never reached the provider: nothing can have happened there."""


class MaybeSent(Exception):  # noqa: N818
    """The request left; whether the provider acted on it is unknown."""


@dataclass(frozen=True, slots=True)
class WireResponse:
    status: int
    headers: Mapping[str, str]  # lower-cased names
    body: bytes
    latency_s: float = 0.0
    _json: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    def json(self) -> dict[str, Any]:
        """The body as a JSON object; a provider that answers something else answered nonsense,
        which is an unknown outcome for anything that may have charged."""
        try:
            value = json.loads(self.body or b"{}")
        except ValueError:
            raise MaybeSent(f"HTTP {self.status} with a body that is not JSON") from None
        if not isinstance(value, dict):
            raise MaybeSent(f"HTTP {self.status} with a JSON body that is not an object")
        return value

    def retry_after_s(self) -> float | None:
        raw = self.headers.get("retry-after")
        try:
            return max(0.0, float(raw)) if raw is not None else None
        except ValueError:
            return None


def outcome_of(call: Callable[[], ProviderOutcome]) -> ProviderOutcome:
    """Run a provider call and its answer's mapping: a request that never left is retryable
    (nothing happened); one that left without a usable answer is an unknown outcome."""
    try:
        return call()
    except NotSent as exc:
        return ProviderOutcome(OutcomeKind.RETRYABLE, f"not sent: {exc}")
    except MaybeSent as exc:
        return ProviderOutcome(OutcomeKind.UNKNOWN, f"no answer: {exc}")


class WireClient:
    """One provider's HTTP client. `transport` lets the simulator mount the sandbox in process."""

    def __init__(self, base_url: str, timeouts: Timeouts,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeouts = timeouts
        self._client = httpx.Client(
            base_url=self.base_url, transport=transport or httpx.HTTPTransport(retries=0),
            timeout=httpx.Timeout(timeouts.read_s, connect=timeouts.connect_s,
                                  pool=timeouts.connect_s),
            follow_redirects=False)

    def close(self) -> None:
        self._client.close()

    def request(self, method: str, path: str, *, headers: Mapping[str, str],
                content: bytes | None = None, params: Mapping[str, str] | None = None,
                ) -> WireResponse:
        started = time.perf_counter()
        deadline = started + self.timeouts.total_s
        try:
            with self._client.stream(method, path, headers=dict(headers), content=content,
                                     params=params) as response:
                chunks = []
                for chunk in response.iter_bytes():
                    chunks.append(chunk)
                    if time.perf_counter() > deadline:
                        raise MaybeSent(f"{method} {path}: no complete answer within "
                                        f"{self.timeouts.total_s:g} s")
                return WireResponse(response.status_code,
                                    {k.lower(): v for k, v in response.headers.items()},
                                    b"".join(chunks), time.perf_counter() - started)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise NotSent(f"{method} {path}: {type(exc).__name__}") from None
        except httpx.TransportError as exc:  # read/write time-outs, resets, protocol errors
            raise MaybeSent(f"{method} {path}: {type(exc).__name__}") from None
