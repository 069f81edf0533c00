"""The classic AWS "bring your own container" sample's predictor, adapted to LightGBM.

This is the BASELINE the benchmark compares against, so it keeps the sample's
behaviour on purpose, shortcomings included (do not "fix" them here):
- the model is loaded lazily, on the first /ping or /invocations of each worker;
- only an exact `text/csv` Content-Type is accepted;
- pandas parses the body (`read_csv(header=None)`) and writes the answer (`to_csv`);
- `Booster.predict` runs with LightGBM's default threads (all cores) in every
  gevent worker, oversubscribing the CPU exactly as the sample does;
- one line is printed per request.
The only changes are the model type (LightGBM instead of a pickled scikit-learn tree)
and the ML root, which honours SAGEMAKER_BASE_DIR so it can run outside /opt/ml.
"""

from __future__ import annotations

import io
import os

import flask
import lightgbm
import pandas as pd

prefix = os.environ.get("SAGEMAKER_BASE_DIR", "/opt/ml")
model_path = os.path.join(prefix, "model")


class ScoringService:
    """Holds the model, loaded on first use, as the sample's class of the same name."""

    model: lightgbm.Booster | None = None

    @classmethod
    def get_model(cls) -> lightgbm.Booster:
        if cls.model is None:
            cls.model = lightgbm.Booster(model_file=os.path.join(model_path, "model.txt"))
        return cls.model

    @classmethod
    def predict(cls, data):
        return cls.get_model().predict(data)


app = flask.Flask(__name__)


@app.route("/ping", methods=["GET"])
def ping() -> flask.Response:
    """Healthy when the model loads: the sample does the lazy load inside /ping."""
    health = ScoringService.get_model() is not None
    status = 200 if health else 404
    return flask.Response(response="\n", status=status, mimetype="application/json")


@app.route("/invocations", methods=["POST"])
def transformation() -> flask.Response:
    """CSV in, CSV out, through pandas, as in the sample."""
    if flask.request.content_type == "text/csv":
        data = flask.request.data.decode("utf-8")
        data = pd.read_csv(io.StringIO(data), header=None)
    else:
        return flask.Response(response="This predictor only supports CSV data", status=415, mimetype="text/plain")

    print(f"Invoked with {data.shape[0]} records")

    predictions = ScoringService.predict(data.values)

    out = io.StringIO()
    pd.DataFrame(predictions).to_csv(out, header=False, index=False)
    result = out.getvalue()

    return flask.Response(response=result, status=200, mimetype="text/csv")
