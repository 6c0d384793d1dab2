"""OpenSLO v1 definitions: load, validate against the signal catalogue, and model.

An SLI is a `ratioMetric` whose `good` (or `bad`) and `total` each name a catalogue metric with
label matchers:

    metricSource:
      type: paysignal
      spec:
        metric: paysignal_provider_call_duration_seconds_count
        matchers: {provider: stripe, outcome: "!~retryable_error|unknown"}

A matcher value may start with `!=`, `=~` or `!~` (default: equality), as in PromQL. paysignal
annotations: `paysignal.dev/owner` (payments or finance, required), `paysignal.dev/provider`,
`paysignal.dev/min-events`, `paysignal.dev/burn-windows` ("1h/5m:14.4:page,6h/30m:6:page,...").
As OpenSLO v1 writes it: an annotation key is `[prefix/]name` with a DNS-subdomain prefix (ours has
a dot, so `paysignal/owner` is refused), and a calendar-aligned window (`isRolling: false`) carries
`calendar.startTime` ("YYYY-MM-DD HH:MM:SS") and `calendar.timeZone`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from engine.exceptions import PaysignalError
from engine.observability.signals import BY_NAME
from slo.maths import DEFAULT_BURN_WINDOWS, DEFAULT_MIN_EVENTS, BurnWindow

DEFINITIONS_DIR = Path(__file__).parent / "definitions"
OWNERS = ("payments", "finance")
_DURATION = re.compile(r"^(\d+)([smhdwMQY])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class DefinitionError(PaysignalError):
    """One or more SLO files are invalid; each problem names its file, path and reason."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid SLO definitions (nothing was evaluated):\n  "
                         + "\n  ".join(problems))


@dataclass(frozen=True, slots=True)
class Matcher:
    label: str
    op: str  # = != =~ !~
    value: str

    def matches(self, labels: dict[str, str]) -> bool:
        actual = labels.get(self.label, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        hit = re.fullmatch(self.value, actual) is not None
        return hit if self.op == "=~" else not hit

    def promql(self) -> str:
        """As PromQL and Alertmanager write it: label="value" (quotes escaped)."""
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.label}{self.op}"{escaped}"'


@dataclass(frozen=True, slots=True)
class MetricQuery:
    metric: str  # as written, e.g. ..._seconds_bucket
    base: str  # the catalogue name
    series: str  # "" (counter or gauge), "count" or "bucket"
    matchers: tuple[Matcher, ...]
    le: float | None = None  # bucket bound, for `series == "bucket"`

    def matches(self, labels: dict[str, str], value: float) -> bool:
        if self.le is not None and value > self.le:
            return False
        return all(m.matches(labels) for m in self.matchers)


@dataclass(frozen=True, slots=True)
class TimeWindow:
    duration: timedelta | None  # rolling windows, and calendar windows of d and w
    rolling: bool
    text: str
    calendar_unit: str | None = None  # calendar windows: d, w, M, Q, Y


@dataclass(frozen=True, slots=True)
class SLO:
    name: str
    display_name: str
    description: str
    service: str
    owner: str
    provider: str | None
    good: MetricQuery | None
    bad: MetricQuery | None
    total: MetricQuery
    target: float
    window: TimeWindow
    budgeting: str  # Occurrences | Timeslices
    timeslice_target: float | None
    timeslice_window: timedelta | None
    burn_windows: tuple[BurnWindow, ...]
    min_events: int
    source: str


def parse_duration(text: str) -> tuple[int, str]:
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a duration like 5m, 1h, 28d or 1M")
    return int(match[1]), match[2]


def to_timedelta(text: str) -> timedelta:
    amount, unit = parse_duration(text)
    if unit not in _UNIT_SECONDS:
        raise ValueError(f"{text!r}: months, quarters and years only work as calendar windows")
    return timedelta(seconds=amount * _UNIT_SECONDS[unit])


