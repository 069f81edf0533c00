"""Start Multi Model Server with the SageMaker Inference Toolkit in multi-model mode, the way the
toolkit's ``start_model_server`` does when ``SAGEMAKER_MULTI_MODEL=true``, for the benchmark only.

What the toolkit does in that mode, and this does too: the configuration is its
``mme-mms.properties`` plus the generated lines (``default_workers_per_model`` from
``SAGEMAKER_MODEL_SERVER_WORKERS``), ``SAGEMAKER_HANDLER`` names its default handler service
(the configuration's ``default_service_handler=$$SAGEMAKER_HANDLER$$``), ``PYTHONPATH`` starts
with the container-wide code directory ``<SAGEMAKER_BASE_DIR>/models/code``, and MMS starts with
no ``--models``: the caller (SageMaker, here the benchmark) loads models with ``POST /models``.
Three differences, none in the request path: as in bench/mms_peer.py, the configuration goes
to the file given on the command line (the toolkit writes /etc/sagemaker-mms.properties) and
MMS runs in the foreground so the benchmark can stop it; MMS listens on 127.0.0.1, not 0.0.0.0.

    SAGEMAKER_MULTI_MODEL=true build/bench-mms/bin/python bench/mms_mme_peer.py CONFIG_FILE
Environment: SAGEMAKER_BASE_DIR, SAGEMAKER_BIND_TO_PORT, SAGEMAKER_MODEL_SERVER_WORKERS, as on SageMaker.
"""

import os
import sys
from pathlib import Path

from sagemaker_inference import environment, model_server

from mms_peer import exec_mms  # this file's own directory is first on sys.path


def main() -> None:
    if not model_server.ENABLE_MULTI_MODEL:
        sys.exit("mms_mme_peer.py: set SAGEMAKER_MULTI_MODEL=true (bench/mms_peer.py starts single-model MMS)")
    config = Path(sys.argv[1])
    os.environ.setdefault("SAGEMAKER_HANDLER", model_server.DEFAULT_HANDLER_SERVICE)  # as start_model_server
    model_server._set_python_path()
    text = model_server._generate_mms_config_properties(environment.Environment(), None)
    config.write_text(text.replace("=http://0.0.0.0:", "=http://127.0.0.1:"))  # loopback only, unlike SageMaker
    exec_mms(config)


if __name__ == "__main__":
    main()
