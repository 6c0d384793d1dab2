"""The served API's /docs page works on a closed network: Swagger UI's assets come from the
package, and headless Chromium renders the operations."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from engine.storage import db
from tests.support.browser import headless_chromium
from tests.support.http import wait_for_http
from tests.support.postgres import free_port

PAYSIGNAL = str(Path(sys.executable).with_name("paysignal"))


def test_swagger_ui_is_served_from_the_package_and_renders(
        tmp_path: Path, session_sandbox) -> None:
    url = f"sqlite:///{tmp_path / 'api.db'}"
    db.upgrade(db.make_engine(url))
    port, metrics = free_port(), free_port()
    api = subprocess.Popen([PAYSIGNAL, "serve", "api", "--port", str(port), "--metrics-port",
                            str(metrics), "--database-url", url],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base}/healthz", api)
        page = httpx.get(f"{base}/docs", timeout=10).text
        assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page)
        assert assets and all(a.startswith("/") for a in assets), assets  # nothing remote
        for asset in assets:
            assert httpx.get(f"{base}{asset}", timeout=10).status_code == 200, asset
        with headless_chromium() as browser:
            browser.get(f"{base}/docs")
            WebDriverWait(browser, 60).until(lambda d: "/v1/payments/{payment_id}/refunds" in
                                             d.find_element(By.TAG_NAME, "body").text)
            assert "paysignal payment API" in browser.find_element(By.TAG_NAME, "body").text
    finally:
        api.terminate()
        api.wait(20)
