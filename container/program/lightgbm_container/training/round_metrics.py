"""Each boosting round's metrics, for SageMaker and for people.

SageMaker reads metrics from the log with the user's regexes, so every round prints one
stable line, ``[12] train-rmse=42.1803; validation-rmse=55.0112;`` (with ``LOG_FORMAT=json``
the same text is the ``message`` of a JSON line, which the same regexes still match). The
same values go to ``output/data/metrics.jsonl``, one JSON object per round
(``{"round": 12, "elapsed_seconds": 0.8, "train-rmse": 42.18, ...}``), which SageMaker
uploads with the job's output and ``pandas.read_json(path, lines=True)`` reads.

A job in the built-in LightGBM algorithm's conventions prints LightGBM's own lines instead,
``[12]<tab>train's rmse: 42.1803<tab>val's rmse: 55.0112``, as the built-in does: the metric
regexes its documentation gives (``rmse: ([0-9\\.]+)``, ...) then find what they find there.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import IO, Any

import orjson

METRICS_FILE = "metrics.jsonl"
#: The built-in algorithm's names for the evaluated data.
BUILTIN_NAMES = {"validation": "val"}

log = logging.getLogger("metrics")


class RoundMetrics:
    """A LightGBM callback (run before early stopping's, so the last round is reported too)."""

    order = 5

    def __init__(self, output_data: Path, json_logs: bool, lightgbm_lines: bool = False) -> None:
        output_data.mkdir(parents=True, exist_ok=True)
        self.lightgbm_lines = lightgbm_lines
        self.path = output_data / METRICS_FILE
        self.json_logs = json_logs
        self.started = time.monotonic()
        self._file: IO[bytes] | None = self.path.open("wb")

    def __call__(self, env: Any) -> None:
        results = env.evaluation_result_list
        if not results:
            return
        if self.lightgbm_lines:  # LightGBM's log_evaluation format, the validation data named "val" as theirs
            self.line(
                f"[{env.iteration + 1}]\t"
                + "\t".join(
                    f"{BUILTIN_NAMES.get(data, data)}'s {metric}: {value:g}" for data, metric, value, *_ in results
                )
            )
        else:
            self.line(
                f"[{env.iteration + 1}] "
                + " ".join(f"{data}-{metric}={value:.6g};" for data, metric, value, *_ in results)
            )
        if self._file is not None:
            record: dict[str, Any] = {
                "round": env.iteration + 1,
                "elapsed_seconds": round(time.monotonic() - self.started, 3),
            }
            record.update((f"{data}-{metric}", float(value)) for data, metric, value, *_ in results)
            self._file.write(orjson.dumps(record) + b"\n")
            self._file.flush()

    def line(self, text: str) -> None:
        """A metric line where SageMaker's regexes find it: bare on stdout, or as a JSON log line."""
        if self.json_logs:
            log.info(text)
        else:
            print(text, flush=True)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
