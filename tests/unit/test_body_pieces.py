"""Large bodies read in pieces: every decoder rule holds across the edges between pieces.

A body larger than LIGHTGBM_BODY_PIECE_MB reaches the built-in handler unread and is decoded,
validated and predicted piece by piece (codecs' ``decode_pieces``). For every body here and
every chunk size from 1 byte up, reading it in pieces gives exactly what reading it whole
gives: the same matrix, or the same 400 (message and fields), so a line number, a field count
or a bad value on either side of an edge reads the same. The real serve with a 1 GB-class body:
tests/process/test_large_bodies.py.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from lightgbm_container.codecs import csv as csv_codec
from lightgbm_container.codecs import jsonlines as jsonlines_codec
from lightgbm_container.codecs import npy as npy_codec
from lightgbm_container.codecs.text import line_pieces, text_lines
from lightgbm_container.errors import BadRequest
from support import csv_body, in_process_app, json_error, npy_body


def _chunks(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


def _outcome(read) -> tuple[str, object]:
    """What a model without categories sees: ("rows", the matrix), ("records", them), or
    ("error", the 400's type, message and fields). Text cells are read with the codec's number
    rule, as such a model reads them: the first bad value in reading order is the 400."""
    try:
        batches = read()
        if all(batch.records is not None for batch in batches):
            return "records", [record for batch in batches for record in batch.records]
        matrices = [batch.values if batch.cells is None else batch.cells_to_matrix() for batch in batches]
    except BadRequest as exc:
        return "error", (type(exc).__name__, exc.message, exc.details)
    matrix = np.concatenate(matrices)
    return "rows", np.where(np.isnan(matrix), "NaN", matrix.astype(str)).tolist()  # NaN == NaN for the comparison


def _same_whole_and_in_pieces(codec, body: bytes, sizes) -> None:
    whole = _outcome(lambda: [codec.decode(body)])
    for size in sizes:
        pieces = _outcome(lambda size=size: list(codec.decode_pieces(_chunks(body, size), len(body))))
        assert pieces == whole, f"chunks of {size} bytes"


@pytest.mark.parametrize(
    "body",
    [b"1,2\n3,4\n5,6", b"1,2\r\n3,4\r\n5,6\r\n\r\n", b"1,2\n\n3,4\n", b"\n1,2\n3,4", b"1,2\n3,4\n\n\n", b"7,8,9"],
)
def test_pieces_are_the_bodys_lines_numbered_as_in_the_whole_body(body):
    expected = text_lines(body).split(b"\n")
    for size in range(1, len(body) + 1):
        lines, numbers = [], []
        for text, first in line_pieces(_chunks(body, size)):
            piece = text.split(b"\n")
            lines += piece
            numbers += range(first, first + len(piece))
        assert lines == expected and numbers == list(range(1, len(expected) + 1)), size


def _csv(rows: list[str]) -> bytes:
    return "\n".join(rows).encode()


GOOD = [f"{i}.5,{i * 2},{-i}" for i in range(40)]


@pytest.mark.parametrize(
    "name, rows",
    [
        ("numbers", GOOD),
        ("a bad value", GOOD[:23] + ["1,x,3"] + GOOD[24:]),
        ("a short line", GOOD[:30] + ["1,2"] + GOOD[31:]),
        ("a long line", GOOD[:17] + ["1,2,3,4"] + GOOD[18:]),
        ("a blank line", GOOD[:12] + [""] + GOOD[13:]),
        ("missing values", [*GOOD[:5], "nan,,NA", *GOOD[5:]]),
        ("text cells", GOOD[:20] + ["1,red,3"] + GOOD[21:]),
    ],
)
def test_csv_in_pieces_reads_as_the_whole_body(name, rows):
    body = _csv(rows)
    _same_whole_and_in_pieces(csv_codec, body, [1, 2, 3, 5, 7, 11, 64, 100, len(body) // 2, len(body)])


def test_csv_in_pieces_uses_the_fast_parser_and_keeps_its_rules():
    rng = np.random.default_rng(1)
    rows = [",".join(f"{v:.6g}" for v in row) for row in rng.normal(size=(9000, 6))]
    body = _csv(rows)  # ~ 300 kB: pieces above the fast parser's threshold
    _same_whole_and_in_pieces(csv_codec, body, [40_000, 123_457])
    broken = _csv(rows[:6000] + ["1,2,3,4,5"] + rows[6001:])  # a short line pandas would fill with NaN
    _same_whole_and_in_pieces(csv_codec, broken, [40_000, 123_457])
    assert _outcome(lambda: [csv_codec.decode(broken)])[1][1].startswith("line 6001 has 5 fields but line 1 has 6")


JSON_ROWS = [json.dumps([i, i * 0.5, -i]) for i in range(30)]
JSON_RECORDS = [json.dumps({"a": i, "b": i * 0.5}) for i in range(30)]


@pytest.mark.parametrize(
    "name, lines",
    [
        ("rows", JSON_ROWS),
        ("records", JSON_RECORDS),
        ("features objects", [json.dumps({"features": [i, 1, 2]}) for i in range(30)]),
        ("a wider row later", JSON_ROWS[:19] + ["[1, 2, 3, 4]"] + JSON_ROWS[20:]),
        ("a record among rows", JSON_ROWS[:25] + ['{"a": 1}'] + JSON_ROWS[26:]),
        ("a row among records", JSON_RECORDS[:14] + ["[1, 2]"] + JSON_RECORDS[15:]),
        ("bad JSON", JSON_ROWS[:21] + ["[1, 2"] + JSON_ROWS[22:]),
        ("a boolean", JSON_ROWS[:9] + ["[1, true, 3]"] + JSON_ROWS[10:]),
        ("text", JSON_ROWS[:9] + ['[1, "red", 3]'] + JSON_ROWS[10:]),
    ],
)
def test_json_lines_in_pieces_read_as_the_whole_body(name, lines):
    body = "\n".join(lines).encode()
    _same_whole_and_in_pieces(jsonlines_codec, body, [1, 3, 8, 13, 50, len(body) // 3, len(body)])


@pytest.mark.parametrize(
    "array",
    [
        np.arange(60.0).reshape(20, 3),
        np.arange(40, dtype=np.int32).reshape(10, 4),
        np.asfortranarray(np.ones((5, 2))),
        np.arange(7.0),
    ],
)
def test_npy_in_pieces_reads_as_the_whole_body(array):
    body = npy_body(array)
    _same_whole_and_in_pieces(npy_codec, body, [1, 7, 64, 100, 130, len(body)])


def test_npy_header_errors_come_before_any_row():
    body = npy_body(np.arange(60.0).reshape(20, 3))
    _same_whole_and_in_pieces(npy_codec, body[:-8], [1, 50, 1000])  # the header's shape no longer fits
    strings = npy_body(np.array([["a", "b"]]))
    _same_whole_and_in_pieces(npy_codec, strings, [3, 1000])


# --------------------------------------------------------------------------- the handler


@pytest.fixture(scope="module")
def large_model(tmp_path_factory):
    """A 3-feature model, and a CSV body of ~3 MB (three 1 MB pieces with LIGHTGBM_BODY_PIECE_MB=1)."""
    import lightgbm as lgb

    rng = np.random.default_rng(4)
    x = rng.normal(size=(2000, 3))
    booster = lgb.train({"objective": "regression", "verbosity": -1}, lgb.Dataset(x, x @ [1.0, -2.0, 0.5]), 20)
    root = tmp_path_factory.mktemp("large") / "ml"
    (root / "model").mkdir(parents=True)
    booster.save_model(str(root / "model" / "model.txt"))
    rows = rng.normal(size=(150_000, 3))
    return root, booster, rows


def test_a_large_body_is_answered_piece_by_piece_as_a_small_one_would_be(large_model):
    root, booster, rows = large_model
    client = in_process_app(root, LIGHTGBM_BODY_PIECE_MB="1", SAGEMAKER_MAX_PAYLOAD_IN_MB="64").test_client()
    body = csv_body(rows).encode()
    assert len(body) > 3 * 1024 * 1024
    answer = client.post("/invocations", data=body, content_type="text/csv")
    values = np.loadtxt(io.StringIO(answer.get_data(as_text=True)))
    np.testing.assert_allclose(values, booster.predict(rows), rtol=0, atol=1e-9)
    as_json = client.post("/invocations", data=body, content_type="text/csv", headers={"Accept": "application/json"})
    assert len(as_json.get_json()["predictions"]) == len(rows)
    npy = client.post("/invocations", data=npy_body(rows), content_type="application/x-npy")
    np.testing.assert_allclose(np.load(io.BytesIO(npy.get_data())), booster.predict(rows), rtol=0, atol=1e-9)


def test_an_error_deep_in_a_large_body_is_a_400_naming_its_line_before_any_answer(large_model):
    root, _, rows = large_model
    client = in_process_app(root, LIGHTGBM_BODY_PIECE_MB="1", SAGEMAKER_MAX_PAYLOAD_IN_MB="64").test_client()
    lines = csv_body(rows).splitlines()
    lines[140_001] = "1,oops,3"
    json_error(
        client.post("/invocations", data="\n".join(lines), content_type="text/csv"),
        400,
        None,
        "line 140002, column 2: 'oops' is not a number",
    )


def test_prefetching_keeps_order_forwards_errors_and_stops_with_its_caller():
    import threading

    from lightgbm_container.builtin.prefetch import prefetched

    assert list(prefetched(iter(range(50)))) == list(range(50))

    def failing():
        yield 1
        yield 2
        raise BadRequest("line 3 is broken")

    seen = []
    with pytest.raises(BadRequest, match="line 3 is broken"):
        seen.extend(prefetched(failing()))
    assert seen == [1, 2]
    produced = []

    def endless():
        for item in range(10**9):
            produced.append(item)
            yield item

    for item in prefetched(endless()):
        if item == 3:
            break  # the caller's own error: the producer must stop, not read the rest
    assert len(produced) <= 6 and not [t for t in threading.enumerate() if t.name == "body-pieces"]
