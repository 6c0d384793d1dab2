#!/usr/bin/env bash
# The whole test suite on a fresh machine: virtualenv, pinned dependencies, lint and strict types,
# then pytest. pytest starts (and removes) its own throwaway PostgreSQL cluster.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_pkgs+=(postgresql)
command -v psql >/dev/null 2>&1 || need_pkgs+=(postgresql-client)
command -v prometheus >/dev/null 2>&1 || need_pkgs+=(prometheus)
command -v amtool >/dev/null 2>&1 || need_pkgs+=(prometheus-alertmanager)
command -v chromium >/dev/null 2>&1 || need_pkgs+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_pkgs+=(chromium-driver)
command -v docker-compose >/dev/null 2>&1 || need_pkgs+=(docker-compose)
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1 ] || need_pkgs+=(faketime)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${need_pkgs[*]} (run as root or install them)" >&2
    exit 1
  fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}"
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check --require-hashes -r requirements/test.lock
.venv/bin/pip install -q --disable-pip-version-check --no-deps -e .
echo "ruff check ." && .venv/bin/ruff check .
echo "mypy (strict: engine, slo, alerts, dashboard, paysignal, bench; relaxed: tests)" && .venv/bin/python -m mypy
exec .venv/bin/python -m pytest -q "$@"
