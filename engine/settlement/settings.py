"""The settlement settings: how reports are taken, and the tolerances reconciliation holds
settlement lines and payouts to."""

from __future__ import annotations

from pydantic import Field

from engine.environment import EnvironmentSettings, read_settings


class SettlementSettings(EnvironmentSettings):
    settlement_min_age_s: float = Field(
        120.0, ge=0, le=86_400, alias="PAYSIGNAL_SETTLEMENT_MIN_AGE_S",
        description="a report whose format has no end marker (a CSV without footers) is taken "
                    "once unchanged this long")
    fee_tolerance_minor: int = Field(
        1, ge=0, le=100_000, alias="PAYSIGNAL_FEE_TOLERANCE_MINOR",
        description="how far a line's fee may differ from the configured pricing (minor "
                    "units) before it is a `fee_mismatch`")
    payout_arrival_days: int = Field(
        3, ge=0, le=60, alias="PAYSIGNAL_PAYOUT_ARRIVAL_DAYS",
        description="days a payout may take to show at the bank before it is a "
                    "`payout_missing` break")


def settlement_settings() -> SettlementSettings:
    return read_settings(SettlementSettings)
