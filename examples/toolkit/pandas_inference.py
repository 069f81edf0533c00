"""The pattern of the SageMaker documentation's examples: pandas read_csv -> Booster.predict -> CSV.

Runs unchanged on this container and on Multi Model Server with the SageMaker Inference
Toolkit (bench/user_code.py measures both with this very file).
"""

import io
import os

import lightgbm as lgb
import numpy as np
import pandas as pd


def model_fn(model_dir):
    return lgb.Booster(model_file=os.path.join(model_dir, "model.txt"))


def input_fn(input_data, content_type):
    if isinstance(input_data, bytes):
        input_data = input_data.decode()
    return pd.read_csv(io.StringIO(input_data), header=None)


def predict_fn(data, model):
    return model.predict(data.to_numpy(dtype=np.float64), num_threads=1)


def output_fn(prediction, accept):
    return "\n".join(repr(float(value)) for value in prediction) + "\n", "text/csv"
