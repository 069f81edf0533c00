"""Read a SageMaker channel of CSV or Parquet files into features and labels, without losing a row.

Every CSV (or Parquet) file below the channel directory is read (hidden files and folders
skipped, other files ignored unless the channel's ContentType names the format; CSV and
Parquet in one channel is an error); a CSV header row is detected (or forced by the
``header`` hyperparameter), Parquet columns are named by the file; the label column is
chosen by ``label_column``. Non-numeric cells, rows with a missing label and files whose
columns disagree are errors that name the file, line (Parquet: row) and column.

Two paths, one result: a channel of plain numbers is read into one Arrow table that LightGBM
bins without a float64 copy (CSV: pandas' parser on every core, :mod:`.csv_numbers`; Parquet:
pyarrow, :mod:`.arrow_tables`); anything else (text columns: categories or mistakes) by
pandas into a frame, which the exact error messages come from.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TrainingError, did_you_mean
from ..missing_values import CSV_MISSING_TOKENS, PANDAS_MISSING_OPTIONS
from ..model.categories import text_key
from . import arrow_tables, csv_numbers, progress

CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz")
_MISSING = frozenset(CSV_MISSING_TOKENS)


@dataclass(frozen=True)
class _Source:
    """Where the rows of one file start in the channel's table, to name a file and line."""

    first_row: int
    display: str
    has_header: bool  # its columns have names (a CSV header row, or Parquet)
    unit: str = "line"  # how a position in the file is named: a CSV line, a Parquet row


@dataclass
class Table:
    features: Any  # an Arrow table of float64 columns, a float64 matrix, or a DataFrame with pandas categories
    labels: np.ndarray  # float64, or the class labels as text
    feature_names: list[str]
    label_name: str
    label_index: int
    files: list[Path]
    has_header: bool
    categorical: list[str] = field(default_factory=list)  # every categorical feature
    categories: dict[str, list[Any]] = field(default_factory=dict)  # text categories per feature, in code order
    sources: list[_Source] = field(default_factory=list)
    #: (path in the channel, bytes) per file, taken when read: a Pipe channel's copy is gone by training.
    file_sizes: list[tuple[str, int]] = field(default_factory=list)
    rows: int = -1  # the features' rows (kept when they are let go)
    #: Each row's position in the files as read, once rows were picked (:meth:`take`); None: the same.
    origin: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.rows < 0:
            self.rows = int(self.features.shape[0])

    def rows_between(self, start: int, stop: int) -> Table:
        """Rows ``start`` to ``stop`` only (a host's share of a channel every host has whole);
        errors still name the rows' files and lines."""
        if hasattr(self.features, "column_names"):  # Arrow: a view, no copy
            features = self.features.slice(start, stop - start)
        elif hasattr(self.features, "iloc"):
            features = self.features.iloc[start:stop].reset_index(drop=True)
        else:
            features = self.features[start:stop]
        if self.origin is not None:  # rows picked already: their positions in the files stay as they were
            return dataclasses.replace(
                self,
                features=features,
                labels=self.labels[start:stop],
                rows=stop - start,
                origin=self.origin[start:stop],
            )
        sources = [dataclasses.replace(s, first_row=s.first_row - start) for s in self.sources]
        return dataclasses.replace(
            self, features=features, labels=self.labels[start:stop], sources=sources, rows=stop - start
        )

    def take(self, rows: np.ndarray) -> Table:
        """These rows only, in this order (the built-in algorithm's holdout); errors still name
        each row's file and line (:meth:`locate`)."""
        if hasattr(self.features, "column_names"):  # Arrow
            features = self.features.take(rows)
        elif hasattr(self.features, "iloc"):
            features = self.features.iloc[rows].reset_index(drop=True)
        else:
            features = self.features[rows]
        origin = rows if self.origin is None else self.origin[rows]
        return dataclasses.replace(self, features=features, labels=self.labels[rows], rows=len(rows), origin=origin)

    def locate(self, row: int) -> tuple[_Source, int]:
        """The file a row came from, and its line (Parquet: row) there, from 1."""
        return locate(self.sources, int(self.origin[row]) if self.origin is not None else row)

    def let_go_of_features(self) -> None:
        """Once LightGBM has binned them: the raw features are the largest thing in memory
        (1M x 50: 400 MB, against 50 MB of bins), and training never looks at them again."""
        self.features = None


