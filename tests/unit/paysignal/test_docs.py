"""The README is a front page; the reference is the docs site (docs/, MkDocs), whose tables are
generated from the code (paysignal.docs) and must not drift."""

import re
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from engine.providers.sandbox.faults import PROFILES
from engine.providers.sandbox.registry import SANDBOXED
from paysignal.cli import app
from paysignal.docs import DOCS, GENERATED, sections

ROOT = Path(__file__).resolve().parents[3]
README = (ROOT / "README.md").read_text()
PAGES = {p.name: p.read_text() for p in DOCS.glob("*.md")}
ALL_DOCS = "\n".join(PAGES.values())


def between(marker: str) -> str:
    return ALL_DOCS.split(f"<!-- {marker}:start -->")[1].split(f"<!-- {marker}:end -->")[0].strip()


def test_every_generated_section_is_current_and_present() -> None:
    found: dict[str, str] = {}
    for name, text in PAGES.items():
        for section, body in sections(text).items():
            found[section] = body
            if section in GENERATED:
                assert body == GENERATED[section](), (
                    f"docs/{name}: section {section} is stale: python -m paysignal.docs")
    assert set(GENERATED) <= set(found)


def test_the_docs_site_builds_in_strict_mode(tmp_path: Path) -> None:
    """Broken links, missing pages or anchors fail the build (mkdocs.yml: strict)."""
    build = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                            str(tmp_path / "site"), "--config-file", str(ROOT / "mkdocs.yml")],
                           capture_output=True, text=True, timeout=120)
    assert build.returncode == 0, build.stderr
    assert (tmp_path / "site" / "runbooks" / "OutboxBacklog" / "index.html").is_file()
    assert "Psp Reference" in (tmp_path / "site" / "reconciliation" / "index.html").read_text()


def test_the_readme_is_a_front_page_whose_links_resolve() -> None:
    assert len(README.splitlines()) < 100
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)
    assert links and all((ROOT / link).exists() for link in links), links


def test_docs_list_every_sandbox_payment_method_with_its_behaviour() -> None:
    rows = dict(re.findall(r"^\| `([^`]+)` \| (.+?) \|$", between("test-payment-methods"),
                           re.M))
    expected = {k: v for s in SANDBOXED.values() for k, v in s.test_payment_methods.items()}
    assert rows == expected and len(rows) >= 3 * 7


def test_docs_list_every_fault_profile() -> None:
    for profile in PROFILES.values():
        assert f"| `{profile.name}` | {profile.description} |" in ALL_DOCS


def test_docs_document_every_cli_command() -> None:
    for command in ("db upgrade", "db current", "simulate", "ledger balances", "ledger check",
                    "outbox relay", "keys expire", "states", "merchants create", "serve api",
                    "toggles set", "toggles list", "reconcile", "breaks list",
                    "breaks sign-off", "breaks checkpoints", "serve worker", "demo",
                    "serve dashboard", "sim-test", "db roles", "admins create", "admins revoke",
                    "admins list", "merchants rotate-key", "merchants revoke-key",
                    "merchants keys", "users add", "users disable", "users list"):
        assert f"`paysignal {command}" in PAGES["cli.md"], command
        result = CliRunner().invoke(app, [*command.split(), "--help"])
        assert result.exit_code == 0, result.output


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_command() -> None:
    root = Path(__file__).resolve().parents[3]
    block = README.split("```bash")[1].split("```")[0]
    commands = [line for line in block.splitlines() if line and not line.startswith("#")]
    assert len(commands) == 2
    assert commands[0].endswith("paysignal demo")
    assert commands[1] in (root / ".ci" / "run").read_text()


def test_help_lists_commands_in_the_order_a_newcomer_meets_them() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "120"})
    commands = result.output.split("Commands")[1]
    listed = [m[1] for m in re.finditer(r"^│ (\S+)  ", commands, re.M)]
    assert listed[:6] == ["demo", "serve", "sandbox", "simulate", "sim-test", "reconcile"]
    assert listed[-2:] == ["states", "db"]


def test_help_wraps_command_descriptions_to_the_terminal() -> None:
    """Docstrings' hard line breaks must not survive into `paysignal --help`."""
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "100"})
    panel = result.output.split("Commands")[1].split("╰")[0]
    rows = [line.rstrip().removesuffix("│").rstrip() for line in panel.splitlines()[1:]]
    entries: list[list[str]] = []
    for row in rows:
        if re.match(r"^│ \S", row):
            entries.append([row])
        elif entries:
            entries[-1].append(row)
    # every command is an entry (a panel that parses to nothing would pass what follows)
    assert len(entries) == len(app.registered_commands) + len(app.registered_groups) >= 10
    assert all(re.match(r"^│ [a-z-]+ +\S", entry[0]) for entry in entries), entries
    assert sum(len(entry) > 1 for entry in entries) >= 3  # some descriptions do wrap
    width = max(len(row) for row in rows)
    for entry in entries:
        for line in entry[:-1]:  # every line of a description but its last is (nearly) full
            assert len(line) > width - 15, "\n".join(entry)
