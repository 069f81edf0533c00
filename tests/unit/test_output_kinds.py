"""Output kinds chosen per request, and categorical features, in-process (Flask's test client).

Every kind x content type x objective is checked against LightGBM itself on the same rows
encoded by pandas with the training categories. The same checks against the real `serve`
are in tests/process/test_serve_outputs.py.
"""

from __future__ import annotations

import json
import logging

import lightgbm as lgb
import numpy as np
import pytest

from lightgbm_container.builtin.output_selection import CUSTOM_ATTRIBUTES_HEADER
from lightgbm_container.model.outputs import valid_kinds
from support import (
    assert_outputs_equal,
    expected_outputs,
    in_process_app,
    json_error,
    lightgbm_frame,
    output_widths,
    read_outputs,
)

ACCEPTS = ("application/json", "application/jsonlines", "text/csv", "application/x-npy")
#: Request rows: text categories, an unseen category ("purple"), a missing category and a missing number.
ROWS = [
    {"x1": 0.3, "x2": 4.0, "color": "red", "size": "M"},
    {"x1": -1.2, "x2": 9.5, "color": "dark teal", "size": "L"},
    {"x1": 2.0, "x2": 0.5, "color": "purple", "size": "S"},
    {"x1": None, "x2": 3.0, "color": None, "size": "S"},
]
FEATURES = ["x1", "x2", "color", "size"]


def _csv_body(rows=ROWS) -> str:
    return "".join(",".join("" if row[name] is None else str(row[name]) for name in FEATURES) + "\n" for row in rows)


@pytest.fixture(scope="module")
def model(categorical_model):
    objective, root = categorical_model
    booster = lgb.Booster(model_file=str(root / "model" / "model.txt"))
    metadata = json.loads((root / "model" / "metadata.json").read_text())
    client = in_process_app(root).test_client()
    kind = {"regression": "regression", "binary": "binary", "multiclass": "multiclass"}[objective]
    return objective, booster, metadata, client, list(valid_kinds(kind))


@pytest.mark.parametrize("accept", ACCEPTS)
def test_every_kind_in_every_content_type_equals_lightgbm(model, accept):
    objective, booster, metadata, client, kinds = model
    response = client.post(
        "/invocations",
        data=json.dumps(ROWS),
        content_type="application/json",
        headers={"Accept": accept, CUSTOM_ATTRIBUTES_HEADER: "output=" + ",".join(kinds)},
    )
    assert response.status_code == 200, response.data
    assert response.headers[CUSTOM_ATTRIBUTES_HEADER] == "output=" + ",".join(kinds)  # echoed, as SageMaker documents
    got = read_outputs(accept, response.data, kinds, output_widths(booster, metadata, FEATURES), FEATURES)
    assert_outputs_equal(got, expected_outputs(booster, lightgbm_frame(booster, ROWS), kinds, metadata["classes"]))


def test_csv_and_json_rows_with_category_strings_answer_alike(model):
    objective, booster, metadata, client, kinds = model
    headers = {CUSTOM_ATTRIBUTES_HEADER: "output=" + ",".join(kinds), "Accept": "application/json"}
    from_records = client.post("/invocations", data=json.dumps(ROWS), content_type="application/json", headers=headers)
    from_csv = client.post("/invocations", data=_csv_body(), content_type="text/csv", headers=headers)
    rows = [[row[name] for name in FEATURES] for row in ROWS]
    from_rows = client.post("/invocations", data=json.dumps(rows), content_type="application/json", headers=headers)
    assert from_records.json == from_csv.json == from_rows.json


