"""The real image driven by the real SageMaker Python SDK (v2) in local mode, through its public API only.

Estimator.fit -> deploy -> predict (CSV, JSON, NumPy) -> delete_endpoint -> Transformer.transform,
plus a failing training job. Local mode's predict() never raises on an HTTP error, so every
check is on the content of the answer.

Run: .venv/bin/python -m pytest tests/client -m client
"""

from __future__ import annotations

import json
import tarfile
import time
from pathlib import Path

import joblib
import numpy as np
import pytest
import sagemaker_local
from client_helpers import (
    HYPERPARAMETERS,
    REPO,
    TRAIN,
    VALIDATION,
    csv_lines,
    extract_model,
    features,
    local_path,
)

from support import BUILTIN_HYPERPARAMETERS, builtin_job_root, builtin_rows, free_port

pytestmark = [
    pytest.mark.client,
    # The SDK streams the endpoint's `docker compose up` in a thread and raises there when
    # it exits with anything but 0 or 130: make that fail the test instead of a warning.
    pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning"),
]

TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def aws_calls():
    """Every AWS API call the SDK attempts; local mode must make none (each one fails loudly)."""
    import botocore.client

    calls: list[str] = []
    original = botocore.client.BaseClient._make_api_call

    def refuse(self, operation_name, api_params):
        calls.append(f"{self.meta.service_model.service_name}.{operation_name}")
        raise AssertionError(f"local mode called AWS: {calls[-1]}")

    botocore.client.BaseClient._make_api_call = refuse
    yield calls
    botocore.client.BaseClient._make_api_call = original


@pytest.fixture(scope="module")
def session(client_engine, leftover_guard, aws_calls, tmp_path_factory):
    root = tmp_path_factory.mktemp("local-mode")
    return sagemaker_local.local_session(serving_port=free_port(), container_root=root / "containers")


def make_estimator(session, image: str, output: Path, hyperparameters: dict, instance_count: int = 1):
    from sagemaker.estimator import Estimator

    return Estimator(
        image_uri=image,
        role=sagemaker_local.DUMMY_ROLE,
        instance_count=instance_count,
        instance_type="local",
        hyperparameters=hyperparameters,
        output_path=f"file://{output}",
        sagemaker_session=session,
    )


@pytest.fixture(scope="module")
def estimator(session, client_image, timings, tmp_path_factory):
    """The diabetes regression trained by Estimator.fit with train and validation channels."""
    estimator = make_estimator(session, client_image, tmp_path_factory.mktemp("model-out"), HYPERPARAMETERS)
    started = time.monotonic()
    estimator.fit({"train": f"file://{TRAIN}", "validation": f"file://{VALIDATION}"})
    timings["fit (train + validation, early stopping)"] = time.monotonic() - started
    return estimator


@pytest.fixture(scope="module")
def model_dir(estimator, tmp_path_factory) -> Path:
    return extract_model(estimator.model_data, tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def reference(model_dir):
    """The trained model loaded by LightGBM on the host: predictions to compare with."""
    import lightgbm

    booster = lightgbm.Booster(model_file=str(model_dir / "model.txt"))
    return lambda rows: booster.predict(np.asarray(rows, dtype=float))


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    return features(VALIDATION / "diabetes_validation.csv")[:5]


# --------------------------------------------------------------------------- training


def test_fit_writes_model_tar_gz_with_model_and_metadata(estimator, model_dir):
    assert estimator.model_data.startswith("file://") and estimator.model_data.endswith("model.tar.gz")
    with tarfile.open(local_path(estimator.model_data)) as tar:
        names = {Path(name).name for name in tar.getnames()}
    assert {"model.txt", "metadata.json"} <= names
    metadata = json.loads((model_dir / "metadata.json").read_text())
    assert metadata["objective"] == "regression"
    assert len(metadata["feature_names"]) == 10
    assert "validation" in metadata["metrics"]


def test_failing_training_makes_fit_raise(session, client_image, timings, tmp_path):
    estimator = make_estimator(session, client_image, tmp_path / "out", {"lerning_rate": "0.1"})
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="exited with code: 1"):
        estimator.fit({"train": f"file://{TRAIN}"})
    timings["fit that fails (bad hyperparameter)"] = time.monotonic() - started
    # The FailureReason the image wrote is in the job's output.tar.gz, as on SageMaker.
    # (Local mode writes a file:// output_path's artefacts directly into it.)
    with tarfile.open(tmp_path / "out" / "output.tar.gz") as tar:
        member = next(m for m in tar.getmembers() if Path(m.name).name == "failure")
        reason = tar.extractfile(member).read().decode()
    assert "unknown hyperparameter 'lerning_rate'" in reason
    assert "learning_rate" in reason


