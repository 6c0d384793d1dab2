"""How every setting is read from the environment: one pydantic model per layer whose field
aliases are the variables, read by one function with one set of rules. An empty variable means
unset (as a shell user expects); a bad value is a ConfigurationError naming the variable, its
value and the rule. paysignal's `Settings` is all the layers' sections in one object, checked
when a process starts; a layer below the wiring reads its own section through the same
function, so both always agree."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError

from engine.exceptions import ConfigurationError


class EnvironmentSettings(BaseModel):
    """A section of settings. Field aliases are the variables; descriptions are the docs'
    configuration table (docs/configuration.md, generated)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    @classmethod
    def variables(cls) -> list[str]:
        return sorted(str(f.alias) for f in cls.model_fields.values())


Section = TypeVar("Section", bound=EnvironmentSettings)


def read_settings(section: type[Section], env: Mapping[str, str] | None = None) -> Section:
    """`section` from `env` (default: this process's environment). Raises ConfigurationError
    naming every bad variable, its value and what it must be."""
    env = os.environ if env is None else env
    given = {name: env[name].strip() for name in section.variables()
             if env.get(name, "").strip()}
    try:
        return section.model_validate(given)
    except PydanticValidationError as exc:
        problems: list[str] = []
        reasons: dict[str, list[str]] = {}  # a choice of types gives one reason per choice
        for error in exc.errors():
            if not error["loc"]:  # a rule between two variables names both itself
                problems.append(_reason(error["msg"]))
                continue
            reasons.setdefault(str(error["loc"][0]), []).append(_reason(error["msg"]))
        problems += [f"{name}={given.get(name, '')!r}: {', or '.join(dict.fromkeys(why))}"
                     for name, why in reasons.items()]
        raise ConfigurationError("; ".join(problems)) from None


def _reason(message: str) -> str:
    # pydantic says "Input should be ..."; the variable and its value are named already
    return (message.removeprefix("Value error, ").replace("Input should be", "must be")
            .replace("input should be", "must be")
            .replace("a valid number, unable to parse string as a number", "a number")
            .replace("a valid integer, unable to parse string as an integer", "a whole number")
            .replace("a valid integer, got a number with a fractional part", "a whole number"))
