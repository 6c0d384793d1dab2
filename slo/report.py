"""The SLO review report: per SLO the objective, attainment over the period, budget consumed,
a daily burn-down, the worst days, the providers with the most bad events and the alerts that
fired; engineering and finance side by side. Markdown, HTML (burn-down as an embedded PNG) or
CSV."""

from __future__ import annotations

import base64
import html
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from engine.domain.money import display_amounts
from engine.exports import csv_rows
from engine.read_models.finance import ProviderFinance
from engine.read_models.sli_events import INCREMENTAL, WINDOWED, new_events, windowed_events
from engine.storage.tables import slo_evaluations
from slo import maths
from slo.backends import Backend
from slo.backends.database import classify
from slo.maths import Counts
from slo.spec import SLO


@dataclass
class SloReport:
    slo: SLO
    counts: Counts
    burn_down: list[tuple[datetime, float]]  # end of each day -> budget remaining (0..1)
    worst_days: list[tuple[datetime, float, int]]  # day, error ratio, bad events
    bad_by_provider: list[tuple[str, int]]
    alerts: list[dict[str, object]] = field(default_factory=list)

    @property
    def consumed(self) -> float:
        return maths.budget(self.counts, self.slo.target).consumed


def _bad_by_provider(engine: Engine, slo: SLO, start: datetime, end: datetime,
                     ) -> list[tuple[str, int]]:
    if slo.total.base in WINDOWED:
        events = list(windowed_events(engine, slo.total.base, start, end))
    elif slo.total.base in INCREMENTAL:
        events, mark = [], 0
        while True:  # every batch of the metric's events, kept if inside the period
            batch, next_mark = new_events(engine, slo.total.base, mark, end)
            events += [e for e in batch if start <= e.at < end]
            if next_mark == mark:
                break
            mark = next_mark
    else:
        return []
    bad: Counter[str] = Counter()
    for e in events:
        good, total = classify(slo, e)
        if total - good and "provider" in e.labels:
            bad[e.labels["provider"]] += total - good
    return bad.most_common(5)


def _alerts(engine: Engine, slo: SLO, start: datetime, end: datetime) -> list[dict[str, object]]:
    """Firing conditions seen by stored evaluations in the period, one line per tier."""
    seen: dict[str, dict[str, Any]] = {}
    with engine.connect() as conn:
        rows = conn.execute(select(slo_evaluations.c.at, slo_evaluations.c.result).where(
            slo_evaluations.c.slo == slo.name, slo_evaluations.c.at >= start,
            slo_evaluations.c.at < end).order_by(slo_evaluations.c.at)).all()
    for at, result in rows:
        for c in json.loads(result)["conditions"]:
            if c["inhibited_by"]:
                continue
            entry = seen.setdefault(c["tier"], {"severity": c["severity"], "tier": c["tier"],
                                                "first": at, "last": at, "evaluations": 0})
            entry["last"] = at
            entry["evaluations"] += 1
    return list(seen.values())


