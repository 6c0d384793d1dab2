"""A throwaway PostgreSQL cluster for tests and benchmarks (initdb + pg_ctl, removed afterwards)."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

PG_BIN_CANDIDATES = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin",
                     "/usr/lib/postgresql/17/bin")


def pg_bin_dir() -> Path:
    override = os.environ.get("PAYSIGNAL_PG_BIN")
    for candidate in ([override] if override else []) + list(PG_BIN_CANDIDATES):
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found; "
                       "install postgresql-15 or set PAYSIGNAL_PG_BIN")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ThrowawayPostgres:
    """Start a private cluster on 127.0.0.1; as root it runs as the `postgres` user."""

    def __init__(self, *, settings: dict[str, str] | None = None) -> None:
        self.bin = pg_bin_dir()
        self.port = free_port()
        self.settings = {"max_connections": "200", "shared_buffers": "256MB",
                         "fsync": "on", **(settings or {})}
        self.root = Path(tempfile.mkdtemp(prefix="paysignal-pg-"))
        self.data = self.root / "data"
        self.as_root = os.geteuid() == 0

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def libpq_env(self) -> dict[str, str]:
        return {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(self.port), "PGUSER": "postgres"}

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def start(self) -> ThrowawayPostgres:
        self.data.mkdir()
        if self.as_root:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.data, "postgres")
            os.chmod(self.root, 0o755)
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "--auth=trust", "--encoding=UTF8", "--no-sync")
        opts = " ".join(f"-c {k}={v}" for k, v in self.settings.items())
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60",
                  "-l", str(self.root / "server.log"),
                  "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 {opts}",
                  "start")
        return self

    def create_database(self, name: str) -> str:
        subprocess.run(["psql", "-q", "-c", f'CREATE DATABASE "{name}"'], env=self.libpq_env,
                       check=True, stdout=subprocess.DEVNULL)
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w",
                      "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> ThrowawayPostgres:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


_db_counter = itertools.count()


def fresh_postgres_url(server: ThrowawayPostgres) -> str:
    """A new database on the cluster, copied from the migrated template."""
    name = f"t{os.getpid()}_{next(_db_counter)}"
    subprocess.run(["psql", "-q", "-c", f'CREATE DATABASE "{name}" TEMPLATE paysignal_template'],
                   env=server.libpq_env, check=True, stdout=subprocess.DEVNULL)
    return f"postgresql+psycopg://postgres@127.0.0.1:{server.port}/{name}"
