"""Request and response codecs, one registry keyed by media type.

A codec turns a request body into a :class:`~..model.batch.Batch` (rows of floats, plus the
feature names when the payload carries them) and predictions back into bytes. Adding a media type means
adding one :class:`Codec` to :data:`CODECS`; nothing else changes.

Decoders are strict about shape and content (every error names the line or row and the
column) but fast on the happy path: small CSV bodies are parsed with plain ``float()``
(microseconds), large ones with pandas' C parser; when the fast parser rejects a body the
exact parser runs again to say *where* it is wrong.
"""

from __future__ import annotations

import csv
import io
import math
from functools import partial
from itertools import repeat
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import orjson

from ..errors import BadRequest, EmptyBody, NotAcceptable, UnsupportedMediaType
from ..missing_values import CSV_MISSING_TOKENS, PANDAS_MISSING_OPTIONS
from ..model.batch import Batch
from ..model.outputs import Column

_CSV_MISSING = frozenset(token.encode() for token in CSV_MISSING_TOKENS)
#: Above this size pandas' C parser beats ``float()`` per field despite its ~0.5 ms start-up.
_PANDAS_CSV_THRESHOLD_BYTES = 16 * 1024


@dataclass(frozen=True)
class Codec:
    media_type: str
    decode: Callable[[bytes], Batch]
    encode: Callable[[np.ndarray], bytes]  # the default answer: one value (or probability list) per record
    encode_outputs: Callable[[Sequence[Column]], bytes]  # chosen output kinds (see model.outputs)


# --------------------------------------------------------------------------- CSV


def _csv_text(body: bytes) -> bytes:
    """The body with ``\\r\\n`` line ends normalised and trailing line breaks removed."""
    text = body.rstrip(b"\r\n")
    if b"\r" in text:
        text = text.replace(b"\r\n", b"\n")
    return text


def _csv_lines(body: bytes) -> list[bytes]:
    return _csv_text(body).split(b"\n")


def _csv_width(lines: list[bytes]) -> int:
    """Fields per line, the same on every line, or a 400 naming the first line that differs.

    This is the one shape rule every CSV parser path relies on: pandas' C parser would fill
    a short line with NaN (a silent wrong answer), so the rule is checked here, on the
    lines, before any parser runs. ``map(bytes.count, ...)`` counts in C with no Python
    step per line: under a microsecond for one row, a few milliseconds for 100,000.
    """
    counts = list(map(bytes.count, lines, repeat(b",")))
    width = counts[0] + 1
    if min(counts) != max(counts):
        number = next(index for index, count in enumerate(counts, start=1) if count != counts[0])
        if not lines[number - 1].strip():
            raise BadRequest(f"line {number} is empty; every line must be one record", line=number)
        raise BadRequest(
            f"line {number} has {counts[number - 1] + 1} fields but line 1 has {width}; "
            "every record must have the same number of features (an empty field is a missing value)",
            line=number,
        )
    return width


def _csv_field(field: bytes, line: int, column: int) -> float:
    try:
        return float(field)
    except ValueError:
        if field.strip().lower() in _CSV_MISSING:
            return math.nan
        shown = field.decode("utf-8", "replace")
        raise BadRequest(
            f"line {line}, column {column}: {shown!r} is not a number "
            "(send numbers; an empty field or 'nan' means missing)",
            line=line,
            column=column,
        ) from None


def _csv_number(field: bytes, row: int, column: Any) -> float:
    """The CSV rule for a value that must be a number, by 0-based position (errors count from 1)."""
    return _csv_field(field, row + 1, column + 1)


def _parse_csv_exact(lines: list[bytes], width: int) -> Batch:
    """The reference CSV parser: slow per field, exact, and precise in its errors.

    ``lines`` already passed :func:`_csv_width` (every line has ``width`` fields). A field
    that is not a number may be a category: the rows go to the model as text
    (:attr:`Batch.cells`), which applies :func:`_csv_number` to every other column."""
    cells = [line.split(b",") for line in lines]
    try:
        rows = [[_csv_field(field, number, column) for column, field in enumerate(line, start=1)]
                for number, line in enumerate(cells, start=1)]  # fmt: skip
    except BadRequest:
        return Batch(cells=cells, number=_csv_number)
    return Batch(np.array(rows, dtype=np.float64).reshape(len(rows), width))


