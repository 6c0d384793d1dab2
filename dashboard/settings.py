"""The dashboard's settings (read through engine.environment, like every layer's)."""

from __future__ import annotations

from pydantic import Field

from engine.environment import EnvironmentSettings


class DashboardSettings(EnvironmentSettings):
    dashboard_refresh_s: float = Field(
        15.0, ge=1, le=3600, alias="PAYSIGNAL_DASHBOARD_REFRESH_S",
        description="how often the Overview's live panels refresh (seconds; queries are "
                    "cached for 10 s)")