def test_contributions_add_up_to_the_raw_score(model):
    objective, booster, metadata, client, kinds = model
    response = client.post(
        "/invocations",
        data=_csv_body(),
        content_type="text/csv",
        headers={"Accept": "application/json", CUSTOM_ATTRIBUTES_HEADER: "output=contributions,raw_score"},
    )
    for record in response.json["predictions"]:
        per_class = record["contributions"] if isinstance(record["contributions"], list) else [record["contributions"]]
        raw = record["raw_score"] if isinstance(record["raw_score"], list) else [record["raw_score"]]
        assert len(per_class) == len(raw)
        for contribution, score in zip(per_class, raw):
            assert set(contribution["features"]) == set(FEATURES)
            assert abs(sum(contribution["features"].values()) + contribution["bias"] - score) <= 1e-9


def test_default_answer_is_unchanged_and_predicted_label_is_the_original_label(model):
    objective, booster, metadata, client, kinds = model
    response = client.post(
        "/invocations", data=_csv_body(), content_type="text/csv", headers={"Accept": "application/json"}
    )
    expected = booster.predict(lightgbm_frame(booster, ROWS))
    np.testing.assert_allclose(np.array(response.json["predictions"], dtype=float), expected, rtol=0, atol=1e-9)
    assert CUSTOM_ATTRIBUTES_HEADER not in response.headers
    if objective != "regression":
        labels = client.post(
            "/invocations",
            data=_csv_body(),
            content_type="text/csv",
            headers={"Accept": "text/csv", CUSTOM_ATTRIBUTES_HEADER: "output=predicted_label"},
        )
        assert set(labels.data.decode().split()) <= set(metadata["classes"]) and metadata["classes"][0].isalpha()


def test_kinds_that_do_not_fit_the_model_are_400s_listing_the_valid_ones(model):
    objective, booster, metadata, client, kinds = model
    for wrong in (
        ("probabilities", "top_k") if objective == "regression" else ("top_k",) if objective == "binary" else ()
    ):
        response = client.post(
            "/invocations",
            data=_csv_body(),
            content_type="text/csv",
            headers={CUSTOM_ATTRIBUTES_HEADER: f"output=predicted_score,{wrong}"},
        )
        json_error(
            response,
            400,
            "bad_request",
            f"output kind {wrong!r}",
            f"does not fit a {objective} model",
            ", ".join(kinds),
        )
    response = client.post(
        "/invocations",
        data=_csv_body(),
        content_type="text/csv",
        headers={CUSTOM_ATTRIBUTES_HEADER: "output=contribution"},
    )
    json_error(response, 400, "bad_request", "unknown output kind 'contribution' (did you mean 'contributions'?)")


@pytest.fixture(scope="module")
def binary_root(tmp_path_factory):
    from support import categorical_root, run_train

    root = categorical_root(tmp_path_factory.mktemp("binary"), "binary")
    assert run_train(root).returncode == 0
    return root


def test_precedence_custom_attributes_then_verbose_accept_then_container_default(binary_root):
    client = in_process_app(binary_root, SAGEMAKER_INFERENCE_OUTPUT="probability").test_client()
    body, csv = _csv_body(), "text/csv"

    def keys(**headers):
        response = client.post("/invocations", data=body, content_type=csv, headers=headers)
        assert response.status_code == 200, response.data
        return list(response.json["predictions"][0]), response.headers.get(CUSTOM_ATTRIBUTES_HEADER)

    attributes = "trace=abc; output=predicted_label"
    assert keys(**{"Accept": "application/json;verbose", CUSTOM_ATTRIBUTES_HEADER: attributes}) == (
        ["predicted_label"],
        attributes,
    )
    assert keys(Accept="application/json;verbose") == (["probabilities", "predicted_label", "labels"], None)
    assert keys(Accept="application/json") == (["probability"], None)
    # attributes without output= are someone else's: the next rule decides, nothing echoed
    assert keys(**{"Accept": "application/json", CUSTOM_ATTRIBUTES_HEADER: "trace=abc"}) == (["probability"], None)
    plain = (
        in_process_app(binary_root)
        .test_client()
        .post("/invocations", data=body, content_type=csv, headers={"Accept": "application/json"})
    )
    assert isinstance(plain.json["predictions"][0], float)


