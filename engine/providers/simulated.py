"""Three simulated providers, each with its own vocabulary, mapped to the normalized outcome.

Behaviour is decided by a seeded RNG per (provider, operation, request id, call number), so a
run replays exactly. Each provider keeps its own book of what it actually did, so tests can
count real duplicate charges independently of the engine.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine, insert, select

from engine.domain.money import Money
from engine.domain.operations import Operation
from engine.exceptions import ValidationError
from engine.providers.base import (
    Acknowledgement,
    MalformedNotificationError,
    OutcomeKind,
    ParsedNotification,
    ProviderOutcome,
    ProviderRequest,
    RawResponse,
    WebhookSignatureError,
)
from engine.providers.config import webhook_secret_variable, webhook_secrets
from engine.providers.faults import PROFILES, FaultProfile, Faults
from engine.storage.tables import sim_provider_operations as ops_table

# Documented test tokens: the payment_method values the simulated providers understand.
TEST_TOKENS: dict[str, str] = {
    "tok_approve": "approved, subject to the fault profile",
    "tok_decline_insufficient_funds": "declined: insufficient_funds",
    "tok_decline_do_not_honor": "declined: do_not_honor",
    "tok_timeout_after_charge": "charges, then the response times out (outcome unknown)",
    "tok_timeout_before_charge": "times out without charging (outcome unknown)",
    "tok_server_error": "always a retryable 5xx; nothing is charged",
    "tok_unknown_forever": "charges, times out, and status lookups are unavailable",
}
DECLINE_REASONS = ("insufficient_funds", "do_not_honor", "expired_card", "suspected_fraud")
_PAN_LIKE = re.compile(r"^\d[\d -]{11,22}$")

# What happened at the provider, in neutral words (the book's status column).
DONE, DECLINED, ERROR, TIMEOUT_DONE, TIMEOUT_NONE = (
    "done", "declined", "error", "timeout_done", "timeout_none")
# tok_unknown_forever: charged, timed out, and the provider never answers a lookup about it. Kept
# in the book (not in memory) so every process that asks sees the same silence.
TIMEOUT_SILENT = "timeout_silent"
HAPPENED = (DONE, TIMEOUT_DONE, TIMEOUT_SILENT)
TIMED_OUT = (TIMEOUT_DONE, TIMEOUT_NONE, TIMEOUT_SILENT)


def validate_payment_method(token: object) -> str:
    if not isinstance(token, str) or not token:
        raise ValidationError("payment_method", "must be a payment-method token such as tok_approve")
    if _PAN_LIKE.match(token):
        raise ValidationError("payment_method", "must be a token; card numbers are never accepted")
    if not token.startswith("tok_") or len(token) > 64:
        raise ValidationError("payment_method", "must be a token starting with 'tok_' "
                              "(at most 64 characters)")
    return token


@dataclass(frozen=True, slots=True)
class BookEntry:
    provider: str
    request_id: str
    payment_ref: str
    operation: str
    amount_minor: int
    currency: str
    provider_reference: str
    status: str


class ProviderBook(Protocol):
    def record(self, entry: BookEntry) -> None: ...
    def calls(self, provider: str, request_id: str) -> list[BookEntry]: ...
    def charges(self) -> list[BookEntry]: ...


class InMemoryBook:
    def __init__(self) -> None:
        self._by_request: dict[tuple[str, str], list[BookEntry]] = {}
        self._charges: list[BookEntry] = []
        self._lock = threading.Lock()

    def record(self, entry: BookEntry) -> None:
        with self._lock:
            self._by_request.setdefault((entry.provider, entry.request_id), []).append(entry)
            if entry.operation == Operation.AUTHORIZE and entry.status in HAPPENED:
                self._charges.append(entry)

    def calls(self, provider: str, request_id: str) -> list[BookEntry]:
        with self._lock:
            return list(self._by_request.get((provider, request_id), ()))

    def charges(self) -> list[BookEntry]:
        with self._lock:
            return list(self._charges)


class SqlBook:
    """The providers' book in its own table, committed independently of the engine's work."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(self, entry: BookEntry) -> None:
        with self._engine.begin() as conn:
            conn.execute(insert(ops_table).values(
                provider=entry.provider, request_id=entry.request_id,
                payment_ref=entry.payment_ref, operation=entry.operation,
                amount_minor=entry.amount_minor, currency=entry.currency,
                provider_reference=entry.provider_reference, status=entry.status,
                at=datetime.now(UTC)))

    def _rows(self, *where: Any) -> list[BookEntry]:
        cols = [ops_table.c[n] for n in BookEntry.__slots__]
        with self._engine.connect() as conn:
            rows = conn.execute(select(*cols).where(*where).order_by(ops_table.c.id)).all()
        return [BookEntry(*r) for r in rows]

    def calls(self, provider: str, request_id: str) -> list[BookEntry]:
        return self._rows(ops_table.c.provider == provider, ops_table.c.request_id == request_id)

    def charges(self) -> list[BookEntry]:
        return self._rows(ops_table.c.operation == Operation.AUTHORIZE.value,
                          ops_table.c.status.in_(HAPPENED))



