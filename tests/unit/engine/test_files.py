"""Exports and --out files never follow a link planted beside or at the target."""

from pathlib import Path

import pytest

from engine.files import write_atomically
from engine.settlement.breaks import CHECKPOINT_EXPORT_COLUMNS, export


def test_a_link_planted_at_the_old_partial_name_is_never_written_through(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / ".breaks.csv.partial").symlink_to(victim)
    export([], tmp_path / "breaks.csv", CHECKPOINT_EXPORT_COLUMNS)
    assert victim.read_text() == "precious"
    assert (tmp_path / "breaks.csv").read_text().startswith("provider")


def test_a_link_at_the_target_is_replaced_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    target = tmp_path / "rules.yml"
    target.symlink_to(victim)
    write_atomically(target, lambda partial: partial.write_text("groups: []\n"))
    assert victim.read_text() == "precious"
    assert not target.is_symlink() and target.read_text() == "groups: []\n"


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    def fail(partial: Path) -> None:
        partial.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomically(tmp_path / "out.csv", fail)
    assert list(tmp_path.iterdir()) == []
