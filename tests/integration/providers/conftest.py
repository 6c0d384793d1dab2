"""The provider sandbox over loopback, one per test (its books start empty)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.providers.sandbox import SandboxServer
from tests.support.sandbox import sandbox_server


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with sandbox_server() as s:
        yield s