def test_two_instances_train_one_model_together(session, client_image, timings, tmp_path, capfd):
    """instance_count=2: two containers on local mode's compose network train over LightGBM's
    network; the first host's model is the job's, and it validates like one instance's."""
    import lightgbm

    # One LightGBM thread per container: both "instances" share this machine's cores.
    hyperparameters = {"objective": "regression", "num_boost_round": 40, "num_threads": 1}
    estimator = make_estimator(session, client_image, tmp_path / "out", hyperparameters, instance_count=2)
    started = time.monotonic()
    estimator.fit({"train": f"file://{TRAIN}", "validation": f"file://{VALIDATION}"})
    timings["fit on 2 instances (40 rounds)"] = time.monotonic() - started
    output = capfd.readouterr().out
    assert "is rank 0 of 2" in output and "is rank 1 of 2" in output  # both hosts took part
    assert output.count(" on eth0 (network_interface_name)") == 2  # local mode's resourceconfig.json names eth0
    assert output.count("all hosts finished") == 2  # and left together: compose stops the rest at the first exit
    metadata = json.loads((extract_model(estimator.model_data, tmp_path / "model") / "metadata.json").read_text())
    assert metadata["hyperparameters"]["tree_learner"] == "data"

    train, validation = (np.loadtxt(next(path.glob("*.csv")), delimiter=",") for path in (TRAIN, VALIDATION))
    single = lightgbm.train(
        {"objective": "regression", "verbosity": -1}, lightgbm.Dataset(train[:, :-1], train[:, -1]), 40
    )
    single_l2 = float(np.mean((single.predict(validation[:, :-1]) - validation[:, -1]) ** 2))
    assert abs(metadata["metrics"]["validation"]["l2"] - single_l2) <= 0.05 * single_l2, (
        metadata["metrics"],
        single_l2,
    )


# --------------------------------------------------------------------------- real-time endpoint


