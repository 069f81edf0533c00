"""Generated hostile requests, a reference oracle for the documented input rules, and the
invariants every answer must satisfy. Shared by the in-process and real-server fuzz tests.

The oracle re-implements the README's input rules in the plainest Python there is (no
numpy, no pandas, no fast paths), so each generated request is checked differentially:
the server must answer 200 exactly when the oracle accepts, with one output record per
input record equal to ``Booster.predict`` on the oracle's matrix, and otherwise a 4xx
whose JSON body has ``error`` and ``message``. Never a 5xx, never HTML.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import orjson
from hypothesis import strategies as st

FEATURES = 10  # the diabetes model trained from local_test/test_dir (no header: Column_0..Column_9)
NAMES = [f"Column_{i}" for i in range(FEATURES)]
MISSING = {"", "nan", "na", "n/a", "null", "none"}
MAX_VALUES = 6 * 1024 * 1024  # one value per byte of the default payload limit
SUPPORTED = ("text/csv", "application/json", "application/jsonlines", "application/x-npy")

#: Content-Type as sent -> the codec the documented rules pick (None: sniff; "415": refused).
CONTENT_TYPES = {
    "text/csv": "csv",
    "text/csv; charset=utf-8": "csv",
    "TEXT/CSV": "csv",
    "application/csv": "csv",
    "application/json": "json",
    "application/json; charset=utf-8": "json",
    "application/jsonlines": "jsonl",
    "application/x-ndjson": "jsonl",
    "application/x-npy": "npy",
    "application/octet-stream": None,
    "": None,
    "image/png": "415",
    "text/plain": "415",
    "multipart/form-data; boundary=x": "415",
    "application/x-www-form-urlencoded": "415",
}
#: Accept as sent -> acceptable (True) or 406 (False).
ACCEPTS = {
    None: True,
    "*/*": True,
    "text/csv": True,
    "application/json": True,
    "application/jsonlines": True,
    "application/x-npy": True,
    "application/json;verbose": True,
    "text/*": True,
    "image/png, */*;q=0.1": True,
    "text/csv;q=0, application/json": True,
    "image/png": False,
    "garbage": False,
    "text/csv;q=0": False,
}


class Rejected(Exception):
    """The oracle refuses the request (the server must answer 4xx)."""


# ------------------------------------------------------------------ the oracle


def _csv_rows(body: bytes) -> list[list[float]]:
    text = body.rstrip(b"\r\n").replace(b"\r\n", b"\n")
    rows = []
    for line in text.split(b"\n"):
        fields = line.split(b",")
        if len(fields) != FEATURES:
            raise Rejected(f"{len(fields)} fields")
        row = []
        for field in fields:
            try:
                row.append(float(field))
            except ValueError:
                try:  # trimmed as bytes are (ASCII whitespace): str.strip() would also take \x1c-\x1f
                    token = field.strip().decode().lower()
                except UnicodeDecodeError:
                    raise Rejected("not UTF-8") from None
                if token not in MISSING:
                    raise Rejected(f"{field!r}") from None
                row.append(math.nan)
        rows.append(row)
    return rows


def _number(value) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Rejected(f"{value!r}")
    return float(value)


def _positional(rows) -> list[list[float]]:
    if not rows:
        raise Rejected("no rows")
    out = []
    for row in rows:
        if not isinstance(row, list) or len(row) != FEATURES:
            raise Rejected("row shape")
        out.append([_number(v) for v in row])
    return out


def _records(records) -> list[list[float]]:
    out = []
    for record in records:
        if not isinstance(record, dict):
            raise Rejected("mixed records")
        row = [math.nan] * FEATURES
        for key, value in record.items():
            value = _number(value)
            if key not in NAMES:
                raise Rejected(f"unknown {key!r}")
            row[NAMES.index(key)] = value
        out.append(row)
    if len(out) * FEATURES > MAX_VALUES:
        raise Rejected("too many values")
    return out


def _instances(instances) -> list[list[float]]:
    if not isinstance(instances, list) or not instances:
        raise Rejected("no instances")
    first = instances[0]
    if isinstance(first, dict):
        if "features" in first and all(isinstance(i, dict) and set(i) == {"features"} for i in instances):
            return _positional([i["features"] for i in instances])
        return _records(instances)
    if isinstance(first, list):
        return _positional(instances)
    return _positional([instances])


def _json_rows(body: bytes) -> list[list[float]]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Rejected("not JSON") from None
    if isinstance(document, dict):
        if "instances" in document:
            return _instances(document["instances"])
        if "features" in document and len(document) == 1:
            return _positional([document["features"]])
        return _records([document])
    return _instances(document)


def _jsonl_rows(body: bytes) -> list[list[float]]:
    items = []
    for line in body.rstrip(b"\r\n").replace(b"\r\n", b"\n").split(b"\n"):
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise Rejected("not JSON") from None
        if isinstance(item, dict) and set(item) == {"features"}:
            item = item["features"]
        items.append(item)
    return _records(items) if isinstance(items[0], dict) else _positional(items)


def _npy_rows(body: bytes) -> list[list[float]]:
    try:
        array = np.load(io.BytesIO(body), allow_pickle=False) if len(body) < 1_000_000 else None
    except Exception:
        raise Rejected("not .npy") from None
    if array is None or array.dtype.kind not in "iuf" or array.ndim not in (1, 2) or array.size == 0:
        raise Rejected("dtype or shape")
    # np.load accepts trailing bytes after the data; the documented rule is "exactly the declared size"
    if len(body) != _npy_data_offset(body) + array.nbytes:
        raise Rejected("size")
    array = array.reshape(1, -1) if array.ndim == 1 else array
    if array.shape[1] != FEATURES:
        raise Rejected("width")
    return array.astype(float).tolist()


def _npy_data_offset(body: bytes) -> int:
    header_length = int.from_bytes(body[8:10], "little") if body[6] == 1 else int.from_bytes(body[8:12], "little")
    return (10 if body[6] == 1 else 12) + header_length


def _sniff(body: bytes) -> str:
    if body.startswith(b"\x93NUMPY"):
        return "npy"
    stripped = body.lstrip()
    if stripped[:1] in (b"[", b"{"):
        lines = stripped.split(b"\n", 1)
        if stripped[:1] == b"{" and len(lines) > 1 and lines[1].strip().startswith((b"[", b"{")):
            return "jsonl"
        return "json"
    return "csv"


def expected_rows(body: bytes, content_type: str | None, accept: str | None) -> list[list[float]]:
    """The feature matrix the documented rules read from this request; raises Rejected."""
    if not body.strip():
        raise Rejected("empty")
    codec = CONTENT_TYPES[content_type or ""]
    if codec == "415":
        raise Rejected("unsupported media type")
    if not ACCEPTS[accept]:
        raise Rejected("not acceptable")
    codec = codec or _sniff(body)
    return {"csv": _csv_rows, "json": _json_rows, "jsonl": _jsonl_rows, "npy": _npy_rows}[codec](body)


# ------------------------------------------------------------------ answers


@dataclass
class Answer:
    status: int
    content_type: str
    body: bytes


def _verbose(accept: str | None) -> bool:
    """An Accept parameter ``verbose`` chooses output kinds (for regression: predicted_score)."""
    return any(
        p.split("=")[0].strip().lower() == "verbose" for part in (accept or "").split(",") for p in part.split(";")[1:]
    )


def output_records(answer: Answer, verbose: bool = False) -> np.ndarray:
    """The predictions; with ``verbose``, each record must be the object ``{"predicted_score": v}``."""
    media_type = answer.content_type.split(";")[0]
    if media_type == "text/csv":
        return np.array([float(line) for line in answer.body.decode().splitlines()])
    if media_type in ("application/json", "application/jsonlines"):
        items = (
            orjson.loads(answer.body)["predictions"]
            if media_type == "application/json"
            else [orjson.loads(line) for line in answer.body.splitlines()]
        )
        if verbose:
            assert all(list(item) == ["predicted_score"] for item in items), items[:3]
            items = [item["predicted_score"] for item in items]
        return np.array(items, dtype=float)
    if media_type == "application/x-npy":
        array = np.load(io.BytesIO(answer.body))
        if verbose:
            assert array.dtype.names == ("predicted_score",), array.dtype
            return array["predicted_score"]
        return array
    raise AssertionError(f"200 with an unexpected Content-Type {answer.content_type!r}")


def assert_json_error(answer: Answer, context: object) -> dict:
    assert 400 <= answer.status < 500, (answer.status, answer.body[:500], context)
    assert answer.content_type.split(";")[0] == "application/json", (answer.content_type, answer.body[:300], context)
    document = orjson.loads(answer.body)
    assert isinstance(document.get("error"), str) and isinstance(document.get("message"), str), (document, context)
    return document


def check_invocation(answer: Answer, body: bytes, content_type: str | None, accept: str | None, booster) -> str:
    """Every invariant for one /invocations answer; returns "ok" or "rejected" for the tally."""
    context = (body[:300], content_type, accept)
    try:
        rows = expected_rows(body, content_type, accept)
    except Rejected:
        assert_json_error(answer, context)
        return "rejected"
    assert answer.status == 200, (answer.status, answer.body[:500], context)
    got = output_records(answer, _verbose(accept))
    assert got.shape == (len(rows),), (got.shape, len(rows), context)
    np.testing.assert_allclose(
        got, booster.predict(np.array(rows, dtype=float)), rtol=0, atol=1e-9, err_msg=str(context)
    )
    return "ok"


# ------------------------------------------------------------------ strategies

_NUMBER_TEXT = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False).map(repr),
    st.integers(-1000, 1000).map(str),
    st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: f"{v:.3g}"),
    st.sampled_from(["1e5", " 2.5 ", "+3", "-0", ".5", "5.", "1E-3", "007"]),
)
_MISSING_TEXT = st.sampled_from(["", "nan", "NaN", "NA", "n/a", "N/A", "null", "None", " nan ", "NULL"])
_JUNK_TEXT = st.one_of(
    st.sampled_from(
        ["x", "1.2.3", "--1", "1e", "0x10", "true", '"1"', "1;2", "\t", "inf", "-Infinity", "1_0", "١", "\x00"]
    ),
    st.text(max_size=4),
)


@st.composite
def csv_field(draw) -> str:
    roll = draw(st.integers(0, 199))
    return draw(_NUMBER_TEXT if roll < 180 else _MISSING_TEXT if roll < 198 else _JUNK_TEXT)


@st.composite
def csv_bodies(draw) -> bytes:
    """Mostly well-formed CSV, with one mutation half the time, small or beyond the 16 KB fast-path threshold."""
    width = draw(st.sampled_from([FEATURES] * 18 + [FEATURES - 1, FEATURES + 1]))
    lines = [",".join(draw(csv_field()) for _ in range(width)) for _ in range(draw(st.integers(1, 12)))]
    if draw(st.booleans()):  # past the size where the fast parser takes over
        lines = lines * (17_000 // (sum(map(len, lines)) + len(lines)) + 1)
    mutation = draw(
        st.sampled_from(["none"] * 7 + ["crlf", "newlines"] * 2 + ["drop", "add", "empty_line", "truncate", "junk"])
    )
    at = draw(st.integers(0, len(lines) - 1))
    if mutation == "drop":
        lines[at] = lines[at].rsplit(",", 1)[0] if "," in lines[at] else ""
    elif mutation == "add":
        lines[at] += ",1"
    elif mutation == "empty_line":
        lines.insert(at, "")
    elif mutation == "junk":
        lines[at] = draw(st.text(max_size=30))
    text = ("\r\n" if mutation == "crlf" else "\n").join(lines)
    if mutation == "newlines":
        text += "\n" * draw(st.integers(1, 3))
    body = text.encode("utf-8", "surrogatepass")
    if mutation == "truncate":
        body = body[: draw(st.integers(0, len(body)))]
    return body


_JSON_NUMBER = st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.integers(-1000, 1000))
_JSON_VALUE = st.one_of(_JSON_NUMBER, st.none())
_JSON_ODD = st.one_of(
    st.booleans(),
    st.text(max_size=4),
    st.sampled_from(["1.5", "true"]),
    st.lists(st.integers(-9, 9), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(-9, 9), max_size=2),
)


@st.composite
def json_value(draw):
    """Mostly numbers; a null or an odd value (string, boolean, list, object) now and then."""
    roll = draw(st.integers(0, 199))
    return draw(_JSON_NUMBER if roll < 186 else st.none() if roll < 197 else _JSON_ODD)


@st.composite
def json_row(draw):
    width = draw(st.sampled_from([FEATURES] * 18 + [FEATURES - 1, FEATURES + 1]))
    return [draw(json_value()) for _ in range(width)]


@st.composite
def json_record(draw):
    names = (
        st.sampled_from(NAMES)
        if draw(st.integers(0, 19))
        else st.sampled_from(NAMES + ["Colum_1", "age", "", "Column_10"])
    )
    return draw(st.dictionaries(names, json_value(), max_size=FEATURES))


@st.composite
def json_documents(draw):
    rows = st.lists(json_row(), min_size=0 if draw(st.integers(0, 19)) == 0 else 1, max_size=8)
    records = st.lists(json_record(), min_size=1, max_size=8)
    shape = draw(
        st.sampled_from(
            [
                "rows",
                "flat",
                "instances",
                "features",
                "instance_features",
                "records",
                "record",
                "instance_records",
                "anything",
            ]
        )
    )
    if shape == "rows":
        return draw(rows)
    if shape == "flat":
        return draw(json_row())
    if shape == "instances":
        return {"instances": draw(rows)}
    if shape == "features":
        return {"features": draw(json_row())}
    if shape == "instance_features":
        return {"instances": [{"features": row} for row in draw(rows)]}
    if shape == "records":
        return draw(records)
    if shape == "record":
        return draw(json_record())
    if shape == "instance_records":
        return {"instances": draw(records)}
    return draw(
        st.recursive(
            _JSON_VALUE | _JSON_ODD,
            lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
            max_leaves=12,
        )
    )


@st.composite
def json_bodies(draw) -> bytes:
    body = orjson.dumps(draw(json_documents()))
    if draw(st.integers(0, 9)) == 0:
        body = body[: draw(st.integers(0, len(body)))]
    return body


@st.composite
def jsonlines_bodies(draw) -> bytes:
    items = draw(
        st.lists(
            st.one_of(json_row(), json_record(), json_row().map(lambda r: {"features": r})), min_size=1, max_size=8
        )
    )
    body = b"\n".join(orjson.dumps(item) for item in items) + draw(st.sampled_from([b"", b"\n", b"\r\n", b"\n\n"]))
    if draw(st.integers(0, 9)) == 0:
        body = body[: draw(st.integers(0, len(body)))]
    return body


_DTYPES = ["f8", "f4", "i8", "i4", "i2", "u1", "u8", "?", "U3", "S3", "M8[D]", "m8[s]", "c8", ">f8", "f2"]


@st.composite
def npy_bodies(draw) -> bytes:
    dtype = np.dtype(draw(st.sampled_from(_DTYPES)))
    shape = draw(
        st.sampled_from(
            [(1, FEATURES), (3, FEATURES), (FEATURES,), (0, FEATURES), (2, FEATURES + 1), (2, 0), (1, 2, FEATURES), ()]
        )
    )
    array = np.ones(shape, dtype=dtype) if dtype.kind not in "USMm" else np.zeros(shape, dtype=dtype)
    if draw(st.booleans()):
        array = np.asfortranarray(array)
    buffer = io.BytesIO()
    np.save(buffer, array)
    body = buffer.getvalue()
    mutation = draw(st.sampled_from(["none"] * 4 + ["truncate", "append", "forge", "magic"]))
    if mutation == "truncate":
        body = body[: draw(st.integers(0, len(body) - 1))]
    elif mutation == "append":
        body += b"\x00" * draw(st.integers(1, 16))
    elif mutation == "forge":
        body = body.replace(repr(shape).encode(), b"(999999999999, 10)", 1)
    elif mutation == "magic":
        body = b"\x93NUMPZ" + body[6:]
    return body


@st.composite
def requests_for(draw, bodies, own_types: tuple[str, ...]):
    """(body, content type, accept): the body's own type most of the time, any listed type sometimes."""
    types = own_types if draw(st.integers(0, 9)) < 8 else tuple(CONTENT_TYPES)
    accepts = [a for a, ok in ACCEPTS.items() if ok] if draw(st.integers(0, 9)) < 8 else list(ACCEPTS)
    return draw(bodies), draw(st.sampled_from(types)), draw(st.sampled_from(accepts))


