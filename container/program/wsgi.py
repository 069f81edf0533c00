"""gunicorn's entry point: ``gunicorn 'wsgi:app_from_settings("settings.json")'`` (what serve runs),
or ``gunicorn wsgi:app``."""

import predictor
from predictor import app_from_settings  # noqa: F401


def __getattr__(name: str):
    return getattr(predictor, name)  # "app": built from the environment on first use
