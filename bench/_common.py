"""Helpers shared by the benchmarks: a PostgreSQL server (throwaway or given) and pgbench."""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from engine.storage.db import normalize_url
from tests.support.postgres import ThrowawayPostgres, pg_bin_dir


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--database-url", help="PostgreSQL URL to use; default: start a "
                        "throwaway cluster and remove it afterwards")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object with the figures as the last line")
    return parser


@dataclass
class Server:
    """Where to run: a SQLAlchemy URL for a database of our own, plus libpq settings for pgbench."""

    admin_url: str

    def database(self, name: str) -> str:
        """A fresh database on the server (dropped first if it exists)."""
        engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def drop(self, name: str) -> None:
        engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@contextlib.contextmanager
def server(database_url: str | None) -> Iterator[Server]:
    if database_url:
        yield Server(normalize_url(database_url))
        return
    with ThrowawayPostgres() as pg:
        yield Server(pg.url)


def libpq_args(url: str) -> tuple[list[str], dict[str, str]]:
    u = make_url(url)
    args = ["-h", u.host or "127.0.0.1", "-p", str(u.port or 5432), "-U", u.username or "postgres"]
    env = {"PGPASSWORD": u.password} if u.password else {}
    return args + [u.database or "postgres"], env


def pgbench_tps(srv: Server, clients: int, seconds: int, scale: int = 10) -> float:
    """pgbench's built-in TPC-B-like script on the same server: transactions per second."""
    import os

    url = srv.database("paysignal_bench_pgbench")
    args, env = libpq_args(url)
    env = {**os.environ, **env}
    pgbench = str(pg_bin_dir() / "pgbench")
    try:
        subprocess.run([pgbench, "-i", "-q", "-s", str(scale), *args], check=True, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        result = subprocess.run([pgbench, "-c", str(clients), "-j", str(min(clients, 2)),
                                 "-T", str(seconds), *args], check=True, env=env,
                                capture_output=True, text=True)
    finally:
        srv.drop("paysignal_bench_pgbench")
    match = re.search(r"tps = ([\d.]+)", result.stdout)
    if not match:
        raise RuntimeError(f"could not read pgbench output:\n{result.stdout}")
    return float(match.group(1))


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by process `pid` (0 if it is gone)."""
    import os

    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_s() -> float:
    """CPU seconds used so far by the local postgres processes (0 if none are visible)."""
    import os

    total = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        if name == "postgres":
            total += process_cpu_s(int(pid))
    return total


def spread(values: list[float]) -> dict[str, float]:
    """Median, lowest and highest of repeated runs."""
    import statistics

    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3)}


def spread_text(figures: dict[str, object], name: str) -> str:
    """'median (min-max)' of a figure made by `spread`."""
    s = figures[name]
    assert isinstance(s, dict)
    return f"{s['median']:.3g} ({s['min']:.3g}-{s['max']:.3g})"


def report(figures: dict[str, object], as_json: bool, lines: list[str]) -> None:
    for line in lines:
        print(line, file=sys.stderr if as_json else sys.stdout)
    if as_json:
        print(json.dumps(figures))
