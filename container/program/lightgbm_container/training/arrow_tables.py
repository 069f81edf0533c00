"""pyarrow's readers for a channel: Parquet files, and the fast path for CSV files of plain numbers.

Why: pandas' ``read_csv`` makes a float64 DataFrame and LightGBM's pandas path copies it
into a float64 matrix before binning, so a table of numbers is held twice (and read on one
core). pyarrow reads CSV with every core into one columnar table, and LightGBM bins an
Arrow table directly (``lgb.Dataset`` takes it through the Arrow C stream interface), so
the numbers are held once, and the model is the same (tests/process/test_train_formats.py).

The fast path only takes what it reads exactly as the pandas path would: a CSV file it
cannot parse (a ragged row, text in a column, an encoding, a compression it lacks) gives
``None`` here, and the channel is read again by the pandas path, whose errors name the
file, line and column. pyarrow lives in the training-only packages (:mod:`.packages`); where
it is missing, CSV takes the pandas path and Parquet is refused with that reason.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..errors import TrainingError
from ..missing_values import PANDAS_NA_VALUES
from . import progress

PARQUET_SUFFIXES = (".parquet", ".parq", ".pq")
PARQUET_CONTENT_TYPES = ("application/x-parquet", "application/parquet", "application/vnd.apache.parquet")


def _pyarrow() -> Any | None:
    try:
        import pyarrow  # noqa: F401
        import pyarrow.csv  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return None
    return pyarrow


def available() -> bool:
    """Whether pyarrow is importable here (``train`` puts the training-only packages on its path)."""
    return _pyarrow() is not None


def read_csv(path: Path, has_header: bool, display: str) -> Any | None:
    """The file as an Arrow table of numbers, or None when the pandas path must read it."""
    pa = _pyarrow()
    if pa is None:
        return None
    started = time.monotonic()
    try:
        table = pa.csv.read_csv(
            path,
            read_options=pa.csv.ReadOptions(autogenerate_column_names=not has_header),
            parse_options=pa.csv.ParseOptions(newlines_in_values=False),
            convert_options=pa.csv.ConvertOptions(
                null_values=PANDAS_NA_VALUES, strings_can_be_null=True, quoted_strings_can_be_null=True
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, ValueError):
        return None  # the pandas path reads it, or says exactly what is wrong
    if table.num_rows == 0 or not numeric(table) or (has_header and len(set(table.column_names)) != table.num_columns):
        return None  # text (a category or a mistake) or repeated header names: the pandas path decides
    progress.file_read(display, path, table.num_rows, table.num_columns, has_header, started, "pyarrow")
    return table


def read_parquet(path: Path, display: str) -> Any:
    """The file as an Arrow table (any column types: text ones take the pandas path later)."""
    pa = _pyarrow()
    if pa is None:
        raise TrainingError(
            f"{display} is Parquet, but pyarrow (the training-only packages in <venv>/training-site) is not installed"
        )
    started = time.monotonic()
    try:
        table = pa.parquet.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise TrainingError(f"{display} is not a readable Parquet file: {exc}") from None
    if table.num_rows == 0:
        raise TrainingError(f"{display} is empty")
    progress.file_read(display, path, table.num_rows, table.num_columns, True, started, "pyarrow")
    return table


def numeric(table: Any) -> bool:
    """Every column holds numbers, booleans or only missing values (what LightGBM bins as is)."""
    import pyarrow.types as types

    return all(
        types.is_integer(t) or types.is_floating(t) or types.is_boolean(t) or types.is_null(t)
        for t in table.schema.types
    )  # fmt: skip


def as_float64(table: Any) -> Any:
    """Every column as float64 (missing values as nulls, which LightGBM bins as NaN). float64
    columns are kept as they are (no copy); others are converted, as pandas would."""
    import pyarrow as pa

    return table.cast(pa.schema([pa.field(name, pa.float64()) for name in table.column_names]))


def to_pandas(table: Any) -> Any:
    """For the pandas path (text columns): the same frame ``read_csv`` would give, columns numbered."""
    frame = table.to_pandas()
    frame.columns = range(frame.shape[1])
    return frame
