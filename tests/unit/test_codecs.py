import io
import math

import numpy as np
import orjson
import pytest

from lightgbm_container import codecs
from lightgbm_container.codecs import csv as csv_codec
from lightgbm_container.codecs import json as json_codec
from lightgbm_container.codecs import jsonlines as jsonlines_codec
from lightgbm_container.codecs import npy as npy_codec
from lightgbm_container.codecs.text import lines as csv_lines
from lightgbm_container.errors import BadRequest, NotAcceptable, UnsupportedMediaType
from lightgbm_container.model.outputs import Table


def as_numbers(batch):
    """What a model without categorical features makes of a decoded batch: text is held back
    by the codecs (it may be a category) and refused by the codec's own rule here."""
    if batch.cells is not None:
        return batch.cells_to_matrix()
    for row, record in enumerate(batch.records or ()):
        for name, value in record.items():
            batch.number(value, row, name)
    return batch.values


def test_csv_single_row_with_and_without_trailing_newline():
    for body in (b"1,2.5,3", b"1,2.5,3\n", b"1,2.5,3\r\n"):
        np.testing.assert_array_equal(csv_codec.decode(body).values, [[1, 2.5, 3]])


def test_csv_missing_values_are_nan():
    values = csv_codec.decode(b"1,,3\nnan,NaN,NA\n").values
    assert values.shape == (2, 3)
    assert math.isnan(values[0, 1]) and np.isnan(values[1]).all()


def test_csv_error_names_line_and_column():
    with pytest.raises(BadRequest) as error:
        as_numbers(csv_codec.decode(b"1,2,3\n4,abc,6"))
    assert "line 2, column 2" in error.value.message and "'abc'" in error.value.message


def test_csv_ragged_rows_are_rejected_with_line_number():
    with pytest.raises(BadRequest, match="line 3 has 2 fields but line 1 has 3"):
        csv_codec.decode(b"1,2,3\n4,5,6\n7,8")


def test_csv_blank_line_inside_body_is_an_error():
    with pytest.raises(BadRequest, match="line 2 is empty"):
        csv_codec.decode(b"1,2\n\n3,4")


def test_large_csv_fast_path_equals_exact_parser():
    rng = np.random.default_rng(1)
    rows = rng.normal(size=(5000, 7))
    body = "\n".join(",".join(f"{v:.10g}" for v in row) for row in rows).encode()
    assert len(body) > 16 * 1024 and csv_codec._parse_csv_fast(body) is not None  # really the pandas path
    fast = csv_codec.decode(body).values
    exact = csv_codec._parse_csv_exact(csv_lines(body), 7).values
    np.testing.assert_array_equal(fast, exact)


def test_large_csv_with_bad_cell_still_names_it():
    lines = ["1,2,3"] * 10000
    lines[7777] = "1,oops,3"
    with pytest.raises(BadRequest, match="line 7778, column 2"):
        as_numbers(csv_codec.decode("\n".join(lines).encode()))


@pytest.mark.parametrize("word", ["TRUE", "true", "False"])
def test_large_csv_refuses_booleans_as_the_small_one_does(word):
    """pandas reads a column of TRUE as 1.0 even with a float dtype (found by tests/fuzz); the
    answer must not depend on the body's size."""
    body = "\n".join([f"0.5,{word},2"] * 4000).encode()
    assert len(body) > 16 * 1024 and csv_codec._parse_csv_fast(body) is not None  # pandas alone would accept it
    with pytest.raises(BadRequest, match=f"line 1, column 2: '{word}' is not a number"):
        as_numbers(csv_codec.decode(body))
    with pytest.raises(BadRequest, match="line 1, column 2"):
        as_numbers(csv_codec.decode(f"0.5,{word},2".encode()))


def test_large_csv_with_missing_values_uses_nan():
    lines = ["1,2,3"] * 10000
    lines[5] = "1,,3"
    values = csv_codec.decode("\n".join(lines).encode()).values
    assert values.shape == (10000, 3) and math.isnan(values[5, 1])


def test_csv_encoding_one_line_per_row():
    assert csv_codec.encode(Table.default(np.array([1.5, 2.0]))) == b"1.5\n2.0\n"
    assert csv_codec.encode(Table.default(np.array([[0.1, 0.9], [0.5, 0.5]]))) == b"0.1,0.9\n0.5,0.5\n"
    assert csv_codec.encode(Table.default(np.array([1.0, np.nan]))) == b"1.0\nnan\n"
    assert csv_codec.encode(Table.default(np.array([[0.1, np.nan]]))) == b"0.1,nan\n"


