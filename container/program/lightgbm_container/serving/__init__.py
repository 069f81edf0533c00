"""Serving: ``serve`` and the request path.

A request goes nginx -> gunicorn -> :mod:`.app` (routes) -> :mod:`.store` (which model and
handler) -> :mod:`.handler` (the contract every handler honours) -> the built-in handler
(:mod:`.builtin`: :mod:`.codecs` decode, the model validates and predicts, codecs encode)
or user code (:mod:`..user_code`). :mod:`.supervisor` is ``serve`` itself; :mod:`.http_front`
renders nginx's configuration and gunicorn's command line; :mod:`.handlers` decides which
handler serves a model directory.
"""
