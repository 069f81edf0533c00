"""Only input_fn (feature engineering): the built-in model_fn, predict_fn and output_fn do the rest."""

import io

import pandas as pd


def input_fn(input_data, content_type):
    frame = pd.read_csv(io.StringIO(input_data), header=None)
    frame[0] = frame[0].clip(lower=0)  # e.g. a cleaning step the model needs
    return frame