class TestEndpoint:
    """One endpoint for the whole class; test_delete_endpoint (last) removes it."""

    @pytest.fixture(scope="class")
    def predictor(self, estimator, timings):
        from sagemaker.serializers import CSVSerializer

        started = time.monotonic()
        predictor = estimator.deploy(1, "local", serializer=CSVSerializer(), wait=False)
        timings["deploy (until /ping answers)"] = time.monotonic() - started
        predictor.deleted = False
        yield predictor
        if not predictor.deleted:
            predictor.delete_endpoint()

    def test_predict_csv(self, predictor, rows, reference, timings):
        from sagemaker.deserializers import StringDeserializer

        predictor.deserializer = StringDeserializer(accept="text/csv")
        started = time.monotonic()
        answer = predictor.predict(rows.tolist())
        timings["predict CSV, 5 rows (SDK round trip)"] = time.monotonic() - started
        lines = csv_lines(answer)
        assert len(lines) == len(rows)
        np.testing.assert_allclose([float(v) for v in lines], reference(rows), rtol=0, atol=TOLERANCE)

    def test_predict_csv_single_row(self, predictor, rows, reference):
        from sagemaker.deserializers import StringDeserializer

        predictor.deserializer = StringDeserializer(accept="text/csv")
        answer = predictor.predict(rows[0].tolist())  # one flat row, as users often send it
        assert len(csv_lines(answer)) == 1
        assert float(answer) == pytest.approx(reference(rows[:1])[0], abs=TOLERANCE)

    def test_predict_json(self, predictor, rows, reference, timings):
        from sagemaker.deserializers import JSONDeserializer
        from sagemaker.serializers import JSONSerializer

        predictor.serializer = JSONSerializer()
        predictor.deserializer = JSONDeserializer()
        started = time.monotonic()
        answer = predictor.predict(rows.tolist())  # a list of rows
        timings["predict JSON, 5 rows"] = time.monotonic() - started
        assert set(answer) == {"predictions"}, answer
        np.testing.assert_allclose(answer["predictions"], reference(rows), rtol=0, atol=TOLERANCE)

    def test_predict_numpy(self, predictor, rows, reference, timings):
        from sagemaker.deserializers import NumpyDeserializer
        from sagemaker.serializers import NumpySerializer

        predictor.serializer = NumpySerializer()
        predictor.deserializer = NumpyDeserializer()
        started = time.monotonic()
        answer = predictor.predict(rows)
        timings["predict NumPy, 5 rows"] = time.monotonic() - started
        assert isinstance(answer, np.ndarray), answer
        assert answer.shape == (len(rows),)
        np.testing.assert_allclose(answer, reference(rows), rtol=0, atol=TOLERANCE)

    def test_bad_request_answers_with_a_json_error(self, predictor):
        from sagemaker.deserializers import JSONDeserializer
        from sagemaker.serializers import CSVSerializer

        predictor.serializer = CSVSerializer()
        predictor.deserializer = JSONDeserializer()
        answer = predictor.predict([[1.0, 2.0, 3.0]])  # local mode returns the 400 body as is
        assert answer["error"] == "bad_request", answer
        assert "expected 10 features, got 3" in answer["message"]

    def test_delete_endpoint_removes_the_container(self, predictor, leftover_guard, timings):
        assert new_containers(leftover_guard), "the endpoint's container should be running"
        started = time.monotonic()
        predictor.delete_endpoint()
        timings["delete_endpoint"] = time.monotonic() - started
        predictor.deleted = True
        assert new_containers(leftover_guard) == []


def new_containers(before: set[str]) -> list[str]:
    """Local-mode containers (any state) that did not exist when the session started."""
    return sorted(set(sagemaker_local.sagemaker_containers()) - before)


# --------------------------------------------------------------------------- batch transform


def test_batch_transform_multi_file_csv(estimator, reference, timings, tmp_path):
    """Line split, MultiRecord: one output line per input line, in order, in one file per input."""
    source = VALIDATION / "diabetes_validation.csv"
    records = features(source)
    batch = tmp_path / "batch"
    batch.mkdir()
    # (Local mode reads only the files directly in the directory, not subdirectories.)
    chunks = {"a.csv": records[:30], "b.csv": records[30:31], "c.csv": records[31:]}
    for name, chunk in chunks.items():
        # %r-style shortest repr keeps the values exact; the last line has no newline in one file
        text = "\n".join(",".join(repr(float(v)) for v in row) for row in chunk)
        (batch / name).write_text(text + ("" if name == "b.csv" else "\n"))
    output = tmp_path / "out"

    transformer = estimator.transformer(
        instance_count=1,
        instance_type="local",
        strategy="MultiRecord",
        assemble_with="Line",
        accept="text/csv",
        output_path=f"file://{output}",
    )
    started = time.monotonic()
    # Local mode runs the whole job inside transform(). wait=False skips the SDK's wait,
    # which sleeps 5 s before its first look, and with the default logs=True would call
    # CloudWatch Logs (LocalSession does not override logs_for_transform_job).
    transformer.transform(f"file://{batch}", content_type="text/csv", split_type="Line", wait=False, logs=False)
    timings["transform (3 files, until the container is gone)"] = time.monotonic() - started
    job = transformer.sagemaker_session.describe_transform_job(transformer.latest_transform_job.name)
    assert job["TransformJobStatus"] == "Completed", job

    for name, chunk in chunks.items():
        text = (output / f"{name}.out").read_text()
        lines = csv_lines(text)
        assert "" not in lines, f"{name}.out has empty records: {text!r}"
        assert len(lines) == len(chunk), f"{name}.out: {len(lines)} lines for {len(chunk)} records"
        np.testing.assert_allclose([float(v) for v in lines], reference(chunk), rtol=0, atol=TOLERANCE)