def test_encoders_round_trip_every_float_exactly():
    rng = np.random.default_rng(3)
    for values in (rng.normal(size=1000) * 10.0 ** rng.integers(-12, 12, 1000), rng.random((500, 3))):
        text = csv_codec.encode(Table.default(values)).decode()
        parsed = np.array([line.split(",") for line in text.splitlines()], dtype=np.float64).reshape(values.shape)
        np.testing.assert_array_equal(parsed, values)
        lines = jsonlines_codec.encode(Table.default(values)).splitlines()
        assert len(lines) == values.shape[0]
        np.testing.assert_array_equal(np.array([orjson.loads(line) for line in lines]), values)


@pytest.mark.parametrize(
    "document, expected",
    [
        ([[1, 2], [3, None]], [[1, 2], [3, np.nan]]),
        ([1, 2], [[1, 2]]),
        ({"instances": [[1, 2]]}, [[1, 2]]),
        ({"instances": [{"features": [1, 2]}]}, [[1, 2]]),
        ({"features": [1, 2]}, [[1, 2]]),
    ],
)
def test_json_row_shapes(document, expected):
    batch = json_codec.decode(orjson.dumps(document))
    assert batch.columns is None
    np.testing.assert_array_equal(batch.values, expected)


def test_json_records_keep_names_and_missing_keys():
    batch = json_codec.decode(b'[{"a": 1, "b": 2}, {"b": 3, "c": null}]')
    assert batch.columns == ("a", "b", "c")
    assert batch.values is None and batch.records == [
        {"a": 1, "b": 2},
        {"b": 3, "c": None},
    ]  # the model builds the matrix


def test_json_errors_name_the_row():
    with pytest.raises(BadRequest, match="row 1, column 1: 'x' is not a number"):
        as_numbers(json_codec.decode(b'[[1, 2], [3, "x"]]'))
    with pytest.raises(BadRequest, match="row 1 has 1 values but row 0 has 2"):
        json_codec.decode(b"[[1, 2], [3]]")
    with pytest.raises(BadRequest, match="not valid JSON"):
        json_codec.decode(b"[[1, 2]")
    with pytest.raises(BadRequest, match="feature 'b'"):
        as_numbers(json_codec.decode(b'{"instances": [{"a": 1, "b": "high"}]}'))


def test_json_encoding_schema():
    assert orjson.loads(json_codec.encode(Table.default(np.array([1.0, 2.5])))) == {"predictions": [1.0, 2.5]}
    assert orjson.loads(json_codec.encode(Table.default(np.array([[0.2, 0.8]])))) == {"predictions": [[0.2, 0.8]]}


def test_jsonlines_round_trip():
    batch = jsonlines_codec.decode(b'[1, 2]\n{"features": [3, 4]}\n')
    np.testing.assert_array_equal(batch.values, [[1, 2], [3, 4]])
    assert jsonlines_codec.encode(Table.default(np.array([1.0, 2.0]))) == b"1.0\n2.0\n"
    assert jsonlines_codec.encode(Table.default(np.array([[0.25, 0.75], [1.0, 0.0]]))) == b"[0.25,0.75]\n[1.0,0.0]\n"
    with pytest.raises(BadRequest, match="line 2 is not valid JSON"):
        jsonlines_codec.decode(b"[1]\n[2")


def test_npy_round_trip():
    buffer = io.BytesIO()
    np.save(buffer, np.arange(6, dtype=np.float32).reshape(2, 3))
    np.testing.assert_array_equal(npy_codec.decode(buffer.getvalue()).values, [[0, 1, 2], [3, 4, 5]])
    assert np.load(io.BytesIO(npy_codec.encode(Table.default(np.array([1.0]))))).tolist() == [1.0]
    with pytest.raises(BadRequest):
        npy_codec.decode(b"not numpy")


def test_request_codec_ignores_parameters_and_sniffs_octet_stream():
    assert codecs.request_codec("text/csv; charset=utf-8", b"1") is csv_codec.CODEC
    assert codecs.request_codec("application/octet-stream", b"[[1]]") is json_codec.CODEC
    assert codecs.request_codec(None, b"1,2") is csv_codec.CODEC
    assert codecs.request_codec("application/octet-stream", b"\x93NUMPY") is npy_codec.CODEC
    with pytest.raises(UnsupportedMediaType, match="image/png"):
        codecs.request_codec("image/png", b"x")