class _Reader:
    def __init__(self, source: str) -> None:
        self.source, self.problems = source, []  # type: tuple[str, list[str]]

    def fail(self, path: str, reason: str) -> None:
        self.problems.append(f"{self.source}: {path}: {reason}")

    def get(self, node: Any, path: str, key: str, kind: type | tuple[type, ...],
            required: bool = True) -> Any:
        if not isinstance(node, dict):
            self.fail(path, "must be a mapping")
            return None
        if key not in node:
            if required:
                self.fail(f"{path}.{key}" if path else key, "is required")
            return None
        value = node[key]
        if not isinstance(value, kind) or isinstance(value, bool) and bool not in (
                kind if isinstance(kind, tuple) else (kind,)):
            names = "/".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
            self.fail(f"{path}.{key}" if path else key, f"must be a {names}")
            return None
        return value


def _metric_query(r: _Reader, node: Any, path: str) -> MetricQuery | None:
    source = r.get(node, path, "metricSource", dict)
    if source is None:
        return None
    path = f"{path}.metricSource"
    if r.get(source, path, "type", str) not in (None, "paysignal"):
        r.fail(f"{path}.type", "must be 'paysignal' (a metric from the signal catalogue)")
        return None
    spec = r.get(source, path, "spec", dict)
    metric = r.get(spec, f"{path}.spec", "metric", str) if spec is not None else None
    if metric is None:
        return None
    base, series = metric, ""
    for suffix in ("_count", "_bucket"):
        if metric.endswith(suffix) and metric.removesuffix(suffix) in BY_NAME:
            base, series = metric.removesuffix(suffix), suffix[1:]
    known = BY_NAME.get(base)
    if known is None:
        r.fail(f"{path}.spec.metric", f"{metric!r} is not in the signal catalogue")
        return None
    if (known.kind == "histogram") != (series != ""):
        r.fail(f"{path}.spec.metric", f"{metric!r}: a histogram is used as _count or _bucket, "
               "anything else by its own name")
        return None
    matchers, le = [], None
    raw = r.get(spec, f"{path}.spec", "matchers", dict, required=False) or {}
    for label, value in raw.items():
        where = f"{path}.spec.matchers.{label}"
        if not isinstance(value, str):
            r.fail(where, "must be a string")
            continue
        if label == "le" and series == "bucket":
            try:
                le = float(value)
            except ValueError:
                r.fail(where, f"{value!r} is not a number")
            continue
        if label not in known.labels:
            r.fail(where, f"{base} has no label {label!r} (labels: "
                   f"{', '.join(known.labels) or 'none'})")
            continue
        op = next((o for o in ("!=", "=~", "!~") if value.startswith(o)), "=")
        text = value[len(op):] if op != "=" else value
        if op in ("=~", "!~"):
            try:
                re.compile(text)
            except re.error as exc:
                r.fail(where, f"bad regular expression: {exc}")
                continue
        matchers.append(Matcher(label, op, text))
    if series == "bucket" and le is None:
        r.fail(f"{path}.spec.matchers", "a _bucket metric needs an le matcher")
        return None
    return MetricQuery(metric, base, series, tuple(matchers), le)


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)


def _burn_windows(r: _Reader, text: str, path: str) -> tuple[BurnWindow, ...]:
    out = []
    for part in text.split(","):
        try:
            windows, factor, severity = part.strip().split(":")
            long_text, short_text = windows.split("/")
            if severity == "page":
                out.append(BurnWindow(to_timedelta(long_text), to_timedelta(short_text),
                                      float(factor), "page"))
            elif severity == "ticket":
                out.append(BurnWindow(to_timedelta(long_text), to_timedelta(short_text),
                                      float(factor), "ticket"))
            else:
                raise ValueError("severity must be page or ticket")
        except ValueError as exc:
            r.fail(path, f"{part.strip()!r}: expected LONG/SHORT:FACTOR:page|ticket ({exc})")
    return tuple(out)


