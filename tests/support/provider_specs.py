"""Extract, from the providers' published OpenAPI descriptions, the schemas of the operations
and notifications paysignal uses, into one compact file the conformance tests read
(tests/data/provider_specs.json), naming each source, its version and licence.

    python -m tests.support.provider_specs \\
        --adyen CheckoutService-v72.json --adyen-webhooks Webhooks-v1.json --adyen-commit SHA \\
        --paypal-orders checkout_orders_v2.json --paypal-payments payments_payment_v2.json \\
        --paypal-webhooks notifications_webhooks_v1.json --paypal-commit SHA

(from github.com/Adyen/adyen-openapi, json/, and github.com/paypal/paypal-rest-api-specifications,
openapi/). Only the component schemas the chosen operations reach are kept, their references
rewritten to `#/$defs/…`. Stripe's description (github.com/stripe/openapi) was not available to
this extraction (the snapshot holds its large files only as pointers)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "data" / "provider_specs.json"
_PREFIX = "#/components/schemas/"

# (operation name, path, method, request schema?, answer status) per provider document
ADYEN_OPERATIONS = {
    "payments": ("/payments", "200"),
    "captures": ("/payments/{paymentPspReference}/captures", "201"),
    "cancels": ("/payments/{paymentPspReference}/cancels", "201"),
    "refunds": ("/payments/{paymentPspReference}/refunds", "201"),
    "technical_cancel": ("/cancels", "201"),
}
PAYPAL_ORDERS = {"create_order": ("/v2/checkout/orders", "201")}
PAYPAL_PAYMENTS = {
    "capture_authorization": ("/v2/payments/authorizations/{authorization_id}/capture", "201"),
    "refund_capture": ("/v2/payments/captures/{capture_id}/refund", "201"),
}


def _refs(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = {value["$ref"][len(_PREFIX):]} if isinstance(value.get("$ref"), str) and (
            value["$ref"].startswith(_PREFIX)) else set()
        for item in value.values():
            found |= _refs(item)
        return found
    if isinstance(value, list):
        return set().union(*(_refs(item) for item in value)) if value else set()
    return set()


def _rewritten(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("#/$defs/" + v[len(_PREFIX):] if k == "$ref" and isinstance(v, str)
                    and v.startswith(_PREFIX) else _rewritten(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewritten(item) for item in value]
    return value


def reachable(components: Mapping[str, Any], roots: set[str]) -> dict[str, Any]:
    """The component schemas reachable from `roots`, references rewritten to `#/$defs/`."""
    kept: dict[str, Any] = {}
    todo = sorted(roots)
    while todo:
        name = todo.pop()
        if name in kept or name not in components:
            continue
        kept[name] = components[name]
        todo += sorted(_refs(components[name]) - set(kept))
    return {name: _rewritten(schema) for name, schema in sorted(kept.items())}


def _operations(spec: Mapping[str, Any], wanted: Mapping[str, tuple[str, str]],
                ) -> dict[str, dict[str, str | None]]:
    """operation -> {request: component, answer: component} (None: no body)."""
    out: dict[str, dict[str, str | None]] = {}
    for name, (path, status) in wanted.items():
        operation = spec["paths"][path]["post"]
        request = (operation.get("requestBody", {}).get("content", {})
                   .get("application/json", {}).get("schema", {}).get("$ref"))
        answer = (operation["responses"][status].get("content", {})
                  .get("application/json", {}).get("schema", {}).get("$ref"))
        out[name] = {"path": path, "status": status,
                     "request": request[len(_PREFIX):] if request else None,
                     "answer": answer[len(_PREFIX):] if answer else None}
    return out


def extract(adyen: Mapping[str, Any], adyen_webhooks: Mapping[str, Any], adyen_commit: str,
            orders: Mapping[str, Any], payments: Mapping[str, Any],
            paypal_webhooks: Mapping[str, Any], paypal_commit: str) -> dict[str, Any]:
    adyen_ops = _operations(adyen, ADYEN_OPERATIONS)
    adyen_roots = {n for op in adyen_ops.values() for n in (op["request"], op["answer"]) if n}
    orders_ops, payments_ops = _operations(orders, PAYPAL_ORDERS), _operations(
        payments, PAYPAL_PAYMENTS)
    return {
        "adyen": {
            "source": f"github.com/Adyen/adyen-openapi@{adyen_commit} "
                      "json/CheckoutService-v72.json",
            "version": f"Checkout API v{adyen['info']['version']} (OpenAPI {adyen['openapi']})",
            "licence": "MIT (Adyen bv)", "dialect": "2020-12",
            "operations": adyen_ops,
            "$defs": reachable(adyen["components"]["schemas"], adyen_roots),
        },
        "adyen_notifications": {
            "source": f"github.com/Adyen/adyen-openapi@{adyen_commit} json/Webhooks-v1.json",
            "version": f"Webhooks v{adyen_webhooks['info']['version']}",
            "licence": "MIT (Adyen bv)", "dialect": "2020-12",
            "operations": {"item": {"request": "NotificationRequestItem", "answer": None}},
            "$defs": reachable(adyen_webhooks["components"]["schemas"],
                               {"NotificationRequestItem"}),
        },
        "paypal": {
            "source": f"github.com/paypal/paypal-rest-api-specifications@{paypal_commit} "
                      "openapi/checkout_orders_v2.json, openapi/payments_payment_v2.json, "
                      "openapi/notifications_webhooks_v1.json",
            "version": f"Orders v2 {orders['info']['version']}, Payments v2 "
                       f"{payments['info']['version']}, Webhooks v1 "
                       f"{paypal_webhooks['info']['version']}",
            "licence": "Apache-2.0 (PayPal)", "dialect": "draft4",
            "operations": {**orders_ops, **payments_ops,
                           "event": {"request": "event", "answer": None}},
            # the documents name some schemas alike: each keeps its own under a prefix-free
            # name, the orders document's first (its order, capture and refund are the ones
            # an order answers with)
            "$defs": {**reachable(paypal_webhooks["components"]["schemas"], {"event"}),
                      **reachable(payments["components"]["schemas"],
                                  {n for op in payments_ops.values()
                                   for n in (op["request"], op["answer"]) if n}),
                      **reachable(orders["components"]["schemas"],
                                  {n for op in orders_ops.values()
                                   for n in (op["request"], op["answer"]) if n})},
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name in ("adyen", "adyen-webhooks", "paypal-orders", "paypal-payments",
                 "paypal-webhooks"):
        parser.add_argument(f"--{name}", type=Path, required=True)
    parser.add_argument("--adyen-commit", required=True)
    parser.add_argument("--paypal-commit", required=True)
    args = parser.parse_args(argv)

    def load(path: Path) -> dict[str, Any]:
        return dict(json.loads(path.read_text()))

    specs = extract(load(args.adyen), load(args.adyen_webhooks), args.adyen_commit,
                    load(args.paypal_orders), load(args.paypal_payments),
                    load(args.paypal_webhooks), args.paypal_commit)
    OUT.write_text(json.dumps(specs, sort_keys=True, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
