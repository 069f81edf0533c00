"""The names the built-in algorithm's inference script uses (re-created: see ../inference.py)."""

REQUEST_CONTENT_TYPE = "text/csv"
VERBOSE_EXTENSION = ";verbose"
PROBABILITIES = "probabilities"
PROBABILITIES_1D = "probabilities-1d"
PREDICTED_LABEL = "predicted_label"
PREDICTION = "prediction"
