"""The dashboard's filters, kept in the URL query parameters so a link opens the same view."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta

from engine.domain.text import is_identifier

DEFAULT_DAYS = 7
PRESET_DAYS = (1, 2, 7, 30, 90)
MAX_DAYS = 400
PARAMS = ("from", "to", "provider", "currency", "merchant")


class FilterError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


@dataclass(frozen=True)
class Filters:
    """Days are inclusive, in UTC. Empty provider/currency/merchant means all."""

    start: date
    end: date
    provider: str = ""
    currency: str = ""
    merchant: str = ""

    @classmethod
    def default(cls, today: date | None = None) -> Filters:
        return cls.last(DEFAULT_DAYS, today)

    @classmethod
    def last(cls, days: int, today: date | None = None) -> Filters:
        """The last `days` days through tomorrow: settlement days run ahead of payment days,
        and a provider's file for tomorrow may already be in."""
        today = today or datetime.now(UTC).date()
        return cls(start=today - timedelta(days=days - 1), end=today + timedelta(days=1))

    def preset(self, today: date | None = None) -> int | None:
        """How many days back, if the range is one of PRESET_DAYS."""
        for days in PRESET_DAYS:
            last = Filters.last(days, today)
            if (self.start, self.end) == (last.start, last.end):
                return days
        return None

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=UTC)

    @property
    def until(self) -> datetime:
        """Exclusive upper bound: midnight after the last day."""
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=UTC)

    def to_params(self) -> dict[str, str]:
        params = {"from": self.start.isoformat(), "to": self.end.isoformat(),
                  "provider": self.provider, "currency": self.currency,
                  "merchant": self.merchant}
        return {k: v for k, v in params.items() if v}

    def checked(self) -> Filters:
        if self.end < self.start:
            raise FilterError("to", f"{self.end} is before from ({self.start})")
        if (self.end - self.start).days >= MAX_DAYS:
            raise FilterError("from", f"the range may cover at most {MAX_DAYS} days")
        if self.provider and not is_identifier(self.provider):
            raise FilterError("provider", "must be a provider name such as stripe")
        if self.currency and not (len(self.currency) == 3 and self.currency.isalpha()
                                  and self.currency.isupper()):
            raise FilterError("currency", "must be a three-letter ISO 4217 code such as EUR")
        if self.merchant and not is_identifier(self.merchant):
            raise FilterError("merchant", "must be a merchant id such as mer_…")
        return self


def _day(params: Mapping[str, str], field: str, default: date) -> date:
    raw = params.get(field, "")
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise FilterError(field, f"{raw!r} is not a date (YYYY-MM-DD)") from None


def from_params(params: Mapping[str, str], today: date | None = None) -> Filters:
    """Filters from query parameters (others, such as a page's own, are left alone);
    FilterError names the first bad one."""
    default = Filters.default(today)
    start = _day(params, "from", default.start)
    end = _day(params, "to", default.end if "from" not in params else max(start, default.end))
    return replace(default, start=start, end=end,
                   provider=params.get("provider", "").strip(),
                   currency=params.get("currency", "").strip().upper(),
                   merchant=params.get("merchant", "").strip()).checked()
