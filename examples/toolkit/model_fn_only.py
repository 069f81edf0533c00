"""Only model_fn: the container's built-in steps decode, validate, predict and encode."""

import os

import lightgbm as lgb


def model_fn(model_dir):
    return lgb.Booster(model_file=os.path.join(model_dir, "model.txt"))
