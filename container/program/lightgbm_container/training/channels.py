"""Read a SageMaker channel of CSV files into features and labels, without losing a row.

Every CSV file below the channel directory is read (hidden files and folders skipped, other
files ignored unless the channel's ContentType says they are CSV); a header row is detected
(or forced by the ``header`` hyperparameter); the label column is chosen by
``label_column``. Non-numeric cells, rows with a missing label and files whose columns
disagree are errors that name the file, line and column.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import TrainingError
from ..missing_values import CSV_MISSING_TOKENS, PANDAS_NA_VALUES

log = logging.getLogger(__name__)

CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz")
_MISSING = frozenset(CSV_MISSING_TOKENS)


@dataclass
class Table:
    features: np.ndarray
    labels: np.ndarray
    feature_names: list[str]
    label_name: str
    label_index: int
    files: list[Path]
    has_header: bool

    @property
    def rows(self) -> int:
        return int(self.features.shape[0])


def list_csv_files(channel_dir: Path, content_type: str | None = None) -> list[Path]:
    """The channel's data files, sorted for a stable row order."""
    everything_is_csv = (content_type or "").split(";")[0].strip().lower() in ("text/csv", "application/csv")
    files = []
    for path in sorted(channel_dir.rglob("*")):
        relative = path.relative_to(channel_dir)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        if everything_is_csv or path.name.lower().endswith(CSV_SUFFIXES):
            files.append(path)
    return files


def _is_number(token: str) -> bool:
    token = token.strip().strip('"')
    if token.lower() in _MISSING:
        return True
    try:
        float(token)
    except ValueError:
        return False
    return True


def _first_line(path: Path) -> str:
    import pandas as pd

    frame = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False)
    return ",".join(frame.iloc[0].tolist()) if len(frame) else ""


def detect_header(path: Path) -> bool:
    """A first row with any non-numeric field is a header (data rows must be all numbers)."""
    return not all(_is_number(field) for field in _first_line(path).split(","))


def _read_file(path: Path, has_header: bool, display: str):
    import pandas as pd

    try:
        frame = pd.read_csv(
            path,
            header=0 if has_header else None,
            keep_default_na=False,
            na_values=PANDAS_NA_VALUES,
            skip_blank_lines=True,
            low_memory=False,
        )
    except pd.errors.EmptyDataError:
        raise TrainingError(f"{display} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise TrainingError(f"{display} is not valid CSV: {exc}") from None
    for position, column in enumerate(frame.columns):
        series = frame[column]
        if series.dtype.kind in "biuf":
            continue
        numbers = pd.to_numeric(series, errors="coerce")
        bad = numbers.isna() & series.notna()
        first = int(np.flatnonzero(bad.to_numpy())[0])
        line = first + 1 + int(has_header)
        name = f" ({column!r})" if has_header else ""
        raise TrainingError(
            f"{display} line {line}, column {position + 1}{name}: {series.iloc[first]!r} is not a number. "
            "Every column must be numeric (encode categories as integers); an empty field or 'nan' means missing"
            + ("" if has_header else "; if the first row is a header, set the hyperparameter header=true")
        )
    return frame


def _label_position(label_column: str | int, columns: list[str], has_header: bool) -> int:
    count = len(columns)
    if label_column == "last":
        return count - 1
    if label_column == "first":
        return 0
    if isinstance(label_column, int):
        if not -count <= label_column < count:
            raise TrainingError(f"label_column={label_column} is out of range: the data has {count} columns (0-{count - 1})")
        return label_column % count
    if not has_header:
        raise TrainingError(
            f"label_column={label_column!r} names a column, but the CSV has no header row; "
            "use 'last', 'first' or a 0-based index"
        )
    if label_column not in columns:
        raise TrainingError(f"label_column={label_column!r} is not a column; the header has {', '.join(columns)}")
    return columns.index(label_column)


def read_channel(
    channel: str,
    channel_dir: Path,
    label_column: str | int,
    header: bool | None,
    content_type: str | None = None,
) -> Table:
    import pandas as pd

    if not channel_dir.is_dir():
        raise TrainingError(f"channel {channel!r} is missing: no directory {channel_dir}")
    files = list_csv_files(channel_dir, content_type)
    if not files:
        present = [p.name for p in sorted(channel_dir.rglob("*")) if p.is_file()][:10]
        raise TrainingError(
            f"channel {channel!r} has no CSV files (*.csv) in {channel_dir}"
            + (f"; found {', '.join(present)}" if present else "; it is empty")
        )
    frames, has_header_all, columns = [], None, None
    for path in files:
        display = f"{channel}/{path.relative_to(channel_dir)}"
        has_header = detect_header(path) if header is None else header
        frame = _read_file(path, has_header, display)
        names = [str(c) for c in frame.columns] if has_header else [f"Column_{i}" for i in range(frame.shape[1])]
        if columns is None:
            columns, has_header_all = names, has_header
        elif len(names) != len(columns):
            raise TrainingError(f"{display} has {len(names)} columns but {channel}/{files[0].relative_to(channel_dir)} has {len(columns)}")
        elif has_header and has_header_all and names != columns:
            raise TrainingError(f"{display}'s header differs from {channel}/{files[0].relative_to(channel_dir)}'s")
        frame.columns = range(frame.shape[1])
        frames.append(frame)
        log.info("read %s: %d rows, %d columns%s", display, len(frame), frame.shape[1], ", with header" if has_header else "")
    assert columns is not None
    if len(columns) < 2:
        raise TrainingError(f"channel {channel!r} has {len(columns)} column; need a label and at least one feature")
    data = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    label_index = _label_position(label_column, columns, bool(has_header_all))
    labels = data[label_index].to_numpy(dtype=np.float64)
    missing = np.flatnonzero(np.isnan(labels))
    if missing.size:
        raise TrainingError(
            f"channel {channel!r}: {missing.size} row(s) have no label in column {label_index} "
            f"({columns[label_index]!r}), first at data row {int(missing[0]) + 1}; every row needs a label"
        )
    feature_positions = [i for i in range(len(columns)) if i != label_index]
    features = data[feature_positions].to_numpy(dtype=np.float64)
    return Table(
        features=np.ascontiguousarray(features),
        labels=labels,
        feature_names=[columns[i] for i in feature_positions],
        label_name=columns[label_index],
        label_index=label_index,
        files=files,
        has_header=bool(has_header_all),
    )
