"""A SageMaker Inference Toolkit ``inference.py`` as a handler, with the toolkit's semantics.

- ``model_fn(model_dir)``, ``input_fn(input_data, content_type)``,
  ``predict_fn(data, model)``, ``output_fn(prediction, accept)``, or one
  ``transform_fn(model, input_data, content_type, accept)``; each may take the
  ``context`` as one more, last parameter; ``pre_model_fn(model_dir)`` and
  ``model_warmup_fn(model_dir, model)`` run around ``model_fn``.
- A function the script does not define falls back to the built-in LightGBM step (an
  ``inference.py`` with only an ``input_fn`` still loads, predicts and encodes), not to
  the toolkit's ``NotImplementedError``; except that next to the script's own ``predict_fn``
  the missing ``input_fn`` and ``output_fn`` are the toolkit's defaults (:mod:`.toolkit_defaults`):
  what such a script was written against.
- ``input_fn`` gets the raw ``Content-Type`` (parameters kept) and the body as ``str``
  for exactly ``application/json`` and ``text/csv``, ``bytes`` otherwise; ``output_fn`` gets
  the Accept header as sent, or ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` when it is missing
  or names no type (``*/*``, ``application/*``: :func:`..contract.negotiation.user_code_accept`).
- ``output_fn`` may return bytes, a string, ``(body, content_type)`` or a Flask response.

Deliberate differences from the toolkit: the body of an error is JSON naming the function
and the exception (the toolkit sends the Python trace); the built-in ``input_fn``/``output_fn``
answer an unsupported type with 415/406 (the toolkit: 500); and a wildcard type such as
``application/*`` becomes the default Accept, as ``*/*`` does (the toolkit passes it on, which
its own encoder then refuses).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

from ..builtin.handler import LightGBMHandler, prediction_rows
from ..contract.handler import InferenceRequest, InferenceResponse, StepTimer
from ..contract.negotiation import user_code_accept
from ..errors import BadRequest, UserCodeSetupError
from . import toolkit_defaults
from .calls import UserFunction
from .context import Context
from .results import to_response

#: Content types whose body the toolkit hands over as ``str`` (compared exactly, as it does).
UTF8_TYPES = ("application/json", "text/csv")
TRANSFORM_CONFLICT = (
    "Cannot use transform_fn implementation in conjunction with input_fn, predict_fn, and/or output_fn implementation"
)


def utf8_body(request: InferenceRequest) -> str:
    try:
        return request.body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the body is not UTF-8 text, as Content-Type {request.content_type} says: {exc}") from None


class ScriptHandler:
    reads_in_pieces = False  # user code gets the whole body, as the toolkit and MMS give it

    def __init__(self, module: ModuleType, builtin: LightGBMHandler, default_accept: str, context: Context) -> None:
        self.description = f"inference.py script {getattr(module, '__file__', module.__name__)}"
        self.builtin = builtin
        self.context = context
        self.default_accept = default_accept
        find = UserFunction.find
        self.pre_model_fn = find(module, "pre_model_fn", 1)
        self.model_fn = find(module, "model_fn", 1, builtin.model_fn) or UserFunction(
            "model_fn", builtin.model_fn, False, False
        )
        self.model_warmup_fn = find(module, "model_warmup_fn", 2)
        self.transform_fn = find(module, "transform_fn", 4)
        user_steps = [find(module, name, 2) for name in ("input_fn", "predict_fn", "output_fn")]
        if self.transform_fn is not None and any(user_steps):
            raise UserCodeSetupError(f"{self.description}: {TRANSFORM_CONFLICT}")
        # With the user's predict_fn in the pipeline, the missing steps are the toolkit's own
        # (:mod:`.toolkit_defaults`); otherwise the built-in ones, which keep our richer types.
        defaults = toolkit_defaults if user_steps[1] is not None else builtin
        self.input_fn = user_steps[0] or UserFunction("input_fn", defaults.input_fn, False, False)
        self.predict_fn = user_steps[1] or UserFunction("predict_fn", builtin.predict_fn, False, False)
        self.output_fn = user_steps[2] or UserFunction("output_fn", defaults.output_fn, False, False)
        # A request's own context only when some request-time function takes one: nobody else can see it.
        self.request_context = any(
            f is not None and f.takes_context
            for f in (self.transform_fn, self.input_fn, self.predict_fn, self.output_fn)
        )

    def load(self, model_dir: Path) -> Any:
        directory = str(model_dir)
        if self.pre_model_fn is not None:
            self.pre_model_fn(self.context, directory)
        model = self.model_fn(self.context, directory)
        if self.model_warmup_fn is not None:
            self.model_warmup_fn(self.context, directory, model)
        if not self.predict_fn.is_user:
            self.builtin.adopt(model, model_dir)
        return model

    def transform(self, model: Any, request: InferenceRequest) -> InferenceResponse:
        context = self.context.for_request(request.request_id, request.headers) if self.request_context else None
        content_type = request.content_type
        accept, answer_type = user_code_accept(request.accept, self.default_accept)
        data = utf8_body(request) if content_type in UTF8_TYPES else request.body
        steps = None
        if self.transform_fn is not None:
            result = self.transform_fn(context, model, data, content_type, accept)
        else:
            timer = StepTimer()
            decoded_data = self.input_fn(context, data, content_type)
            timer.decoded()
            prediction = self.predict_fn(context, decoded_data, model)
            timer.predicted()
            result = self.output_fn(context, prediction, accept)
            steps = timer.steps(prediction_rows(prediction))
        if context is None:
            response = to_response(result, answer_type)
        else:
            status, _ = context.get_response_status(0)
            response = to_response(result, answer_type, status, context.get_response_headers(0))
        response.steps = steps
        return response