def _visible_files(channel_dir: Path) -> list[Path]:
    return [
        path
        for path in sorted(channel_dir.rglob("*"))
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(channel_dir).parts)
    ]


def list_data_files(channel_dir: Path, content_type: str | None, channel: str) -> tuple[str, list[Path]]:
    """("csv" or "parquet", the channel's data files sorted for a stable row order); both kinds
    in one channel is an error (which files are which is not a guess to make silently)."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    files = _visible_files(channel_dir)
    if media_type in arrow_tables.PARQUET_CONTENT_TYPES:
        return "parquet", files
    if media_type in ("text/csv", "application/csv"):
        named = [p.name for p in files if p.name.lower().endswith(arrow_tables.PARQUET_SUFFIXES)]
        if named:
            raise TrainingError(
                f"channel {channel!r} has ContentType {media_type} but holds Parquet files ({', '.join(named[:3])}); "
                "set the channel's content_type to application/x-parquet, or leave it unset"
            )
        return "csv", files
    csv = [p for p in files if p.name.lower().endswith(CSV_SUFFIXES)]
    parquet = [p for p in files if p.name.lower().endswith(arrow_tables.PARQUET_SUFFIXES)]
    if csv and parquet:
        raise TrainingError(
            f"channel {channel!r} mixes CSV ({csv[0].name}, ...) and Parquet ({parquet[0].name}, ...) files; "
            "put each format in its own channel or convert one"
        )
    return ("parquet", parquet) if parquet else ("csv", csv)


def _is_number(token: str) -> bool:
    token = token.strip().strip('"')
    if token.lower() in _MISSING:
        return True
    try:
        float(token)
    except ValueError:
        return False
    return True


def first_row(path: Path, display: str) -> list[str]:
    """The file's first row's fields as written (a header's names, or the first data row)."""
    import pandas as pd  # noqa: PLC0415 - pandas only on the path that reads with it

    try:
        frame = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        return []
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise TrainingError(f"{display} is not valid CSV: {exc}") from None
    return frame.iloc[0].tolist() if len(frame) else []


def detect_header(path: Path, display: str = "", fields: list[str] | None = None) -> bool:
    """A first row with any non-numeric field is a header (data rows must be all numbers)."""
    fields = first_row(path, display or path.name) if fields is None else fields
    return not all(_is_number(field) for field in ",".join(fields).split(","))


def _read_file(path: Path, has_header: bool, display: str) -> Any:
    """The file as pandas reads it: numeric columns as numbers, any column holding text as text
    (whether text is a category or a mistake is decided for the whole channel)."""
    import pandas as pd  # noqa: PLC0415 - pandas only on the path that reads with it

    try:
        return pd.read_csv(
            path,
            header=0 if has_header else None,
            skip_blank_lines=True,
            low_memory=False,
            **PANDAS_MISSING_OPTIONS,
        )
    except pd.errors.EmptyDataError:
        raise TrainingError(f"{display} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise TrainingError(f"{display} is not valid CSV: {exc}") from None


def locate(sources: list[_Source], row: int) -> tuple[_Source, int]:
    """The file a row of the channel's table came from, and its line (Parquet: row) there, from 1."""
    source = next(s for s in reversed(sources) if s.first_row <= row)
    return source, row - source.first_row + 1 + int(source.has_header and source.unit == "line")


def not_numbers(series: Any) -> np.ndarray:
    """Positions of the values pandas could not read as numbers (missing values are fine)."""
    import pandas as pd  # noqa: PLC0415 - pandas only on the path that reads with it

    numbers = pd.to_numeric(series, errors="coerce")
    return np.flatnonzero((numbers.isna() & series.notna()).to_numpy())


def _stray_text_error(series: Any, position: int, column: str, sources: list[_Source], hint: str) -> TrainingError:
    row = int(not_numbers(series)[0])
    source, line = locate(sources, row)
    name = f" ({column!r})" if source.has_header else ""
    return TrainingError(
        f"{source.display} {source.unit} {line}, column {position + 1}{name}: {series.iloc[row]!r} is not a number. "
        f"{hint}" + ("" if source.has_header else "; if the first row is a header, set the hyperparameter header=true")
    )


def _label_position(label_column: str | int, columns: list[str], has_header: bool) -> int:
    count = len(columns)
    if label_column == "last":
        return count - 1
    if label_column == "first":
        return 0
    if isinstance(label_column, int):
        if not -count <= label_column < count:
            raise TrainingError(
                f"label_column={label_column} is out of range: the data has {count} columns (0-{count - 1})"
            )
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


def _as_category_text(series: Any) -> Any:
    """Category values as text, as serving looks them up (``3`` and ``3.0`` are category "3")."""
    return series.map(
        lambda value: value if value is None or isinstance(value, str) or value != value else text_key(value)  # noqa: PLR0124 - NaN
    )


@dataclass
class _Files:
    """A channel's files as read: their column names, and Arrow tables or pandas frames."""

    columns: list[str]
    has_header: bool
    pieces: list[Any]
    sources: list[_Source]
    arrow: bool  # pieces are Arrow tables of numbers (else pandas frames, columns numbered)


def _check_columns(display: str, names: list[str], has_header: bool, first: _Files | None, first_display: str) -> None:
    if first is None:
        return
    if len(names) != len(first.columns):
        raise TrainingError(f"{display} has {len(names)} columns but {first_display} has {len(first.columns)}")
    if has_header and first.has_header and names != first.columns:
        raise TrainingError(f"{display}'s header differs from {first_display}'s")


def _read_files(
    channel: str,
    channel_dir: Path,
    files: list[Path],
    file_format: str,
    header: bool | None,
    arrow: bool,
    unnamed: str = "Column_{}",
) -> _Files:
    """Every file into Arrow when ``arrow`` and all of them are numbers, else by pandas.
    ``unnamed``: the name of column i when there is no header."""
    read: _Files | None = None
    rows = 0
    for path in files:
        display = f"{channel}/{path.relative_to(channel_dir)}"
        if file_format == "parquet":
            piece, has_header, unit = arrow_tables.read_parquet(path, display), True, "row"
            names = [str(name) for name in piece.column_names]
        else:
            fields = first_row(path, display)
            has_header, unit = (detect_header(path, display, fields) if header is None else header), "line"
            # Names pandas would rewrite ("a" twice -> "a", "a.1"; "" -> "Unnamed: 2") are for its path.
            renamed = has_header and (len(set(fields)) != len(fields) or "" in fields)
            piece = (
                csv_numbers.read_numbers(path, len(fields), has_header, display)
                if arrow and fields and not renamed
                else None
            )
            if piece is None:
                if arrow:  # this file needs pandas: read the channel with pandas, one path for all its rows
                    return _read_files(channel, channel_dir, files, file_format, header, False, unnamed)
                started = time.monotonic()
                piece = _read_file(path, has_header, display)
                progress.file_read(display, path, len(piece), piece.shape[1], has_header, started, "pandas")
            names = (
                [str(c) for c in (fields if arrow else piece.columns)]
                if has_header
                else [unnamed.format(i) for i in range(piece.shape[1])]
            )
            if not arrow:
                piece.columns = range(piece.shape[1])
        _check_columns(display, names, has_header, read, f"{channel}/{files[0].relative_to(channel_dir)}")
        if read is None:
            read = _Files(names, has_header, [], [], arrow)
        read.pieces.append(piece)
        read.sources.append(_Source(rows, display, has_header, unit))
        rows += piece.shape[0]
    assert read is not None
    if file_format == "parquet" and not (arrow and all(arrow_tables.numeric(piece) for piece in read.pieces)):
        read.pieces, read.arrow = [arrow_tables.to_pandas(piece) for piece in read.pieces], False
    return read


def _data_files(
    channel: str, channel_dir: Path, content_type: str | None, ignore: Sequence[Path] = ()
) -> tuple[str, list[Path]]:
    """The channel's data files and their format, or why there are none (``ignore``: files that are not data)."""
    if not channel_dir.is_dir():
        raise TrainingError(f"channel {channel!r} is missing: no directory {channel_dir}")
    file_format, files = list_data_files(channel_dir, content_type, channel)
    files = [path for path in files if path not in ignore]
    if not files:
        present = [p.name for p in sorted(channel_dir.rglob("*")) if p.is_file()][:10]
        raise TrainingError(
            f"channel {channel!r} has no CSV files (*.csv) or Parquet files (*.parquet) in {channel_dir}"
            + (f"; found {', '.join(present)}" if present else "; it is empty")
        )
    return file_format, files


def read_channel(
    channel: str,
    channel_dir: Path,
    label_column: str | int,
    header: bool | None,
    content_type: str | None = None,
    categorical: Sequence[str | int] | None = None,
    reference: Table | None = None,
    arrow: bool | None = None,
    unnamed: str = "Column_{}",
    ignore: Sequence[Path] = (),
) -> Table:
    """The channel as features and labels.

    Categorical features: the ``categorical_feature`` references when given, else every
    column most of whose values are text; ``reference`` (the train channel's table) fixes
    the categories for a validation channel. A column with a few stray strings among
    numbers is an error naming the first one's file, line and column. ``arrow``: try the
    Arrow path first (default: when pyarrow is installed), or go straight to pandas.
    ``unnamed``: column i's name when the files have no header (LightGBM's ``Column_i``; the
    built-in algorithm's are ``"1"``..``"N"`` after its target ``"0"``). ``ignore``: files in
    the channel that are not data (the built-in's categorical index)."""
    file_format, files = _data_files(channel, channel_dir, content_type, ignore)
    # Text categories of the train channel must be mapped in validation: only pandas does that.
    arrow = (arrow_tables.available() if arrow is None else arrow) and (reference is None or not reference.categories)
    read = _read_files(channel, channel_dir, files, file_format, header, arrow, unnamed)
    columns = read.columns
    if len(columns) < 2:
        raise TrainingError(f"channel {channel!r} has {len(columns)} column; need a label and at least one feature")
    label_index = _label_position(label_column, columns, read.has_header)
    feature_positions = [i for i in range(len(columns)) if i != label_index]
    feature_names = [columns[i] for i in feature_positions]
    columns_from = _from_arrow if read.arrow else _from_pandas
    labels, features, categorical_names, categories = columns_from(
        channel, read, label_index, feature_positions, feature_names, categorical, reference
    )
    return Table(
        features=features,
        labels=labels,
        feature_names=feature_names,
        label_name=columns[label_index],
        label_index=label_index,
        files=files,
        has_header=read.has_header,
        categorical=categorical_names,
        categories=categories,
        sources=read.sources,
        file_sizes=[(str(path.relative_to(channel_dir)), path.stat().st_size) for path in files],
    )


def _missing_label_error(channel: str, missing: np.ndarray, label_index: int, columns: list[str]) -> TrainingError:
    return TrainingError(
        f"channel {channel!r}: {missing.size} row(s) have no label in column {label_index} "
        f"({columns[label_index]!r}), first at data row {int(missing[0]) + 1}; every row needs a label"
    )


#: (labels, features: an Arrow table or a matrix or a DataFrame, categorical feature names, text categories per feature)
_Columns = tuple[np.ndarray, Any, list[str], dict[str, list[str]]]


def _from_arrow(
    channel: str,
    read: _Files,
    label_index: int,
    positions: list[int],
    names: list[str],
    categorical: Sequence[str | int] | None,
    reference: Table | None,
) -> _Columns:
    """(labels, the features as one Arrow table of float64 columns, categorical names, {}) from
    tables of numbers: the columns are shared with what was read, never copied as a matrix."""
    import pyarrow as pa  # noqa: PLC0415 - pyarrow: train only (packages.py)

    table = pa.concat_tables(
        arrow_tables.as_float64(piece.rename_columns([str(i) for i in range(piece.num_columns)]))
        for piece in read.pieces
    )
    arrow_tables.release_unused()
    labels = table.column(label_index).to_numpy()  # float64: nulls become NaN
    missing = np.flatnonzero(np.isnan(labels))  # a null, or a NaN Parquet stores as a number
    if missing.size:
        raise _missing_label_error(channel, missing, label_index, read.columns)
    features = table.select(positions).rename_columns(names)
    if reference is not None:  # numeric codes only (text categories send validation to pandas)
        native = [name for name in reference.categorical if name in names]
    elif categorical is not None:
        native = [names[i] for i in sorted(_categorical_positions(categorical, names))]
    else:
        native = []
    return labels, features, native, {}


def _from_pandas(
    channel: str,
    read: _Files,
    label_index: int,
    positions: list[int],
    names: list[str],
    categorical: Sequence[str | int] | None,
    reference: Table | None,
) -> _Columns:
    """(labels, features, categorical names, text categories) from pandas frames."""
    import pandas as pd  # noqa: PLC0415 - pandas only on the path that reads with it

    data = pd.concat(read.pieces, ignore_index=True) if len(read.pieces) > 1 else read.pieces[0]
    for position in data.columns:  # text that is all numbers (a Parquet string column) is numbers
        if (
            data[position].dtype.kind not in "biuf"
            and data[position].notna().any()
            and not len(not_numbers(data[position]))
        ):
            data[position] = pd.to_numeric(data[position])
    label_series = data[label_index]
    missing = np.flatnonzero(label_series.isna().to_numpy())
    if missing.size:
        raise _missing_label_error(channel, missing, label_index, read.columns)
    labels = (
        label_series.to_numpy(dtype=np.float64)
        if label_series.dtype.kind in "biuf"
        else label_series.to_numpy(dtype=object)
    )
    features, categorical_names, categories = _features(data, positions, names, read.sources, categorical, reference)
    return labels, features, categorical_names, categories


def _features(
    data: Any,
    positions: list[int],
    names: list[str],
    sources: list[_Source],
    categorical: Sequence[str | int] | None,
    reference: Table | None,
) -> tuple[Any, list[str], dict[str, list[str]]]:
    """(float64 matrix, or a DataFrame with pandas categories when some feature is text;
    every categorical feature's name; the text categories per feature, in code order)."""
    import pandas as pd  # noqa: PLC0415 - pandas only on the path that reads with it

    declared = _categorical_positions(categorical, names) if categorical is not None and reference is None else None
    mapped_categories = reference.categories if reference is not None else None
    hint = (
        "Every column must be numeric unless it is a categorical feature; "
        + (
            "add it to the hyperparameter categorical_feature"
            if declared is not None or reference is not None
            else (
                "a column is taken as categorical when most of its values are text, "
                "or name it in the hyperparameter categorical_feature"
            )
        )
        + "; an empty field or 'nan' means missing"
    )
    mapped: dict[str, list[Any]] = {}
    native: list[str] = []
    for feature, (position, name) in enumerate(zip(positions, names, strict=True)):
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
    for position, name in zip(positions, names, strict=True):
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
