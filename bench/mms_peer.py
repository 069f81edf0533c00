"""Start Multi Model Server with the SageMaker Inference Toolkit the way the toolkit does it
(``sagemaker_inference.model_server.start_model_server``), for the benchmark only.

Two differences, neither in the request path: the MMS configuration is written to a file
given on the command line (the toolkit writes /etc/sagemaker-mms.properties) and MMS runs
in the foreground so the benchmark can stop it. The configuration text itself comes from
the toolkit's own generator, with its defaults (decode_input_request=false, ...).

    build/bench-mms/bin/python bench/mms_peer.py CONFIG_FILE
Environment: SAGEMAKER_BASE_DIR, SAGEMAKER_BIND_TO_PORT, SAGEMAKER_MODEL_SERVER_WORKERS, as on SageMaker.
"""

import os
import sys
from pathlib import Path

from sagemaker_inference import environment, model_server


def exec_mms(config: Path, *models: str) -> None:
    """Become MMS in the foreground, started as the toolkit starts it (``models``: its ``--models``
    arguments; none in multi-model mode, where the caller loads them: bench/mms_mme_peer.py)."""
    command = ["multi-model-server", "--start", "--foreground", "--model-store", model_server.MODEL_STORE]
    command += ["--mms-config", str(config), "--log-config", model_server.DEFAULT_MMS_LOG_FILE]
    os.execvp("multi-model-server", command + (["--models", *models] if models else []))


def main() -> None:
    config = Path(sys.argv[1])
    env = environment.Environment()
    config.write_text(model_server._generate_mms_config_properties(env, model_server.DEFAULT_HANDLER_SERVICE))
    os.environ["PYTHONPATH"] = f"{environment.code_dir}:{os.environ.get('PYTHONPATH', '')}"  # as _set_python_path
    exec_mms(config, f"{model_server.DEFAULT_MMS_MODEL_NAME}={environment.model_dir}")


if __name__ == "__main__":
    main()
