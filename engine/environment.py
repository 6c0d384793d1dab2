"""Settings read from the environment, each checked with an error that names the variable."""

from __future__ import annotations

import os
from collections.abc import Mapping

from engine.exceptions import ConfigurationError


def seconds_setting(variable: str, default: float, *, env: Mapping[str, str] | None = None,
                    maximum: float = 86_400) -> float:
    """A number of seconds from 0 to `maximum` (`default` when unset or empty)."""
    raw = (os.environ if env is None else env).get(variable, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= maximum:
        raise ConfigurationError(f"{variable}={raw!r}: must be a number of seconds from 0 to "
                                 f"{maximum:g}")
    return value
