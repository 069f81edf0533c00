"""The Flask app answering /ping, /invocations and /execution-parameters.

Built once per gunicorn worker (after the fork), so the model, LightGBM and OpenMP are
initialised in each worker and never in the supervising process.
"""

from lightgbm_container.logging_setup import configure_logging
from lightgbm_container.settings import serving_settings
from lightgbm_container.store import create_store
from lightgbm_container.http_app import create_app

settings = serving_settings()
configure_logging(settings.log_level)
app = create_app(settings, create_store(settings))