def _parse_csv_fast(body: bytes) -> np.ndarray | None:
    """pandas' C parser for large bodies; None when it rejects the body (the exact parser explains)."""
    import pandas as pd  # imported at worker start by warm_up(); local to keep `serve` light

    try:
        frame = pd.read_csv(
            io.BytesIO(body),
            header=None,
            dtype=np.float64,
            skip_blank_lines=False,
            **PANDAS_MISSING_OPTIONS,
            quoting=3,  # csv.QUOTE_NONE: a quote is data, as in the exact parser
            engine="c",
        )
    except (ValueError, pd.errors.ParserError):
        return None
    return frame.to_numpy(dtype=np.float64)


def _no_short_line(values: np.ndarray, text: bytes, lines: int) -> bool:
    """The shape rule, proven for what pandas parsed (pandas itself refuses a line longer than line 1).

    pandas fills the absent fields of a short line with NaN: with no NaN at all, no line was
    short (a few microseconds for 1,000 rows). With NaNs, some may be real missing values, so
    the commas are counted: exactly lines x (width - 1) means no line is short (~45 us per 60 kB).
    """
    if not np.isnan(values).any():
        return True
    return text.count(b",") == lines * (values.shape[1] - 1)


def _may_hold_words_pandas_reads_as_numbers(text: bytes) -> bool:
    """pandas' C parser reads TRUE/True/true and FALSE/... as 1.0 and 0.0 even with a float
    dtype, where the exact parser (``float()``) refuses them or reads them as categories. No
    number or missing-value word has an r or an s, both of those do: four scans in C."""
    return b"r" in text or b"R" in text or b"s" in text or b"S" in text


def warm_up() -> None:
    """Import the large-body parser now, so no caller waits for it (called at worker start)."""
    import pandas  # noqa: F401


def decode_csv(body: bytes) -> Batch:
    """Every line has the same number of fields (:func:`_csv_width`), whichever parser runs."""
    text = _csv_text(body)
    lines = text.split(b"\n")
    if len(text) >= _PANDAS_CSV_THRESHOLD_BYTES and not _may_hold_words_pandas_reads_as_numbers(text):
        values = _parse_csv_fast(text)
        if values is not None and values.shape[0] == len(lines) and _no_short_line(values, text, len(lines)):
            return Batch(values)
    return _parse_csv_exact(lines, _csv_width(lines))


def _format_number(value: float) -> str:
    return repr(value) if math.isfinite(value) else "nan"


def _orjson_rows(predictions: np.ndarray) -> bytes:
    """``[1.5,2.0]`` or ``[[0.1,0.9],[0.5,0.5]]``: orjson writes shortest round-trip floats
    ~20x faster than ``repr`` in a loop (3 ms instead of 65 ms for 100,000 values)."""
    return orjson.dumps(np.ascontiguousarray(predictions, dtype=np.float64), option=orjson.OPT_SERIALIZE_NUMPY)


def encode_csv(predictions: np.ndarray) -> bytes:
    """One line per input row; multiclass probabilities comma-separated on that line."""
    if np.isfinite(predictions).all():  # orjson would write NaN as null
        text = _orjson_rows(predictions)
        if predictions.ndim == 1:
            return text[1:-1].replace(b",", b"\n") + b"\n"
        return text[2:-2].replace(b"],[", b"\n") + b"\n"
    if predictions.ndim == 1:
        lines = map(_format_number, predictions.tolist())
    else:
        lines = (",".join(map(_format_number, row)) for row in predictions.tolist())
    return ("\n".join(lines) + "\n").encode()


# --------------------------------------------------------------------------- JSON


def _json_error(exc: orjson.JSONDecodeError, what: str) -> BadRequest:
    return BadRequest(f"{what} is not valid JSON: {exc}")


#: Python types a JSON feature value may have: numbers, and null for a missing value.
_NUMBER_TYPES = frozenset((int, float, type(None)))


def _numeric_matrix(rows: Sequence[Any], may_hold_booleans: bool) -> np.ndarray | None:
    """These rows as a float64 matrix when every value is a number or null (null = NaN), else None.

    numpy turns ``"1.5"`` and ``true`` into numbers without complaint, so it cannot be the
    check. Letting numpy infer the dtype catches strings (a text dtype) and nulls (object)
    at C speed, and an inferred numeric matrix is the answer itself (one pass over the
    Python lists). Booleans mixed with numbers become numbers there too, but they can only
    come from ``true``/``false`` literals, so the per-value check runs only when the body
    holds one (or a null).
    """
    try:
        inferred = np.array(rows)
    except (ValueError, TypeError):
        return None
    if inferred.ndim != 2 or inferred.dtype.kind not in "iufO":
        return None
    if inferred.dtype.kind != "O" and not may_hold_booleans:
        return inferred.astype(np.float64, copy=False)
    if not {type(value) for row in rows for value in row} <= _NUMBER_TYPES:
        return None
    return inferred.astype(np.float64, copy=False) if inferred.dtype.kind != "O" else np.array(rows, dtype=np.float64)


