"""The CSV fast path cut into many pieces: the numbers pandas reads from the whole file, or None."""

import gzip

import numpy as np
import pandas as pd
import pytest

from lightgbm_container.missing_values import PANDAS_NA_VALUES
from lightgbm_container.training import csv_numbers
from support import pyarrow_module


@pytest.fixture
def small_pieces(monkeypatch):
    """Pieces of ~2 KB, so a file of a few hundred lines is cut dozens of times."""
    pyarrow_module()
    monkeypatch.setattr(csv_numbers, "MIN_PIECE_BYTES", 2048)
    monkeypatch.setattr(csv_numbers, "MAX_PIECE_BYTES", 2048)


def _lines(rows: int = 600) -> list[str]:
    rng = np.random.default_rng(7)
    values = rng.normal(size=(rows, 4)) * 1e3
    lines = [",".join(repr(float(v)) for v in row) for row in values]
    lines[5] = "nan,1,,N/A"  # missing-value tokens of the pandas path
    lines[300] = "7,8,9,10"  # integers
    return lines


def _as_pandas_reads(path, has_header: bool) -> np.ndarray:
    frame = pd.read_csv(path, header=0 if has_header else None, keep_default_na=False, na_values=PANDAS_NA_VALUES)
    return frame.to_numpy(dtype=np.float64)


def _matrix(table) -> np.ndarray:
    return np.column_stack([column.to_numpy() for column in table.columns])


@pytest.mark.parametrize("has_header", [False, True])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_pieces_give_exactly_the_numbers_of_the_whole_file(tmp_path, small_pieces, has_header, newline):
    lines = (["a,b,c,label"] if has_header else []) + _lines()
    lines.insert(len(lines) // 2, "")  # a blank line is skipped, as by the pandas path
    path = tmp_path / "data.csv"
    path.write_bytes(newline.join(lines).encode())  # no line end after the last line
    table = csv_numbers.read_numbers(path, 4, has_header, "train/data.csv")
    assert table is not None and table.column(0).num_chunks > 10
    np.testing.assert_array_equal(_matrix(table), _as_pandas_reads(path, has_header))
    assert table.column(2).null_count == 1  # missing values are nulls, as pyarrow's readers give them


def test_a_gzipped_file_is_cut_as_it_is_decompressed(tmp_path, small_pieces):
    plain, packed = tmp_path / "data.csv", tmp_path / "data.csv.gz"
    plain.write_text("\n".join(_lines()) + "\n")
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    table = csv_numbers.read_numbers(packed, 4, False, "train/data.csv.gz")
    assert table is not None and table.column(0).num_chunks > 10
    np.testing.assert_array_equal(_matrix(table), _as_pandas_reads(plain, False))


@pytest.mark.parametrize(
    "bad_line",
    ["1,2,abc,4", "1,2,3,4,5", '1,2,"3\n.5",4'],
    ids=["text in a column", "a longer row", "a line end in quotes"],
)
def test_what_only_the_pandas_path_reads_exactly_gives_none(tmp_path, small_pieces, bad_line):
    lines = _lines()
    lines[450] = bad_line  # far from the first piece
    path = tmp_path / "data.csv"
    path.write_text("\n".join(lines) + "\n")
    assert csv_numbers.read_numbers(path, 4, False, "train/data.csv") is None


def test_an_archive_under_another_name_is_left_to_pandas(tmp_path, small_pieces):
    path = tmp_path / "part-0000"  # a text/csv channel takes any file name
    path.write_bytes(gzip.compress(b"1,2\n3,4\n"))
    assert csv_numbers.read_numbers(path, 2, False, "train/part-0000") is None
