"""`paysignal alerts ...`: the alert catalogue, routing checks, and Alertmanager export."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from paysignal.cli._common import (
    DatabaseUrl,
    JsonFlag,
    console,
    fail,
    guarded,
    id_table,
    out,
    ready_engine,
    write_out_file,
)

app = typer.Typer(help="Alerts: the catalogue, routing to receivers, Alertmanager export.",
                  no_args_is_help=True)

Config = Annotated[Path | None, typer.Option(
    "--config", envvar="PAYSIGNAL_ALERT_ROUTES", show_envvar=True,
    help="Routing YAML. Default: the shipped alerts/routing.yaml.")]
RouteConfig = Annotated[Path | None, typer.Option(
    "--config", envvar="PAYSIGNAL_ALERT_ROUTES", show_envvar=True,
    help="Routing YAML. Default: the file the worker (or the demo) last loaded, as recorded "
         "in the database; else the shipped alerts/routing.yaml.")]


@app.command("route")
def route(label: Annotated[list[str], typer.Option(
              "--label", help="A label of the alert, as key=value; repeat for more.")],
          config: RouteConfig = None,
          as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
          database_url: DatabaseUrl = None,
          ) -> None:
    """Which receivers an alert with these labels reaches (like amtool config routes test),
    answered from the routing the service uses; says which file that is."""
    from alerts.routing import DEFAULT_CONFIG, load_config, routing_in_use

    labels: dict[str, str] = {}
    for item in label:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            fail(f"--label: {item!r} is not key=value")
        labels[key.strip()] = value
    if config is not None:
        source = f"routing: {config} (--config or PAYSIGNAL_ALERT_ROUTES)"
    else:
        from engine.exceptions import PaysignalError
        from engine.storage import db

        try:
            engine = db.make_engine(database_url)
            db.require_current_schema(engine)
            in_use = routing_in_use(engine)
            unread = ""
        except (PaysignalError, SQLAlchemyError) as exc:
            in_use, unread = None, f"; the database could not say which is in use: {exc}"
        if in_use is None:
            source = (f"routing: {DEFAULT_CONFIG} (the shipped default; no worker or demo has "
                      f"recorded another{unread})")
        else:
            config = in_use.path
            source = (f"routing: {in_use.path} (loaded by the {in_use.loaded_by} at "
                      f"{in_use.at:%Y-%m-%d %H:%M} UTC"
                      + ("; the file has changed since: restart the worker to route with it)"
                         if in_use.changed_since else ")"))
    console.print(source)
    receivers = guarded(lambda: load_config(config)).receivers_for(labels)
    if as_json:
        print(json.dumps(receivers))
        return
    out.print(",".join(receivers))


@app.command("alertmanager-config")
def alertmanager_config(
        out_file: Annotated[Path | None, typer.Option("--out", help="Write here instead of "
                                                         "printing.")] = None,
        config: Config = None) -> None:
    """Render the routing as an equivalent alertmanager.yml (secrets as *_file paths)."""
    from alerts.alertmanager import render_alertmanager_config
    from alerts.routing import load_config

    text = render_alertmanager_config(guarded(lambda: load_config(config)))
    if out_file is None:
        print(text, end="")
        return
    write_out_file(out_file, text)
    out.print(f"wrote {out_file}")


@app.command("catalogue")
def catalogue() -> None:
    """Every alert paysignal can raise: severity, owner team, condition, runbook."""
    from alerts.catalogue import CATALOGUE

    table = Table("alert", "severity", "team", "fires when", "runbook")
    for a in CATALOGUE:
        table.add_row(a.name, a.severity, a.team, a.condition, f"alerts/runbooks/{a.name}.md")
    out.print(table)


silence_app = typer.Typer(help="Silences: mute alerts matching label matchers for a while.",
                          no_args_is_help=True)
app.add_typer(silence_app, name="silence")


@app.command("evaluate")
def evaluate(config: Config = None, database_url: DatabaseUrl = None,
             deliver: Annotated[bool, typer.Option(help="Also deliver due notifications.")] = True,
             as_json: JsonFlag = False) -> None:
    """Detect what fires now (SLO burn rates, operational detectors), update alert states,
    write notifications for the receivers the routing picks, and deliver them."""
    from alerts.detectors import detect
    from alerts.pipeline import evaluate_alerts
    from alerts.receivers import deliver_pending
    from alerts.routing import load_config
    from paysignal.bootstrap import alert_thresholds
    from paysignal.settings import load_settings

    thresholds = alert_thresholds(guarded(load_settings))
    routing = guarded(lambda: load_config(config))
    engine = ready_engine(database_url)
    result = guarded(lambda: evaluate_alerts(engine, routing,
                                             detect(engine, datetime.now(UTC), thresholds)))
    delivery = deliver_pending(engine, routing) if deliver else {"sent": 0, "failed": 0}
    if as_json:
        print(json.dumps({**result.as_json(), "delivery": delivery}))
        return
    table = Table("alert", "labels", "summary", "runbook")
    for a in result.firing:
        table.add_row(a.name, ",".join(f"{k}={v}" for k, v in a.labels.items()
                                       if k not in ("alertname",)), a.summary, a.runbook_url)
    out.print(table if result.firing else "nothing is firing")
    out.print(f"resolved {len(result.resolved)}, silenced {len(result.silenced)}, inhibited "
              f"{len(result.inhibited)}; notifications written {result.notifications}, "
              f"delivered {delivery['sent']}, failed {delivery['failed']}")


@app.command("deliveries")
def deliveries(database_url: DatabaseUrl = None, limit: int = 50,
               as_json: JsonFlag = False) -> None:
    """The delivery log: notifications, attempts, status and last error."""
    from sqlalchemy import select

    from engine.storage.tables import alert_notifications as n

    engine = ready_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(select(n.c.id, n.c.receiver, n.c.group_key, n.c.created_at,
                                   n.c.attempts, n.c.delivered_at, n.c.last_error)
                            .order_by(n.c.id.desc()).limit(limit)).all()
    if as_json:
        print(json.dumps([dict(r._mapping) for r in rows], default=str))
        return
    table = id_table("id", "receiver", "group", "created", "attempts", "delivered", "last error")
    for r in rows:
        table.add_row(str(r.id), r.receiver, r.group_key, str(r.created_at), str(r.attempts),
                      str(r.delivered_at or "pending"), r.last_error or "")
    out.print(table)


@silence_app.command("add")
def silence_add(matcher: Annotated[list[str], typer.Option(
                    "--matcher", help='A label matcher, e.g. provider="adyen"; repeat.')],
                author: Annotated[str, typer.Option(help="Who silences (kept).")],
                comment: Annotated[str, typer.Option(help="Why (kept).")],
                duration: Annotated[str, typer.Option(
                    help="How long, e.g. 30m or 2h; at most 14 days.")] = "1h",
                match_everything: Annotated[bool, typer.Option(
                    "--match-everything", help="Confirm matchers that mute every alert.")] = False,
                database_url: DatabaseUrl = None) -> None:
    """Silence alerts matching every matcher until the duration has passed."""
    from alerts.pipeline import create_silence
    from alerts.routing import parse_duration

    span = guarded(lambda: parse_duration(duration, "--duration", "duration"))
    row = guarded(lambda: create_silence(ready_engine(database_url), matcher, author=author,
                                         comment=comment, duration=span,
                                         match_everything=match_everything))
    out.print(f"silence {row['id']} until {row['ends_at']}")


@silence_app.command("expire")
def silence_expire(silence_id: Annotated[str, typer.Argument()],
                   by: Annotated[str, typer.Option(help="Who expires it (kept).")],
                   database_url: DatabaseUrl = None) -> None:
    """End a silence now."""
    from alerts.pipeline import expire_silence

    guarded(lambda: expire_silence(ready_engine(database_url), silence_id, by=by))
    out.print(f"silence {silence_id} expired")


@silence_app.command("list")
def silence_list(database_url: DatabaseUrl = None, as_json: JsonFlag = False) -> None:
    """Active silences."""
    from alerts.pipeline import active_silences

    rows = active_silences(ready_engine(database_url), datetime.now(UTC))
    if as_json:
        print(json.dumps(rows, default=str))
        return
    table = id_table("id", "matchers", "author", "comment", "ends")
    for r in rows:
        table.add_row(str(r["id"]), " ".join(r["matchers"]), str(r["author"]),
                      str(r["comment"]), str(r["ends_at"]))
    out.print(table if rows else "no active silences")
