"""Read a SageMaker channel of CSV files into features and labels, without losing a row.

Every CSV file below the channel directory is read (hidden files and folders skipped, other
files ignored unless the channel's ContentType says they are CSV); a header row is detected
(or forced by the ``header`` hyperparameter); the label column is chosen by
``label_column``. Non-numeric cells, rows with a missing label and files whose columns
disagree are errors that name the file, line and column.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import TrainingError, did_you_mean
from ..missing_values import CSV_MISSING_TOKENS, PANDAS_NA_VALUES
from ..model.categories import text_key

log = logging.getLogger(__name__)

CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz")
_MISSING = frozenset(CSV_MISSING_TOKENS)


@dataclass(frozen=True)
class _Source:
    """Where the rows of one file start in the channel's table, to name a file and line."""

    first_row: int
    display: str
    has_header: bool


@dataclass
class Table:
    features: Any  # a float64 matrix, or a DataFrame with pandas categories for text features
    labels: np.ndarray  # float64, or the class labels as text
    feature_names: list[str]
    label_name: str
    label_index: int
    files: list[Path]
    has_header: bool
    categorical: list[str] = field(default_factory=list)  # every categorical feature
    categories: dict[str, list[Any]] = field(default_factory=dict)  # text categories per feature, in code order
    sources: list[_Source] = field(default_factory=list)

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
    """The file as pandas reads it: numeric columns as numbers, any column holding text as text
    (whether text is a category or a mistake is decided for the whole channel)."""
    import pandas as pd

    try:
        return pd.read_csv(
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


def locate(sources: list[_Source], row: int) -> tuple[_Source, int]:
    source = next(s for s in reversed(sources) if s.first_row <= row)
    return source, row - source.first_row + 1 + int(source.has_header)


def not_numbers(series) -> np.ndarray:
    """Positions of the values pandas could not read as numbers (missing values are fine)."""
    import pandas as pd

    numbers = pd.to_numeric(series, errors="coerce")
    return np.flatnonzero((numbers.isna() & series.notna()).to_numpy())


def _stray_text_error(series, position: int, column: str, sources: list[_Source], hint: str) -> TrainingError:
    row = int(not_numbers(series)[0])
    source, line = locate(sources, row)
    name = f" ({column!r})" if source.has_header else ""
    return TrainingError(
        f"{source.display} line {line}, column {position + 1}{name}: {series.iloc[row]!r} is not a number. {hint}"
        + ("" if source.has_header else "; if the first row is a header, set the hyperparameter header=true")
    )


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


def _categorical_positions(references: Sequence[str | int], names: list[str]) -> set[int]:
    """``categorical_feature`` entries (feature indices, label excluded, as LightGBM counts them,
    or feature names) -> feature positions; an unknown one is an error naming the choices."""
    positions = set()
    for reference in references:
        if isinstance(reference, int):
            if not 0 <= reference < len(names):
                raise TrainingError(
                    f"categorical_feature {reference} is out of range: there are {len(names)} features "
                    f"(0-{len(names) - 1}, the label not counted)"
                )
            positions.add(reference)
        elif reference in names:
            positions.add(names.index(reference))
        else:
            hint = did_you_mean(reference, names)
            raise TrainingError(
                f"categorical_feature {reference!r} is not a feature{f'; did you mean {hint!r}?' if hint else ''} "
                f"(features: {', '.join(names[:50])})"
            )
    return positions


def _as_category_text(series):
    """Category values as text, as serving looks them up (``3`` and ``3.0`` are category "3")."""
    return series.map(lambda value: value if value is None or isinstance(value, str) or value != value else text_key(value))


def read_channel(
    channel: str,
    channel_dir: Path,
    label_column: str | int,
    header: bool | None,
    content_type: str | None = None,
    categorical: Sequence[str | int] | None = None,
    reference: Table | None = None,
) -> Table:
    """The channel as features and labels.

    Categorical features: the ``categorical_feature`` references when given, else every
    column most of whose values are text; ``reference`` (the train channel's table) fixes
    the categories for a validation channel. A column with a few stray strings among
    numbers is an error naming the first one's file, line and column."""
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
    frames, sources, has_header_all, columns, rows = [], [], None, None, 0
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
        sources.append(_Source(rows, display, has_header))
        rows += len(frame)
        log.info("read %s: %d rows, %d columns%s", display, len(frame), frame.shape[1], ", with header" if has_header else "")
    assert columns is not None
    if len(columns) < 2:
        raise TrainingError(f"channel {channel!r} has {len(columns)} column; need a label and at least one feature")
    data = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    label_index = _label_position(label_column, columns, bool(has_header_all))
    label_series = data[label_index]
    missing = np.flatnonzero(label_series.isna().to_numpy())
    if missing.size:
        raise TrainingError(
            f"channel {channel!r}: {missing.size} row(s) have no label in column {label_index} "
            f"({columns[label_index]!r}), first at data row {int(missing[0]) + 1}; every row needs a label"
        )
    labels = label_series.to_numpy(dtype=np.float64) if label_series.dtype.kind in "biuf" else label_series.to_numpy(dtype=object)
    feature_positions = [i for i in range(len(columns)) if i != label_index]
    feature_names = [columns[i] for i in feature_positions]
    features, categorical_names, categories = _features(
        data, feature_positions, feature_names, sources, categorical, reference
    )
    return Table(
        features=features,
        labels=labels,
        feature_names=feature_names,
        label_name=columns[label_index],
        label_index=label_index,
        files=files,
        has_header=bool(has_header_all),
        categorical=categorical_names,
        categories=categories,
        sources=sources,
    )


def _features(data, positions: list[int], names: list[str], sources: list[_Source],
              categorical: Sequence[str | int] | None, reference: Table | None):  # fmt: skip
    """(float64 matrix, or a DataFrame with pandas categories when some feature is text;
    every categorical feature's name; the text categories per feature, in code order)."""
    import pandas as pd

    declared = _categorical_positions(categorical, names) if categorical is not None and reference is None else None
    mapped_categories = reference.categories if reference is not None else None
    hint = (
        "Every column must be numeric unless it is a categorical feature; "
        + ("add it to the hyperparameter categorical_feature" if declared is not None or reference is not None
           else "a column is taken as categorical when most of its values are text, or name it in the hyperparameter categorical_feature")
        + "; an empty field or 'nan' means missing"
    )  # fmt: skip
    mapped: dict[str, list[Any]] = {}
    native: list[str] = []
    for feature, (position, name) in enumerate(zip(positions, names)):
        series = data[position]
        is_text = series.dtype.kind not in "biuf"
        if reference is not None:
            wanted = name in reference.categories
            if not wanted and name in reference.categorical:
                native.append(name)
        elif declared is not None:
            wanted = feature in declared and is_text
            if feature in declared and not is_text:
                native.append(name)  # integer codes: LightGBM's own categorical handling, nothing to map
        else:
            wanted = is_text and len(not_numbers(series)) * 2 > int(series.notna().sum())  # mostly text
        if wanted:
            mapped[name] = []
        elif is_text:
            raise _stray_text_error(series, position, name, sources, hint)
    if not mapped:
        return np.ascontiguousarray(data[positions].to_numpy(dtype=np.float64)), native, {}
    frame = {}
    for position, name in zip(positions, names):
        if name in mapped:
            text = _as_category_text(data[position])
            if mapped_categories is not None:
                known = mapped_categories[name]
                values = pd.Categorical(text.where(text.isin(known)), categories=known)  # unseen -> missing
            else:
                values = pd.Categorical(text)
            mapped[name] = values.categories.tolist()
            frame[name] = values
        else:
            frame[name] = data[position].to_numpy(dtype=np.float64)
    return pd.DataFrame(frame), native + list(mapped), mapped