#: name -> strategy of (body, content type, accept)
REQUESTS = {
    "csv": requests_for(csv_bodies(), ("text/csv", "text/csv; charset=utf-8", "", "application/octet-stream")),
    "json": requests_for(
        json_bodies(), ("application/json", "application/json; charset=utf-8", "application/octet-stream")
    ),
    "jsonlines": requests_for(jsonlines_bodies(), ("application/jsonlines", "application/x-ndjson")),
    "npy": requests_for(npy_bodies(), ("application/x-npy", "application/octet-stream")),
    "bytes": requests_for(st.binary(max_size=300), tuple(CONTENT_TYPES)),
}
#: Odd routes and methods: every answer is JSON, never a 5xx.
METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
PATHS = st.one_of(
    st.sampled_from(
        [
            "/ping",
            "/invocations",
            "/execution-parameters",
            "/models",
            "/models/x",
            "/models/x/invoke",
            "/stats",
            "/",
            "//invocations",
            "/invocations/",
            "/%2e%2e/etc/passwd",
            "/models/../../etc",
            "/metrics",
        ]
    ),
    st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="?#%"), max_size=20).map(
        lambda t: "/" + t
    ),
)
#: Model names and load requests a hostile caller of a multi-model endpoint might send.
MODEL_NAMES = st.one_of(
    st.sampled_from(
        [
            "good",
            "truncated",
            "truncated.tar.gz",
            "sneaky",
            "loop",
            "missing",
            "../outside",
            "/etc",
            ".",
            "..",
            "good/../good",
            "good/model",
            "a" * 2000,
            "",
            "nul\x00",
            "slip.tar.gz",
            "not-a-model",
        ]
    ),
    st.text(max_size=12),
)


@dataclass
class Tally:
    """How many generated cases ran and how they ended (printed in the pytest summary)."""

    counts: dict

    def add(self, tier: str, outcome: str) -> None:
        key = f"{tier}: {outcome}"
        self.counts[key] = self.counts.get(key, 0) + 1


TALLY = Tally({})
