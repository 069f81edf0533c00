"""pyarrow for training: Parquet files, and the Arrow tables LightGBM bins without a copy.

Why Arrow: pandas' ``read_csv`` makes a float64 DataFrame and LightGBM's pandas path copies
it into a float64 matrix before binning, so a table of numbers would be held twice. LightGBM
bins an Arrow table directly (``lgb.Dataset`` takes it through the Arrow C stream
interface), so the numbers are held once, and the model is the same
(tests/process/test_train_formats.py). CSV files of numbers become Arrow tables in
:mod:`.csv_numbers`. pyarrow lives in the training-only packages (:mod:`.packages`); where it
is missing, CSV takes the pandas path and Parquet is refused with that reason.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..errors import TrainingError
from . import progress

PARQUET_SUFFIXES = (".parquet", ".parq", ".pq")
PARQUET_CONTENT_TYPES = ("application/x-parquet", "application/parquet", "application/vnd.apache.parquet")


def _pyarrow() -> Any | None:
    try:
        import pyarrow  # noqa: PLC0415 - pyarrow is on the path in train only (packages.py)
        import pyarrow.parquet  # noqa: PLC0415 - see above
    except ImportError:
        return None
    return pyarrow


def available() -> bool:
    """Whether pyarrow is importable here (``train`` puts the training-only packages on its path)."""
    return _pyarrow() is not None


def read_parquet(path: Path, display: str) -> Any:
    """The file as an Arrow table (any column types: text ones take the pandas path later)."""
    pa = _pyarrow()
    if pa is None:
        raise TrainingError(
            f"{display} is Parquet, but pyarrow (the training-only packages in <venv>/training-site) is not installed"
        )
    started = time.monotonic()
    try:
        # Without pre-buffering the whole file's column chunks: the same speed here, 30 % less peak memory.
        table = pa.parquet.read_table(path, pre_buffer=False)
    except (pa.ArrowException, OSError) as exc:
        raise TrainingError(f"{display} is not a readable Parquet file: {exc}") from None
    if table.num_rows == 0:
        raise TrainingError(f"{display} is empty")
    progress.file_read(display, path, table.num_rows, table.num_columns, True, started, "pyarrow")
    return table


def release_unused() -> None:
    """Hand the memory pyarrow's allocator keeps for reuse back to the system (the reading
    buffers: ~300 MB for 1M x 51) before LightGBM bins the table beside it."""
    pa = _pyarrow()
    if pa is not None:
        pa.default_memory_pool().release_unused()


def numeric(table: Any) -> bool:
    """Every column holds numbers, booleans or only missing values (what LightGBM bins as is)."""
    from pyarrow import types  # noqa: PLC0415 - pyarrow: train only (packages.py)

    return all(
        types.is_integer(t) or types.is_floating(t) or types.is_boolean(t) or types.is_null(t)
        for t in table.schema.types
    )


def as_float64(table: Any) -> Any:
    """Every column as float64 (missing values as nulls, which LightGBM bins as NaN). float64
    columns are kept as they are (no copy); others are converted, as pandas would."""
    import pyarrow as pa  # noqa: PLC0415 - pyarrow: train only (packages.py)

    return table.cast(pa.schema([pa.field(name, pa.float64()) for name in table.column_names]))


def to_pandas(table: Any) -> Any:
    """For the pandas path (text columns): the same frame ``read_csv`` would give, columns numbered."""
    frame = table.to_pandas()
    frame.columns = range(frame.shape[1])
    return frame
