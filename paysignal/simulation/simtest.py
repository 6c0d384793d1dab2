"""Deterministic simulation testing: seeded workloads under faults, then the invariants.

Each seed runs on a fresh SQLite database of its own:
1. traffic: `run_simulation` with the profile's faults (timeouts after charging, 5xx, declines);
2. crashes: payments in real subprocesses killed with SIGKILL at a seeded recovery point, then
   retried with the same key;
3. database connection drops on seeded statements, the clients retrying with the same key, and
   the worker's sweep for what they left behind; the providers' notifications are delivered
   signed, with duplicates and out of order;
4. settlement files with injected discrepancies are reconciled (cardholders disputed some
   payments in step 1; a dispute whose notifications were lost is booked from its lines);
5. the outbox relay "crashes" between publishing a batch to a separate broker database and
   marking it; two consumers read the broker's event log.

Invariants, checked after each seed: no duplicate charge at any provider; every journal
transaction balanced; every payment at rest or `unknown` with an open UnknownOutcomesStale
alert; every outbox event published and applied exactly once per consumer; reconciliation finds
exactly the injected discrepancies (and may find the disputes whose notifications were lost).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import repeat
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, event, func, select
from sqlalchemy.exc import OperationalError

from alerts.detectors import Thresholds, operational_alerts
from engine.domain.clock import VirtualClock
from engine.domain.recovery import AUTOMATIC_CAPTURE_PATH
from engine.domain.states import IN_FLIGHT_STATES, PaymentState
from engine.exceptions import PaysignalError
from engine.outbox.relay import (
    DatabaseEventLogSink,
    IdempotentConsumer,
    OutboxEvent,
    OutboxRelay,
    pending_count,
)
from engine.providers.registry import connectors_from_environment, new_webhook_credentials, provider_names
from engine.providers.sandbox import SandboxServer
from engine.providers.sandbox.faults import profile as load_profile
from engine.providers.sandbox.registry import (
    build_sandbox,
    in_process_connectors,
    payment_method,
    sandbox_environment,
)
from engine.read_models.ledger import total_imbalance_minor
from engine.settlement.run import reconcile_directory
from engine.storage import db
from engine.storage.tables import event_log, outbox, payments, recon_breaks
from engine.testing import NO_FAULTS, payment_request
from paysignal.bootstrap import Environment, build_service
from paysignal.settings import load_settings
from paysignal.simulation.day import deliver_webhooks, run_simulation
from paysignal.simulation.settlement_files import (
    grade,
    in_flight_payment_ids,
    write_settlement_files,
)

INVARIANTS = ("no_duplicate_charge", "ledger_balanced", "payments_at_rest",
              "outbox_exactly_once", "reconciliation_exact")
CRASH_POINTS = AUTOMATIC_CAPTURE_PATH
CONSUMERS = ("ledger-mirror", "merchant-notifier")
LOCK_TIMEOUT_S = 0.5
# crashed requests' locks expire fast; dropped connections are retried at most 3 times
SIM_TEST_SETTINGS = load_settings({
    "PAYSIGNAL_IDEMPOTENCY_LOCK_TIMEOUT_S": str(LOCK_TIMEOUT_S),
    "PAYSIGNAL_RETRY_MAX_ATTEMPTS": "3", "PAYSIGNAL_RETRY_INITIAL_BACKOFF_S": "0.1",
    "PAYSIGNAL_RETRY_MAX_BACKOFF_S": "2", "PAYSIGNAL_RETRY_DEADLINE_S": "600"})


@dataclass
class Workload:
    payments: int = 60
    crashes: int = 2
    flaky_payments: int = 20
    drop_rate: float = 0.04
    discrepancies: int = 8


@dataclass
class Violation:
    invariant: str
    detail: str


@dataclass
class SeedResult:
    seed: int
    profile: str
    violations: list[Violation] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def check(self, invariant: str, ok: bool, detail: str) -> None:
        if not ok:
            self.violations.append(Violation(invariant, detail))


class SimulatedCrash(Exception):
    """The relay process dying between publishing a batch and marking it."""


def _recorder(applied: Counter[tuple[str, str]],
              name: str) -> Callable[[Connection, OutboxEvent], None]:
    """A consumer's handler that counts each event it applies."""
    def handle(_conn: Connection, event: OutboxEvent) -> None:
        applied.update([(name, event.event_id)])

    return handle


