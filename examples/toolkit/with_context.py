"""Every function takes the toolkit's optional last argument, the (MMS) context."""

import json
import os

import lightgbm as lgb
import numpy as np


def model_fn(model_dir, context):
    assert context.system_properties["model_dir"] == model_dir
    return lgb.Booster(model_file=os.path.join(model_dir, "model.txt"))


def input_fn(input_data, content_type, context):
    rows = [[float(v) for v in line.split(",")] for line in input_data.splitlines()]
    return np.array(rows)


def predict_fn(data, model, context):
    # a request header, read through the context (case-insensitive here)
    attributes = context.get_request_header(0, "x-amzn-sagemaker-custom-attributes") or "scale=1"
    scale = float(attributes.split("=")[1])
    return model.predict(data) * scale


def output_fn(prediction, accept, context):
    context.set_response_header(0, "X-Request-Seen", context.get_request_id(0) or "none")
    return json.dumps({"predictions": prediction.tolist(), "accept": accept}), "application/json"
