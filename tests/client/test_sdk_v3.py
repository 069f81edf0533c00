"""The SageMaker Python SDK v3 against the real image: tests/client/sdk_v3/checks_v3.py, run in
build/sdk-v3 (v3's pins clash with the v2 SDK in .venv), with the image this tier built.

v3's ModelTrainer trains in local mode (the image's CMD starts `train` for it); v3 has no
local-mode serving route for a bring-your-own image except sagemaker.core's LocalSession,
which the checks use (see the README's "SageMaker Python SDK v3").
"""

from __future__ import annotations

import os
import subprocess
import time

from support import REPO, TIMINGS, tail, tool_venv

V3_DIR = REPO / "tests" / "client" / "sdk_v3"


def test_sdk_v3_trains_and_serves_in_local_mode(client_image: str, tmp_path) -> None:
    bin_dir = tool_venv(REPO / "build" / "sdk-v3", V3_DIR / "requirements.txt", "the SageMaker Python SDK v3")
    env = {**os.environ, "LIGHTGBM_TEST_IMAGE": client_image, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"}
    started = time.monotonic()
    result = subprocess.run(
        [
            str(bin_dir / "python"),
            "-m",
            "pytest",
            "--noconftest",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            "--rootdir",
            str(V3_DIR),
            "--basetemp",
            str(tmp_path / "v3"),
            "-q",
            "-rA",
            str(V3_DIR / "checks_v3.py"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    TIMINGS["SDK v3 checks"] = time.monotonic() - started
    assert result.returncode == 0, tail(result.stdout + result.stderr, 80)
    assert " passed" in result.stdout and "skipped" not in result.stdout.splitlines()[-1], tail(result.stdout, 20)
