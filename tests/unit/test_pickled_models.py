"""Pickled and joblib'd models served in-process like our own: every type, every request form,
answers equal to the unpickled object's own predict / predict_proba (1e-9), and every refusal.

The real serve (compile switch, start-up refusals, multi-model archives) is tests/process/test_pickles_served.py.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import pickle
import re
from pathlib import Path

import numpy as np
import pytest

from lightgbm_container.model.derived import Derived, _carried_exactly, derive
from lightgbm_container.model.loading import LoadOptions, load_model
from lightgbm_container.model.pickle_versions import pickled_sklearn_version
from support import csv_body, in_process_app, json_error, pickled_root

ROWS = 25


def _client(tmp_path, model_file, **env):
    return in_process_app(pickled_root(tmp_path, model_file), **env).test_client()


def _refused(client, pattern: str) -> str:
    """A model the worker could not load: it stays up, /ping and every request say why (serve
    itself stops at start with the same reason: tests/process)."""
    message = json_error(client.get("/ping"), 503, "model_unavailable")["message"]
    assert re.search(pattern, message), message
    assert json_error(client.post("/invocations", data="1", content_type="text/csv"), 503)["message"] == message
    return message


def _rows(inputs):
    """The first rows of a model's inputs: a numpy matrix, or a DataFrame's records."""
    if hasattr(inputs, "iloc"):
        return inputs.iloc[:ROWS]
    return inputs[:ROWS]


def _expected(name, model, rows):
    """The unpickled object's own default answer: predict_proba's positive column (binary),
    every probability (multiclass), else predict."""
    if name in ("binary", "pipeline"):
        return model.predict_proba(rows)[:, 1]
    if name == "multiclass":
        return model.predict_proba(rows)
    return model.predict(rows)


def _bodies(rows):
    """The same rows as CSV, JSON rows, JSON records (named inputs only) and JSON Lines."""
    if hasattr(rows, "to_dict"):
        records = rows.to_dict(orient="records")
        positional = rows.to_numpy(dtype=object).tolist()
        csv = "\n".join(",".join(str(v) for v in row) for row in positional)
        yield "text/csv", csv
        yield "application/json", json.dumps(positional)
        yield "application/json", json.dumps(records)
        yield "application/jsonlines", "\n".join(json.dumps(record) for record in records)
        return
    yield "text/csv", csv_body(rows)
    yield "application/json", json.dumps(rows.tolist())
    yield "application/jsonlines", "\n".join(json.dumps(row) for row in rows.tolist())


@pytest.mark.parametrize("name", ["booster", "regressor", "binary", "multiclass", "ranker", "scaled", "pipeline"])
def test_every_pickle_type_answers_as_the_object_itself(tmp_path, pickles, name):
    model_file, model, inputs = pickles[name]
    client = _client(tmp_path, model_file)
    rows = _rows(inputs)
    expected = np.asarray(_expected(name, model, rows), dtype=float)
    for content_type, body in _bodies(rows):
        response = client.post(
            "/invocations", data=body, content_type=content_type, headers={"Accept": "application/json"}
        )
        assert response.status_code == 200, (content_type, response.get_data(as_text=True)[:500])
        np.testing.assert_allclose(
            response.get_json()["predictions"], expected, rtol=0, atol=1e-9, err_msg=content_type
        )


@pytest.mark.parametrize("name", ["binary", "pipeline", "multiclass"])
def test_classifiers_answer_their_original_labels_and_probabilities(tmp_path, pickles, name):
    model_file, model, inputs = pickles[name]
    client = _client(tmp_path, model_file)
    rows = _rows(inputs)
    body = rows.to_json(orient="records") if hasattr(rows, "to_json") else json.dumps(rows.tolist())
    headers = {"X-Amzn-SageMaker-Custom-Attributes": "output=predicted_label,probabilities,labels"}
    answer = client.post("/invocations", data=body, content_type="application/json", headers=headers)
    assert answer.status_code == 200, answer.get_data(as_text=True)[:500]
    records = answer.get_json()["predictions"]
    assert [record["predicted_label"] for record in records] == model.predict(rows).tolist()
    np.testing.assert_allclose([record["probabilities"] for record in records], model.predict_proba(rows), atol=1e-9)
    assert records[0]["labels"] == model.classes_.tolist()


def test_the_best_iteration_of_an_early_stopped_booster_is_honoured(tmp_path, pickles):
    """A Booster kept training past its best round (keep_training_booster=True) predicts with its
    best iteration, as train does; its pickle still holds every tree."""
    import lightgbm as lgb

    _, _, inputs = pickles["regressor"]
    labels = inputs[:, 0] * 2 + np.random.default_rng(3).normal(size=len(inputs))
    train, valid = lgb.Dataset(inputs[:400], labels[:400]), lgb.Dataset(inputs[400:], labels[400:])
    booster = lgb.train(
        {"objective": "regression", "verbosity": -1, "learning_rate": 0.3},
        train,
        300,
        valid_sets=[valid],
        callbacks=[lgb.early_stopping(3, verbose=False)],
        keep_training_booster=True,
    )
    assert 0 < booster.best_iteration < booster.current_iteration()
    path = tmp_path / "early.pkl"
    path.write_bytes(pickle.dumps(booster))
    client = _client(tmp_path, path)
    response = client.post("/invocations", data=csv_body(inputs[:ROWS]), content_type="text/csv")
    answer = np.array(response.get_data(as_text=True).split(), dtype=float)
    np.testing.assert_allclose(answer, booster.predict(inputs[:ROWS]), rtol=0, atol=1e-9)
    assert not np.allclose(answer, booster.predict(inputs[:ROWS], num_iteration=-1))


def test_a_pipeline_takes_text_in_its_text_columns_and_refuses_text_elsewhere(tmp_path, pickles):
    model_file, model, inputs = pickles["pipeline"]
    client = _client(tmp_path, model_file)
    record = {"x1": 0.3, "x2": 4.0, "color": "red", "size": "M"}
    answer = client.post("/invocations", json=[record])
    import pandas as pd

    expected = model.predict_proba(pd.DataFrame([record]))[:, 1]
    np.testing.assert_allclose(answer.get_json()["predictions"], expected, atol=1e-9)
    json_error(client.post("/invocations", json=[{**record, "x1": "lots"}]), 400, None, "'lots' is not a number")
    json_error(client.post("/invocations", json=[{**record, "colour": "red"}]), 400, None, "did you mean 'color'?")
    json_error(
        client.post("/invocations", data="0.3,4.0,red", content_type="text/csv"),
        400,
        None,
        "expected 4 features, got 3",
    )
    missing = client.post("/invocations", json=[{"x1": 0.3, "color": "blue", "size": "S"}])  # x2: the imputer's
    np.testing.assert_allclose(
        missing.get_json()["predictions"],
        model.predict_proba(pd.DataFrame([{"x1": 0.3, "x2": np.nan, "color": "blue", "size": "S"}]))[:, 1],
        atol=1e-9,
    )
    missing_csv = client.post("/invocations", data="0.3,,blue,S", content_type="text/csv")  # CSV's missing value
    assert missing_csv.get_data(as_text=True).strip() == repr(missing.get_json()["predictions"][0])
    no_text = json_error(client.post("/invocations", json=[{"x1": 0.3, "x2": 1.0, "color": "blue"}]), 400)
    assert no_text["message"].startswith("the model's Pipeline refused the rows")  # its encoder takes no missing text
    for empty in ("0.3,1.0,blue,", "0.3,1.0,blue, NA "):  # missing text in CSV: the same refusal, not a category ""
        assert json_error(client.post("/invocations", data=empty, content_type="text/csv"), 400) == no_text
    json_error(client.post("/invocations", json=[{**record, "x2": True}]), 400, None, "not a number")


def test_contributions_are_refused_where_a_pipeline_changes_the_features(tmp_path, pickles):
    client = _client(tmp_path, pickles["pipeline"][0])
    headers = {"X-Amzn-SageMaker-Custom-Attributes": "output=contributions"}
    body = json_error(
        client.post("/invocations", json=[{"x1": 0.3, "x2": 4.0, "color": "red", "size": "M"}], headers=headers), 400
    )
    assert "not available for this model: its Pipeline's steps change the features" in body["message"]
    scaled_file, scaled, inputs = pickles["scaled"]
    scaled_client = _client(tmp_path / "scaled", scaled_file)
    answer = scaled_client.post("/invocations", json=inputs.iloc[:3].to_dict(orient="records"), headers=headers)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert list(answer.get_json()["predictions"][0]["contributions"]["features"]) == ["x1", "x2"]


@pytest.mark.parametrize(
    "content, fragment",
    [
        (pickle.dumps({"not": "a model"}), "holds a builtins.dict; this container serves a lightgbm.Booster"),
        (pickle.dumps(np.arange(3)), "holds a numpy.ndarray"),
    ],
)
def test_a_pickle_of_something_else_names_its_type_and_what_is_accepted(tmp_path, content, fragment):
    path = tmp_path / "model.pkl"
    path.write_bytes(content)
    _refused(_client(tmp_path, path), fragment.replace(".", r"\."))


def test_an_unfitted_estimator_and_a_pipeline_not_ending_in_lightgbm_are_named(tmp_path):
    import joblib
    import lightgbm as lgb
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import Pipeline

    joblib.dump(lgb.LGBMRegressor(), tmp_path / "unfitted.joblib")
    _refused(_client(tmp_path / "a", tmp_path / "unfitted.joblib"), "LGBMRegressor that was never fitted")
    features = np.random.default_rng(0).normal(size=(50, 2))
    joblib.dump(Pipeline([("linear", LinearRegression())]).fit(features, features[:, 0]), tmp_path / "linear.joblib")
    _refused(
        _client(tmp_path / "b", tmp_path / "linear.joblib"),
        "last step is a sklearn.linear_model._base.LinearRegression",
    )


def test_a_pickle_that_needs_a_missing_module_names_it(tmp_path):
    source = tmp_path / "somewhere_else_entirely.py"
    source.write_text("class Thing:\n    pass\n")
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        import somewhere_else_entirely

        data = pickle.dumps(somewhere_else_entirely.Thing())
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("somewhere_else_entirely", None)
    (tmp_path / "model.pkl").write_bytes(data)
    _refused(
        _client(tmp_path / "m", tmp_path / "model.pkl"),
        "needs the Python module 'somewhere_else_entirely'.*requirements.txt",
    )


def test_pickles_are_refused_when_not_allowed(tmp_path, pickles):
    _refused(
        _client(tmp_path, pickles["regressor"][0], LIGHTGBM_ALLOW_PICKLE="false"),
        "LIGHTGBM_ALLOW_PICKLE=false refuses pickles",
    )


def test_version_skew_loads_with_a_warning_naming_both_versions(tmp_path, pickles, caplog):
    import sklearn

    original = pickles["scaled"][0].read_bytes()
    current = sklearn.__version__.encode()
    assert len(current) == len(b"1.5.2") and original.count(current) >= 1
    older = tmp_path / "older.joblib"
    older.write_bytes(original.replace(current, b"1.5.2"))
    assert pickled_sklearn_version(older) == "1.5.2"
    with caplog.at_level(logging.WARNING, logger="lightgbm_container.model.pickles"):
        client = _client(tmp_path, older)
    assert f"pickled with scikit-learn 1.5.2 and is loaded with scikit-learn {sklearn.__version__}" in caplog.text
    assert client.get("/ping").status_code == 200


def test_version_skew_that_cannot_load_names_both_versions(tmp_path, pickles):
    import sklearn

    original = pickles["scaled"][0].read_bytes()
    broken = original.replace(sklearn.__version__.encode(), b"0.9.9").replace(b"StandardScaler", b"StandardScalar")
    (tmp_path / "old.joblib").write_bytes(broken)
    _refused(
        _client(tmp_path / "m", tmp_path / "old.joblib"),
        rf"pickled with scikit-learn 0\.9\.9, and scikit-learn {sklearn.__version__} in this image cannot load it",
    )


@pytest.mark.parametrize(
    "name, content, fragment",
    [
        ("model.json", "dump", "is a LightGBM JSON dump (Booster.dump_model()), which LightGBM cannot load back"),
        ("model.onnx", b"\x08\x07\x12\x08skl2onnx", "is an ONNX model"),
        ("model.json", b'{"learner": {"attributes": {}}, "version": [2, 1, 0]}', "is an XGBoost JSON model"),
        ("model.cbm", b"CBM1\x00\x00", "is a CatBoost model"),
    ],
)
def test_other_model_formats_are_named(tmp_path, booster, name, content, fragment):
    model_dir = tmp_path / "ml" / "model"
    model_dir.mkdir(parents=True)
    data = json.dumps(booster.dump_model()).encode() if content == "dump" else content
    (model_dir / name).write_bytes(data)
    _refused(in_process_app(tmp_path / "ml").test_client(), fragment.replace("(", r"\(").replace(")", r"\)"))


def test_several_model_files_are_listed(tmp_path, pickles, trained_root):
    root = pickled_root(tmp_path, pickles["regressor"][0])
    (root / "model" / "other.txt").write_bytes((trained_root / "model" / "model.txt").read_bytes())
    _refused(
        in_process_app(root).test_client(),
        r"2 model files .*other\.txt \(LightGBM text\).*regressor\.joblib \(pickle\)",
    )


@pytest.mark.parametrize("name", ["booster", "regressor", "binary", "multiclass", "ranker", "scaled", "pipeline"])
def test_what_serve_derives_before_the_workers_answers_as_the_unpickled_model(tmp_path, pickles, name):
    """serve writes a pickle's trees and classes as text before its workers start (model/derived.py);
    a worker loading that answers exactly as one unpickling the file, classes included."""
    model_file, _, inputs = pickles[name]
    derived = derive(model_file, tmp_path / "derived")
    assert Derived.from_json(derived.to_json()) == derived
    assert (derived.metadata_file is None) == (name in ("scaled", "pipeline"))  # the workers unpickle a Pipeline
    options = LoadOptions(threads=1, derived_dir=tmp_path / "derived")
    root = pickled_root(tmp_path, model_file)
    from_text = load_model(root / "model", dataclasses.replace(options, derived=derived))
    unpickled = load_model(root / "model", options)
    assert type(from_text) is type(unpickled) and from_text.classes == unpickled.classes
    assert from_text.source_file == unpickled.source_file == root / "model" / model_file.name
    if derived.metadata_file is not None:
        rows = np.asarray(inputs[:ROWS], dtype=np.float64)
        assert from_text.model_file == derived.model_file
        np.testing.assert_array_equal(from_text.predict(rows), unpickled.predict(rows))


@pytest.mark.parametrize(
    "classes, carried",
    [
        (None, True),
        ([0, 1, 2], True),
        (["no", "yes"], True),
        ([False, True], True),
        ([0.5, 1.5], True),
        ([1, 2.0], True),  # JSON keeps an integer and a float apart
        ([datetime.date(2026, 1, 1)], False),  # no JSON form
        ([float("nan"), 1.0], False),
        ([(1, 2), (3, 4)], False),  # tuples come back as lists
    ],
)
def test_classes_travel_as_json_only_when_they_come_back_exactly(classes, carried):
    assert _carried_exactly(classes) is carried


OLDER = Path(__file__).resolve().parents[1] / "data" / "older_pickles"  # written by LightGBM 3.3.5 (make.py there)


@pytest.mark.parametrize(
    "name, column, sklearn_warned",
    [("classifier-lightgbm-3.3.5-sklearn-1.3.2.joblib", 0, True), ("booster-lightgbm-3.3.5.pkl", 1, False)],
)
def test_pickles_older_libraries_wrote_answer_as_they_did_with_a_warning_naming_both_versions(
    tmp_path, caplog, name, column, sklearn_warned
):
    import lightgbm
    import sklearn

    with caplog.at_level(logging.WARNING, logger="lightgbm_container.model.pickles"):
        client = _client(tmp_path, OLDER / name)
        answer = client.post("/invocations", data=(OLDER / "rows.csv").read_text(), content_type="text/csv")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    expected = np.loadtxt(OLDER / "expected.csv", delimiter=",")[:, column]
    np.testing.assert_allclose(np.array(answer.get_data(as_text=True).split(), dtype=float), expected, atol=1e-9)
    assert f"model format v3 (LightGBM 3.x), loaded with LightGBM {lightgbm.__version__}" in caplog.text
    sklearn_skew = f"pickled with scikit-learn 1.3.2 and is loaded with scikit-learn {sklearn.__version__}"
    assert (sklearn_skew in caplog.text) is sklearn_warned


def test_trees_a_newer_lightgbm_wrote_that_cannot_load_name_both_versions(tmp_path, pickles):
    import lightgbm

    newer = pickles["booster"][0].read_bytes().replace(b"version=v4", b"version=v5")
    (tmp_path / "newer.pkl").write_bytes(newer.replace(b"num_leaves=", b"num_leafs="))  # a field 4.x does not know
    _refused(
        _client(tmp_path / "m", tmp_path / "newer.pkl"),
        rf"model format v5 \(LightGBM 5\.x\), and LightGBM {re.escape(lightgbm.__version__)} in this image cannot load",
    )
