"""The documentation's generated sections: tables and references rendered from the code's own
definitions, between `<!-- name:start -->` and `<!-- name:end -->` markers in docs/*.md.
`python -m paysignal.docs` rewrites them; a test fails when one is stale."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from alerts.catalogue import catalogue_markdown as alert_catalogue
from engine.api.problems import problem_types_markdown
from engine.domain.states import transition_table_markdown
from engine.observability.signals import catalogue_markdown as signal_catalogue
from engine.providers.sandbox.registry import test_payment_methods_markdown
from engine.settlement.importer import format_reference_markdown
from engine.settlement.kinds import catalogue_markdown as break_kinds
from paysignal.settings import settings_markdown

DOCS = Path(__file__).resolve().parents[1] / "docs"
GENERATED: dict[str, Callable[[], str]] = {
    "alert-catalogue": alert_catalogue,
    "signal-catalogue": signal_catalogue,
    "transition-table": transition_table_markdown,
    "settlement-formats": format_reference_markdown,
    "problem-types": problem_types_markdown,
    "test-payment-methods": test_payment_methods_markdown,
    "break-kinds": break_kinds,
    "settings": settings_markdown,
}
_SECTION = re.compile(r"(<!-- (?P<name>[a-z-]+):start -->\n)(?P<body>.*?)(\n?<!-- (?P=name):end -->)",
                      re.S)


def sections(text: str) -> dict[str, str]:
    """The generated sections present in a page, by name."""
    return {m["name"]: m["body"].strip() for m in _SECTION.finditer(text)}


def refreshed(text: str) -> str:
    def render(m: re.Match[str]) -> str:
        make = GENERATED.get(m["name"])
        return m.group(0) if make is None else f"{m.group(1)}{make()}{m.group(4)}"

    return _SECTION.sub(render, text)


def refresh(docs: Path = DOCS) -> list[Path]:
    """Rewrite every generated section; returns the pages that changed."""
    changed = []
    for page in sorted(docs.glob("*.md")):
        text = page.read_text()
        new = refreshed(text)
        if new != text:
            page.write_text(new)
            changed.append(page)
    return changed


if __name__ == "__main__":
    for page in refresh():
        print(f"refreshed {page}")
