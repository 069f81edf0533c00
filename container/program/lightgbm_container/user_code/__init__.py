"""User code on the same request path: a SageMaker Inference Toolkit ``inference.py``
(:mod:`.script`) or a Multi Model Server custom service (:mod:`.custom_service`), each
adapted to the one :class:`~..serving.handler.Handler` contract.

:mod:`.locate` decides which code serves a model directory; :mod:`.modules` imports it;
:mod:`.calls` calls user functions with the toolkit's context rule and honest errors;
:mod:`.context` is MMS's ``Context``; :mod:`.results` turns return values into responses;
:mod:`.setup` is what ``serve`` does once before the workers start (fetch the code,
install its ``requirements.txt``).
"""
