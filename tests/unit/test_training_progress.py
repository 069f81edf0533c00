"""The fit's progress lines, from a real (tiny) LightGBM fit."""

import logging
import re

import lightgbm as lgb
import numpy as np

from lightgbm_container.training.progress import Progress


def test_progress_gives_a_rate_only_once_a_round_was_timed(caplog):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    data = lgb.Dataset(X, label=X[:, 0], params={"verbosity": -1})
    with caplog.at_level(logging.INFO, logger="train"):
        lgb.train({"objective": "regression", "verbosity": -1}, data, num_boost_round=5, callbacks=[Progress()])
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("progress:")]
    assert lines[0] == "progress: round 1/5 (20 %)"  # its start is LightGBM's: no rate made up from ~0 s
    assert len(lines) == 5 and lines[-1].startswith("progress: round 5/5 (100 %), ")
    for line in lines[1:]:
        rate = float(re.search(r", ([\d.]+) rounds/s, about ([\d.]+) s left$", line).group(1))
        assert 0 < rate < 1e6
