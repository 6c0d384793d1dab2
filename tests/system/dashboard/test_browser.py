"""End to end: `paysignal serve dashboard` on a seeded day, opened in headless Chromium."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import func, select

from engine.storage import db
from engine.storage.tables import payments
from tests.support.browser import headless_chromium
from tests.support.http import wait_for_http
from tests.support.postgres import free_port

# how long a page may take to draw what a test waits for, on a slow, busy CI machine; waits
# end as soon as the thing itself is there
PAGE_CEILING_S = 120
ARTIFACTS = Path(os.environ.get("PAYSIGNAL_TEST_ARTIFACTS",
                                Path(__file__).resolve().parents[3] / "test-artifacts"))
PAYSIGNAL = str(Path(sys.executable).with_name("paysignal"))


def seeded_days(url: str) -> str:
    """Query parameters for the range that holds everything the seeded day wrote: its payments,
    and the settlement, payout and bank days that run ahead of them. A page opened with it
    shows the same rows whatever day and hour the test runs."""
    from datetime import timedelta

    from engine.storage.tables import payouts, recon_breaks

    engine = db.make_engine(url)
    with engine.connect() as conn:
        days = [conn.execute(select(func.min(payments.c.created_at),
                                    func.max(payments.c.created_at))).one()]
        days.append(conn.execute(select(func.min(recon_breaks.c.settled_on),
                                        func.max(recon_breaks.c.settled_on))).one())
        days.append(conn.execute(select(func.min(payouts.c.paid_on),
                                        func.max(func.coalesce(payouts.c.arrived_on,
                                                               payouts.c.paid_on)))).one())
    engine.dispose()
    found = [d.date() if hasattr(d, "date") else d for pair in days for d in pair if d]
    assert found, "the seeded day wrote nothing"
    start, end = min(found) - timedelta(days=1), max(found) + timedelta(days=1)
    return f"?from={start:%Y-%m-%d}&to={end:%Y-%m-%d}"


@pytest.fixture
def served(seeded_sqlite: Path, tmp_path: Path) -> Iterator[tuple[str, str]]:
    copy = tmp_path / "served.db"
    copy.write_bytes(seeded_sqlite.read_bytes())
    url = f"sqlite:///{copy}"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYSIGNAL_DASHBOARD")}
    server = subprocess.Popen([PAYSIGNAL, "serve", "dashboard", "--port", str(port),
                               "--database-url", url], env=env, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base}/_stcore/health", server)
        yield base, url
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_overview_shows_the_key_figures_and_clicks_through_to_an_audit_trail(served) -> None:
    base, url = served
    engine = db.make_engine(url)
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(payments)).scalar_one()
        payment_id = conn.execute(select(payments.c.id).where(payments.c.state == "captured")
                                  .order_by(payments.c.id).limit(1)).scalar_one()
    engine.dispose()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with headless_chromium() as browser:
        browser.get(f"{base}/")
        wait = WebDriverWait(browser, PAGE_CEILING_S)

        def metric_values(driver):
            cards = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMetric"]')
            values = {}
            for card in cards:
                label = card.find_element(By.CSS_SELECTOR, '[data-testid="stMetricLabel"]').text
                values[label.strip()] = card.find_element(
                    By.CSS_SELECTOR, '[data-testid="stMetricValue"]').text.strip()
            return values if {"Payments", "Open breaks", "Matched"} <= set(values) else False

        browser.set_window_size(1600, 2300)
        figures = wait.until(metric_values)
        assert figures["Payments"] == f"{total:,}"
        assert figures["Open breaks"] != "0" and figures["Matched"].endswith("%")
        # the demo's adyen incident: its failures drawn inside the bands of the alerts it raised
        wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"),
                                                    "Errors and time-outs: adyen"))
        wait.until(lambda d: len(d.find_elements(
            By.CSS_SELECTOR, ".vega-embed canvas, .vega-embed svg.marks")) >= 4)
        wait.until(lambda d: all(e in d.find_element(By.TAG_NAME, "body").text
                                 for e in ("Engineering", "Finance")))
        page_text = browser.find_element(By.TAG_NAME, "body").text
        spike = next(line for line in page_text.splitlines()
                     if line.startswith("Errors and time-outs: adyen"))
        assert "alerts firing then: " in spike and "SLOBurnRate" in spike, spike
        assert "Engineering" in page_text and "Finance" in page_text
        assert "adyen authorization success" in page_text and "Money at risk" in page_text
        assert "No login configured" in page_text
        browser.save_screenshot(str(ARTIFACTS / "dashboard-overview.png"))
        browser.set_window_size(1600, 1200)

        browser.find_element(By.CSS_SELECTOR, '[data-testid="stSidebarNav"] a[href$="/payments"]')\
            .click()
        search = wait.until(ec.element_to_be_clickable(
            (By.CSS_SELECTOR, 'input[aria-label="Payment id, merchant reference or '
                              'Idempotency-Key"]')))
        search.send_keys(payment_id, Keys.ENTER)
        wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"), "Audit trail"))
        wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"),
                                                    f"{payment_id} — captured"))
        assert "/payments" in browser.current_url and payment_id in browser.current_url
        browser.save_screenshot(str(ARTIFACTS / "dashboard-payment.png"))
    assert (ARTIFACTS / "dashboard-overview.png").stat().st_size > 10_000


def test_every_alerts_runbook_link_opens_its_runbook(served, monkeypatch) -> None:
    """The link each catalogue alert carries (notifications, Prometheus rules, the Alerts page)
    opens that alert's runbook in the browser."""
    from alerts.catalogue import CATALOGUE
    from alerts.model import Alert

    base, _ = served
    monkeypatch.setenv("PAYSIGNAL_DASHBOARD_URL", base)
    monkeypatch.delenv("PAYSIGNAL_RUNBOOK_BASE", raising=False)
    with headless_chromium() as browser:
        wait = WebDriverWait(browser, PAGE_CEILING_S)
        for spec in CATALOGUE:
            link = Alert.of(spec.name, "test").runbook_url
            assert link.startswith(base)
            browser.get(link)
            first_heading = spec.runbook.read_text().splitlines()[0].lstrip("# ").strip()
            wait.until(lambda driver, heading=first_heading: heading in [  # type: ignore[misc]
                h.text for h in driver.find_elements(
                    By.CSS_SELECTOR, '[data-testid="stMainBlockContainer"] h1')])
            body = browser.find_element(By.TAG_NAME, "body").text
            assert "What it means" in body and spec.condition in body, spec.name
        browser.save_screenshot(str(ARTIFACTS / "dashboard-runbook.png"))