@dataclass(frozen=True, slots=True)
class Notification:
    """An asynchronous provider notification (webhook), in the provider's own words."""

    provider: str
    event_id: str
    payment_ref: str
    provider_reference: str
    body: dict[str, Any]


def duplicate_charges(book: ProviderBook) -> int:
    """Charges beyond the first per payment: money taken twice from a customer."""
    seen: dict[tuple[str, str], int] = {}
    for c in book.charges():
        seen[(c.provider, c.payment_ref)] = seen.get((c.provider, c.payment_ref), 0) + 1
    return sum(n - 1 for n in seen.values())


class SimulatedProvider:
    name = "simulated"
    honours_idempotency_keys = True
    fee_bps, fee_fixed_minor = 290, 30
    ref_prefix = "sim"

    def __init__(self, book: ProviderBook, *, seed: int = 0,
                 faults: FaultProfile | Callable[[], Faults] = PROFILES["calm"],
                 sleep: Callable[[float], None] | None = None,
                 rng_key: Callable[[str], str] = str) -> None:
        self.book = book
        self.seed = seed
        self._rng_key = rng_key  # maps a request id to the part that seeds decisions
        self._faults = faults
        self._sleep = sleep
        self.notifications: list[Notification] = []
        self._notify_lock = threading.Lock()
        self._lookups: dict[str, int] = {}
        self.until_end: Callable[[], timedelta] | None = None  # simulated timelines set this

    # --- the neutral core ----------------------------------------------------------------

    def current_faults(self) -> Faults:
        if isinstance(self._faults, FaultProfile):
            return self._faults.for_provider(self.name, self.until_end() if self.until_end
                                             else None)
        return self._faults()

    def _rng(self, *parts: object) -> random.Random:
        return random.Random("|".join(map(str, (self.seed, self.name, *parts))))

    def _reference(self, request_id: str, n: int) -> str:
        digest = hashlib.sha256(f"{self.name}|{request_id}|{n}".encode()).hexdigest()[:20]
        return f"{self.ref_prefix}_{digest}"

    def fee_for(self, amount_minor: int, currency: str = "") -> int:
        return amount_minor * self.fee_bps // 10_000 + self.fee_fixed_minor

    def _decide(self, req: ProviderRequest, faults: Faults, rng: random.Random) -> tuple[str, str | None]:
        token = req.payment_method if req.operation is Operation.AUTHORIZE else None
        forced = {
            "tok_decline_insufficient_funds": (DECLINED, "insufficient_funds"),
            "tok_decline_do_not_honor": (DECLINED, "do_not_honor"),
            "tok_timeout_after_charge": (TIMEOUT_DONE, None),
            "tok_unknown_forever": (TIMEOUT_SILENT, None),
            "tok_timeout_before_charge": (TIMEOUT_NONE, None),
            "tok_server_error": (ERROR, "server_error"),
        }
        if token in forced:
            return forced[token]
        r = rng.random()
        for status, p in ((ERROR, faults.server_error), (TIMEOUT_NONE, faults.timeout_before_charge)):
            if r < p:
                return status, "server_error" if status == ERROR else None
            r -= p
        if req.operation is Operation.AUTHORIZE and rng.random() < faults.decline:
            return DECLINED, rng.choice(DECLINE_REASONS)
        if rng.random() < faults.timeout_after_charge:
            return TIMEOUT_DONE, None
        return DONE, None

    def _latency(self, faults: Faults, rng: random.Random) -> float:
        # Log-normal-ish: mostly near the mean, a tail up to about p99.
        return min(faults.latency_p99_s * 2, rng.expovariate(1 / faults.latency_mean_s))

    def execute(self, req: ProviderRequest) -> ProviderOutcome:
        if req.operation is Operation.AUTHORIZE:
            validate_payment_method(req.payment_method)
        previous = self.book.calls(self.name, req.request_id)
        rng = self._rng(req.operation.value, self._rng_key(req.request_id), len(previous))
        faults = self.current_faults()
        latency = self._latency(faults, rng)
        if self._sleep:
            self._sleep(latency)
        replay = next((p for p in previous if p.operation == req.operation.value
                       and p.status in (*HAPPENED, DECLINED)), None)
        reason: str | None
        if self.honours_idempotency_keys and replay is not None:
            status = DONE if replay.status in HAPPENED else DECLINED
            reason = "replayed" if status == DONE else "replayed_decline"
            reference = replay.provider_reference
        else:
            status, reason = self._decide(req, faults, rng)
            reference = req.provider_reference or self._reference(req.request_id, len(previous))
            self.book.record(BookEntry(self.name, req.request_id, req.payment_ref,
                                       req.operation.value, req.amount_minor, req.currency,
                                       reference, status))
            if status in (*HAPPENED, DECLINED):
                self._notify(req, reference, status, reason, faults, rng)
        fee = self.fee_for(req.amount_minor) if req.operation is Operation.CAPTURE else 0
        raw = self.render(req, status, reason, reference, fee, latency)
        return self.normalize(raw, req.operation)

    def lookup(self, request: ProviderRequest) -> ProviderOutcome:
        operation, request_id = request.operation, request.request_id
        calls = [c for c in self.book.calls(self.name, request_id) if c.operation == operation.value]
        with self._notify_lock:
            n = self._lookups[request_id] = self._lookups.get(request_id, 0) + 1
        rng = self._rng("lookup", operation.value, self._rng_key(request_id), len(calls), n)
        done = next((c for c in calls if c.status in HAPPENED), None)
        declined = next((c for c in calls if c.status == DECLINED), None)
        unavailable = any(c.status == TIMEOUT_SILENT for c in calls) or (
            rng.random() < self.current_faults().lookup_unavailable)
        return self.normalize_lookup(self.render_lookup(done or declined, unavailable), operation)

    def _notify(self, req: ProviderRequest, reference: str, status: str, reason: str | None,
                faults: Faults, rng: random.Random) -> None:
        if status == TIMEOUT_SILENT:
            return  # this provider never tells: the payment stays unknown
        digest = hashlib.sha256((reference + req.operation.value + status).encode()).hexdigest()
        event_id = f"{self.ref_prefix}_evt_{digest[:16]}"
        body = self.render_notification(req, reference, status, reason, event_id)
        note = Notification(self.name, event_id, req.payment_ref, reference, body)
        with self._notify_lock:
            self.notifications.append(note)
            if rng.random() < faults.duplicate_notification:
                self.notifications.append(note)
            n = len(self.notifications)
            if n >= 2 and rng.random() < faults.out_of_order_notification:
                self.notifications[n - 1], self.notifications[n - 2] = (
                    self.notifications[n - 2], self.notifications[n - 1])

    def drain_notifications(self) -> list[Notification]:
        with self._notify_lock:
            out, self.notifications = self.notifications, []
        return out

    # --- the vocabulary: each provider renders and normalizes its own words ---------------

    def render(self, req: ProviderRequest, status: str, reason: str | None, reference: str,
               fee: int, latency: float) -> RawResponse:
        raise NotImplementedError

    def normalize(self, raw: RawResponse, operation: Operation) -> ProviderOutcome:
        raise NotImplementedError

    def render_lookup(self, entry: BookEntry | None, unavailable: bool) -> RawResponse:
        raise NotImplementedError

    def normalize_lookup(self, raw: RawResponse, operation: Operation) -> ProviderOutcome:
        raise NotImplementedError

    def render_notification(self, req: ProviderRequest, reference: str, status: str,
                            reason: str | None, event_id: str) -> dict[str, Any]:
        raise NotImplementedError

    # --- signed notifications ----------------------------------------------------------------

    @property
    def webhook_secrets(self) -> list[bytes]:
        """The secrets notifications may be signed with: the current one first, then (during a
        rotation) the previous one. None configured means every notification is refused."""
        return [s.encode() for s in webhook_secrets(self.name)]

    def _mac(self, timestamp: int, body: bytes, secret: bytes | None = None) -> bytes:
        if secret is None:
            if not self.webhook_secrets:
                raise WebhookSignatureError(f"no webhook secret is configured for {self.name} "
                                            f"({webhook_secret_variable(self.name)})")
            secret = self.webhook_secrets[0]
        return hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).digest()

    def sign(self, body: bytes, timestamp: int) -> dict[str, str]:
        raise NotImplementedError

    def signature_parts(self, headers: dict[str, str]) -> tuple[int, bytes]:
        """(timestamp, signature bytes) from the provider's headers; ValueError if absent."""
        raise NotImplementedError

    def verify(self, headers: dict[str, str], body: bytes, now: float,
               tolerance_s: float = 300.0) -> None:
        try:
            timestamp, given = self.signature_parts({k.lower(): v for k, v in headers.items()})
        except (KeyError, ValueError, binascii.Error):
            raise WebhookSignatureError("signature headers missing or malformed") from None
        if abs(now - timestamp) > tolerance_s:
            raise WebhookSignatureError("timestamp outside the replay window")
        secrets = self.webhook_secrets
        if not secrets:
            raise WebhookSignatureError(f"no webhook secret is configured for {self.name}")
        if not any(hmac.compare_digest(given, self._mac(timestamp, body, s)) for s in secrets):
            raise WebhookSignatureError("signature does not match")

    def parse_notification(self, body: dict[str, Any]) -> ParsedNotification:
        raise NotImplementedError

    def verify_notifications(self, headers: dict[str, str], body: bytes, now: float,
                             tolerance_s: float) -> list[ParsedNotification]:
        self.verify(headers, body, now, tolerance_s)
        try:
            note = self.parse_notification(json.loads(body))
            sent_at = self.signature_parts({k.lower(): v for k, v in headers.items()})[0]
        except Exception:  # signed but not in the provider's format, however it fails
            raise MalformedNotificationError(f"not in {self.name}'s format") from None
        return [replace(note, sent_at=float(sent_at))]

    def acknowledgement(self) -> Acknowledgement:
        return Acknowledgement()

    def validate_payment_method(self, value: object) -> str:
        return validate_payment_method(value)

    def signed(self, note: Notification, timestamp: int) -> tuple[dict[str, str], bytes]:
        body = json.dumps(note.body).encode()
        return self.sign(body, timestamp), body