# --------------------------------------------------------------------------- hygiene


def test_no_aws_calls_and_no_containers_left(aws_calls, leftover_guard):
    assert aws_calls == []
    assert new_containers(leftover_guard) == []


# --------------------------------------------------------------------------- user code


class TestUserCode:
    """The SDK flows of the toolkit's documentation: Model(entry_point, source_dir) and Estimator(entry_point)."""

    def test_model_with_an_inference_py_deploys_and_predicts(
        self, estimator, session, client_image, rows, reference, timings, tmp_path
    ):
        import shutil

        from sagemaker.deserializers import StringDeserializer
        from sagemaker.model import Model
        from sagemaker.predictor import Predictor
        from sagemaker.serializers import CSVSerializer

        source = tmp_path / "src"
        source.mkdir()
        shutil.copy(REPO / "examples" / "toolkit" / "pandas_inference.py", source / "inference.py")
        # The SDK repacks a local model.tar.gz in place (adding code/): give it a copy of the estimator's.
        model_tar = tmp_path / "model.tar.gz"
        shutil.copy(local_path(estimator.model_data), model_tar)
        model = Model(
            image_uri=client_image,
            model_data=f"file://{model_tar}",
            role=sagemaker_local.DUMMY_ROLE,
            entry_point="inference.py",
            source_dir=str(source),
            predictor_cls=Predictor,
            sagemaker_session=session,
        )
        started = time.monotonic()
        predictor = model.deploy(
            1, "local", serializer=CSVSerializer(), deserializer=StringDeserializer(accept="text/csv"), wait=False
        )
        timings["deploy Model(entry_point=inference.py, source_dir)"] = time.monotonic() - started
        try:
            answer = predictor.predict(rows.tolist())
            np.testing.assert_allclose([float(v) for v in csv_lines(answer)], reference(rows), rtol=0, atol=TOLERANCE)
        finally:
            predictor.delete_endpoint()
        with tarfile.open(model_tar) as tar:  # what the SDK repacked: the model and code/inference.py
            assert {"model.txt", "code/inference.py"} <= {name.lstrip("./") for name in tar.getnames()}

    def test_a_joblib_classifier_deploys_with_no_entry_point_and_answers_probabilities(
        self, session, client_image, pickles, timings, tmp_path
    ):
        """The model.tar.gz most SageMaker LightGBM scripts leave: model.joblib of an LGBMClassifier, no code."""
        from sagemaker.deserializers import JSONDeserializer
        from sagemaker.model import Model
        from sagemaker.predictor import Predictor
        from sagemaker.serializers import CSVSerializer

        model_file, classifier, inputs = pickles["binary"]
        model_tar = tmp_path / "model.tar.gz"
        with tarfile.open(model_tar, "w:gz") as tar:
            tar.add(model_file, arcname="model.joblib")
        model = Model(
            image_uri=client_image,
            model_data=f"file://{model_tar}",
            role=sagemaker_local.DUMMY_ROLE,
            predictor_cls=Predictor,
            sagemaker_session=session,
        )
        started = time.monotonic()
        predictor = model.deploy(1, "local", serializer=CSVSerializer(), deserializer=JSONDeserializer(), wait=False)
        timings["deploy Model(model.joblib), no entry_point"] = time.monotonic() - started
        try:
            answer = predictor.predict(inputs[:5].tolist(), initial_args={"Accept": "application/json"})
            expected = classifier.predict_proba(inputs[:5])[:, 1]
            np.testing.assert_allclose(answer["predictions"], expected, rtol=0, atol=TOLERANCE)
        finally:
            predictor.delete_endpoint()

    def test_estimator_with_a_training_script(self, session, client_image, timings, tmp_path):
        from sagemaker.estimator import Estimator

        output = tmp_path / "out"
        estimator = Estimator(
            image_uri=client_image,
            role=sagemaker_local.DUMMY_ROLE,
            instance_count=1,
            instance_type="local",
            entry_point="train.py",
            source_dir=str(REPO / "examples" / "training"),
            hyperparameters={"num_leaves": 7, "rounds": 12},
            output_path=f"file://{output}",
            sagemaker_session=session,
        )
        started = time.monotonic()
        estimator.fit({"train": f"file://{TRAIN}"})
        timings["fit Estimator(entry_point=train.py, source_dir)"] = time.monotonic() - started
        model_dir = extract_model(estimator.model_data, tmp_path / "model")
        import lightgbm

        booster = lightgbm.Booster(model_file=str(model_dir / "model.txt"))
        assert booster.num_trees() == 12 and booster.params["num_leaves"] == 7


