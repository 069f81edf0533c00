"""The real `train` on CSV read by pyarrow, Parquet, and channels the pandas path must read.

A channel of numbers is read by pyarrow into an Arrow table that LightGBM bins directly; the
model must be the one LightGBM trains from the same numbers as a float64 matrix (the pandas
path), byte for byte. Parquet follows the CSV rules (label column, names, exact errors).
"""

import json
import os
import shutil
import threading

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from support import make_root, pyarrow_module, run_train

ROUNDS = 30


@pytest.fixture(scope="module")
def pa():
    return pyarrow_module()


def _root(tmp_path, name: str, hyperparameters: dict | None = None):
    """The diabetes root without validation, and a train channel without a ContentType."""
    root = make_root(tmp_path / name, {"num_boost_round": str(ROUNDS), **(hyperparameters or {})})
    shutil.rmtree(root / "input" / "data" / "validation")
    (root / "input" / "config" / "inputdataconfig.json").write_text(
        json.dumps({"train": {"TrainingInputMode": "File"}})
    )
    return root


def _train_dir(root):
    return root / "input" / "data" / "train"


def _trained(root) -> str:
    result = run_train(root)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def _failure(root) -> str:
    result = run_train(root)
    assert result.returncode != 0, result.stdout
    return (root / "output" / "failure").read_text()


def test_csv_of_numbers_read_into_arrow_gives_the_model_a_float64_matrix_gives(tmp_path):
    root = _root(tmp_path, "csv")
    log = _trained(root)
    assert "read train/diabetes_train.csv: 353 rows, 11 columns" in log and "pandas C parser, " in log
    data = pd.read_csv(_train_dir(root) / "diabetes_train.csv", header=None).to_numpy(dtype=np.float64)
    params = {"objective": "regression", "verbosity": -1}
    expected = lgb.train(
        params,
        lgb.Dataset(data[:, :-1], data[:, -1], feature_name=[f"Column_{i}" for i in range(10)]),
        num_boost_round=ROUNDS,
    )
    assert (root / "model" / "model.txt").read_text() == expected.model_to_string()


def test_missing_values_and_integers_reach_lightgbm_as_in_a_matrix(tmp_path):
    root = _root(tmp_path, "gaps")
    rng = np.random.default_rng(3)
    values = rng.normal(size=(500, 4))
    values[rng.random(values.shape) < 0.1] = np.nan
    counts = rng.integers(0, 9, size=500)
    labels = np.nan_to_num(values[:, 0]) + counts + rng.normal(size=500)
    lines = [
        ",".join(["" if np.isnan(v) else repr(float(v)) for v in row] + [str(c), repr(float(y))])
        for row, c, y in zip(values, counts, labels)
    ]
    shutil.rmtree(_train_dir(root))
    _train_dir(root).mkdir()
    (_train_dir(root) / "gaps.csv").write_text("\n".join(lines) + "\n")
    assert "pandas C parser, " in _trained(root)
    matrix = np.column_stack([values, counts.astype(np.float64)])
    expected = lgb.train(
        {"objective": "regression", "verbosity": -1},
        lgb.Dataset(matrix, labels, feature_name=[f"Column_{i}" for i in range(5)]),
        num_boost_round=ROUNDS,
    )
    assert (root / "model" / "model.txt").read_text() == expected.model_to_string()


def test_parquet_trains_the_same_model_as_the_same_csv(tmp_path, pa):
    csv_root = _root(tmp_path, "csv")
    _trained(csv_root)
    parquet_root = _root(tmp_path, "parquet")
    frame = pd.read_csv(_train_dir(parquet_root) / "diabetes_train.csv", header=None)
    (_train_dir(parquet_root) / "diabetes_train.csv").unlink()
    table = pa.Table.from_pandas(frame.set_axis([f"Column_{i}" for i in range(11)], axis=1), preserve_index=False)
    half = len(frame) // 2  # two files: rows keep their order across them
    pa.parquet.write_table(table.slice(0, half), _train_dir(parquet_root) / "part-0.parquet")
    pa.parquet.write_table(table.slice(half), _train_dir(parquet_root) / "part-1.parquet")
    log = _trained(parquet_root)
    assert "read train/part-0.parquet: 176 rows, 11 columns, with header" in log
    assert (parquet_root / "model" / "model.txt").read_text() == (csv_root / "model" / "model.txt").read_text()


