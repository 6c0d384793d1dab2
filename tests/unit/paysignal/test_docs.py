"""The README's tables are read from the code: they must not drift."""

import re
from pathlib import Path

from typer.testing import CliRunner

from engine.domain.states import transition_table_markdown
from engine.observability.signals import catalogue_markdown
from engine.providers.faults import PROFILES
from engine.providers.simulated import TEST_TOKENS
from paysignal.cli import app

README = (Path(__file__).resolve().parents[3] / "README.md").read_text()


def between(marker: str) -> str:
    return README.split(f"<!-- {marker}:start -->")[1].split(f"<!-- {marker}:end -->")[0].strip()


def test_readme_transition_table_is_the_code_table() -> None:
    assert between("transition-table") == transition_table_markdown()


def test_readme_signal_table_is_the_catalogue() -> None:
    assert between("signal-catalogue") == catalogue_markdown()


def test_readme_lists_every_test_token_with_its_behaviour() -> None:
    rows = dict(re.findall(r"^\| `(tok_\w+)` \| (.+?) \|$", between("test-tokens"), re.M))
    assert rows == TEST_TOKENS


def test_readme_lists_every_fault_profile() -> None:
    for profile in PROFILES.values():
        assert f"| `{profile.name}` | {profile.description} |" in README


def test_readme_documents_every_cli_command() -> None:
    for command in ("db upgrade", "db current", "simulate", "ledger balances", "ledger check",
                    "outbox relay", "keys expire", "states", "merchants create", "serve api",
                    "toggles set", "toggles list", "reconcile", "breaks list",
                    "breaks sign-off", "breaks checkpoints", "serve worker", "demo",
                    "serve dashboard", "sim-test", "db roles", "admins create", "admins revoke",
                    "admins list", "merchants rotate-key", "merchants revoke-key",
                    "merchants keys", "users add", "users disable", "users list"):
        assert f"`paysignal {command}" in README
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
    assert listed[:5] == ["demo", "serve", "simulate", "sim-test", "reconcile"]
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
    width = max(len(row) for row in rows)
    for entry in entries:
        for line in entry[:-1]:  # every line of a description but its last is (nearly) full
            assert len(line) > width - 15, "\n".join(entry)
