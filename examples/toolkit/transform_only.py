"""One transform_fn does it all (the toolkit's alternative to the four functions)."""

import os

import lightgbm as lgb
import numpy as np


def model_fn(model_dir):
    return lgb.Booster(model_file=os.path.join(model_dir, "model.txt"))


def transform_fn(model, input_data, content_type, accept):
    rows = np.array([[float(v) for v in line.split(",")] for line in input_data.splitlines()])
    return ",".join(repr(float(v)) for v in model.predict(rows)), "text/csv"