def parse_slo(doc: Any, source: str) -> tuple[SLO | None, list[str]]:
    r = _Reader(source)
    if not isinstance(doc, dict):
        return None, [f"{source}: (document): must be a mapping"]
    if doc.get("apiVersion") != "openslo/v1":
        r.fail("apiVersion", "must be openslo/v1")
    if doc.get("kind") != "SLO":
        r.fail("kind", "must be SLO")
    meta = r.get(doc, "", "metadata", dict) or {}
    name = r.get(meta, "metadata", "name", str)
    if name is not None and not _NAME.match(name):
        r.fail("metadata.name", "must be lower-case letters, digits and dashes")
    notes = r.get(meta, "metadata", "annotations", dict, required=False) or {}
    for key in notes:
        problem = annotation_key_problem(str(key))
        if problem:
            r.fail(f"metadata.annotations.{key}", problem)
    owner = str(notes.get("paysignal.dev/owner") or "")
    if owner not in OWNERS:
        r.fail("metadata.annotations.paysignal.dev/owner", f"must be one of {', '.join(OWNERS)}")
    spec = r.get(doc, "", "spec", dict) or {}
    indicator = r.get(spec, "spec", "indicator", dict) or {}
    ratio = r.get(r.get(indicator, "spec.indicator", "spec", dict) or {}, "spec.indicator.spec",
                  "ratioMetric", dict) or {}
    base_path = "spec.indicator.spec.ratioMetric"
    good = bad = None
    if ("good" in ratio) == ("bad" in ratio):
        r.fail(base_path, "needs exactly one of good and bad, and total")
    elif "good" in ratio:
        good = _metric_query(r, ratio["good"], f"{base_path}.good")
    else:
        bad = _metric_query(r, ratio["bad"], f"{base_path}.bad")
    total = None
    if "total" in ratio:
        total = _metric_query(r, ratio.get("total"), f"{base_path}.total")
    else:
        r.fail(f"{base_path}.total", "is required")
    window = None
    windows = r.get(spec, "spec", "timeWindow", list)
    if windows is not None:
        if len(windows) != 1:
            r.fail("spec.timeWindow", "must have exactly one window")
        else:
            w = windows[0]
            text = r.get(w, "spec.timeWindow[0]", "duration", str)
            rolling = r.get(w, "spec.timeWindow[0]", "isRolling", bool, required=False)
            if text is not None:
                try:
                    amount, unit = parse_duration(text)
                    if rolling is False:
                        if amount != 1:
                            raise ValueError("a calendar window is one d, w, M, Q or Y")
                        if unit not in ("d", "w", "M", "Q", "Y"):
                            raise ValueError("a calendar window is one d, w, M, Q or Y")
                        _check_calendar(r, w.get("calendar"))
                        window = TimeWindow(None, False, text, unit)
                    else:
                        window = TimeWindow(to_timedelta(text), True, text)
                except ValueError as exc:
                    r.fail("spec.timeWindow[0].duration", str(exc))
    budgeting = r.get(spec, "spec", "budgetingMethod", str)
    if budgeting not in (None, "Occurrences", "Timeslices"):
        r.fail("spec.budgetingMethod", "must be Occurrences or Timeslices")
    objectives = r.get(spec, "spec", "objectives", list) or []
    target = slice_target = slice_window = None
    if len(objectives) != 1:
        r.fail("spec.objectives", "must have exactly one objective")
    else:
        target = r.get(objectives[0], "spec.objectives[0]", "target", (float, int))
        if target is not None and not 0 < target < 1:
            r.fail("spec.objectives[0].target", f"{target} must be between 0 and 1 (exclusive)")
        if budgeting == "Timeslices":
            slice_target = r.get(objectives[0], "spec.objectives[0]", "timeSliceTarget",
                                 (float, int))
            slice_text = r.get(objectives[0], "spec.objectives[0]", "timeSliceWindow", str)
            if slice_text is not None:
                try:
                    slice_window = to_timedelta(slice_text)
                    if slice_window < timedelta(minutes=1) or slice_window.total_seconds() % 60:
                        raise ValueError("must be whole minutes")
                except ValueError as exc:
                    r.fail("spec.objectives[0].timeSliceWindow", str(exc))
    burn: tuple[BurnWindow, ...] = DEFAULT_BURN_WINDOWS
    if "paysignal.dev/burn-windows" in notes:
        burn = _burn_windows(r, str(notes["paysignal.dev/burn-windows"]),
                             "metadata.annotations.paysignal.dev/burn-windows")
    min_events = DEFAULT_MIN_EVENTS
    if "paysignal.dev/min-events" in notes:
        try:
            min_events = int(notes["paysignal.dev/min-events"])
            if min_events < 0:
                raise ValueError
        except (TypeError, ValueError):
            r.fail("metadata.annotations.paysignal.dev/min-events", "must be a whole number >= 0")
    ratio_part = good or bad
    if ratio_part is not None and total is not None and ratio_part.base != total.base:
        r.fail(base_path, f"good/bad ({ratio_part.base}) and total ({total.base}) must count "
               "the same metric")
    if r.problems or name is None or total is None or window is None or target is None:
        return None, r.problems
    return SLO(name, str(meta.get("displayName") or name), str(spec.get("description") or ""),
               str(spec.get("service") or ""), owner, _optional_str(notes.get("paysignal.dev/provider")),
               good, bad, total, float(target), window, str(budgeting),
               float(slice_target) if slice_target is not None else None, slice_window, burn,
               min_events, source), []


