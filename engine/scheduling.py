"""`paysignal serve worker`: the scheduled jobs (APScheduler 3).

Every job is idempotent. Before a run, the worker claims the run's slot (job name and scheduled
time) in `job_runs`; a second worker finds it claimed and skips it, so a run executes once however
many workers there are. Misfires are coalesced into one run. A worker killed mid-run leaves the
slot `running`: the job's work is transactional, so nothing is half-done, and the next slot
completes it."""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, update

from engine.observability.metrics import Metrics
from engine.storage.sql import insert_ignoring_conflicts
from engine.storage.tables import job_runs

log = logging.getLogger("paysignal.worker")


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    interval_s: float
    run: Callable[[], dict[str, Any]]


class Worker:
    def __init__(self, engine: Engine, jobs: list[Job], metrics: Metrics | None = None,
                 name: str | None = None) -> None:
        self.engine, self.jobs, self.metrics = engine, jobs, metrics
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"

    def claim(self, job: Job, slot: datetime) -> int | None:
        """The run's id if this worker claimed the slot, None if another worker has it."""
        with self.engine.begin() as conn:
            row = conn.execute(insert_ignoring_conflicts(conn, job_runs, "job", "slot").values(
                job=job.name, slot=slot, worker=self.name, started_at=datetime.now(UTC),
                status="running").returning(job_runs.c.id)).first()
        return row[0] if row else None

    def run_slot(self, job: Job, slot: datetime) -> str:
        run_id = self.claim(job, slot)
        if run_id is None:
            return "skipped"
        started = time.perf_counter()
        status, error, result = "succeeded", None, None
        try:
            result = json.dumps(job.run(), default=str)
        except Exception as exc:  # a failed run is recorded and retried at the next slot
            status, error = "failed", f"{type(exc).__name__}: {exc}"[:1000]
            log.error("job %s failed", job.name, extra={"operation": job.name})
        duration = time.perf_counter() - started
        with self.engine.begin() as conn:
            conn.execute(update(job_runs).where(job_runs.c.id == run_id).values(
                finished_at=datetime.now(UTC), status=status, error=error, result=result))
        if self.metrics:
            self.metrics.observe("paysignal_job_duration_seconds", duration, job=job.name)
            if status == "succeeded":
                self.metrics["paysignal_job_last_success_timestamp_seconds"].labels(
                    job=job.name).set(time.time())
            else:
                self.metrics.inc("paysignal_job_failures_total", job=job.name)
        return status

    def slot_for(self, job: Job, at: datetime) -> datetime:
        epoch = at.timestamp()
        return datetime.fromtimestamp(epoch - epoch % job.interval_s, UTC)

    def scheduler(self) -> Any:
        from apscheduler.schedulers.blocking import BlockingScheduler

        scheduler = BlockingScheduler(timezone="UTC", job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": 60})
        for job in self.jobs:
            scheduler.add_job(lambda j=job: self.run_slot(j, self.slot_for(j, datetime.now(UTC))),
                              "interval", seconds=job.interval_s, id=job.name,
                              next_run_time=datetime.now(UTC) + timedelta(seconds=1))
        return scheduler
