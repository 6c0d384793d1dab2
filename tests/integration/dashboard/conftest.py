"""Every dashboard test starts with no login, on loopback, with empty caches
(tests/support/dashboard.py)."""

import pytest


@pytest.fixture(autouse=True)
def _dashboard_env(dashboard_env: None) -> None:
    pass