def test_top_k_and_bad_top_k(tmp_path_factory):
    from support import categorical_root, run_train

    root = categorical_root(tmp_path_factory.mktemp("multi"), "multiclass")
    assert run_train(root).returncode == 0
    client = in_process_app(root).test_client()
    response = client.post(
        "/invocations",
        data=_csv_body(),
        content_type="text/csv",
        headers={"Accept": "application/json", CUSTOM_ATTRIBUTES_HEADER: "output=top_k;top_k=2"},
    )
    top = response.json["predictions"][0]["top_k"]
    assert (
        len(top) == 2 and top[0]["probability"] >= top[1]["probability"] and top[0]["label"] in ("low", "mid", "high")
    )
    for bad in ("top_k=0", "top_k=many"):
        response = client.post(
            "/invocations",
            data=_csv_body(),
            content_type="text/csv",
            headers={CUSTOM_ATTRIBUTES_HEADER: f"output=top_k;{bad}"},
        )
        json_error(response, 400, "bad_request", "top_k", "whole number")


def test_unseen_category_is_missing_counted_and_logged_once_per_feature(binary_root, caplog):
    client = in_process_app(binary_root).test_client()
    booster = lgb.Booster(model_file=str(binary_root / "model" / "model.txt"))
    rows = [{**ROWS[0], "color": "purple"}, {**ROWS[0], "color": "ochre"}]
    with caplog.at_level(logging.WARNING, logger="lightgbm_container.model.categories"):
        for _ in range(2):
            response = client.post("/invocations", data=json.dumps(rows), content_type="application/json")
            np.testing.assert_allclose(
                response.json["predictions"], booster.predict(lightgbm_frame(booster, rows)), atol=1e-9
            )
    warnings = [r.getMessage() for r in caplog.records if "was not seen in training" in r.getMessage()]
    assert len(warnings) == 1 and "'color'" in warnings[0] and "'purple'" in warnings[0]


def test_text_in_a_numeric_feature_is_still_a_400_naming_it(binary_root):
    client = in_process_app(binary_root).test_client()
    response = client.post("/invocations", data="abc,4,red,M\n", content_type="text/csv")
    json_error(response, 400, "bad_request", "line 1, column 1", "'abc' is not a number")
    response = client.post(
        "/invocations", data=json.dumps([{**ROWS[0], "x2": "four"}]), content_type="application/json"
    )
    json_error(response, 400, "bad_request", "feature 'x2'", "'four' is not a number")


def test_a_pandas_categorical_model_trained_elsewhere_is_served_from_strings(tmp_path):
    from support import categorical_frame

    frame = categorical_frame(500, 3, "regression")
    features = frame[FEATURES].astype({"color": "category", "size": "category"})
    booster = lgb.train(
        {"objective": "regression", "verbosity": -1, "min_data_per_group": 5},
        lgb.Dataset(features, frame["label"]),
        num_boost_round=20,
    )
    (tmp_path / "model").mkdir()
    booster.save_model(str(tmp_path / "model" / "model.txt"))  # no metadata.json: the model file carries the categories
    booster = lgb.Booster(model_file=str(tmp_path / "model" / "model.txt"))
    client = in_process_app(tmp_path).test_client()
    response = client.post("/invocations", data=json.dumps(ROWS), content_type="application/json")
    assert response.status_code == 200, response.data
    np.testing.assert_allclose(
        response.json["predictions"], booster.predict(lightgbm_frame(booster, ROWS)), rtol=0, atol=1e-9
    )
    response = client.post(
        "/invocations", data=_csv_body(), content_type="text/csv", headers={"Accept": "application/json"}
    )
    np.testing.assert_allclose(
        response.json["predictions"], booster.predict(lightgbm_frame(booster, ROWS)), rtol=0, atol=1e-9
    )
