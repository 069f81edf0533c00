"""A user training script in the style of SageMaker's framework-container examples.

Estimator(image_uri=<this image>, entry_point="train.py", source_dir="examples/training", hyperparameters=...)
runs it with SageMaker's script-mode contract: hyperparameters as --arguments, data and
model locations in SM_* variables. It writes a plain LightGBM model file, which the same
image serves with its built-in handler.
"""

import argparse
import glob
import os

import lightgbm as lgb
import numpy as np


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--num_leaves", type=int, default=15)
    parser.add_argument("--learning_rate", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR"))
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN"))
    return parser.parse_args()


def load(channel):
    """Every CSV in the channel, no header, the label in the last column."""
    data = np.vstack(
        [np.loadtxt(path, delimiter=",", ndmin=2) for path in sorted(glob.glob(os.path.join(channel, "*.csv")))]
    )
    return data[:, :-1], data[:, -1]


if __name__ == "__main__":
    args = parse_args()
    features, labels = load(args.train)
    params = {
        "objective": "regression",
        "num_leaves": args.num_leaves,
        "learning_rate": args.learning_rate,
        "verbosity": -1,
    }
    booster = lgb.train(params, lgb.Dataset(features, labels), num_boost_round=args.rounds)
    booster.save_model(os.path.join(args.model_dir, "model.txt"))
    print(
        f"trained {booster.num_trees()} trees on {len(labels)} rows; train-rmse={np.sqrt(np.mean((booster.predict(features) - labels) ** 2)):.4f};"
    )