def build_report(engine: Engine, backend: Backend, slos: list[SLO], period: timedelta,
                 end: datetime | None = None) -> list[SloReport]:
    end = (end or datetime.now(UTC)).astimezone(UTC)
    start = end - period
    backend.prepare(slos, end)
    days = max(1, int(period.total_seconds() // 86400))
    reports = []
    for slo in slos:
        total = backend.counts(slo, start, end)
        daily = [backend.counts(slo, start + timedelta(days=i),
                                min(end, start + timedelta(days=i + 1))) for i in range(days)]
        running, burn_down = Counts(0, 0), []
        for i, day in enumerate(daily):
            running += day
            burn_down.append((start + timedelta(days=i + 1),
                              maths.budget(running, slo.target).remaining
                              if total.total else 1.0))
        worst = sorted(((start + timedelta(days=i), 1 - maths.attainment(c), c.bad)
                        for i, c in enumerate(daily) if c.bad), key=lambda w: -w[1])[:3]
        reports.append(SloReport(slo, total, burn_down, worst,
                                 _bad_by_provider(engine, slo, start, end),
                                 _alerts(engine, slo, start, end)))
    return sorted(reports, key=lambda r: (r.slo.owner != "payments", r.slo.name))


def burn_down_png(report: SloReport, width: int = 480, height: int = 160) -> bytes:
    """A small line chart of the remaining budget, drawn with Pillow."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = 40, 10, width - 10, height - 20
    draw.rectangle([left, top, right, bottom], outline="#999999")
    for fraction, label in ((1.0, "100%"), (0.5, "50%"), (0.0, "0%")):
        y = bottom - fraction * (bottom - top)
        draw.line([left, y, right, y], fill="#dddddd")
        draw.text((4, y - 6), label, fill="#555555")
    points = report.burn_down
    if points:
        step = (right - left) / max(1, len(points) - 1)
        # a date axis: the first, middle and last day (UTC), under their points
        for i in sorted({0, (len(points) - 1) // 2, len(points) - 1}):
            x = left + i * step
            draw.line([x, bottom, x, bottom + 3], fill="#999999")
            label = f"{points[i][0]:%m-%d}"
            draw.text((min(max(x - 14, left), right - 28), bottom + 5), label, fill="#555555")
        line = [(left + i * step, bottom - max(0.0, v) * (bottom - top))
                for i, (_d, v) in enumerate(points)]
        colour = "#c62828" if points[-1][1] <= 0 else "#2e7d32"
        draw.line(line if len(line) > 1 else line * 2, fill=colour, width=2)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _pct(value: float) -> str:
    return f"{value:.3%}"


def _attained(counts: Counts) -> str:
    return _pct(maths.attainment(counts)) if counts.total else "no data"


def _details(r: SloReport) -> list[tuple[str, str]]:
    """The per-SLO findings both the Markdown and the HTML report show."""
    return [
        ("Worst days", ", ".join(f"{d:%Y-%m-%d} ({ratio:.2%} bad, {bad})"
                                 for d, ratio, bad in r.worst_days) or "none"),
        ("Most bad events", ", ".join(f"{p} ({n})" for p, n in r.bad_by_provider) or "none"),
        ("Alerts fired", ", ".join(
            f"{a['severity']} {a['tier']} ({a['evaluations']} evaluations from {a['first']})"
            for a in r.alerts) or "none"),
    ]


def _money_by_currency(amounts: dict[str, int]) -> str:
    return display_amounts(amounts) if amounts else "—"


def _finance_rows(money: list[ProviderFinance]) -> list[tuple[str, str, str, str]]:
    """(provider, fees, disputes, payout lag) in words, one row per provider."""
    rows = []
    for f in money:
        disputes = (f"{f.disputes_opened} opened ({_money_by_currency(f.disputed_minor)}), "
                    f"{f.disputes_won} won, {f.disputes_lost} lost" if f.disputes_opened
                    else "none")
        lag = ("no payouts" if not f.payouts else
               f"{f.payouts_arrived}/{f.payouts} arrived" + (
                   f", {f.mean_payout_days:.1f} days on average, at most "
                   f"{max(f.payout_days)}" if f.payout_days else ""))
        rows.append((f.provider, _money_by_currency(f.fees_minor), disputes, lag))
    return rows


def render_markdown(reports: list[SloReport], period: timedelta,
                    money: list[ProviderFinance] | None = None) -> str:
    out = [f"# SLO review — last {period.days} days", ""]
    for owner in ("payments", "finance"):
        out += [f"## {owner.capitalize()}", "",
                "| SLO | objective | attained | events | budget consumed |",
                "|---|---|---|---|---|"]
        mine = [r for r in reports if r.slo.owner == owner]
        out += [f"| {r.slo.name} | {_pct(r.slo.target)} | {_attained(r.counts)} | "
                f"{r.counts.total:,} | {r.consumed:.1%} |" for r in mine]
        out.append("")
        for r in mine:
            out += [f"### {r.slo.display_name}", ""]
            out += [f"{label}: {text}  " for label, text in _details(r)]
            out.append("")
        if owner == "finance" and money is not None:
            out += ["### Fees, disputes and payout lag", "",
                    "| provider | fees taken | disputes | payouts to the bank |",
                    "|---|---|---|---|"]
            out += [f"| {' | '.join(row)} |" for row in _finance_rows(money)]
            out.append("")
    return "\n".join(out)


def render_html(reports: list[SloReport], period: timedelta,
                money: list[ProviderFinance] | None = None) -> str:
    parts = [f"<!doctype html><meta charset='utf-8'><title>SLO review</title>"
             f"<h1>SLO review — last {period.days} days</h1>"]
    for owner in ("payments", "finance"):
        parts.append(f"<h2>{owner.capitalize()}</h2>")
        for r in (r for r in reports if r.slo.owner == owner):
            chart = base64.b64encode(burn_down_png(r)).decode()
            parts.append(
                f"<h3>{html.escape(r.slo.display_name)}</h3><p>objective {_pct(r.slo.target)}, "
                f"attained {_attained(r.counts)} over {r.counts.total:,} events, "
                f"budget consumed {r.consumed:.1%}</p>"
                f"<img alt='budget burn-down of {html.escape(r.slo.name)}' "
                f"src='data:image/png;base64,{chart}'>"
                + "".join(f"<p>{label}: {html.escape(text)}</p>" for label, text in _details(r)))
        if owner == "finance" and money is not None:
            parts.append("<h3>Fees, disputes and payout lag</h3><table><tr><th>provider</th>"
                         "<th>fees taken</th><th>disputes</th><th>payouts to the bank</th></tr>"
                         + "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>"
                                                    for cell in row) + "</tr>"
                                   for row in _finance_rows(money)) + "</table>")
    return "".join(parts)


def render_csv(reports: list[SloReport]) -> str:
    """Spreadsheet-safe: no cell can become a formula."""
    header = ["slo", "owner", "objective", "attained", "good", "total", "budget_consumed",
              "alerts_fired", "worst_day", "top_bad_provider"]
    return csv_rows([header] + [
        [r.slo.name, r.slo.owner, r.slo.target,
                         round(maths.attainment(r.counts), 6) if r.counts.total else "",
                         r.counts.good, r.counts.total,
                         round(r.consumed, 6), len(r.alerts),
                         r.worst_days[0][0].date().isoformat() if r.worst_days else "",
         r.bad_by_provider[0][0] if r.bad_by_provider else ""] for r in reports])