# --------------------------------------------------------------------------- output kinds, categorical features


class TestOutputKindsAndCategories:
    """A multiclass model trained by Estimator.fit from CSV with text categories and text labels."""

    FEATURES = ["x1", "x2", "color", "size"]

    @pytest.fixture(scope="class")
    def classifier(self, session, client_image, timings, tmp_path_factory):
        from support import categorical_frame

        data = tmp_path_factory.mktemp("categorical-data")
        frame = categorical_frame(600, 5, "multiclass")
        frame[:500].to_csv(data / "train.csv", index=False)
        frame[500:].to_csv(data / "holdout.csv", index=False)
        estimator = make_estimator(
            session,
            client_image,
            tmp_path_factory.mktemp("categorical-out"),
            {"objective": "multiclass", "num_boost_round": 20, "min_data_per_group": 5},
        )
        started = time.monotonic()
        estimator.fit({"train": f"file://{data / 'train.csv'}"})
        timings["fit (text categories and labels)"] = time.monotonic() - started
        model_dir = extract_model(estimator.model_data, tmp_path_factory.mktemp("categorical-model"))
        import lightgbm

        booster = lightgbm.Booster(model_file=str(model_dir / "model.txt"))
        holdout = frame[500:].drop(columns="label")
        return estimator, booster, json.loads((model_dir / "metadata.json").read_text()), holdout

    def test_predictor_gets_labels_and_contributions_through_custom_attributes(self, classifier):
        from sagemaker.deserializers import JSONDeserializer
        from sagemaker.serializers import JSONSerializer

        from support import lightgbm_frame

        estimator, booster, metadata, holdout = classifier
        records = holdout[:5].to_dict("records")
        predictor = estimator.deploy(
            1, "local", serializer=JSONSerializer(), deserializer=JSONDeserializer(), wait=False
        )
        try:
            answer = predictor.predict(records, custom_attributes="output=predicted_label,contributions")
        finally:
            predictor.delete_endpoint()
        expected = booster.predict(lightgbm_frame(booster, records))
        contributions = booster.predict(lightgbm_frame(booster, records), pred_contrib=True)
        assert [record["predicted_label"] for record in answer["predictions"]] == [
            metadata["classes"][i] for i in expected.argmax(axis=1)
        ]
        assert {"low", "mid", "high"} >= {record["predicted_label"] for record in answer["predictions"]}
        first = answer["predictions"][0]["contributions"]
        assert len(first) == 3 and list(first[0]["features"]) == self.FEATURES
        got = [v for per_class in first for v in [*per_class["features"].values(), per_class["bias"]]]
        np.testing.assert_allclose(got, contributions[0], rtol=0, atol=TOLERANCE)

    def test_batch_transform_join_source_input_keeps_one_line_per_record(self, classifier, tmp_path):
        """Local mode accepts join_source but does not join (it ignores DataProcessing): the
        container's part is one output line per input line, which is what the join relies on."""
        from support import lightgbm_frame

        estimator, booster, metadata, holdout = classifier
        source = tmp_path / "in"
        source.mkdir()
        holdout.to_csv(source / "rows.csv", index=False, header=False)
        output = tmp_path / "out"
        transformer = estimator.transformer(
            instance_count=1,
            instance_type="local",
            strategy="MultiRecord",
            assemble_with="Line",
            accept="text/csv",
            output_path=f"file://{output}",
            env={"SAGEMAKER_INFERENCE_OUTPUT": "predicted_label,probabilities"},
        )
        transformer.transform(
            f"file://{source}", content_type="text/csv", split_type="Line", join_source="Input", wait=False, logs=False
        )
        lines = csv_lines((output / "rows.csv.out").read_text())
        assert len(lines) == len(holdout)
        probabilities = booster.predict(lightgbm_frame(booster, holdout.to_dict("records")))
        for line, expected in zip(lines, probabilities):
            label, *values = line.split(",")
            assert label == metadata["classes"][int(np.argmax(expected))]
            np.testing.assert_allclose([float(v) for v in values], expected, rtol=0, atol=TOLERANCE)