def _json_number(value: Any, row: int, column: Any, label: str, first: int) -> float:
    """The JSON rule for a value that must be a number (null = missing)."""
    _check_number(value, f"{label} {row + first}, column {column}", row=row, column=column)
    return math.nan if value is None else float(value)


def _rows_to_batch(rows: Sequence[Any], label: str, may_hold_booleans: bool = True, first: int = 0) -> Batch:
    """Lists of numbers (null = missing) to a 2-D float array; errors name the row and column.

    Rows that hold strings (category values, or mistakes) go to the model as text
    (:attr:`Batch.cells`) with this codec's number rule.
    ``first``: the number the first row is shown as (0 for JSON rows, 1 for JSON Lines lines)."""
    matrix = _numeric_matrix(rows, may_hold_booleans)
    if matrix is not None:
        return Batch(matrix)
    width = len(rows[0]) if isinstance(rows[0], list) else None
    has_text = False
    for index, row in enumerate(rows):
        number = index + first
        if not isinstance(row, list):
            raise BadRequest(f"{label} {number} is {type(row).__name__}, expected a list of numbers", row=index)
        if len(row) != width:
            raise BadRequest(
                f"{label} {number} has {len(row)} values but {label} {first} has {width}; "
                "every row must have the same number of features",
                row=index,
            )
        for column, value in enumerate(row):
            if type(value) is str:
                has_text = True
            else:
                _check_number(value, f"{label} {number}, column {column}", row=index, column=column)
    if has_text:
        return Batch(cells=rows, number=partial(_json_number, label=label, first=first))
    raise BadRequest(f"{label}s must be lists of numbers")


def _check_number(value: Any, where: str, **details: Any) -> None:
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return
    raise BadRequest(f"{where}: {value!r} is not a number (use null for a missing value)", **details)


def _records_to_batch(records: Sequence[Any], label: str, first: int = 0) -> Batch:
    """Records keyed by feature name: values type-checked here, the matrix built by the model
    (:meth:`LoadedModel.validate`) once it has checked the keys. ``columns`` is the union of
    keys, in first-seen order."""
    columns: dict[str, None] = {}
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise BadRequest(f"{label} {index + first} is {type(record).__name__}; do not mix records and lists", row=index)
        for key, value in record.items():
            columns[key] = None
            if type(value) not in _TEXT_OR_NUMBER:  # text waits for the model: it may be a category
                _check_number(value, f"{label} {index + first}, feature {key!r}", row=index, feature=key)
    return Batch(columns=tuple(columns), records=records, number=partial(_record_number, label=label, first=first))


_TEXT_OR_NUMBER = _NUMBER_TYPES | {str}


def _record_number(value: Any, row: int, feature: Any, label: str, first: int) -> float:
    _check_number(value, f"{label} {row + first}, feature {feature!r}", row=row, feature=feature)
    return math.nan if value is None else float(value)


def _may_hold_booleans(body: bytes) -> bool:
    return b"true" in body or b"false" in body


def _instances_to_batch(instances: Any, label: str, booleans: bool) -> Batch:
    if not isinstance(instances, list) or not instances:
        raise EmptyBody(f"no {label}s to predict: send at least one")
    first = instances[0]
    if isinstance(first, dict):
        if "features" in first and all(isinstance(i, dict) and set(i) == {"features"} for i in instances):
            return _rows_to_batch([i["features"] for i in instances], label, booleans)
        return _records_to_batch(instances, label)
    if isinstance(first, list):
        return _rows_to_batch(instances, label, booleans)
    # a single flat row: [1.0, 2.0, ...]
    return _rows_to_batch([instances], label, booleans)


