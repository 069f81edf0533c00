"""A re-creation of the inference script SageMaker's built-in LightGBM algorithm deploys
(JumpStart: classification v1.2.2, regression v1.2.1), written here from its documented
behaviour to run it as user code and to compare answers with it (bench/builtin_algorithm.py).
It is not AWS's file; it has its shape: ``model_fn`` + ``transform_fn``, a ``constants``
package beside it, the toolkit's ``encoder``.

What it does, as theirs: ``joblib.load(model.pkl)``; takes ``text/csv`` only (anything else
raises: a 500 on the toolkit); reads the rows with pandas, no header; names the columns with
the model's feature names and predicts at its best iteration; a classifier answers
``{"probabilities-1d": p[:, 1:], "probabilities": p}`` (a Booster's binary output widened to
``[1 - p, p]``), plus ``predicted_label`` (argmax) when Accept ends with ``;verbose``; a
regressor (``objective`` regression, as the regression script's models are) answers
``{"prediction": [...]}``; the toolkit's ``encoder.encode`` writes it in the Accept's type.
"""

import io
import logging
import os

import joblib
import numpy as np
import pandas as pd
from constants import constants
from lightgbm import Booster
from sagemaker_inference import encoder


def model_fn(model_dir):
    try:
        return joblib.load(os.path.join(model_dir, "model.pkl"))
    except Exception:
        logging.exception("could not load the model")
        raise


def _is_classifier(model):
    objective = model.params.get("objective", "regression") if isinstance(model, Booster) else "binary"
    return str(objective).split(" ")[0] in ("binary", "multiclass", "multiclassova", "softmax", "ova", "ovr")


def _predict(model, frame):
    if isinstance(model, Booster):
        frame.columns = model.feature_name()
        return model.predict(frame, num_iteration=model.best_iteration)
    frame.columns = model.feature_name_
    if hasattr(model, "predict_proba"):
        return model.predict_proba(frame, num_iteration=model.best_iteration_)
    return model.predict(frame, num_iteration=model.best_iteration_)


def transform_fn(model, input_data, content_type, accept):
    if content_type != constants.REQUEST_CONTENT_TYPE:
        raise ValueError('{{"error": "unsupported content type {}"}}'.format(content_type or "unknown"))
    frame = pd.read_csv(io.StringIO(input_data), sep=",", header=None)
    output = _predict(model, frame)
    verbose = accept.endswith(constants.VERBOSE_EXTENSION)
    if verbose:
        accept = accept[: -len(constants.VERBOSE_EXTENSION)]
    if not _is_classifier(model):
        return encoder.encode({constants.PREDICTION: output}, accept)
    answer = {}
    if output.ndim == 1:  # a Booster's binary output: P(1)
        answer[constants.PROBABILITIES_1D] = output.reshape((-1, 1))
        output = np.vstack((1.0 - output, output)).transpose()
    else:
        answer[constants.PROBABILITIES_1D] = output[:, 1:]
    answer[constants.PROBABILITIES] = output
    if verbose:
        answer[constants.PREDICTED_LABEL] = np.argmax(output, axis=1)
    return encoder.encode(answer, accept)
