"""Spreadsheet-safe CSV: text that a spreadsheet would run is neutralised, numbers are not."""

import csv
import io

import pytest

from engine.exports import csv_rows, csv_text, neutralised


@pytest.mark.parametrize("value", ["=1+1", "+1+1", "-1+1", "@SUM(A1)", "\t=1", "\r=1",
                                   "=HYPERLINK(\"http://x\",\"y\")", "-", "+"])
def test_formula_starts_are_neutralised(value: str) -> None:
    assert neutralised(value) == "'" + value


@pytest.mark.parametrize("value", ["-40.00", "12", "+3", "-7", "pi_123", "", "a=b", 5, None])
def test_numbers_and_plain_text_are_left_alone(value: object) -> None:
    assert neutralised(value) == value


def test_every_cell_of_a_csv_is_neutralised_and_reads_back_as_text() -> None:
    text = csv_text([{"ref": "=cmd|' /C calc'!A0", "amount": "-12.50", "n": 3}],
                    ["ref", "amount", "n"])
    assert list(csv.reader(io.StringIO(text))) == [["ref", "amount", "n"],
                                                   ["'=cmd|' /C calc'!A0", "-12.50", "3"]]
    assert csv_rows([["@x", "-1"]]) == "'@x,-1\n"
