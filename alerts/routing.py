"""Routing configuration: a tree of routes with label matchers (=, !=, =~, !~), `continue`,
grouping and timing, receivers, and inhibition rules; Alertmanager's semantics, so the same
file renders to an equivalent alertmanager.yml.

    route:
      receiver: log
      group_by: [alertname, slo, provider]
      routes:
        - matchers: ['severity="page"', 'team=~"payments.*"']
          receiver: payments-pager
          continue: true
    inhibit_rules:
      - source_matchers: ['severity="page"']
        target_matchers: ['severity="ticket"']
        equal: [slo, provider]
    receivers:
      - name: log
        file: {path: var/alerts.log}
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Engine, insert, select

from engine.exceptions import PaysignalError
from engine.storage.repository import utc
from engine.storage.tables import alert_routing_in_use
from slo.spec import Matcher

DEFAULT_CONFIG = Path(__file__).parent / "routing.yaml"
RECEIVER_KINDS = ("file", "webhook", "slack", "pagerduty", "email", "alertmanager")
_MATCHER = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*$')
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w)$")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class RoutingConfigError(PaysignalError):
    """The routing file is invalid; the message names the path inside it and the reason."""

    def __init__(self, source: str, path: str, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"{source}: {path}: {reason}")


def parse_matcher(text: str) -> Matcher:
    """label="value" with =, !=, =~ or !~ (Alertmanager's matcher syntax)."""
    match = _MATCHER.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a matcher like label=\"value\" "
                         "(operators =, !=, =~, !~)")
    label, op, value = match.groups()
    value = value.replace('\\"', '"').replace("\\\\", "\\")
    if op in ("=~", "!~"):
        re.compile(value)
    return Matcher(label, op, value)


