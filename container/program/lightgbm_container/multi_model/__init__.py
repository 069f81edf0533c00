"""Multi-model mode: SageMaker's /models API and lazy TargetModel loading (see :mod:`.store`)."""
