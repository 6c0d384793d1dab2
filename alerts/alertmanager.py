"""Render the routing configuration as an equivalent alertmanager.yml (Alertmanager 0.25):
the same route tree, matchers, grouping, timing and inhibition. Secrets stay out of the file:
receivers point at files (`*_file`) that the deployment mounts. A `file` receiver has no
Alertmanager integration and becomes a receiver without one."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import yaml

from alerts.routing import Receiver, Route, RoutingConfig

SECRETS_DIR = "/run/secrets"


def _duration(d: timedelta) -> str:
    seconds = int(d.total_seconds())
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _route(route: Route, root: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"receiver": route.receiver}
    if route.matchers:
        out["matchers"] = [m.promql() for m in route.matchers]
    out.update(group_by=route.group_by, group_wait=_duration(route.group_wait),
               group_interval=_duration(route.group_interval),
               repeat_interval=_duration(route.repeat_interval))
    if route.continue_ and not root:
        out["continue"] = True
    if route.routes:
        out["routes"] = [_route(r, False) for r in route.routes]
    return out


def _secret(settings: dict[str, Any], key: str, default_name: str) -> str:
    """The file Alertmanager reads a secret from: `<key>_file`, else /run/secrets/<env var>."""
    if settings.get(f"{key}_file"):
        return str(settings[f"{key}_file"])
    return f"{SECRETS_DIR}/{settings.get(f'{key}_env', default_name)}"


def _receiver(r: Receiver) -> dict[str, Any]:
    s = r.settings
    out: dict[str, Any] = {"name": r.name}
    if r.kind == "webhook":
        out["webhook_configs"] = [{"url": s["url"], "send_resolved": True}] if s.get("url") \
            else [{"url_file": _secret(s, "url", "PAYSIGNAL_WEBHOOK_URL"), "send_resolved": True}]
    elif r.kind == "slack":
        out["slack_configs"] = [{"api_url_file": _secret(s, "url", "PAYSIGNAL_SLACK_WEBHOOK_URL"),
                                 "send_resolved": True,
                                 **({"channel": s["channel"]} if s.get("channel") else {})}]
    elif r.kind == "pagerduty":
        out["pagerduty_configs"] = [{"routing_key_file": _secret(
            s, "routing_key", "PAYSIGNAL_PAGERDUTY_ROUTING_KEY"), "send_resolved": True}]
    elif r.kind == "email":
        out["email_configs"] = [{"to": s["to"], "from": s.get("from", "paysignal@localhost"),
                                 "smarthost": s.get("smarthost", "localhost:25"),
                                 "require_tls": bool(s.get("require_tls", False)),
                                 "send_resolved": True}]
    return out


def render_alertmanager_config(config: RoutingConfig) -> str:
    doc = {
        "route": _route(config.route, True),
        "inhibit_rules": [{"source_matchers": [m.promql() for m in rule.source],
                           "target_matchers": [m.promql() for m in rule.target],
                           "equal": list(rule.equal)} for rule in config.inhibit_rules],
        "receivers": [_receiver(r) for r in config.receivers.values()],
    }
    return yaml.safe_dump(doc, sort_keys=False, width=100)