@pytest.mark.parametrize(
    "accept, expected",
    [
        (None, csv_codec.CODEC),
        ("*/*", csv_codec.CODEC),
        ("application/json", json_codec.CODEC),
        ("application/json;verbose", json_codec.CODEC),
        ("text/csv; charset=utf-8", csv_codec.CODEC),
        ("text/csv;q=0.2, application/json", json_codec.CODEC),
        ("application/jsonlines", jsonlines_codec.CODEC),
        ("image/png, */*;q=0.1", csv_codec.CODEC),
    ],
)
def test_response_codec_negotiation(accept, expected):
    assert codecs.response_codec(accept, "text/csv") is expected


def test_unacceptable_accept():
    with pytest.raises(NotAcceptable, match="image/png"):
        codecs.response_codec("image/png", "text/csv")


# ------------------------------------------------------------------ hostile and broken input (issue 7)


@pytest.mark.parametrize("size", [100, 20_000, 200_000])  # below and above the pandas threshold
@pytest.mark.parametrize("bad_line", ["1,2", "1,2,3,", "", "1,2,3,4"])  # "1,2," would be 3 fields, the last missing
def test_every_csv_path_rejects_a_row_with_the_wrong_number_of_fields(size, bad_line):
    lines = ["1,2.5,3"] * (size // 8)
    lines[len(lines) // 2] = bad_line
    with pytest.raises(BadRequest, match=f"line {len(lines) // 2 + 1} "):
        csv_codec.decode("\n".join(lines).encode())


def test_csv_empty_field_is_missing_but_absent_field_is_an_error():
    values = csv_codec.decode(b"1,,3\n" * 5000).values
    assert values.shape == (5000, 3) and np.isnan(values[:, 1]).all()
    with pytest.raises(BadRequest, match="line 5000 has 2 fields but line 1 has 3"):
        csv_codec.decode(b"1,,3\n" * 4999 + b"1,3")


@pytest.mark.parametrize("value", ['"1.5"', "true", "false", '"x"', "[1]", '{"a": 1}'])
@pytest.mark.parametrize(
    "decode, wrap",
    [
        (json_codec.decode, "[[1, {}]]"),
        (json_codec.decode, '{{"instances": [[1, {}]]}}'),
        (jsonlines_codec.decode, "[1, 2]\n[1, {}]"),
    ],
)
def test_json_rows_accept_only_numbers_and_null(decode, wrap, value):
    with pytest.raises(BadRequest, match="is not a number|expected a list|same number"):
        as_numbers(decode(wrap.format(value).encode()))


def test_json_numbers_and_nulls_still_take_the_fast_path_and_keep_values():
    np.testing.assert_array_equal(json_codec.decode(b"[[1, 2.5], [3, null]]").values, [[1, 2.5], [3, np.nan]])
    # a feature *named* true in a record does not make numbers suspicious
    assert json_codec.decode(b'[{"true": 1}]').records == [{"true": 1}]


def test_jsonlines_errors_count_lines_from_one():
    with pytest.raises(BadRequest, match="line 2, column 0"):
        as_numbers(jsonlines_codec.decode(b'[1, 2]\n["1.5", 2]'))


def _npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "array",
    [
        np.array([["a", "b"]]),
        np.array([[b"a", b"b"]]),
        np.array([["2020-01-01"] * 2], dtype="datetime64[D]"),
        np.array([[1, 2]], dtype="timedelta64[s]"),
        np.array([[True, False]]),
        np.array([[1 + 2j]]),
    ],
)
def test_npy_refuses_non_numeric_dtypes(array):
    with pytest.raises(BadRequest, match="expected an array of numbers"):
        npy_codec.decode(_npy(array))


@pytest.mark.parametrize("shape", [(0, 3), (0,), (3, 0)])
def test_npy_with_no_values_is_an_error(shape):
    with pytest.raises(BadRequest, match="no rows"):
        npy_codec.decode(_npy(np.zeros(shape)))


def test_npy_header_claiming_more_than_the_body_is_refused_before_allocating():
    body = _npy(np.zeros((2, 3)))
    forged = body.replace(b"(2, 3)", b"(9999999999, 3)".ljust(6))  # header keeps its length
    forged = body.replace(b"'shape': (2, 3), ", b"'shape': (99999999999999, 3), ")
    with pytest.raises(BadRequest, match="declares shape"):
        npy_codec.decode(forged)
    with pytest.raises(BadRequest, match="declares shape"):
        npy_codec.decode(body[:-8])  # truncated data


def test_npy_fortran_order_and_integer_dtypes():
    array = np.asfortranarray(np.arange(6, dtype=np.int16).reshape(2, 3))
    np.testing.assert_array_equal(npy_codec.decode(_npy(array)).values, [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(npy_codec.decode(_npy(np.array([1.0, 2.0]))).values, [[1.0, 2.0]])