@dataclass
class Route:
    receiver: str
    matchers: list[Matcher] = field(default_factory=list)
    group_by: list[str] = field(default_factory=list)
    group_wait: timedelta = timedelta(seconds=30)
    group_interval: timedelta = timedelta(minutes=5)
    repeat_interval: timedelta = timedelta(hours=4)
    continue_: bool = False
    routes: list[Route] = field(default_factory=list)
    path: str = "route"

    def matches(self, labels: dict[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def match(self, labels: dict[str, str]) -> list[Route]:
        """The routes an alert ends at (Alertmanager's algorithm): the first matching child,
        and further ones while a matching child has `continue`; this route if none match."""
        found: list[Route] = []
        for child in self.routes:
            if child.matches(labels):
                found += child.match(labels)
                if not child.continue_:
                    break
        return found or [self]


@dataclass(frozen=True, slots=True)
class InhibitRule:
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]

    def inhibits(self, source: dict[str, str], target: dict[str, str]) -> bool:
        return (all(m.matches(source) for m in self.source)
                and all(m.matches(target) for m in self.target)
                and all(source.get(k, "") == target.get(k, "") for k in self.equal)
                and source != target)


@dataclass(frozen=True)
class Receiver:
    name: str
    kind: str
    settings: dict[str, Any]


@dataclass
class RoutingConfig:
    route: Route
    receivers: dict[str, Receiver]
    inhibit_rules: list[InhibitRule]
    source: str

    def receivers_for(self, labels: dict[str, str]) -> list[str]:
        names: list[str] = []
        for r in self.route.match(labels):
            if r.receiver not in names:
                names.append(r.receiver)
        return names

    def inhibited(self, target: dict[str, str], firing: list[dict[str, str]]) -> bool:
        return any(rule.inhibits(source, target) for rule in self.inhibit_rules
                   for source in firing)


def parse_duration(text: object, source: str, path: str) -> timedelta:
    match = _DURATION.match(str(text))
    if not match:
        raise RoutingConfigError(source, path, f"{text!r} is not a duration like 30s, 5m or 4h")
    seconds = int(match[1]) * _SECONDS[match[2]]
    if seconds > 3650 * 86400:
        raise RoutingConfigError(source, path, f"{text!r} is longer than ten years")
    return timedelta(seconds=seconds)


def _matchers(items: object, source: str, path: str) -> list[Matcher]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise RoutingConfigError(source, path, "must be a list of matchers")
    out = []
    for i, item in enumerate(items):
        try:
            out.append(parse_matcher(str(item)))
        except (ValueError, re.error) as exc:
            raise RoutingConfigError(source, f"{path}[{i}]", str(exc)) from None
    return out


_ROUTE_KEYS = {"receiver", "matchers", "group_by", "group_wait", "group_interval",
               "repeat_interval", "continue", "routes"}


def _route(node: object, source: str, path: str, parent: Route | None) -> Route:
    if not isinstance(node, dict):
        raise RoutingConfigError(source, path, "must be a mapping")
    unknown = set(node) - _ROUTE_KEYS
    if unknown:
        raise RoutingConfigError(source, f"{path}.{sorted(unknown)[0]}", "is not a route field "
                                 f"(fields: {', '.join(sorted(_ROUTE_KEYS))})")
    receiver = node.get("receiver", parent.receiver if parent else None)
    if not receiver:
        raise RoutingConfigError(source, f"{path}.receiver", "is required on the root route")
    route = Route(
        receiver=str(receiver), matchers=_matchers(node.get("matchers"), source,
                                                   f"{path}.matchers"),
        group_by=list(node.get("group_by", parent.group_by if parent else ["alertname"])),
        group_wait=parse_duration(node["group_wait"], source, f"{path}.group_wait")
        if "group_wait" in node else (parent.group_wait if parent else timedelta(seconds=30)),
        group_interval=parse_duration(node["group_interval"], source, f"{path}.group_interval")
        if "group_interval" in node else (parent.group_interval if parent
                                          else timedelta(minutes=5)),
        repeat_interval=parse_duration(node["repeat_interval"], source, f"{path}.repeat_interval")
        if "repeat_interval" in node else (parent.repeat_interval if parent
                                           else timedelta(hours=4)),
        continue_=bool(node.get("continue", False)), path=path)
    if parent is None and route.matchers:
        raise RoutingConfigError(source, f"{path}.matchers", "the root route matches everything")
    route.routes = [_route(child, source, f"{path}.routes[{i}]", route)
                    for i, child in enumerate(node.get("routes") or [])]
    return route


def _walk(route: Route) -> list[Route]:
    return [route] + [r for child in route.routes for r in _walk(child)]


def parse_config(doc: object, source: str) -> RoutingConfig:
    if not isinstance(doc, dict):
        raise RoutingConfigError(source, "(document)", "must be a mapping")
    route = _route(doc.get("route"), source, "route", None)
    receivers: dict[str, Receiver] = {}
    for i, item in enumerate(doc.get("receivers") or []):
        path = f"receivers[{i}]"
        if not isinstance(item, dict) or not item.get("name"):
            raise RoutingConfigError(source, f"{path}.name", "is required")
        kinds = [k for k in item if k != "name"]
        if len(kinds) != 1 or kinds[0] not in RECEIVER_KINDS:
            raise RoutingConfigError(source, path, "needs exactly one of "
                                     f"{', '.join(RECEIVER_KINDS)}")
        if item["name"] in receivers:
            raise RoutingConfigError(source, f"{path}.name", f"{item['name']!r} is defined twice")
        settings = item[kinds[0]] or {}
        if not isinstance(settings, dict):
            raise RoutingConfigError(source, f"{path}.{kinds[0]}", "must be a mapping")
        receivers[item["name"]] = Receiver(item["name"], kinds[0], settings)
    for r in _walk(route):
        if r.receiver not in receivers:
            raise RoutingConfigError(source, f"{r.path}.receiver",
                                     f"{r.receiver!r} is not a defined receiver")
    rules = []
    for i, item in enumerate(doc.get("inhibit_rules") or []):
        path = f"inhibit_rules[{i}]"
        if not isinstance(item, dict):
            raise RoutingConfigError(source, path, "must be a mapping")
        rules.append(InhibitRule(
            tuple(_matchers(item.get("source_matchers"), source, f"{path}.source_matchers")),
            tuple(_matchers(item.get("target_matchers"), source, f"{path}.target_matchers")),
            tuple(item.get("equal") or [])))
    return RoutingConfig(route, receivers, rules, source)


def load_config(path: Path | None = None) -> RoutingConfig:
    path = path or DEFAULT_CONFIG
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise RoutingConfigError(str(path), "(file)", exc.strerror or str(exc)) from None
    except yaml.YAMLError as exc:
        raise RoutingConfigError(path.name, "(file)", f"not YAML: {exc}") from None
    return parse_config(doc, path.name)


@dataclass(frozen=True)
class RoutingInUse:
    path: Path
    loaded_by: str
    at: datetime
    changed_since: bool  # the file on disk differs from what was loaded


def record_routing_in_use(engine: Engine, path: Path | None, loaded_by: str) -> None:
    """Say which routing file this process routes with (the worker at start, the demo)."""
    path = (path or DEFAULT_CONFIG).resolve()
    with engine.begin() as conn:
        conn.execute(insert(alert_routing_in_use).values(
            path=str(path)[:1000], sha256=_digest(path), loaded_by=loaded_by[:64],
            at=datetime.now(UTC)))


def routing_in_use(engine: Engine) -> RoutingInUse | None:
    """The routing file the service last loaded, if any process recorded one."""
    t = alert_routing_in_use.c
    with engine.connect() as conn:
        row = conn.execute(select(t.path, t.sha256, t.loaded_by, t.at)
                           .order_by(t.id.desc()).limit(1)).first()
    if row is None:
        return None
    path = Path(row.path)
    return RoutingInUse(path, row.loaded_by, utc(row.at), _digest(path) != row.sha256)


def _digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""