# --------------------------------------------------------------------------- the built-in LightGBM algorithm


def test_a_built_in_algorithm_job_and_its_clients_run_unchanged(session, client_image, timings, tmp_path):
    """Estimator(image_uri=ours, hyperparameters=<what the SDK's retrieve_default sends>).fit({"training":
    <train/ and validation/>}) -> deploy -> invoke_endpoint with ContentType text/csv and Accept
    application/json;verbose, parsed as the built-in's sample notebooks parse it."""
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.serializers import CSVSerializer

    job = builtin_job_root(tmp_path, "multiclass", "subfolders")
    estimator = make_estimator(session, client_image, tmp_path / "out", dict(BUILTIN_HYPERPARAMETERS))
    started = time.monotonic()
    estimator.fit({"training": f"file://{job / 'input' / 'data' / 'training'}"})
    timings["fit, the built-in algorithm's job (training channel)"] = time.monotonic() - started
    model_dir = extract_model(estimator.model_data, tmp_path / "model")
    assert {"model.pkl", "__models_info__.json", "model.txt"} <= {p.name for p in model_dir.iterdir()}
    predictor = estimator.deploy(1, "local", serializer=CSVSerializer(), deserializer=JSONDeserializer(), wait=False)
    try:
        rows = builtin_rows("multiclass", 7, seed=11)[:, 1:]
        body = "\n".join(",".join(repr(float(v)) for v in row) for row in rows)
        response = session.sagemaker_runtime_client.invoke_endpoint(  # the notebooks' call
            EndpointName=predictor.endpoint_name, ContentType="text/csv", Accept="application/json;verbose", Body=body
        )
        answer = json.loads(response["Body"].read())
        booster = joblib.load(model_dir / "model.pkl")
        expected = booster.predict(rows, num_iteration=booster.best_iteration)
        np.testing.assert_allclose(np.array(answer["probabilities"]), expected, rtol=0, atol=TOLERANCE)
        assert answer["predicted_label"] == np.argmax(expected, axis=1).tolist()
        default = predictor.predict(rows.tolist())  # the JumpStart predictor: CSV in, JSON back, no Accept
        assert list(default) == ["probabilities-1d", "probabilities"]
    finally:
        predictor.delete_endpoint()