def test_finance_sees_payouts_arrive_disputes_due_and_breaks_age_on_the_money_page(served) -> None:
    from engine.storage.tables import disputes, payouts

    base, url = served
    engine = db.make_engine(url)
    with engine.connect() as conn:
        arrived = conn.execute(select(payouts.c.reference).where(
            payouts.c.arrived_on.is_not(None)).order_by(payouts.c.reference).limit(1)
        ).scalar_one()
        # the demo day's cardholders disputed some payments; the soonest deadline is listed
        due = conn.execute(select(disputes.c.payment_id, disputes.c.due_by).where(
            disputes.c.status == "open", disputes.c.due_by.is_not(None))
            .order_by(disputes.c.due_by).limit(1)).one()
    engine.dispose()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with headless_chromium() as browser:
        browser.get(f"{base}/money{seeded_days(url)}")
        wait = WebDriverWait(browser, PAGE_CEILING_S)
        wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"),
                                                    "Payouts: expected and arrived"))
        # Streamlit draws the page in parts: wait for every part, not for the first
        expected = ("Arrived at the bank", "Open breaks by age", "Fees taken", "arrived 20",
                    arrived, due.payment_id, f"{due.due_by:%Y-%m-%d %H:%M}")
        wait.until(lambda d: all(e in d.find_element(By.TAG_NAME, "body").text
                                 for e in expected))
        text = browser.find_element(By.TAG_NAME, "body").text
        assert "No open dispute" not in text
        browser.save_screenshot(str(ARTIFACTS / "dashboard-money.png"))
    assert (ARTIFACTS / "dashboard-money.png").stat().st_size > 10_000


