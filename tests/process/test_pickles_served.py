"""Pickled models on the real `serve`: compiled like text models, refused at start with the reason,
beside text models in multi-model mode, and scikit-learn only in the workers that need it.

Each type's answers and errors in every request form: tests/unit/test_pickled_models.py.
"""

from __future__ import annotations

import io
import json
import pickle
import tarfile
from pathlib import Path

import numpy as np
import psutil
import pytest

from support import Server, csv_body, failed_start, model_layout, pickled_root

TARGET = "X-Amzn-SageMaker-Target-Model"


def _values(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.array(response.text.split(), dtype=float)


def test_a_joblib_classifier_answers_probabilities_and_switches_to_compiled_trees(tmp_path, start_server, pickles):
    model_file, model, inputs = pickles["binary"]
    server = start_server(pickled_root(tmp_path, model_file, "model.joblib"))
    expected = model.predict_proba(inputs[:50])[:, 1]
    np.testing.assert_allclose(_values(server.post(csv_body(inputs[:50]))), expected, atol=1e-9)
    stats = server.wait_compiled()
    assert stats["compile"]["state"] == "ready", stats
    for _ in range(4):  # both workers, on the compiled trees
        np.testing.assert_allclose(_values(server.post(csv_body(inputs[:50]))), expected, atol=1e-9)


def test_a_pipeline_with_text_columns_is_served_at_compiled_speed(tmp_path, start_server, pickles):
    model_file, model, inputs = pickles["pipeline"]
    server = start_server(pickled_root(tmp_path, model_file, "model.pkl"))
    records = inputs.iloc[:30].to_dict(orient="records")
    expected = model.predict_proba(inputs.iloc[:30])[:, 1]
    server.wait_compiled()
    for _ in range(4):
        answer = server.post(json.dumps(records), "application/json")
        assert answer.status_code == 200, answer.text
        np.testing.assert_allclose(answer.json()["predictions"], expected, atol=1e-9)


def test_a_pickle_older_libraries_wrote_is_served_with_the_skew_in_serves_log(tmp_path, start_server):
    """The warnings come from the derivation before the workers (model/derived.py), relayed by serve."""
    import lightgbm
    import sklearn

    older = Path(__file__).resolve().parents[1] / "data" / "older_pickles"
    server = start_server(pickled_root(tmp_path, older / "classifier-lightgbm-3.3.5-sklearn-1.3.2.joblib"))
    expected = np.loadtxt(older / "expected.csv", delimiter=",")[:, 0]
    np.testing.assert_allclose(_values(server.post((older / "rows.csv").read_text())), expected, atol=1e-9)
    logs = server.logs()
    assert f"pickled with scikit-learn 1.3.2 and is loaded with scikit-learn {sklearn.__version__}" in logs
    assert f"model format v3 (LightGBM 3.x), loaded with LightGBM {lightgbm.__version__}" in logs


JUMPSTART_LIKE_SCRIPT = """
import os

import joblib
import numpy as np
import sklearn  # noqa: F401 - as the JumpStart LightGBM inference script does


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.pkl"))


def predict_fn(data, model):
    return model.predict_proba(np.asarray(data, dtype=np.float64))[:, 1]
"""


def test_a_script_that_imports_scikit_learn_and_joblib_loads_its_model_runs_unchanged(tmp_path, start_server, pickles):
    model_file, model, inputs = pickles["binary"]
    root = pickled_root(tmp_path, model_file, "model.pkl")
    (root / "model" / "code").mkdir()
    (root / "model" / "code" / "inference.py").write_text(JUMPSTART_LIKE_SCRIPT)
    server = start_server(root)
    answer = server.post(csv_body(inputs[:10]), accept="application/json")
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(answer.json(), model.predict_proba(inputs[:10])[:, 1], atol=1e-9)


@pytest.mark.parametrize(
    "content, fragment",
    [
        (pickle.dumps({"not": "a model"}), "holds a builtins.dict; this container serves a lightgbm.Booster"),
        (b"\x08\x07\x12\x08skl2onnx", "is an ONNX model"),
    ],
)
def test_serve_stops_at_start_saying_what_the_file_is(tmp_path, content, fragment):
    model_file = tmp_path / ("model.pkl" if content.startswith(b"\x80") else "model.onnx")
    model_file.write_bytes(content)
    logs = failed_start(pickled_root(tmp_path, model_file), tmp_path)
    assert "cannot serve" in logs and fragment in logs


def test_pickles_are_refused_at_start_when_not_allowed(tmp_path, pickles):
    logs = failed_start(pickled_root(tmp_path, pickles["regressor"][0]), tmp_path, LIGHTGBM_ALLOW_PICKLE="false")
    assert "LIGHTGBM_ALLOW_PICKLE=false refuses pickles" in logs


def test_multi_model_serves_a_pickle_archive_beside_a_text_model(tmp_path, start_server, pickles, model_files):
    import lightgbm as lgb

    root = tmp_path / "ml"
    paths, rows = model_files
    model_layout(root, "text", paths["small"])
    model_file, model, inputs = pickles["regressor"]
    archive = root / "models" / "pickled.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        data = model_file.read_bytes()
        info = tarfile.TarInfo("model.joblib")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    server = start_server(root, SAGEMAKER_MULTI_MODEL="true")
    for _ in range(3):
        np.testing.assert_allclose(
            _values(server.post(csv_body(inputs[:20]), **{TARGET: "pickled.tar.gz"})),
            model.predict(inputs[:20]),
            atol=1e-9,
        )
        np.testing.assert_allclose(
            _values(server.post(csv_body(rows), **{TARGET: "text"})),
            lgb.Booster(model_file=str(paths["small"])).predict(rows),
            atol=1e-9,
        )


def _workers_hold(server: Server, module: str) -> list[bool]:
    """Whether each gunicorn worker has ``module``'s files mapped (imported)."""
    gunicorn = [
        child for child in psutil.Process(server.process.pid).children() if "gunicorn" in " ".join(child.cmdline())
    ]
    return [any(f"/{module}/" in region.path for region in worker.memory_maps()) for worker in gunicorn[0].children()]


def test_scikit_learn_is_loaded_only_by_the_workers_of_a_pipeline(tmp_path, trained_root, start_server, pickles):
    """A pickled estimator's trees and classes are derived as text before the workers start
    (model/derived.py): its workers are a text model's; only a Pipeline's steps need scikit-learn."""
    text_server = start_server(trained_root, LIGHTGBM_PREDICTOR="lightgbm")
    assert _workers_hold(text_server, "sklearn") == [False, False]
    model_file, model, inputs = pickles["binary"]  # text labels: the classes travel beside the derived text
    estimator_server = start_server(pickled_root(tmp_path / "estimator", model_file), LIGHTGBM_PREDICTOR="lightgbm")
    assert _workers_hold(estimator_server, "sklearn") == [False, False]
    labels = estimator_server.post(
        csv_body(inputs[:20]), **{"X-Amzn-SageMaker-Custom-Attributes": "output=predicted_label"}
    )
    assert labels.text.split() == list(model.predict(inputs[:20])), labels.text
    pipeline_server = start_server(
        pickled_root(tmp_path / "pipeline", pickles["pipeline"][0]), LIGHTGBM_PREDICTOR="lightgbm"
    )
    assert _workers_hold(pipeline_server, "sklearn") == [True, True]