def _timeout(latency: float) -> RawResponse:
    return RawResponse(None, {}, latency)


class Northwind(SimulatedProvider):
    """A modern card API: lower-case JSON statuses, integer minor units, Idempotency-Key honoured."""

    name, ref_prefix, honours_idempotency_keys = "northwind", "ch", True
    fee_bps, fee_fixed_minor = 290, 30
    _STATUS = {Operation.AUTHORIZE: "requires_capture", Operation.CAPTURE: "succeeded",
               Operation.VOID: "canceled", Operation.REFUND: "refunded"}

    def render(self, req: ProviderRequest, status: str, reason: str | None, reference: str,
               fee: int, latency: float) -> RawResponse:
        if status in TIMED_OUT:
            return _timeout(latency)
        if status == ERROR:
            return RawResponse(503, {"error": {"type": "api_error",
                                               "message": "upstream unavailable"}}, latency)
        if status == DECLINED:
            return RawResponse(402, {"error": {"type": "card_error", "code": "card_declined",
                                               "decline_code": reason}}, latency)
        body = {"object": "charge", "id": reference, "status": self._STATUS[req.operation],
                "amount": req.amount_minor, "currency": req.currency.lower()}
        if fee:
            body["balance_transaction"] = {"fee": fee}
        return RawResponse(200, body, latency)

    def normalize(self, raw: RawResponse, operation: Operation) -> ProviderOutcome:
        if raw.http_status is None:
            return ProviderOutcome(OutcomeKind.UNKNOWN, "timeout", latency_s=raw.latency_s)
        if raw.http_status >= 500 or raw.http_status == 429:
            return ProviderOutcome(OutcomeKind.RETRYABLE, raw.body["error"]["type"],
                                   latency_s=raw.latency_s)
        if raw.http_status == 402:
            err = raw.body["error"]
            return ProviderOutcome(OutcomeKind.DECLINED, err["code"], reason=err.get("decline_code"),
                                   latency_s=raw.latency_s)
        fee = int(raw.body.get("balance_transaction", {}).get("fee", 0))
        return ProviderOutcome(OutcomeKind.SUCCEEDED, raw.body["status"], raw.body["id"],
                               fee_minor=fee, latency_s=raw.latency_s)

    def render_lookup(self, entry: BookEntry | None, unavailable: bool) -> RawResponse:
        if unavailable:
            return RawResponse(503, {"error": {"type": "api_error"}})
        return RawResponse(200, {"object": "list", "data": [] if entry is None else [
            {"id": entry.provider_reference, "status": "failed" if entry.status == DECLINED
             else self._STATUS[Operation(entry.operation)], "amount": entry.amount_minor}]})

    def normalize_lookup(self, raw: RawResponse, operation: Operation) -> ProviderOutcome:
        if raw.http_status != 200:
            return ProviderOutcome(OutcomeKind.UNKNOWN, "lookup_unavailable")
        if not raw.body["data"]:
            return ProviderOutcome(OutcomeKind.NOT_FOUND, "no_such_charge")
        item = raw.body["data"][0]
        if item["status"] == "failed":
            return ProviderOutcome(OutcomeKind.DECLINED, "failed", item["id"], reason="declined")
        fee = self.fee_for(item["amount"]) if operation is Operation.CAPTURE else 0
        return ProviderOutcome(OutcomeKind.SUCCEEDED, item["status"], item["id"], fee_minor=fee)

    def render_notification(self, req: ProviderRequest, reference: str, status: str,
                            reason: str | None, event_id: str) -> dict[str, Any]:
        kind = "charge.failed" if status == DECLINED else f"charge.{self._STATUS[req.operation]}"
        return {"id": event_id, "type": kind, "data": {"object": {
            "id": reference, "amount": req.amount_minor, "currency": req.currency.lower(),
            "metadata": {"payment_id": req.payment_ref, "request_id": req.request_id}}}}

    def sign(self, body: bytes, timestamp: int) -> dict[str, str]:
        return {"Northwind-Signature": f"t={timestamp},v1={self._mac(timestamp, body).hex()}"}

    def signature_parts(self, headers: dict[str, str]) -> tuple[int, bytes]:
        parts = dict(p.split("=", 1) for p in headers["northwind-signature"].split(","))
        return int(parts["t"]), bytes.fromhex(parts["v1"])

    def parse_notification(self, body: dict[str, Any]) -> ParsedNotification:
        if body["type"] == "charge.failed":
            operation, ok = Operation.AUTHORIZE, False
        else:
            word = body["type"].removeprefix("charge.")
            operation, ok = {v: k for k, v in self._STATUS.items()}[word], True
        obj = body["data"]["object"]
        return ParsedNotification(body["id"], obj["metadata"]["payment_id"], obj["id"],
                                  operation, ok, amount_minor=obj["amount"],
                                  request_id=obj["metadata"].get("request_id"))