def test_parquet_label_by_name_text_categories_and_a_content_type(tmp_path, pa):
    root = _root(tmp_path, "named", {"label_column": "price", "objective": "regression"})
    shutil.rmtree(_train_dir(root))
    _train_dir(root).mkdir()
    rng = np.random.default_rng(1)
    colours = rng.choice(["red", "green", "blue"], size=300)
    size = rng.normal(size=300)
    price = size * 3 + (colours == "red") * 5 + rng.normal(size=300) * 0.1
    pa.parquet.write_table(pa.table({"colour": colours, "size": size, "price": price}), _train_dir(root) / "data.bin")
    config = root / "input" / "config" / "inputdataconfig.json"
    config.write_text(json.dumps({"train": {"ContentType": "application/x-parquet", "TrainingInputMode": "File"}}))
    _trained(root)
    metadata = json.loads((root / "model" / "metadata.json").read_text())
    assert metadata["feature_names"] == ["colour", "size"] and metadata["label"] == {"index": 2, "name": "price"}
    assert metadata["categories"] == {"colour": ["blue", "green", "red"]}


def test_parquet_errors_name_the_file_row_and_column(tmp_path, pa):
    root = _root(tmp_path, "stray")
    shutil.rmtree(_train_dir(root))
    _train_dir(root).mkdir()
    values = [str(v) for v in range(50)]
    values[7] = "seven"  # one stray text among numbers: a mistake, not a category
    pa.parquet.write_table(pa.table({"x": values, "y": [float(v) for v in range(50)]}), _train_dir(root) / "p.parquet")
    failure = _failure(root)
    assert "train/p.parquet row 8, column 1 ('x'): 'seven' is not a number" in failure

    (_train_dir(root) / "p.parquet").unlink()
    pa.parquet.write_table(pa.table({"x": [1.0, 2.0], "y": [1.0, None]}), _train_dir(root) / "p.parquet")
    assert "1 row(s) have no label in column 1 ('y'), first at data row 2" in _failure(root)

    values[7] = "7"  # numbers stored as text (a string column) are numbers, as in a CSV file
    pa.parquet.write_table(pa.table({"x": values, "y": values}), _train_dir(root) / "p.parquet")
    _trained(root)


def test_csv_and_parquet_in_one_channel_is_an_error_that_names_both(tmp_path, pa):
    root = _root(tmp_path, "mixed")
    pa.parquet.write_table(pa.table({"a": [1.0], "b": [2.0]}), _train_dir(root) / "extra.parquet")
    failure = _failure(root)
    assert "channel 'train' mixes CSV (diabetes_train.csv, ...) and Parquet (extra.parquet, ...) files" in failure
    config = root / "input" / "config" / "inputdataconfig.json"
    config.write_text(json.dumps({"train": {"ContentType": "text/csv"}}))
    assert "has ContentType text/csv but holds Parquet files (extra.parquet)" in _failure(root)
    (_train_dir(root) / "extra.parquet").rename(_train_dir(root) / "extra.bin")  # binary, and the channel says CSV
    assert "train/extra.bin is not valid CSV" in _failure(root)


def _feed(fifo, data: bytes) -> threading.Thread:
    """A FIFO as SageMaker makes one in Pipe mode, and a writer streaming ``data`` into it
    (its open blocks until `train` opens the FIFO to read)."""
    os.mkfifo(fifo)

    def write() -> None:
        with open(fifo, "wb") as out:
            for start in range(0, len(data), 1 << 16):
                out.write(data[start : start + (1 << 16)])

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    return writer


def test_pipe_mode_reads_csv_and_parquet_streamed_through_fifos(tmp_path, pa):
    file_root = _root(tmp_path, "file")
    _trained(file_root)
    model = (file_root / "model" / "model.txt").read_text()
    csv = (_train_dir(file_root) / "diabetes_train.csv").read_bytes()
    sink = pa.BufferOutputStream()
    pa.parquet.write_table(
        pa.csv.read_csv(pa.py_buffer(csv), read_options=pa.csv.ReadOptions(autogenerate_column_names=True)), sink
    )
    parquet = sink.getvalue().to_pybytes()

    for name, data, content_type in (("csv", csv, "text/csv"), ("parquet", parquet, None)):
        root = _root(tmp_path, f"pipe-{name}")
        data_dir = root / "input" / "data"
        shutil.rmtree(data_dir / "train")
        channel = {"TrainingInputMode": "Pipe", **({"ContentType": content_type} if content_type else {})}
        (root / "input" / "config" / "inputdataconfig.json").write_text(json.dumps({"train": channel}))
        writer = _feed(data_dir / "train_0", data)
        log = _trained(root)
        writer.join(10)
        assert not writer.is_alive()
        assert f"Pipe mode: received train_0: {len(data) / 1e6:.1f} MB" in log
        assert [p.name for p in data_dir.iterdir()] == ["train_0"]  # the received copy is gone
        if name == "csv":
            assert (root / "model" / "model.txt").read_text() == model
        else:  # the Parquet file names its columns f0..f10: the same trees under other names
            assert (
                lgb.Booster(model_file=str(root / "model" / "model.txt")).dump_model()["tree_info"]
                == lgb.Booster(model_str=model).dump_model()["tree_info"]
            )
