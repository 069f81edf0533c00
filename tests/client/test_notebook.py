"""notebooks/lightgbm_sagemaker.ipynb executed headless (nbclient) in local mode: any cell error fails.

The notebook gets the session's image (LIGHTGBM_IMAGE_URI), a free serving port and a
temporary work directory; its real-SageMaker section stays skipped (RUN_ON_SAGEMAKER unset).
The executed copy is kept next to the work directory for inspection.
"""

from __future__ import annotations

import time

import pytest
from client_helpers import REPO

from support import free_port

pytestmark = pytest.mark.client

NOTEBOOK = REPO / "notebooks" / "lightgbm_sagemaker.ipynb"


def test_notebook_runs_end_to_end_in_local_mode(client_image, leftover_guard, monkeypatch, tmp_path, timings):
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    work = tmp_path / "work"
    monkeypatch.setenv("LIGHTGBM_IMAGE_URI", client_image)
    monkeypatch.setenv("LOCAL_SERVING_PORT", str(free_port()))
    monkeypatch.setenv("NOTEBOOK_WORK_DIR", str(work))
    monkeypatch.delenv("RUN_ON_SAGEMAKER", raising=False)

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    started = time.monotonic()
    try:
        client.execute()
    except CellExecutionError as exc:
        pytest.fail(f"notebook cell failed (executed copy: {tmp_path / 'executed.ipynb'}):\n{exc}", pytrace=False)
    finally:
        nbformat.write(notebook, tmp_path / "executed.ipynb")
    timings["notebook (headless, local mode)"] = time.monotonic() - started

    assert sorted(p.name for p in (work / "plots").iterdir()) == ["feature_importance.png", "predicted_vs_actual.png"]
    outputs = "".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    )
    assert "batch transform == endpoint == LightGBM on the host" in outputs
    assert "local-mode containers left: []" in outputs
    assert "skipped: set RUN_ON_SAGEMAKER=1" in outputs
    images = [
        output for cell in notebook.cells for output in cell.get("outputs", []) if "image/png" in output.get("data", {})
    ]
    assert len(images) == 2, "both plots should render inline"