class Southbank(SimulatedProvider):
    """A European acquirer: CamelCase result codes, amounts as {value, currency}, keys honoured."""

    name, ref_prefix, honours_idempotency_keys = "southbank", "psp", True
    fee_bps, fee_fixed_minor = 250, 10
    _RECEIVED = {Operation.CAPTURE: "[capture-received]", Operation.VOID: "[cancel-received]",
                 Operation.REFUND: "[refund-received]"}
    _REFUSAL = {"insufficient_funds": "Not enough balance", "do_not_honor": "Refused",
                "expired_card": "Expired Card", "suspected_fraud": "FRAUD"}

    def render(self, req: ProviderRequest, status: str, reason: str | None, reference: str,
               fee: int, latency: float) -> RawResponse:
        if status in TIMED_OUT:
            return _timeout(latency)
        if status == ERROR:
            return RawResponse(500, {"status": 500, "errorCode": "901", "errorType": "internal"}, latency)
        amount = {"value": req.amount_minor, "currency": req.currency}
        if req.operation is Operation.AUTHORIZE:
            if status == DECLINED:
                return RawResponse(200, {"resultCode": "Refused", "pspReference": reference,
                                         "refusalReason": self._REFUSAL[str(reason)], "amount": amount},
                                   latency)
            return RawResponse(200, {"resultCode": "Authorised", "pspReference": reference,
                                     "amount": amount}, latency)
        body = {"status": "received", "response": self._RECEIVED[req.operation],
                "pspReference": reference, "amount": amount}
        if fee:
            body["additionalData"] = {"fees": {"value": fee, "currency": req.currency}}
        return RawResponse(201, body, latency)

    def normalize(self, raw: RawResponse, operation: Operation) -> ProviderOutcome:
        if raw.http_status is None:
            return ProviderOutcome(OutcomeKind.UNKNOWN, "timeout", latency_s=raw.latency_s)
        if raw.http_status >= 500:
            return ProviderOutcome(OutcomeKind.RETRYABLE, f"errorCode {raw.body['errorCode']}",
                                   latency_s=raw.latency_s)
        body = raw.body
        if operation is Operation.AUTHORIZE:
            if body["resultCode"] == "Refused":
                reason = {v: k for k, v in self._REFUSAL.items()}.get(body["refusalReason"], "refused")
                return ProviderOutcome(OutcomeKind.DECLINED, "Refused", body["pspReference"],
                                       reason=reason, latency_s=raw.latency_s)
            return ProviderOutcome(OutcomeKind.SUCCEEDED, body["resultCode"], body["pspReference"],
                                   latency_s=raw.latency_s)
        fee = int(body.get("additionalData", {}).get("fees", {}).get("value", 0))
        return ProviderOutcome(OutcomeKind.SUCCEEDED, body["response"], body["pspReference"],
                               fee_minor=fee, latency_s=raw.latency_s)

    def render_lookup(self, entry: BookEntry | None, unavailable: bool) -> RawResponse:
        if unavailable:
            return RawResponse(500, {"status": 500, "errorCode": "901"})
        if entry is None:
            return RawResponse(422, {"status": 422, "errorCode": "167",
                                     "message": "Original pspReference required"})
        code = "Refused" if entry.status == DECLINED else "Authorised"
        return RawResponse(200, {"pspReference": entry.provider_reference, "resultCode": code,
                                 "amount": {"value": entry.amount_minor, "currency": entry.currency}})

    def normalize_lookup(self, raw: RawResponse, operation: Operation) -> ProviderOutcome:
        if raw.http_status == 500:
            return ProviderOutcome(OutcomeKind.UNKNOWN, "errorCode 901")
        if raw.http_status == 422:
            return ProviderOutcome(OutcomeKind.NOT_FOUND, "errorCode 167")
        ref = raw.body["pspReference"]
        if raw.body["resultCode"] == "Refused":
            return ProviderOutcome(OutcomeKind.DECLINED, "Refused", ref, reason="refused")
        fee = self.fee_for(raw.body["amount"]["value"]) if operation is Operation.CAPTURE else 0
        return ProviderOutcome(OutcomeKind.SUCCEEDED, raw.body["resultCode"], ref, fee_minor=fee)

    _EVENT_CODES = {Operation.AUTHORIZE: "AUTHORISATION", Operation.CAPTURE: "CAPTURE",
                    Operation.VOID: "CANCELLATION", Operation.REFUND: "REFUND"}

    def sign(self, body: bytes, timestamp: int) -> dict[str, str]:
        return {"X-Southbank-Timestamp": str(timestamp),
                "X-Southbank-Signature": base64.b64encode(self._mac(timestamp, body)).decode()}

    def signature_parts(self, headers: dict[str, str]) -> tuple[int, bytes]:
        return (int(headers["x-southbank-timestamp"]),
                base64.b64decode(headers["x-southbank-signature"], validate=True))

    def parse_notification(self, body: dict[str, Any]) -> ParsedNotification:
        item = body["notificationItems"][0]["NotificationRequestItem"]
        operation = {v: k for k, v in self._EVENT_CODES.items()}[item["eventCode"]]
        # Southbank has no event id: its pspReference, event code and success flag identify one.
        event_id = f"{item['pspReference']}:{item['eventCode']}:{item['success']}"
        return ParsedNotification(event_id, item["merchantReference"], item["pspReference"],
                                  operation, item["success"] == "true",
                                  amount_minor=item["amount"]["value"],
                                  request_id=item.get("additionalData", {}).get("requestId"))

    def render_notification(self, req: ProviderRequest, reference: str, status: str,
                            reason: str | None, event_id: str) -> dict[str, Any]:
        code = self._EVENT_CODES[req.operation]
        return {"live": "false", "notificationItems": [{"NotificationRequestItem": {
            "eventCode": code, "success": "false" if status == DECLINED else "true",
            "pspReference": reference, "merchantReference": req.payment_ref,
            "amount": {"value": req.amount_minor, "currency": req.currency},
            "additionalData": {"requestId": req.request_id}}}]}


