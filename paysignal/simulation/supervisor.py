"""The demo's process supervisor: starts paysignal's own long-lived processes (`serve api`,
`serve worker`, `serve dashboard`) beside a simulated day, waits until each answers, watches
them, and stops them all on Ctrl-C, a TERM, or when one of them dies."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO


class SupervisedProcessError(Exception):
    """A process stopped while starting, or never answered."""


@dataclass(frozen=True)
class Supervised:
    name: str  # also its log file's name: <log_dir>/<name>.log
    args: list[str]  # the paysignal subcommand and its options
    ready_url: str  # answers once the process is ready


class Supervisor:
    """Use as a context manager: whatever happens inside, every process started is stopped
    (TERM, then KILL after `grace_s`) and its log closed."""

    def __init__(self, env: Mapping[str, str], log_dir: Path, grace_s: float = 15) -> None:
        self.env, self.log_dir, self.grace_s = dict(env), log_dir, grace_s
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []

    def __enter__(self) -> Supervisor:
        def interrupt(signum: int, frame: FrameType | None) -> None:
            raise KeyboardInterrupt

        # Ctrl-C or a TERM stops everything started; explicit, for a shell starts background
        # jobs with SIGINT ignored
        signal.signal(signal.SIGINT, interrupt)
        signal.signal(signal.SIGTERM, interrupt)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()

    def start(self, processes: list[Supervised], ready_within_s: float = 60) -> None:
        """Start each process, then wait until each answers its ready URL in turn."""
        for p in processes:
            log = (self.log_dir / f"{p.name}.log").open("ab")
            self._logs.append(log)
            self.procs[p.name] = subprocess.Popen(
                [sys.executable, "-m", "paysignal", *p.args], env=self.env, stdout=log,
                stderr=subprocess.STDOUT)
        for p in processes:
            self._wait_ready(p, ready_within_s)

    def run_until_stopped(self) -> list[str]:
        """Block until Ctrl-C or a TERM (returns []) or until a process dies (returns the
        names of the dead)."""
        try:
            while all(p.poll() is None for p in self.procs.values()):
                time.sleep(0.5)
        except KeyboardInterrupt:
            return []
        return [n for n, p in self.procs.items() if p.poll() is not None]

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(timeout=self.grace_s)
            except subprocess.TimeoutExpired:
                p.kill()
        for log in self._logs:
            log.close()
        self._logs.clear()

    def _wait_ready(self, p: Supervised, seconds: float) -> None:
        proc, deadline = self.procs[p.name], time.monotonic() + seconds
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SupervisedProcessError(
                    f"{p.name} exited with {proc.returncode} while starting (see "
                    f"{self.log_dir / (p.name + '.log')})")
            try:
                with urllib.request.urlopen(p.ready_url, timeout=2):
                    return
            except OSError:
                time.sleep(0.3)
        raise SupervisedProcessError(f"{p.name} did not answer {p.ready_url} within "
                                     f"{seconds:.0f} s")
