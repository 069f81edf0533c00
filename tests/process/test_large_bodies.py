"""Asynchronous inference's large bodies on the real serve: past Batch Transform's 100 MB, read
by the worker in pieces (nginx spools the body to disk), answered whole and in order, an error
deep in the body still a 400 naming its line. Every decoder rule across piece edges, in-process:
tests/unit/test_body_pieces.py. Wall time and peak memory for 200 MB and 1 GB: bench/large_bodies.py.
"""

from __future__ import annotations

import shutil

import numpy as np
import requests

from support import csv_body

LARGE = {"SAGEMAKER_MAX_PAYLOAD_IN_MB": "300", "LIGHTGBM_BODY_PIECE_MB": "8", "LIGHTGBM_PREDICTOR": "lightgbm"}


def _body(model_files, copies: int) -> tuple[bytes, np.ndarray, int]:
    """A CSV body of ``copies`` times the 20 model rows repeated in blocks, its expected answers and rows."""
    import lightgbm as lgb

    paths, rows = model_files
    block = (csv_body(np.tile(rows, (500, 1))) + "\n").encode()  # 10,000 lines
    expected = np.tile(lgb.Booster(model_file=str(paths["small"])).predict(rows), 500 * copies)
    return block * copies, expected, 10_000 * copies


def test_a_body_past_100_mb_is_answered_whole_and_in_order(tmp_path, start_server, model_files):
    paths, _ = model_files
    root = tmp_path / "ml"
    (root / "model").mkdir(parents=True)
    shutil.copy(paths["small"], root / "model" / "model.txt")
    body, expected, rows = _body(model_files, 80)  # 800,000 rows, ~ 130 MB
    assert len(body) > 100 * 1024 * 1024
    server = start_server(root, **LARGE)
    answer = requests.post(f"{server.url}/invocations", data=body, headers={"Content-Type": "text/csv"}, timeout=600)
    assert answer.status_code == 200, answer.text[:500]
    values = np.array(answer.content.split(), dtype=float)
    assert len(values) == rows
    np.testing.assert_allclose(values, expected, rtol=0, atol=1e-9)
    assert requests.get(f"{server.url}/execution-parameters", timeout=10).json()["MaxPayloadInMB"] == 100

    lines = body.split(b"\n")
    lines[rows - 3] = b"1,2,3"  # near the end, in the last piece
    bad = requests.post(
        f"{server.url}/invocations", data=b"\n".join(lines), headers={"Content-Type": "text/csv"}, timeout=600
    )
    assert bad.status_code == 400 and bad.json()["message"].startswith(
        f"line {rows - 2} has 3 fields but line 1 has 13"
    )