class Eastpay(SimulatedProvider):
    """A legacy switch: ISO 8583 response codes, decimal-string amounts, NO idempotency keys."""

    name, ref_prefix, honours_idempotency_keys = "eastpay", "EP", False
    fee_bps, fee_fixed_minor = 190, 0
    _DECLINE_RC = {"insufficient_funds": "51", "do_not_honor": "05", "expired_card": "54",
                   "suspected_fraud": "59"}
    _TXN = {Operation.AUTHORIZE: "AUTH", Operation.CAPTURE: "COMPLETION",
            Operation.VOID: "REVERSAL", Operation.REFUND: "CREDIT"}

    def _amount(self, minor: int, currency: str) -> str:
        return Money(minor, currency).to_decimal_string()

    def render(self, req: ProviderRequest, status: str, reason: str | None, reference: str,
               fee: int, latency: float) -> RawResponse:
        if status in TIMED_OUT:
            return _timeout(latency)
        rc = {ERROR: "96", DONE: "00"}.get(status) or self._DECLINE_RC[str(reason)]
        body = {"rc": rc, "txn_type": self._TXN[req.operation], "txn_ref": reference,
                "amt": self._amount(req.amount_minor, req.currency), "ccy": req.currency}
        if fee:
            body["fee_amt"] = self._amount(fee, req.currency)
        return RawResponse(200, body, latency)

    def normalize(self, raw: RawResponse, operation: Operation) -> ProviderOutcome:
        if raw.http_status is None:
            return ProviderOutcome(OutcomeKind.UNKNOWN, "timeout", latency_s=raw.latency_s)
        rc = raw.body["rc"]
        if rc in ("91", "96"):
            return ProviderOutcome(OutcomeKind.RETRYABLE, f"rc={rc}", latency_s=raw.latency_s)
        if rc == "68":  # response received too late
            return ProviderOutcome(OutcomeKind.UNKNOWN, "rc=68", latency_s=raw.latency_s)
        if rc != "00":
            reason = {v: k for k, v in self._DECLINE_RC.items()}.get(rc, f"rc_{rc}")
            return ProviderOutcome(OutcomeKind.DECLINED, f"rc={rc}", raw.body["txn_ref"],
                                   reason=reason, latency_s=raw.latency_s)
        fee = (Money.from_decimal_string(raw.body["fee_amt"], raw.body["ccy"], "fee_amt").amount_minor
               if "fee_amt" in raw.body else 0)
        return ProviderOutcome(OutcomeKind.SUCCEEDED, "rc=00", raw.body["txn_ref"], fee_minor=fee,
                               latency_s=raw.latency_s)

    def render_lookup(self, entry: BookEntry | None, unavailable: bool) -> RawResponse:
        if unavailable:
            return RawResponse(200, {"rc": "91"})
        if entry is None:
            return RawResponse(200, {"rc": "25"})  # unable to locate original transaction
        rc = "05" if entry.status == DECLINED else "00"
        return RawResponse(200, {"rc": rc, "txn_ref": entry.provider_reference,
                                 "amt": self._amount(entry.amount_minor, entry.currency),
                                 "ccy": entry.currency})

    def normalize_lookup(self, raw: RawResponse, operation: Operation) -> ProviderOutcome:
        rc = raw.body["rc"]
        if rc == "91":
            return ProviderOutcome(OutcomeKind.UNKNOWN, "rc=91")
        if rc == "25":
            return ProviderOutcome(OutcomeKind.NOT_FOUND, "rc=25")
        if rc != "00":
            return ProviderOutcome(OutcomeKind.DECLINED, f"rc={rc}", raw.body["txn_ref"], reason="declined")
        fee = 0
        if operation is Operation.CAPTURE:
            fee = self.fee_for(Money.from_decimal_string(raw.body["amt"], raw.body["ccy"]).amount_minor)
        return ProviderOutcome(OutcomeKind.SUCCEEDED, "rc=00", raw.body["txn_ref"], fee_minor=fee)

    def sign(self, body: bytes, timestamp: int) -> dict[str, str]:
        return {"X-EP-Time": str(timestamp), "X-EP-MAC": self._mac(timestamp, body).hex().upper()}

    def signature_parts(self, headers: dict[str, str]) -> tuple[int, bytes]:
        return int(headers["x-ep-time"]), bytes.fromhex(headers["x-ep-mac"])

    def parse_notification(self, body: dict[str, Any]) -> ParsedNotification:
        operation = {v: k for k, v in self._TXN.items()}[body["TxnType"]]
        amount = Money.from_decimal_string(body["Amount"], body["Ccy"], "Amount").amount_minor
        return ParsedNotification(body["MsgId"], body["OrderId"], body["TxnRef"], operation,
                                  body["RC"] == "00", amount_minor=amount,
                                  request_id=body.get("ClientRef"))

    def render_notification(self, req: ProviderRequest, reference: str, status: str,
                            reason: str | None, event_id: str) -> dict[str, Any]:
        return {"MsgType": "ADVICE", "MsgId": event_id, "TxnType": self._TXN[req.operation],
                "TxnRef": reference, "ClientRef": req.request_id,
                "OrderId": req.payment_ref, "RC": "05" if status == DECLINED else "00",
                "Amount": self._amount(req.amount_minor, req.currency), "Ccy": req.currency}


PROVIDER_CLASSES: dict[str, type[SimulatedProvider]] = {
    cls.name: cls for cls in (Northwind, Southbank, Eastpay)
}


def build_simulated_providers(book: ProviderBook, *, seed: int = 0,
                              faults: FaultProfile | None = None,
                              sleep: Callable[[float], None] | None = None,
                              rng_key: Callable[[str], str] = str,
                              ) -> dict[str, SimulatedProvider]:
    return {name: cls(book, seed=seed, faults=faults or PROFILES["calm"], sleep=sleep,
                      rng_key=rng_key)
            for name, cls in PROVIDER_CLASSES.items()}
