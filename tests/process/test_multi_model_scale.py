"""The real `serve` in multi-model mode at the scale multi-model endpoints exist for: 5,000
models on disk, 1,000 loaded through ``POST /models`` under a budget that holds a few hundred.

Every load is answered with SageMaker's status rules (200, 409 for a loaded name, 404 for a
url that does not exist; 507 for a model larger than the budget is in
tests/unit/test_multi_model_store.py); the budget is never exceeded, by measured memory;
``GET /models`` pages through exactly the models held; and any of the 5,000 answers through
``X-Amzn-SageMaker-Target-Model`` with its own predictions. How fast: bench/mme_vs_mms.py.
"""

import os
import random

import lightgbm as lgb
import numpy as np
import requests

from support import csv_body

TARGET = "X-Amzn-SageMaker-Target-Model"
ON_DISK = 5000
LOADED_THROUGH_THE_API = 1000
BUDGET_MB = 16


def test_thousands_of_models_load_evict_page_and_answer(tmp_path, start_server, model_files):
    paths, rows = model_files
    root = tmp_path / "ml"
    models = root / "models"
    for index in range(ON_DISK):  # hard links: 5,000 models, one file's worth of disk
        (models / f"m{index}" / "model").mkdir(parents=True)
        os.link(paths["other"], models / f"m{index}" / "model" / "model.txt")
    server = start_server(root, SAGEMAKER_MULTI_MODEL="true", LIGHTGBM_MODEL_CACHE_MB=str(BUDGET_MB))
    session = requests.Session()
    url = server.url

    for index in range(LOADED_THROUGH_THE_API):
        body = {"model_name": f"m{index}", "url": str(models / f"m{index}" / "model")}
        response = session.post(f"{url}/models", json=body, timeout=30)
        assert response.status_code == 200, (index, response.text)
        if index % 100 == 99:  # a model just loaded is never the one evicted: loading it again conflicts
            again = session.post(f"{url}/models", json=body, timeout=30)
            assert again.status_code == 409 and again.json()["error"] == "conflict", again.text
    missing = session.post(f"{url}/models", json={"model_name": "gone", "url": "m-missing/model"}, timeout=30)
    assert missing.status_code == 404, missing.text

    stats = session.get(f"{url}/stats", timeout=10).json()
    assert 0.95 * BUDGET_MB * 1024 * 1024 < stats["bytes_in_use"] <= BUDGET_MB * 1024 * 1024  # used, never exceeded
    assert stats["evictions"] == LOADED_THROUGH_THE_API - stats["models_loaded"]

    listed, token = [], None
    while True:
        page = session.get(f"{url}/models", params={"limit": 100, "next_page_token": token}, timeout=10).json()
        listed += [model["modelName"] for model in page["models"]]
        token = page.get("nextPageToken")
        if token is None:
            break
    assert len(listed) == len(set(listed)) == stats["models_loaded"]
    # the most recently loaded ones are held: least recently used goes first
    assert {f"m{index}" for index in range(LOADED_THROUGH_THE_API - 50, LOADED_THROUGH_THE_API)} <= set(listed)

    expected = lgb.Booster(model_file=str(paths["other"])).predict(rows)
    for name in random.Random(7).sample(range(ON_DISK), 200):  # most never loaded before: cold through TargetModel
        response = session.post(
            f"{url}/invocations",
            data=csv_body(rows),
            headers={"Content-Type": "text/csv", TARGET: f"m{name}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        np.testing.assert_allclose(np.array(response.text.splitlines(), dtype=float), expected, atol=1e-9)
    assert session.get(f"{url}/stats", timeout=10).json()["bytes_in_use"] <= BUDGET_MB * 1024 * 1024