def test_an_alerts_link_opens_its_incident_with_the_payments_it_touched(served) -> None:
    """The link a page notification carried (stored before delivery) opens the incident view:
    the alert, the adyen time series around it, the payments affected with links to their
    audit trails."""
    import json

    from engine.storage.tables import alert_notifications

    base, url = served
    engine = db.make_engine(url)
    with engine.connect() as conn:
        sent = [json.loads(p) for p in conn.execute(select(alert_notifications.c.payload))
                .scalars()]
    engine.dispose()
    links = [a["dashboard_url"] for n in sent for a in n["alerts"]
             if a["labels"]["alertname"] == "SLOBurnRatePage"]
    assert links and "/incident?alert=SLOBurnRatePage&provider=adyen" in links[0]
    link = base + "/incident?" + links[0].split("?", 1)[1]  # served on a test port
    with headless_chromium() as browser:
        browser.set_window_size(1600, 2300)
        browser.get(link)
        wait = WebDriverWait(browser, PAGE_CEILING_S)
        wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"), "Payments affected"))
        wait.until(lambda d: len(d.find_elements(
            By.CSS_SELECTOR, ".vega-embed canvas, .vega-embed svg.marks")) >= 4)
        expected = ("SLOBurnRatePage · adyen", "Runbook", "What was done about them",
                    "unknown-resolver")
        wait.until(lambda d: all(e in d.find_element(By.TAG_NAME, "body").text
                                 for e in expected))
        payment_links = wait.until(lambda d: d.find_elements(
            By.CSS_SELECTOR, 'a[href*="payments?payment=pay_"]'))
        browser.save_screenshot(str(ARTIFACTS / "dashboard-incident.png"))
        browser.set_window_size(1600, 1200)
        first = payment_links[0].get_attribute("href").rsplit("=", 1)[1]
        browser.get(payment_links[0].get_attribute("href"))
        wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"), "Audit trail"))
        wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"), first))
    assert (ARTIFACTS / "dashboard-incident.png").stat().st_size > 10_000


def test_the_slo_list_shows_the_burning_slos_budget_below_the_others(served) -> None:
    base, _ = served
    with headless_chromium() as browser:
        browser.set_window_size(1600, 1800)
        browser.get(f"{base}/slos")
        wait = WebDriverWait(browser, PAGE_CEILING_S)
        wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"), "At a glance"))
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, '[role="progressbar"]')) >= 7)
        names = [a.get_attribute("href").rsplit("slo=", 1)[1] for a in browser.find_elements(
            By.CSS_SELECTOR, 'a[href*="slos?slo="]')]
        budgets = [float(b.get_attribute("aria-valuenow")) for b in browser.find_elements(
            By.CSS_SELECTOR, '[role="progressbar"]')]
        assert len(names) == len(budgets) >= 7
        assert names[0] == "authorization-technical-success-adyen"  # the demo's incident
        assert budgets[0] < min(budgets[1:])
        wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"), "Error budget burn-down"))
        browser.save_screenshot(str(ARTIFACTS / "dashboard-slos.png"))
    assert (ARTIFACTS / "dashboard-slos.png").stat().st_size > 10_000


def test_the_break_queue_and_the_alerts_pages_show_the_days_breaks_and_alerts(served) -> None:
    """The two remaining pages, with their screenshots: the open breaks of the day and the
    firing alerts, each with a link to its incident."""
    from engine.storage.tables import alert_states, recon_breaks

    base, url = served
    engine = db.make_engine(url)
    with engine.connect() as conn:
        open_breaks = conn.execute(select(func.count()).where(
            recon_breaks.c.status == "open")).scalar_one()
        firing = conn.execute(select(func.count()).where(
            alert_states.c.status == "firing")).scalar_one()
    engine.dispose()
    assert open_breaks and firing
    with headless_chromium() as browser:
        wait = WebDriverWait(browser, PAGE_CEILING_S)
        browser.get(f"{base}/reconciliation{seeded_days(url)}")
        wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"),
                                                    f"Break queue — {open_breaks:,} breaks"))
        browser.save_screenshot(str(ARTIFACTS / "dashboard-reconciliation.png"))
        browser.get(f"{base}/alerts")
        wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"), "Delivery log"))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '[data-testid="stMetric"]'))
        text = browser.find_element(By.TAG_NAME, "body").text
        assert f"Firing\n{firing}" in text and "Rollout toggles" in text
        browser.save_screenshot(str(ARTIFACTS / "dashboard-alerts.png"))
    for name in ("reconciliation", "alerts"):
        assert (ARTIFACTS / f"dashboard-{name}.png").stat().st_size > 10_000