@contextmanager
def dropped_connections(engine: Engine, rng: random.Random, rate: float) -> Iterator[Counter[str]]:
    """Fail a seeded share of statements as a dropped database connection would."""
    drops: Counter[str] = Counter()

    def maybe_drop(conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any,
                   executemany: bool) -> None:
        if rng.random() < rate:
            drops["statements"] += 1
            raise OperationalError(statement, parameters,
                                   Exception("simulated: server closed the connection"))

    event.listen(engine, "before_cursor_execute", maybe_drop)
    try:
        yield drops
    finally:
        event.remove(engine, "before_cursor_execute", maybe_drop)


def _crash_and_retry(url: str, key: str, point: str, provider: str,
                     env: dict[str, str]) -> str | None:
    """A payment in a subprocess killed with SIGKILL at `point`, then finished by a retry."""
    base = [sys.executable, "-m", "paysignal.simulation.crash_worker", "--database-url", url,
            "--key", key, "--lock-timeout", str(LOCK_TIMEOUT_S), "--provider", provider]
    proc = subprocess.Popen([*base, "--pause-at", point], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == "PAUSED":
            break
    else:
        return f"the worker never reached {point}: {proc.stderr.read() if proc.stderr else ''}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    time.sleep(LOCK_TIMEOUT_S + 0.1)  # the dead process's lock expires
    done = subprocess.run(base, capture_output=True, text=True, timeout=120, env=env)
    return None if done.returncode == 0 else f"the retry failed: {done.stderr[-500:]}"


def run_seed(seed: int, profile: str, template: Path, workload: Workload | None = None,
             workdir: Path | None = None) -> SeedResult:
    w = workload or Workload()
    result = SeedResult(seed, profile)
    rng = random.Random(f"sim-test|{seed}")
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        root = Path(tmp)
        (root / "paysignal.db").write_bytes(template.read_bytes())
        (root / "broker.db").write_bytes(template.read_bytes())
        url = f"sqlite:///{root / 'paysignal.db'}"
        engine, broker = db.make_engine(url), db.make_engine(f"sqlite:///{root / 'broker.db'}")
        try:
            # 1. traffic under the profile's provider faults
            # A fixed run tag: later steps ask other provider instances about these payments,
            # and their seeded answers must not depend on a random tag in the request ids.
            sim = run_simulation(engine, payments=w.payments, seed=seed, profile=profile,
                                 duration=timedelta(hours=2), end=_last_noon(),
                                 run_tag=f"{seed:08x}"[-8:])
            result.figures["simulated_duplicates"] = sim.figures["duplicate_charges"]

            # 2. crashes at seeded recovery points, in real processes, against the sandbox
            # over loopback (it outlives the killed process, so its books tell the truth)
            crash_errors = []
            credentials = new_webhook_credentials()
            with SandboxServer(build_sandbox(credentials, seed=seed, profile=NO_FAULTS)) as server:
                env = {**os.environ, **sandbox_environment(server.url, credentials)}
                for i in range(w.crashes):
                    point = rng.choice(CRASH_POINTS)
                    provider = rng.choice(provider_names())
                    error = _crash_and_retry(url, f"crash-{seed}-{i}", point, provider, env)
                    if error:
                        crash_errors.append(f"{point}: {error}")
                # the providers' notifications about them arrive (Adyen confirms by webhook)
                deliver_webhooks(build_service(
                    engine, SIM_TEST_SETTINGS, gateways=connectors_from_environment(env=env),
                    toggles=None, actor="sim-test"), server.sandbox, every_pending=True)
                result.figures["crash_duplicates"] = server.sandbox.books.duplicate_charges()
                crash_books = server.sandbox.books.entries()
            result.check("payments_at_rest", not crash_errors, "; ".join(crash_errors))

            # 3. dropped connections, client retries with the same key, signed notifications,
            # a minute after the simulated traffic (never across midnight, as it: see there)
            clock = VirtualClock(_last_noon() + timedelta(minutes=1))
            sandbox = build_sandbox(credentials, seed=seed, profile=load_profile(profile),
                                    clock=lambda: clock.now().timestamp(), sleep=clock.advance)
            providers = in_process_connectors(sandbox, credentials)
            service = build_service(
                engine, SIM_TEST_SETTINGS, gateways=providers, toggles=None, actor="sim-test",
                environment=Environment(clock=clock.now, monotonic=clock.monotonic,
                                        sleep=clock.advance, rng=random.Random(f"retry|{seed}"),
                                        new_id=_sequential_ids(f"s{seed}")))
            with dropped_connections(engine, random.Random(f"drops|{seed}"), w.drop_rate) as drops:
                for i in range(w.flaky_payments):
                    provider = rng.choice(tuple(providers))
                    request = payment_request(amount=rng.randrange(100, 50_000),
                                              currency=rng.choice(("USD", "EUR", "GBP")),
                                              reference=f"flaky-{seed}-{i}", provider=provider,
                                              payment_method=payment_method(provider))
                    for _ in range(6):  # the client retries the same key
                        try:
                            service.create_payment("merchant-sim", f"flaky-{seed}-{i}", request)
                            break
                        except (OperationalError, PaysignalError):
                            clock.advance(LOCK_TIMEOUT_S + 0.1)
            result.figures["dropped_statements"] = drops["statements"]
            clock.advance(LOCK_TIMEOUT_S + 1)
            service.recover_abandoned()
            clock.advance(120)  # every notification is due
            delivered = deliver_webhooks(service, sandbox)
            result.figures["notifications"] = dict(sorted(delivered.items()))
            service.resolve_unknown_outcomes()
            result.figures["flaky_duplicates"] = sandbox.books.duplicate_charges()

            # 4. settlement files with injected discrepancies (a dispute only the report tells of
            # is booked from it, with its events: before the relay runs)
            settlements = root / "settlements"
            assert sim.sandbox is not None
            books = (sim.sandbox.books.entries() + crash_books + sandbox.books.entries())
            truth = write_settlement_files(books, settlements, discrepancies=w.discrepancies,
                                           seed=seed,
                                           unnotified_disputes=sim.sandbox.unnotified_disputes)
            reconcile_directory(engine, settlements)
            # 5. the relay dies between publish and mark on a seeded batch; consumers dedupe
            # on one of the first three batches that exist (25 events each)
            batches_pending = max(1, -(-pending_count(engine) // 25))
            crash_batch = rng.randrange(1, min(3, batches_pending) + 1)
            batches = Counter[str]()

            def die_once(events: list[OutboxEvent]) -> None:
                batches["n"] += 1
                if batches["n"] == crash_batch:
                    raise SimulatedCrash()

            relay = OutboxRelay(engine, DatabaseEventLogSink(broker), batch_size=25,
                                after_publish=die_once)
            for _ in range(3):  # the relay restarts after its crash
                try:
                    relay.drain()
                    break
                except SimulatedCrash:
                    result.figures["relay_crashes"] = 1
            # Consumers read every event log the outbox published to (the simulation's relay
            # used the database's own; this one the broker), twice, as after a restart.
            events = _logged_events(engine) + _logged_events(broker)
            applied: Counter[tuple[str, str]] = Counter()
            for name in CONSUMERS:
                consumer = IdempotentConsumer(broker, name, _recorder(applied, name))
                for e in events + events:
                    consumer.consume(e)

            _check(result, engine, broker, applied, truth, clock.now())
        finally:
            engine.dispose()
            broker.dispose()
    return result


def _logged_events(engine: Engine) -> list[OutboxEvent]:
    with engine.connect() as conn:
        rows = conn.execute(select(event_log).order_by(event_log.c.id)).all()
    return [OutboxEvent(r.id, r.event_id, r.payment_id, r.name, json.loads(r.payload),
                        r.occurred_at) for r in rows]


def _sequential_ids(tag: str) -> Callable[[str], str]:
    """Ids that depend only on the order of creation, so a seed replays exactly."""
    counts: Counter[str] = Counter()

    def new_id(prefix: str) -> str:
        counts[prefix] += 1
        return f"{prefix}_{tag}_{counts[prefix]:06d}"

    return new_id


def _check(result: SeedResult, engine: Engine, broker: Engine,
           applied: Counter[tuple[str, str]], truth: list[dict[str, str]],
           now: datetime) -> None:
    dupes = sum(result.figures[k] for k in ("simulated_duplicates", "crash_duplicates",
                                            "flaky_duplicates"))
    result.check("no_duplicate_charge", dupes == 0, f"{dupes} payments charged twice")
    imbalance = total_imbalance_minor(engine)
    result.check("ledger_balanced", imbalance == 0, f"journal off by {imbalance} minor units")
    in_flight = in_flight_payment_ids(engine)
    with engine.connect() as conn:
        states: dict[str, int] = dict(conn.execute(select(payments.c.state, func.count())
                                   .group_by(payments.c.state)).all())
        outbox_ids = set(conn.execute(select(outbox.c.event_id)).scalars())
        pending = conn.execute(select(func.count()).select_from(outbox)
                               .where(outbox.c.published_at.is_(None))).scalar_one()
        # a break about a payment still unknown or awaiting confirmation is a true finding the
        # injected ground truth cannot list (the provider settled what the engine has not
        # resolved; UnknownOutcomesStale and ConfirmationsLate cover those payments below)
        found = [(b.kind, b.provider, b.provider_reference, b.payment_id)
                 for b in conn.execute(select(recon_breaks).where(
                     recon_breaks.c.status.in_(("open", "investigating"))))]
    result.figures["states"] = dict(sorted(states.items()))
    stuck = {s: n for s, n in states.items() if s in {f.value for f in IN_FLIGHT_STATES}}
    result.check("payments_at_rest", not stuck, f"payments stuck in flight: {stuck}")
    unknown = states.get(PaymentState.UNKNOWN.value, 0)
    if unknown:
        alerts = operational_alerts(engine, now + timedelta(hours=1), Thresholds())
        flagged = sum(int(str(a.details["count"])) for a in alerts
                      if a.name == "UnknownOutcomesStale")
        result.check("payments_at_rest", flagged == unknown,
                     f"{unknown} unknown payments but UnknownOutcomesStale covers {flagged}")
    awaiting = states.get(PaymentState.AWAITING_CONFIRMATION.value, 0)
    if awaiting:  # a lost notification: never re-submitted, and on-call is told with its age
        alerts = operational_alerts(engine, now + timedelta(hours=1), Thresholds())
        flagged = sum(int(str(a.details["count"])) for a in alerts
                      if a.name == "ConfirmationsLate")
        result.check("payments_at_rest", flagged == awaiting,
                     f"{awaiting} payments await confirmation but ConfirmationsLate covers "
                     f"{flagged}")
    published = {e.event_id for e in _logged_events(engine) + _logged_events(broker)}
    missing = outbox_ids - published
    twice = {k: n for k, n in applied.items() if n != 1}
    unapplied = [(c, e) for c in CONSUMERS for e in outbox_ids if (c, e) not in applied]
    result.check("outbox_exactly_once", not (pending or missing or twice or unapplied),
                 f"{pending} unpublished, {len(missing)} missing from the broker, "
                 f"{len(twice)} applied more than once, {len(unapplied)} never applied")
    missed, spurious, _ = grade(truth, found, in_flight)
    result.check("reconciliation_exact", not missed and not spurious,
                 f"missed {missed}, spurious {spurious}")
    result.figures["outbox_events"] = len(outbox_ids)
    result.figures["breaks"] = len(found)


def _last_noon() -> datetime:
    """The simulated traffic ends at the last noon (UTC): its two hours never cross midnight,
    where a capture the engine learns of after midnight settles, by the T+1 convention, a day
    after the provider booked it (a true break the injected ground truth cannot list)."""
    now = datetime.now(UTC)
    noon = now.replace(hour=12, minute=0, second=0, microsecond=0)
    return noon if noon <= now else noon - timedelta(days=1)


def run_seeds(seeds: list[int], profile: str, workload: Workload | None = None,
              on_seed: Callable[[SeedResult], None] | None = None,
              stop_at_first: bool = False, workers: int = 1) -> list[SeedResult]:
    """Each seed on its own copy of a migrated database; `workers` processes run seeds side
    by side (each seed is independent, so the results are the same), in seed order."""
    with tempfile.TemporaryDirectory(prefix="paysignal-sim-") as tmp:
        template = Path(tmp) / "template.db"
        engine = db.make_engine(f"sqlite:///{template}")
        db.upgrade(engine)
        engine.dispose()
        results = []
        with ProcessPoolExecutor(workers) if workers > 1 else nullcontext() as pool:
            if pool is None:
                outcomes: Iterator[SeedResult] = (
                    run_seed(seed, profile, template, workload, Path(tmp)) for seed in seeds)
            else:
                outcomes = pool.map(run_seed, seeds, repeat(profile), repeat(template),
                                    repeat(workload), repeat(Path(tmp)))
            for r in outcomes:
                results.append(r)
                if on_seed:
                    on_seed(r)
                if stop_at_first and r.violations:
                    if pool is not None:
                        pool.shutdown(cancel_futures=True)
                    break
    return results
