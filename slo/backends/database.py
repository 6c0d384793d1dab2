"""The embedded SLI backend: the engine's tables through per-minute aggregates.

Each SLO keeps a per-minute rollup (good, total) in `sli_minutes` and a mark of how far into its
metric's event stream it has read. `prepare` adds what is new since the mark, in one
transaction with the mark moved by compare-and-set, so two evaluators never count an event
twice. Counting a window then sums at most one row per minute: the cost grows with the window
length, not with the number of payments. Reconciliation metrics change as days are re-run, so
they are counted directly (they are per-day and small)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from engine.exceptions import PaysignalError
from engine.read_models.sli_events import INCREMENTAL, WINDOWED, Event, new_events, windowed_events
from engine.storage.repository import utc
from engine.storage.sql import insert_ignoring_conflicts
from engine.storage.tables import sli_minutes, sli_rollup_marks
from slo.maths import Counts
from slo.spec import SLO


class RollupRaceError(PaysignalError):
    """Another evaluator moved this SLO's rollup mark first; this pass changed nothing."""


def _minute(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(second=0, microsecond=0)


def classify(slo: SLO, event: Event) -> tuple[int, int]:
    """(good, total) weight this event adds to the SLO."""
    if not slo.total.matches(event.labels, event.value):
        return 0, 0
    if slo.good is not None:
        return (event.weight if slo.good.matches(event.labels, event.value) else 0), event.weight
    assert slo.bad is not None
    return (0 if slo.bad.matches(event.labels, event.value) else event.weight), event.weight


class DatabaseBackend:
    name = "database"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def prepare(self, slos: list[SLO], at: datetime,
                progress: Callable[[int], None] | None = None) -> int:
        """Roll every SLO up to date; SLOs on the same metric and mark share one read. Returns
        the number of events read."""
        with self.engine.connect() as conn:
            marks = dict(conn.execute(select(sli_rollup_marks.c.slo, sli_rollup_marks.c.mark)).all())
        groups: dict[tuple[str, int], list[SLO]] = defaultdict(list)
        for slo in slos:
            if slo.total.base in INCREMENTAL:
                groups[(slo.total.base, marks.get(slo.name, 0))].append(slo)
        read = 0
        for (metric, mark), members in groups.items():
            known = {s.name for s in members if s.name in marks}
            while True:
                events, new_mark = new_events(self.engine, metric, mark, at)
                if new_mark == mark:
                    break
                self._store(members, known, mark, new_mark, events)
                known = {s.name for s in members}
                mark, read = new_mark, read + len(events)
                if progress:
                    progress(read)
        return read

    def roll_up(self, slo: SLO, until: datetime) -> int:
        """Add one SLO's new events to its per-minute rollup; the number of events read."""
        return self.prepare([slo], until)

    def _store(self, members: list[SLO], known: set[str], mark: int, new_mark: int,
               events: list[Event]) -> None:
        per_minute: dict[tuple[str, datetime], list[int]] = defaultdict(lambda: [0, 0])
        verdicts: dict[tuple[object, ...], list[tuple[str, int, int]]] = {}  # few label sets
        for event in events:
            key = (*event.labels.values(), event.value, event.weight)
            verdict = verdicts.get(key)
            if verdict is None:
                verdict = verdicts[key] = [(slo.name, *classify(slo, event)) for slo in members]
            minute = _minute(event.at)
            for name, good, total in verdict:
                if total:
                    cell = per_minute[(name, minute)]
                    cell[0] += good
                    cell[1] += total
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            for slo in members:
                if slo.name in known:
                    moved = conn.execute(update(sli_rollup_marks).where(
                        sli_rollup_marks.c.slo == slo.name, sli_rollup_marks.c.mark == mark)
                        .values(mark=new_mark, updated_at=now)).rowcount == 1
                else:
                    moved = conn.execute(
                        insert_ignoring_conflicts(conn, sli_rollup_marks, "slo")
                        .values(slo=slo.name, mark=new_mark, updated_at=now)
                        .returning(sli_rollup_marks.c.slo)).first() is not None
                if not moved:
                    raise RollupRaceError(f"{slo.name}: another evaluator rolled up first")
            if per_minute:
                dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
                stmt = dialect.insert(sli_minutes)
                stmt = stmt.on_conflict_do_update(
                    index_elements=["slo", "minute"],
                    set_={"good": sli_minutes.c.good + stmt.excluded.good,
                          "total": sli_minutes.c.total + stmt.excluded.total})
                conn.execute(stmt, [{"slo": name, "minute": minute, "good": g, "total": t}
                                    for (name, minute), (g, t) in sorted(per_minute.items())])

    def counts(self, slo: SLO, start: datetime, end: datetime) -> Counts:
        if slo.total.base in WINDOWED:
            total = Counts(0, 0)
            for event in windowed_events(self.engine, slo.total.base, start, end):
                total += Counts(*classify(slo, event))
            return total
        with self.engine.connect() as conn:
            good, total_ = conn.execute(
                select(func.coalesce(func.sum(sli_minutes.c.good), 0),
                       func.coalesce(func.sum(sli_minutes.c.total), 0))
                .where(sli_minutes.c.slo == slo.name, sli_minutes.c.minute >= _minute(start),
                       sli_minutes.c.minute < end)).one()
        return Counts(int(good), int(total_))

    def minute_counts(self, slo: SLO, start: datetime, end: datetime) -> list[Counts]:
        minutes: dict[datetime, Counts] = defaultdict(lambda: Counts(0, 0))
        if slo.total.base in WINDOWED:
            for event in windowed_events(self.engine, slo.total.base, start, end):
                minutes[_minute(event.at)] += Counts(*classify(slo, event))
        else:
            with self.engine.connect() as conn:
                for r in conn.execute(select(sli_minutes.c.minute, sli_minutes.c.good,
                                             sli_minutes.c.total).where(
                        sli_minutes.c.slo == slo.name, sli_minutes.c.minute >= _minute(start),
                        sli_minutes.c.minute < end)):
                    minutes[_minute(utc(r.minute))] = Counts(r.good, r.total)
        first, out = _minute(start), []
        while first < end:
            out.append(minutes.get(first, Counts(0, 0)))
            first += timedelta(minutes=1)
        return out