_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_ANNOTATION_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")
_START_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


def annotation_key_problem(key: str) -> str | None:
    """Why an annotation key breaks the OpenSLO v1 rule (`[prefix/]name`, the prefix a DNS
    subdomain), or None. paysignal's own keys need a prefix with a dot."""
    prefix, slash, name = key.rpartition("/")
    if not _ANNOTATION_NAME.match(name):
        return ("the name after the prefix must be 1-63 letters, digits, '-', '_' or '.', "
                "starting and ending with a letter or digit")
    if slash:
        labels = prefix.split(".")
        if len(prefix) > 253 or not all(_DNS_LABEL.match(label) for label in labels):
            return f"the prefix {prefix!r} must be a DNS subdomain (e.g. paysignal.dev)"
        if len(labels) < 2:
            return (f"the prefix {prefix!r} must be a DNS subdomain with a dot, e.g. "
                    f"paysignal.dev/{name}")
    return None


def _check_calendar(r: Any, calendar: object) -> None:
    """A calendar-aligned window names its start and zone (OpenSLO v1). paysignal aligns
    periods in UTC, so the zone must be UTC."""
    path = "spec.timeWindow[0].calendar"
    if not isinstance(calendar, dict):
        r.fail(path, "a calendar-aligned window (isRolling: false) needs calendar.startTime "
                     "and calendar.timeZone")
        return
    start = calendar.get("startTime")  # YAML reads an unquoted one as a timestamp
    if not (isinstance(start, datetime) and start.tzinfo is None) and not (
            isinstance(start, str) and _START_TIME.match(start)):
        r.fail(f"{path}.startTime", 'must be a date and time like "2026-01-01 00:00:00" '
                                    "(24-hour clock, no zone)")
    zone = calendar.get("timeZone")
    if zone not in ("UTC", "Etc/UTC"):
        r.fail(f"{path}.timeZone", f"{zone!r}: paysignal aligns calendar windows in UTC; use UTC")


def load_definitions(directory: Path | None = None) -> list[SLO]:
    """Every SLO in every *.yaml under `directory`; any problem anywhere fails the whole set."""
    directory = directory or DEFINITIONS_DIR
    if not directory.is_dir():
        raise DefinitionError([f"{directory}: not a directory"])
    slos: list[SLO] = []
    problems: list[str] = []
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    if not files:
        raise DefinitionError([f"{directory}: no *.yaml SLO definitions"])
    for file in files:
        try:
            docs = [d for d in yaml.safe_load_all(file.read_text()) if d is not None]
        except yaml.YAMLError as exc:
            problems.append(f"{file.name}: not YAML: {exc}".replace("\n", " "))
            continue
        for i, doc in enumerate(docs):
            slo, found = parse_slo(doc, f"{file.name}" + (f"[{i}]" if len(docs) > 1 else ""))
            problems += found
            if slo:
                slos.append(slo)
    names = [s.name for s in slos]
    problems += [f"{s.source}: metadata.name: {s.name!r} is defined twice"
                 for i, s in enumerate(slos) if s.name in names[:i]]
    if problems:
        raise DefinitionError(problems)
    return slos
