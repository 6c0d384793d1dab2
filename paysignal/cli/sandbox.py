"""`paysignal sandbox serve`: the provider sandbox (Stripe, Adyen and PayPal protocols) on a
local port, for development, the demo, compose's `sandbox` profile and the benchmarks."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from paysignal.cli._common import fail, out

sandbox_app = typer.Typer(no_args_is_help=True,
                          help="The provider sandbox: Stripe, Adyen and PayPal, locally.")


@sandbox_app.command("serve")
def serve(
    host: Annotated[str, typer.Option(envvar="PAYSIGNAL_SANDBOX_HOST",
                                      help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PAYSIGNAL_SANDBOX_PORT", min=0, max=65535,
                                      help="Port (0: any free one).")] = 8010,
    profile: Annotated[str, typer.Option(
        envvar="PAYSIGNAL_SANDBOX_PROFILE",
        help="Fault profile: calm, default, provider-outage, incident, chaos.")] = "calm",
    seed: Annotated[int, typer.Option(envvar="PAYSIGNAL_SANDBOX_SEED",
                                      help="Same seed, same faults.")] = 0,
    webhooks_to: Annotated[str | None, typer.Option(
        envvar="PAYSIGNAL_SANDBOX_WEBHOOKS_TO",
        help="Post signed notifications to URL/<provider> (e.g. "
             "http://127.0.0.1:8000/v1/webhooks); none: they are only queued.")] = None,
    env_file: Annotated[Path | None, typer.Option(
        help="Write the variables that point paysignal at this sandbox (credentials "
             "included) to this file, mode 0600.")] = None,
    latency_ms: Annotated[float | None, typer.Option(
        envvar="PAYSIGNAL_SANDBOX_LATENCY_MS", min=0, max=60_000,
        help="Every provider call takes exactly this long (milliseconds), as a real "
             "provider's would; default: answer at once.")] = None,
) -> None:
    """Serve the three providers' protocols under /stripe, /adyen and /paypal, so paysignal's
    connectors and each provider's own SDK work against it by changing only the base URL. The
    webhook credentials are read from the same variables paysignal verifies with
    (PAYSIGNAL_WEBHOOK_SECRET_STRIPE, PAYSIGNAL_WEBHOOK_SECRET_ADYEN, PAYSIGNAL_PAYPAL_WEBHOOK_ID);
    any unset are generated for this run."""
    from engine.exceptions import PaysignalError
    from engine.providers.registry import PROVIDERS, provider_names
    from engine.providers.sandbox import SandboxServer
    from engine.providers.sandbox.faults import PROFILES
    from engine.providers.sandbox.registry import build_sandbox, sandbox_environment

    if profile not in PROFILES:
        fail(f"--profile: unknown profile {profile!r} (known: {', '.join(PROFILES)})")
    credentials = {}
    for name in provider_names():
        spec = PROVIDERS[name]
        given = (os.environ.get(spec.webhook_variable) or "").split(",")[0].strip()
        credentials[name] = given or spec.new_webhook_credential()
    try:
        sandbox = build_sandbox(credentials, seed=seed, profile=PROFILES[profile],
                                sleep=time.sleep if latency_ms else None)
        sandbox.fixed_latency_s = latency_ms / 1000 if latency_ms else None
        server = SandboxServer(sandbox, host=host, port=port)
    except OSError as exc:
        fail(f"--port: cannot listen on {host}:{port} ({exc.strerror})")
    except PaysignalError as exc:
        fail(str(exc))
    base = (webhooks_to or "").rstrip("/")
    with server:
        if base:
            server.deliver_to(lambda provider: f"{base}/{provider}")
        environment = sandbox_environment(server.url, credentials)
        if env_file is not None:
            env_file.write_text("".join(f"{k}={v}\n" for k, v in sorted(environment.items())))
            env_file.chmod(0o600)
        # plain print: a terminal-width wrap would break the URLs
        latency = f", {latency_ms:g} ms per call" if latency_ms else ""
        print(f"paysignal sandbox ({profile} profile, seed {seed}{latency}) at {server.url}",
              flush=True)
        for name in provider_names():
            print(f"  {name:<7} {server.url}/{name}", flush=True)
        print(f"  books   {server.url}/_sandbox/books", flush=True)
        print("  webhooks " + (f"posted to {base}/<provider>" if base else "queued only "
                               "(--webhooks-to to post them)"), flush=True)
        if env_file is not None:
            print(f"  the variables that point paysignal here: {env_file}", flush=True)
        stopped = threading.Event()

        def stop(signum: int, frame: Any) -> None:
            stopped.set()

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        stopped.wait()
    out.print("sandbox stopped")


@sandbox_app.command("reports")
def reports(
    directory: Annotated[Path, typer.Option("--dir", help="Write the reports into DIR.")],
    day: Annotated[str | None, typer.Option(
        "--date", help="Only this settlement day (YYYY-MM-DD); default: every day the books "
                       "settle (each movement settles the day after it happened, UTC).")] = None,
    sandbox_url: Annotated[str, typer.Option(
        "--from", envvar="PAYSIGNAL_SANDBOX_URL",
        help="The running sandbox whose books to settle.")] = "http://127.0.0.1:8010",
    discrepancies: Annotated[int, typer.Option(
        min=0, help="Discrepancies to inject, of every kind reconciliation detects.")] = 0,
    seed: Annotated[int, typer.Option(help="Same seed, same discrepancies.")] = 0,
) -> None:
    """Write each provider's own settlement report (Stripe's itemized balance-change report,
    Adyen's settlement details report, PayPal's STL) from a running sandbox's books, with
    DIR/ground_truth.json listing the discrepancies injected; `paysignal reconcile --dir DIR`
    then grades itself against it."""
    from datetime import date as date_type

    import httpx

    from engine.providers.sandbox import BookEntry
    from paysignal.simulation.settlement_files import injected_count, write_settlement_files

    try:
        on = date_type.fromisoformat(day) if day else None
    except ValueError:
        fail(f"--date: {day!r} is not a date (YYYY-MM-DD)")
    if directory.exists() and not directory.is_dir():
        fail(f"--dir: {directory} is not a directory")
    url = f"{sandbox_url.rstrip('/')}/_sandbox/books"
    try:
        answer = httpx.get(url, timeout=10.0)
        answer.raise_for_status()
        books = answer.json()
        entries = [BookEntry(**e) for e in books["entries"]]
        unnotified = [(str(p), str(r)) for p, r in books.get("unnotified_disputes", [])]
    except httpx.HTTPError as exc:
        fail(f"--from: cannot read the sandbox's books at {url} ({exc})")
    except (ValueError, KeyError, TypeError) as exc:
        fail(f"--from: {url} did not answer with a sandbox's books ({exc})")
    truth = write_settlement_files(entries, directory, discrepancies=discrepancies, seed=seed,
                                   day=on, unnotified_disputes=unnotified)
    written = sorted(p.name for p in directory.iterdir() if p.name != "ground_truth.json")
    out.print(f"wrote {len(written)} reports to {directory} from {len(entries)} book entries"
              f" ({injected_count(truth)} discrepancies injected; ground truth in ground_truth.json)")
    for name in written:
        out.print(f"  {name}")
