"""Writes the pickles in this directory with *older* libraries than the image's, so the tests
load files another version really wrote (not bytes patched to look like one):

    python3 -m venv /tmp/lgb3 && /tmp/lgb3/bin/pip install lightgbm==3.3.5 scikit-learn==1.3.2 "numpy<2" joblib
    /tmp/lgb3/bin/python tests/data/older_pickles/make.py

- ``classifier-lightgbm-3.3.5-sklearn-1.3.2.joblib``: an LGBMClassifier with text labels ("no", "yes");
- ``booster-lightgbm-3.3.5.pkl``: a regression Booster, pickled;
- ``rows.csv``: 20 rows of 4 features; ``expected.csv``: per row, the classifier's P("yes") and
  the Booster's prediction, as those libraries computed them.
"""

import pickle
from pathlib import Path

import joblib
import lightgbm as lgb
import numpy as np

here = Path(__file__).parent
rng = np.random.default_rng(0)
X = rng.normal(size=(500, 4))
labels = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
classifier = lgb.LGBMClassifier(n_estimators=10, num_leaves=7).fit(X, labels)
booster = lgb.train({"objective": "regression", "num_leaves": 7, "verbose": -1}, lgb.Dataset(X, X[:, 2]), 10)
joblib.dump(classifier, here / f"classifier-lightgbm-{lgb.__version__}-sklearn-1.3.2.joblib")
(here / f"booster-lightgbm-{lgb.__version__}.pkl").write_bytes(pickle.dumps(booster))
rows = X[:20]
np.savetxt(here / "rows.csv", rows, delimiter=",", fmt="%.17g")
np.savetxt(
    here / "expected.csv",
    np.column_stack([classifier.predict_proba(rows)[:, 1], booster.predict(rows)]),
    delimiter=",",
    fmt="%.17g",
)
