"""Functions that fail, to show the JSON errors: a toolkit error keeps its status, anything else is a 500."""

import os

import lightgbm as lgb
from sagemaker_inference import errors


def model_fn(model_dir):
    return lgb.Booster(model_file=os.path.join(model_dir, "model.txt"))


def input_fn(input_data, content_type):
    if "reject" in input_data:
        raise errors.GenericInferenceToolkitError(422, "the payload says reject")
    if "crash" in input_data:
        raise ValueError("cannot parse the row")
    return input_data
