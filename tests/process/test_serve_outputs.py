"""Output kinds and categorical features on the real `serve` (nginx + gunicorn, 2 workers).

The model is compiled by lleaves as in production (in the background; the tests start once
both workers switched): a categorical model must pass the same parity check and then answer
like LightGBM on pandas-encoded rows.
"""

from __future__ import annotations

import json

import lightgbm as lgb
import pytest

from lightgbm_container.model.outputs import valid_kinds
from support import (
    Server,
    assert_outputs_equal,
    expected_outputs,
    failed_start,
    json_error,
    lightgbm_frame,
    output_widths,
    read_outputs,
    run_train,
)

ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
FEATURES = ["x1", "x2", "color", "size"]
ROWS = [
    {"x1": 0.3 * i - 2, "x2": (7 * i) % 10, "color": ("red", "blue", "dark teal", "ochre")[i % 4], "size": "SML"[i % 3]}
    for i in range(50)
]  # "ochre" was never seen in training


@pytest.fixture(scope="module")
def served(categorical_model, tmp_path_factory):
    objective, root = categorical_model
    server = Server(root, tmp_path_factory.mktemp("outputs") / "serve.log", LIGHTGBM_PREDICTOR="auto")
    try:
        server.wait_healthy()
        server.wait_compiled()
        booster = lgb.Booster(model_file=str(root / "model" / "model.txt"))
        metadata = json.loads((root / "model" / "metadata.json").read_text())
        yield objective, server, booster, metadata
    finally:
        server.stop()


def test_categorical_model_is_compiled_and_every_kind_matches_lightgbm(served):
    objective, server, booster, metadata = served
    logs = server.logs()
    assert "to the compiled trees" in logs, logs[-3000:]  # the parity check passed for a categorical model
    kinds = list(valid_kinds(objective))
    widths = output_widths(booster, metadata, FEATURES)
    expected = expected_outputs(booster, lightgbm_frame(booster, ROWS), kinds, metadata["classes"])
    csv_body = "".join(",".join(str(row[name]) for name in FEATURES) + "\n" for row in ROWS)
    for accept in ("text/csv", "application/json", "application/jsonlines", "application/x-npy"):
        response = server.post(csv_body, "text/csv", accept, **{ATTRIBUTES: "output=" + ",".join(kinds)})
        assert response.status_code == 200, response.text
        assert response.headers[ATTRIBUTES] == "output=" + ",".join(kinds)
        assert_outputs_equal(read_outputs(accept, response.content, kinds, widths, FEATURES), expected)
        if accept == "text/csv":
            assert len(response.text.splitlines()) == len(ROWS)  # one line per record: a Batch Transform join holds


def test_verbose_accept_and_json_records_with_strings(served):
    objective, server, booster, metadata = served
    response = server.post(json.dumps(ROWS), "application/json", "application/json;verbose")
    assert response.status_code == 200, response.text
    record = response.json()["predictions"][0]
    if objective == "regression":
        assert list(record) == ["predicted_score"]
    else:
        assert (
            list(record) == ["probabilities", "predicted_label", "labels"] and record["labels"] == metadata["classes"]
        )


def test_unknown_kind_is_a_json_400_through_nginx(served):
    objective, server, booster, metadata = served
    response = server.post("0,1,red,S\n", "text/csv", **{ATTRIBUTES: "output=predicted_lable"})
    json_error(response, 400, "bad_request", "did you mean 'predicted_label'?")


def test_serve_refuses_an_unknown_default_kind_at_start(categorical_model, tmp_path):
    objective, root = categorical_model
    assert "did you mean 'probabilities'" in failed_start(
        root, tmp_path, SAGEMAKER_INFERENCE_OUTPUT="predicted_label,probabilites"
    )


@pytest.mark.parametrize("categorical_model", ["binary"], indirect=True)
def test_container_default_kinds(categorical_model, start_server):
    objective, root = categorical_model
    server = start_server(root, SAGEMAKER_INFERENCE_OUTPUT="predicted_label,probability")
    response = server.post("0,1,red,S\n", "text/csv", "text/csv")
    label, probability = response.text.strip().split(",")
    assert label in metadata_classes(root) and 0 <= float(probability) <= 1


def metadata_classes(root) -> list:
    return json.loads((root / "model" / "metadata.json").read_text())["classes"]


@pytest.mark.parametrize("categorical_model", ["regression"], indirect=True)
def test_train_from_text_categories_refuses_a_stray_string_with_file_and_line(categorical_model, tmp_path):
    objective, root = categorical_model
    import shutil

    copy = tmp_path / "ml"
    shutil.copytree(root / "input", copy / "input")
    train_csv = copy / "input" / "data" / "train" / "train.csv"
    lines = train_csv.read_text().splitlines()
    fields = lines[10].split(",")
    fields[0] = "n/a?"
    lines[10] = ",".join(fields)
    train_csv.write_text("\n".join(lines) + "\n")
    result = run_train(copy)
    assert result.returncode != 0
    failure = (copy / "output" / "failure").read_text()
    assert "train/train.csv line 11, column 1 ('x1'): 'n/a?' is not a number" in failure, failure
