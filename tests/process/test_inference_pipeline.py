"""A two-step SageMaker inference pipeline, chained as SageMaker chains its containers.

SDK local mode cannot run a ``PipelineModel`` (its local client creates a model from one
``PrimaryContainer`` only), so the chaining is done here the way SageMaker does it: the
client's request goes to the first container without an Accept (each step but the last answers
in its ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``), and that answer, with its Content-Type, is the
next container's request; the client's Accept is the last container's.

Step 1 is preprocessing written as a user ``inference.py`` on this image (the client's CSV has
a header and an id column; the step drops both). Step 2 is the built-in handler serving the
trained model.
"""

from __future__ import annotations

import json

import numpy as np
import requests

from support import ROWS

PREPROCESSING = '''
"""Preprocessing: a CSV with a header and an id column in, the model's features out as CSV."""

import csv
import io


def model_fn(model_dir):
    return None  # this step has no model: it only reshapes the request


def input_fn(body, content_type):
    assert content_type == "text/csv", content_type
    text = body.decode() if isinstance(body, bytes) else body
    table = list(csv.reader(io.StringIO(text)))
    header, rows = table[0], table[1:]
    keep = [i for i, name in enumerate(header) if name != "id"]
    return [[row[i] for i in keep] for row in rows]


def predict_fn(rows, model):
    return rows


def output_fn(rows, accept):
    assert accept == "text/csv", accept  # from SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT: SageMaker sends none
    return "\\n".join(",".join(row) for row in rows), "text/csv"
'''


def test_a_preprocessing_step_then_the_built_in_model(tmp_path, trained_root, start_server, expected_rows):
    step_one_root = tmp_path / "preprocessing"
    (step_one_root / "model" / "code").mkdir(parents=True)
    (step_one_root / "model" / "code" / "inference.py").write_text(PREPROCESSING)
    preprocessing = start_server(step_one_root, SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT="text/csv")
    model = start_server(trained_root)

    header = "id," + ",".join(f"f{i}" for i in range(len(ROWS[0])))
    client_body = "\n".join([header, *(f"row-{n}," + ",".join(str(v) for v in row) for n, row in enumerate(ROWS))])
    first = requests.post(
        preprocessing.url + "/invocations", data=client_body.encode(), headers={"Content-Type": "text/csv"}, timeout=30
    )
    assert first.status_code == 200, first.text
    assert first.headers["Content-Type"].startswith("text/csv")
    second = requests.post(
        model.url + "/invocations",
        data=first.content,
        headers={"Content-Type": first.headers["Content-Type"], "Accept": "application/json"},
        timeout=30,
    )
    assert second.status_code == 200, second.text
    np.testing.assert_allclose(json.loads(second.content)["predictions"], expected_rows, atol=1e-9)
