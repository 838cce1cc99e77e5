"""Advantage shapes and tables: standardisation, peak placement, and every malformed-table error."""

import json

import pytest
import torch

from ladkit.bandit.shapes import SHAPES, make_advantages, parse_table, standardise
from ladkit.errors import LadkitError, UnknownNameError


@pytest.mark.parametrize("shape", SHAPES.names())
def test_shapes_are_standardised(shape):
    a = make_advantages(shape, 50)
    assert a.shape == (50,)
    assert abs(float(a.mean())) < 1e-9
    assert float(a.std(unbiased=False)) == pytest.approx(1.0, abs=1e-9)


def test_trimodal_peaks_sit_on_single_arms():
    # centres 0.15, 0.5, 0.85 of the range 0..49 round to arms 7, 24 (24.5 rounds to even), 42;
    # the middle bump is the tallest, so it is the global maximum.
    a = make_advantages("trimodal", 50)
    peaks = [i for i in range(1, 49) if a[i] > a[i - 1] and a[i] > a[i + 1]]
    assert peaks == [7, 24, 42]
    assert int(a.argmax()) == 24


def test_standardise_by_hand():
    # values 1, 2, 3: mean 2, population std sqrt(2/3) -> (-1.2247, 0, 1.2247)
    out = standardise(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    assert out.tolist() == pytest.approx([-1.224744871, 0.0, 1.224744871])


def test_table_from_string_and_files(tmp_path):
    assert parse_table("0.5, -1,2").tolist() == [0.5, -1.0, 2.0]
    (tmp_path / "a.json").write_text(json.dumps([1, 2.5, -3]))
    assert parse_table(str(tmp_path / "a.json")).tolist() == [1.0, 2.5, -3.0]
    (tmp_path / "a.txt").write_text("# comment\n1 2\n3  # trailing comment\n")
    assert parse_table(str(tmp_path / "a.txt")).tolist() == [1.0, 2.0, 3.0]


def test_shipped_table_parses():
    values = parse_table("data/bandit/skewed.csv")
    assert len(values) == 12 and int(values.argmax()) == 9


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("1,x,3", r"entry 1 \('x'\) is not a number"),
        ("1,nan,3", "must be finite"),
        ("5", "at least 2 arms"),
        ("missing.json", "does not exist"),
    ],
)
def test_malformed_tables_give_one_line_errors(spec, message):
    with pytest.raises(LadkitError, match=message) as err:
        parse_table(spec)
    assert "\n" not in str(err.value)


def test_json_table_must_be_a_list(tmp_path):
    (tmp_path / "bad.json").write_text('{"a": 1}')
    with pytest.raises(LadkitError, match="JSON list"):
        parse_table(str(tmp_path / "bad.json"))
    (tmp_path / "broken.json").write_text("[1, 2")
    with pytest.raises(LadkitError, match="not valid JSON"):
        parse_table(str(tmp_path / "broken.json"))


def test_table_errors_in_make_advantages():
    with pytest.raises(LadkitError, match="3 values but num_arms is 5"):
        make_advantages("table", 5, "1,2,3")
    with pytest.raises(LadkitError, match="needs a table"):
        make_advantages("table", 5, None)
    with pytest.raises(LadkitError, match="constant"):
        make_advantages("table", 3, "1,1,1")
    with pytest.raises(UnknownNameError, match="valid advantage shapes: bimodal, linear, table|valid advantage shapes"):
        make_advantages("pentamodal", 5)