def decode_json(body: bytes) -> Batch:
    """Accepted shapes (see README): a list of rows, one flat row, a list of records keyed by
    feature name, one record, or any of those under ``{"instances": ...}``; SageMaker's
    ``{"instances": [{"features": [...]}]}`` too."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _json_error(exc, "the body") from None
    booleans = _may_hold_booleans(body)
    if isinstance(document, dict):
        if "instances" in document:
            return _instances_to_batch(document["instances"], "instance", booleans)
        if "features" in document and len(document) == 1:
            return _rows_to_batch([document["features"]], "row", booleans)
        return _records_to_batch([document], "record")
    return _instances_to_batch(document, "row", booleans)


def encode_json(predictions: np.ndarray) -> bytes:
    """``{"predictions": [...]}``: numbers for regression/binary, lists for multiclass."""
    return orjson.dumps({"predictions": predictions}, option=orjson.OPT_SERIALIZE_NUMPY)


def decode_jsonlines(body: bytes) -> Batch:
    """One JSON value per line: a list of numbers, a record, or ``{"features": [...]}``."""
    items = []
    for number, line in enumerate(_csv_lines(body), start=1):
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"line {number} is not valid JSON: {exc}", line=number) from None
        if isinstance(item, dict) and set(item) == {"features"}:
            item = item["features"]
        items.append(item)
    if isinstance(items[0], dict):
        return _records_to_batch(items, "line", first=1)
    return _rows_to_batch(items, "line", _may_hold_booleans(body), first=1)


def encode_jsonlines(predictions: np.ndarray) -> bytes:
    """One JSON value per line: a number, or a list of class probabilities (NaN -> null)."""
    text = _orjson_rows(predictions)
    if predictions.ndim == 1:
        return text[1:-1].replace(b",", b"\n") + b"\n"
    return text[1:-1].replace(b"],[", b"]\n[") + b"\n"


# --------------------------------------------------------------------------- NPY


#: The .npy format versions numpy writes and reads (3.0 is 2.0 with a UTF-8 header).
_NPY_VERSIONS = ((1, 0), (2, 0), (3, 0))


def _npy_header(body: bytes) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, fortran order, dtype, data offset) from the .npy header, nothing allocated."""
    stream = io.BytesIO(body)
    try:
        version = np.lib.format.read_magic(stream)
        if version not in _NPY_VERSIONS:  # numpy's 2.0 reader would read any other version's header as 2.0's
            raise BadRequest(
                f"the .npy header declares format version {version[0]}.{version[1]}, which numpy does not know; "
                f"write the array with numpy.save (versions {', '.join(f'{a}.{b}' for a, b in _NPY_VERSIONS)})",
                version=f"{version[0]}.{version[1]}",
            )
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran_order, dtype = read_header(stream)
    except (ValueError, OSError, EOFError, SyntaxError, TypeError) as exc:
        raise BadRequest(f"the body is not a valid .npy array: {exc}") from None
    return shape, fortran_order, dtype, stream.tell()


def decode_npy(body: bytes) -> Batch:
    """A 1-D (one row) or 2-D array of integers or floats.

    Everything is checked on the header before a byte is copied: the dtype, the number of
    dimensions, and that the declared shape fits the body exactly (a header may claim any
    shape; ``np.load`` would allocate it first)."""
    shape, fortran_order, dtype, offset = _npy_header(body)
    if dtype.kind not in "iuf":
        raise BadRequest(
            f"expected an array of numbers (integer or float dtype), got dtype {dtype}; "
            "cast it, e.g. array.astype('float64')",
            dtype=str(dtype),
        )
    if len(shape) not in (1, 2):
        raise BadRequest(f"expected a 1-D or 2-D array, got {len(shape)} dimensions", shape=list(shape))
    count = math.prod(shape)
    if count * dtype.itemsize != len(body) - offset:
        raise BadRequest(
            f"the .npy header declares shape {tuple(shape)} of {dtype} ({count * dtype.itemsize} bytes) "
            f"but the body holds {len(body) - offset} bytes of data",
            shape=list(shape),
        )
    if count == 0:
        raise EmptyBody(f"the array has shape {tuple(shape)}: no rows to predict, send at least one")
    array = np.frombuffer(body, dtype=dtype, count=count, offset=offset)
    array = array.reshape(shape, order="F" if fortran_order else "C")
    if array.ndim == 1:
        array = array.reshape(1, -1)
    return Batch(array.astype(np.float64))


def encode_npy(predictions: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, predictions, allow_pickle=False)
    return buffer.getvalue()


# --------------------------------------------------------------------------- chosen output kinds
#
# One layout per media type, documented in the README ("Choosing what a prediction returns"):
# JSON and JSON Lines carry one object per record keyed by kind; CSV one line per record,
# each kind's columns in the order the kinds were asked for; NPY a structured array with
# one field per kind.


def _output_records(columns: Sequence[Column]) -> list[dict[str, Any]]:
    names = [column.kind for column in columns]
    return [dict(zip(names, values)) for values in zip(*(column.json_values() for column in columns))]


