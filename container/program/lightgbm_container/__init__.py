"""LightGBM training and serving for Amazon SageMaker (nginx -> gunicorn -> Flask)."""

__version__ = "0.1.0"