def encode_json_outputs(columns: Sequence[Column]) -> bytes:
    """``{"predictions": [{"predicted_label": "b", "probabilities": [0.1, 0.9]}, ...]}`` (NaN -> null)."""
    return orjson.dumps({"predictions": _output_records(columns)})


def encode_jsonlines_outputs(columns: Sequence[Column]) -> bytes:
    return b"".join(orjson.dumps(record) + b"\n" for record in _output_records(columns))


def encode_csv_outputs(columns: Sequence[Column]) -> bytes:
    """One line per record (a Batch Transform join stays line for line); a label holding a
    comma or a quote is quoted as RFC 4180 says."""
    per_column = [column.cells() for column in columns]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(
        [cell for cells in row for cell in cells] for row in zip(*per_column)
    )
    return buffer.getvalue().encode()


def encode_npy_outputs(columns: Sequence[Column]) -> bytes:
    """A structured array, one field per kind (``np.load(..., allow_pickle=False)`` reads it)."""
    fields = [field for column in columns for field in column.npy_fields()]
    rows = len(fields[0][1])
    structured = np.empty(rows, dtype=np.dtype([(name, array.dtype, array.shape[1:]) for name, array in fields]))
    for name, array in fields:
        structured[name] = array
    return encode_npy(structured)


# --------------------------------------------------------------------------- registry

CSV = Codec("text/csv", decode_csv, encode_csv, encode_csv_outputs)
JSON = Codec("application/json", decode_json, encode_json, encode_json_outputs)
JSONLINES = Codec("application/jsonlines", decode_jsonlines, encode_jsonlines, encode_jsonlines_outputs)
NPY = Codec("application/x-npy", decode_npy, encode_npy, encode_npy_outputs)

#: Media type (and common aliases) -> codec.
CODECS: dict[str, Codec] = {
    "text/csv": CSV,
    "application/csv": CSV,
    "text/x-csv": CSV,
    "application/json": JSON,
    "application/jsonlines": JSONLINES,
    "application/x-jsonlines": JSONLINES,
    "application/jsonl": JSONLINES,
    "application/x-ndjson": JSONLINES,
    "application/x-npy": NPY,
}
SUPPORTED = "text/csv, application/json, application/jsonlines, application/x-npy"
#: Types that say nothing about the body: sniff it (the SDK's default Predictor sends octet-stream).
_UNTYPED = ("", "application/octet-stream")


def base_media_type(header: str | None) -> str:
    """``'text/csv; charset=utf-8'`` -> ``'text/csv'``."""
    return (header or "").split(";", 1)[0].strip().lower()


def codec_for(media_type: str) -> Codec:
    """The codec of a supported media type (parameters ignored); JSON for anything else."""
    return CODECS.get(base_media_type(media_type), JSON)


def _sniff(body: bytes) -> Codec:
    if body.startswith(b"\x93NUMPY"):
        return NPY
    head = body.lstrip()[:1]
    if head in (b"[", b"{"):
        first_line = body.lstrip().split(b"\n", 1)
        if len(first_line) > 1 and first_line[1].strip().startswith((b"[", b"{")) and head == b"{":
            return JSONLINES
        return JSON
    return CSV


def request_codec(content_type: str | None, body: bytes) -> Codec:
    """The decoder for the request's Content-Type; 415 names the supported types."""
    media_type = base_media_type(content_type)
    if media_type in _UNTYPED:
        return _sniff(body)
    codec = CODECS.get(media_type)
    if codec is None:
        raise UnsupportedMediaType(
            f"Content-Type {media_type!r} is not supported; use one of {SUPPORTED}", supported=SUPPORTED.split(", ")
        )
    return codec


def response_codec(accept: str | None, request: Codec) -> Codec:
    """The encoder for the Accept header; ``*/*`` or none answers in the request's own type."""
    if not accept or not accept.strip():
        return request
    best: tuple[float, int, Codec] | None = None
    for position, part in enumerate(accept.split(",")):
        media_type, _, params = part.partition(";")
        media_type = media_type.strip().lower()
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality <= 0:
            continue
        if media_type in ("*/*", "*"):
            codec = request
        elif media_type.endswith("/*"):
            prefix = media_type[:-1]
            codec = request if request.media_type.startswith(prefix) else next(
                (c for t, c in CODECS.items() if t.startswith(prefix)), None
            )
        else:
            codec = CODECS.get(media_type)
        if codec is not None and (best is None or quality > best[0]):
            best = (quality, position, codec)
    if best is None:
        raise NotAcceptable(
            f"cannot answer in {accept.strip()!r}; Accept one of {SUPPORTED}", supported=SUPPORTED.split(", ")
        )
    return best[2]
